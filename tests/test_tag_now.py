"""Tag one photo now (tagsmith/tag_now.py): a library photo's file tagged by `PhotoTagger` gets the rows the run's
`tags` asset wrote for it (same scoring code), a file that is no photo is refused in one line, and the tagger
reloads when the promotions change. On the session's pipeline-tagged demo (tests/conftest.py tagged_demo)."""

import dataclasses
import os

import polars as pl
import pytest
from PIL import Image

from tagsmith import service, tag_now
from tagsmith.tag_now import NotAPhoto, PhotoTagger

PHOTOS = 6  # photos tagged now and compared (about 20 ms each)


@pytest.fixture(scope="module")
def tagger(tagged_demo):
    return PhotoTagger("demo", tagged_demo.res)


def _library_photos(res, library: str, n: int) -> pl.DataFrame:
    media = res["warehouse"].read(library, "media")
    photos = media.filter((pl.col("status") == "ok") & (pl.col("kind") == "image")).unique("media_id")
    return photos.sort("uri").head(n)


def test_a_library_photo_tagged_now_gets_the_rows_the_run_wrote(tagged_demo, tagger, same_as_run):
    res = tagged_demo.res
    photos = _library_photos(res, "demo", PHOTOS)
    compared = same_as_run(tagger, res, "demo", photos)
    facets = set(res["warehouse"].read("demo", "head_promotions")["facet"])
    assert compared == len(photos) * len(facets)  # a single facet: one row per photo


def test_a_photo_the_ocr_engine_fails_on_is_tagged_without_its_text(tagged_demo, same_as_run, monkeypatch):
    class Failing:
        def read_photo(self, picture):
            raise RuntimeError("cannot resize")

    said = []
    monkeypatch.setattr(tag_now.log, "warning", lambda message, *args: said.append(message % args))
    tagger = PhotoTagger("demo", tagged_demo.res)
    tagger._loaded = dataclasses.replace(tagger._loaded, ocr=Failing())  # the same key: no reload
    photos = _library_photos(tagged_demo.res, "demo", 2)
    assert same_as_run(tagger, tagged_demo.res, "demo", photos) > 0  # the run read no text on them either
    assert len(said) == 2 and all("tagged without its text: RuntimeError: cannot resize" in s for s in said)


def test_a_file_that_is_no_photo_is_refused_in_one_line(tagger, tmp_path):
    page = tmp_path / "photo.jpg"
    page.write_text("<!doctype html><html><body>404</body></html>", encoding="utf-8")
    with pytest.raises(NotAPhoto, match=r"^photo.jpg is not a photo: an HTML page$"):
        tagger.tag(page)
    with pytest.raises(NotAPhoto, match="cannot be read"):
        tagger.tag(tmp_path / "missing.jpg")
    big = tmp_path / "big.png"
    Image.new("RGB", (200, 100)).save(big)
    with pytest.raises(NotAPhoto, match=r"^big.png: too large: 200 x 100") as refused:
        tagger.read_photo(big, max_pixels=10_000)
    assert "\n" not in str(refused.value)


def test_the_tagger_reloads_when_the_promotions_change(tagged_demo, tagger):
    before = tagger.current()
    assert tagger.current() is before  # nothing changed: nothing loaded again
    path = tagged_demo.res["warehouse"].table_path("demo", "head_promotions")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # what a run's or a rollback's rewrite does
    after = tagger.current()
    assert after is not before and after.heads.keys() == before.heads.keys()


def test_service_keeps_one_warm_tagger_per_library(tagged_demo, monkeypatch):
    for key, value in tagged_demo.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(service, "resources", lambda: tagged_demo.res)  # the session's model store
    uri = _library_photos(tagged_demo.res, "demo", 1)["uri"][0]
    first = service.tag_photo("demo", uri)
    assert service.tag_photo("demo", uri) == first
    assert first["library"] == "demo" and len(first["media_id"]) == 64 and first["tags"]
    assert sum(k[1] == "demo" for k in service._TAGGERS) == 1
