"""OCR with the RapidOCR models shipped in the wheel (no download), and the cached `ocr_text` asset."""

import socket

import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ml.ocr import OcrSpec, cached_engine, ocr_chunk


def label(text: str, size=(320, 160)) -> Image.Image:
    image = Image.new("RGB", size, (235, 232, 225))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 50, 280, 110), fill=(255, 255, 255), outline=(30, 30, 30), width=2)
    draw.text((60, 62), text, fill=(20, 20, 20), font=ImageFont.load_default(size=32))
    return image


@pytest.fixture(scope="module")
def engine():
    return cached_engine(OcrSpec())


def test_reads_printed_model_number_offline(engine, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("OCR tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    boxes = engine.read(label("AS-100"))
    assert [b.text.replace(" ", "") for b in boxes] == ["AS-100"]
    assert boxes[0].confidence > 0.8 and len(boxes[0].box) == 8
    assert engine.read(Image.new("RGB", (320, 160), (240, 240, 240))) == []  # no text, no boxes


def small_label_scene() -> Image.Image:
    """A 320 px photo with a striped product and a label a few pixels high at its centre (a lifestyle shot)."""
    image = Image.new("RGB", (320, 320), (200, 60, 50))
    draw = ImageDraw.Draw(image)
    for k in range(0, 320, 24):
        draw.line((0, k, 320, k + 40), fill=(230, 230, 230), width=3)
    draw.rectangle((142, 150, 176, 166), fill=(245, 245, 245))
    draw.text((147, 152), "R7", fill=(20, 20, 20), font=ImageFont.load_default(size=9))
    return image.filter(ImageFilter.GaussianBlur(0.6))


def test_a_photo_without_text_is_read_again_on_its_centre(engine):
    scene = small_label_scene()
    assert engine.read(scene) == []  # the whole frame: the label is too small for the detector
    found = engine.read_photo(scene)
    assert [b.text for b in found] == ["R7"]
    xs, ys = found[0].box[0::2], found[0].box[1::2]  # mapped back into the photo's pixels: on the label
    assert 136 <= min(xs) and max(xs) <= 182 and 144 <= min(ys) and max(ys) <= 172
    assert cached_engine(OcrSpec(zoom=())).read_photo(scene) == []
    assert OcrSpec(zoom=()).model_id != OcrSpec().model_id


def test_a_strip_too_thin_for_text_is_left_unread_not_left_to_stall(engine):
    from ml.ocr import readable

    assert readable(320, 320) and readable(60, 480) and readable(480, 40)
    assert not readable(4, 400) and not readable(400, 7) and not readable(20, 4000)
    for size in ((4, 400), (8, 1000), (20, 4000), (400, 2)):  # hung or raised in RapidOCR before the check
        assert engine.read_photo(Image.new("RGB", size, (200, 200, 200))) == []


def test_ocr_chunk_reports_bad_photos_and_reads_the_rest(tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.jpg"
    label("NT-40").save(good)
    bad.write_bytes(b"not a photo")
    result = ocr_chunk(OcrSpec(), [("g" * 64, str(good)), ("b" * 64, str(bad))])
    assert [r["text"] for r in result.rows] == ["NT-40"]
    assert [d["media_id"][0] for d in result.done] == ["g"]
    assert [e["media_id"][0] for e in result.errors] == ["b"] and "not an image" in result.errors[0]["reason"]
    assert OcrSpec().model_id == OcrSpec(threads=2).model_id != OcrSpec(limit_side_len=736).model_id


def test_ocr_chunk_reports_a_photo_the_engine_fails_on_and_reads_the_rest(tmp_path, monkeypatch):
    good, odd = tmp_path / "good.png", tmp_path / "odd.png"
    label("NT-40").save(good)
    label("XX-99", size=(330, 160)).save(odd)
    engine = cached_engine(OcrSpec())
    read = engine.read_photo

    def fails_on_the_odd_one(image):
        if image.width == 330:  # what RapidOCR's ResizeImgError did to a whole chunk before
            raise RuntimeError("cannot resize")
        return read(image)

    monkeypatch.setattr(engine, "read_photo", fails_on_the_odd_one)
    result = ocr_chunk(OcrSpec(), [("o" * 64, str(odd)), ("g" * 64, str(good))])
    assert [r["text"] for r in result.rows] == ["NT-40"]
    assert [d["media_id"][0] for d in result.done] == ["g"]
    assert [e["media_id"][0] for e in result.errors] == ["o"]
    assert result.errors[0]["reason"] == "OCR failed: RuntimeError: cannot resize"


def test_ocr_text_asset_reads_once_and_only_when_wanted(local_resources, small_demo, add_library, asset_metadata):
    from assets_defs.media.assets import media
    from assets_defs.ocr.assets import ocr_text
    from assets_defs.partitions import library_partitions
    from assets_defs.training.assets import catalog, examples

    res = local_resources
    on = add_library(res, small_demo, name="reads", ocr="on")
    off = add_library(res, small_demo, name="skips", ocr="off")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [on, off])
        # a subset on purpose: only what OCR reads, so that the test measures OCR and not the whole pipeline
        first = materialize([catalog, media, examples, ocr_text], resources=res, partition_key=on, instance=instance)
        again = materialize([catalog, media, examples, ocr_text], resources=res, partition_key=on, instance=instance)
        skipped = materialize([catalog, media, examples, ocr_text], resources=res, partition_key=off, instance=instance)
    read = asset_metadata(first, "ocr_text")["read_now"]
    assert read == small_demo.n_uploads + small_demo.n_examples  # every usable photo and example, once
    assert asset_metadata(again, "ocr_text")["read_now"] == 0
    assert asset_metadata(skipped, "ocr_text")["enabled"] is False
    table = res["warehouse"].read(on, "ocr_text")
    assert table.height > 0 and set(table.columns) >= {"media_id", "ts", "text", "confidence", "box", "model"}
    # the demo prints each product's model number on it: most photos show theirs
    truth = res["warehouse"].read(on, "examples").filter(pl.col("facet") == "product").select("media_id", "tag_id")
    numbers = dict(
        res["warehouse"].read(on, "catalog").select("tag_id", pl.col("identifiers").list.first()).iter_rows()
    )
    texts = table.group_by("media_id").agg(pl.col("text"))
    joined = truth.join(texts, on="media_id", how="left")
    shown = sum(numbers[tag] in (text or []) for tag, text in joined.select("tag_id", "text").iter_rows())
    assert shown / joined.height > 0.5, f"{shown}/{joined.height}"
