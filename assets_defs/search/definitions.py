from dagster import Definitions

from assets_defs.search.assets import vector_index

defs = Definitions(assets=[vector_index])
