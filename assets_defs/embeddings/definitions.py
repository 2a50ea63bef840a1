from dagster import Definitions

from assets_defs.embeddings.assets import embeddings

defs = Definitions(assets=[embeddings])
