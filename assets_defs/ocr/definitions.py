from dagster import Definitions

from assets_defs.ocr.assets import ocr_text

defs = Definitions(assets=[ocr_text])
