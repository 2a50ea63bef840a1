"""The HTTP API in-process (FastAPI's TestClient): tokens, one library per token, the endpoints, hostile input.
Two libraries (`api_home`: same file names and tag ids, other bytes) prove that nothing crosses between them."""

import io
import logging
import os
import struct
import zlib
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tagsmith import service
from tagsmith.cli import app as cli_app
from tests.api_helpers import auth, create_token, media_ids, tagged_photo


@pytest.fixture(scope="module")
def api(api_home):
    from tagsmith.api.app import create_app

    tokens = {"alpha": create_token("alpha", "pim"), "beta": create_token("beta", "dam")}
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client, tokens


INJECTION = "x' OR '1'='1'; DROP TABLE tags; --"


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb's calling card) and one tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def test_no_token_is_401_and_a_bad_or_revoked_one_too(api):
    client, tokens = api
    for headers in ({}, {"Authorization": "Basic abc"}, auth("tsk_00000000_" + "A" * 43), auth("nonsense")):
        answer = client.get("/v1/search", params={"q": "aurora"}, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"
    spare = create_token("alpha", "spare")
    assert client.get("/v1/catalog", headers=auth(spare)).status_code == 200
    token_id = spare.split("_")[1]
    listed = CliRunner().invoke(cli_app, ["token", "list", "alpha"]).output
    assert token_id in listed and spare not in listed  # ids only, never a token
    assert CliRunner().invoke(cli_app, ["token", "revoke", token_id]).exit_code == 0
    assert client.get("/v1/catalog", headers=auth(spare)).status_code == 401
    unknown = CliRunner().invoke(cli_app, ["token", "revoke", "ffffffff"])
    assert unknown.exit_code == 1 and "no token 'ffffffff'" in unknown.output
    stored = (api_home_path() / "api_tokens.json").read_text()
    assert spare.split("_", 2)[2] not in stored and token_id in stored  # hashed at rest


def test_openapi_and_docs_are_published(api):
    client, _ = api
    spec = client.get("/openapi.json").json()
    for path in (
        "/v1/tag",
        "/v1/search",
        "/v1/similar",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/tags/export",
        "/v1/review/verdicts",
        "/v1/models",
        "/v1/sql",
        "/healthz",
        "/readyz",
    ):
        assert path in spec["paths"], path
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"} and client.get("/readyz").json() == {"status": "ready"}


def test_another_librarys_media_and_jobs_are_not_found_word_for_word(api):
    client, tokens = api
    alpha_ids, beta_ids = media_ids("alpha"), media_ids("beta")
    assert alpha_ids and beta_ids and not alpha_ids & beta_ids  # same names, other bytes
    beta_photo, _ = tagged_photo("beta")
    alpha_photo, _ = tagged_photo("alpha")
    nowhere = "0" * 64
    mine = client.get(f"/v1/media/{alpha_photo}/tags", headers=auth(tokens["alpha"]))
    assert mine.status_code == 200 and mine.json()["tags"]
    for path in ("/v1/media/{}/tags", "/v1/similar?media_id={}"):
        other = client.get(path.format(beta_photo), headers=auth(tokens["alpha"]))
        none = client.get(path.format(nowhere), headers=auth(tokens["alpha"]))
        assert other.status_code == none.status_code == 404
        assert other.json()["error"]["message"].replace(beta_photo, nowhere) == none.json()["error"]["message"]
        assert "beta" not in other.text
    assert client.get(f"/v1/jobs/{nowhere}", headers=auth(tokens["alpha"])).status_code == 404


def test_search_export_sql_and_similar_answer_from_the_tokens_library_only(api):
    client, tokens = api
    for library, other in (("alpha", "beta"), ("beta", "alpha")):
        own, foreign = media_ids(library), media_ids(other)
        headers = auth(tokens[library])
        hits = client.get(
            "/v1/search", params={"q": "lifestyle", "limit": 200, "include_review": True}, headers=headers
        )
        found = {h["media_id"] for h in hits.json()["hits"]}
        assert found and found <= own and not found & foreign
        csv = client.get("/v1/tags/export", params={"include_review": True}, headers=headers)
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        exported = pl.read_csv(io.BytesIO(csv.content))
        assert set(exported["media_id"]) <= own and exported.height > 0
        parquet = client.get("/v1/tags/export", params={"format": "parquet"}, headers=headers)
        assert set(pl.read_parquet(io.BytesIO(parquet.content))["media_id"]) <= own
        sql = client.post("/v1/sql", json={"sql": "SELECT DISTINCT media_id FROM tags"}, headers=headers).json()
        assert {r["media_id"] for r in sql["rows"]} <= own
        photo, _ = tagged_photo(library)
        similar = client.get("/v1/similar", params={"media_id": photo, "limit": 50}, headers=headers).json()
        assert {s["media_id"] for s in similar["similar"]} <= own
    for probe in (
        "SELECT * FROM beta.tags",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "DROP VIEW tags",
        "SELECT 1; SELECT 2",
        "ATTACH 'x.db'",
    ):
        refused = client.post("/v1/sql", json={"sql": probe}, headers=auth(tokens["alpha"]))
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "sql_refused", probe


def test_models_catalog_and_review_queue(api):
    client, tokens = api
    headers = auth(tokens["alpha"])
    models = client.get("/v1/models", headers=headers).json()
    assert {h["facet"] for h in models["heads"]} == {"product", "colorway", "shot_type"}
    assert all("new_shoot_top1" in h for h in models["heads"]) and "model" not in models["versions"][0]
    catalog = client.get("/v1/catalog", headers=headers).json()["tags"]
    assert {t["facet"] for t in catalog} == {"product", "colorway", "shot_type"}
    # verdicts go to beta (alpha's next run, in the job test below, then retrains nothing)
    headers = auth(tokens["beta"])
    queue = client.get("/v1/review/queue", params={"limit": 3}, headers=headers).json()
    assert queue["total"] >= len(queue["items"]) > 0
    item = queue["items"][0]
    verdict = {k: item[k] for k in ("media_id", "facet", "tag_id")} | {"verdict": "accept"}
    assert client.post("/v1/review/verdicts", json={"verdicts": [verdict]}, headers=headers).json() == {"recorded": 1}
    log = pl.read_csv(service.resources()["libraries"].dir("beta") / "verdicts.csv")
    assert log.row(-1, named=True)["via"] == "api" and log.row(-1, named=True)["who"] == "dam"
    alpha_photo, _ = tagged_photo("alpha")
    foreign = {**verdict, "media_id": alpha_photo}
    assert client.post("/v1/review/verdicts", json={"verdicts": [foreign]}, headers=headers).status_code == 404
    bad = client.post("/v1/review/verdicts", json={"verdicts": [{**verdict, "tag_id": "no-such-tag"}]}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def test_hostile_input_is_refused_with_a_code_never_a_500(api):
    client, tokens = api
    headers = auth(tokens["alpha"])
    logger, lines = logging.getLogger("tagsmith.api"), Lines()  # pytest's log capture is off (make test)
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    answers = {
        "sql injection in q": client.get("/v1/search", params={"q": INJECTION}, headers=headers),
        "facet injection": client.get("/v1/search", params={"q": "a", "facet": "product' OR 1=1 --"}, headers=headers),
        "lang injection": client.get("/v1/search", params={"q": "a", "lang": "fr'; --"}, headers=headers),
        "media id traversal": client.get("/v1/media/..%2F..%2Fetc%2Fpasswd/tags", headers=headers),
        "job id traversal": client.get("/v1/jobs/..%2F..%2Fetc", headers=headers),
        "uri traversal": client.post("/v1/jobs", json={"uris": ["../beta/IMG_0001.jpg"]}, headers=headers),
        "absolute uri": client.post("/v1/jobs", json={"uris": ["/etc/passwd"]}, headers=headers),
        "other library's file": client.post(
            "/v1/jobs", json={"uris": [str(media_root("beta")) + "/IMG_0001.jpg"]}, headers=headers
        ),
        "url uri": client.post("/v1/jobs", json={"uris": ["file:///etc/passwd"]}, headers=headers),
        "not media": client.post("/v1/tag", content=b"<html><body>hello</body></html>" * 4, headers=headers),
        "empty body": client.post("/v1/tag", content=b"", headers=headers),
        "bomb": client.post("/v1/tag", content=_png_header(60_000, 60_000), headers=headers),
        "truncated": client.post("/v1/tag", content=_png_header(64, 64)[:40] + b"\x00" * 40, headers=headers),
        "name traversal": client.post("/v1/media", params={"name": "../../x.jpg"}, content=b"x", headers=headers),
        "huge json": client.post("/v1/sql", content=b'{"sql": "' + b"a" * (2 << 20) + b'"}', headers=headers),
        "bad json": client.post("/v1/sql", content=b"{not json", headers=headers),
        "bad limit": client.get("/v1/search", params={"q": "a", "limit": -1}, headers=headers),
        "nul in q": client.get("/v1/search", params={"q": "a\x00b"}, headers=headers),
    }
    codes = {name: (a.status_code, a.json()["error"]["code"]) for name, a in answers.items() if a.status_code != 200}
    assert answers["sql injection in q"].status_code == 200 and answers["sql injection in q"].json()["hits"] == []
    assert answers["nul in q"].status_code == 200
    assert codes["facet injection"] == codes["lang injection"] == (400, "invalid_request")
    assert codes["uri traversal"] == codes["name traversal"] == (400, "invalid_request")
    assert codes["absolute uri"] == codes["other library's file"] == codes["url uri"] == (404, "not_found")
    assert codes["not media"] == (415, "unsupported_media_type")
    assert codes["bomb"][1] == codes["truncated"][1] == "unreadable_media"
    assert codes["huge json"] == (413, "payload_too_large")
    assert all(status < 500 for status, _ in codes.values()), codes
    assert "not an image" not in answers["bomb"].text and "pixels" in answers["bomb"].json()["error"]["message"]
    intact = client.post("/v1/sql", json={"sql": "SELECT count(*) AS n FROM tags"}, headers=headers)
    assert intact.json()["rows"][0]["n"] > 0
    logger.removeHandler(lines)
    logged = "\n".join(lines.lines)
    assert "code=unsupported_media_type library=alpha" in logged
    assert all(token not in logged and token.split("_", 2)[2] not in logged for token in tokens.values())


def media_root(library: str) -> str:
    return service.resources()["libraries"].config(library).media


def api_home_path() -> Path:
    return Path(os.environ["TAGSMITH_HOME"])


def test_uploads_over_the_limit_and_requests_over_the_rate_are_refused(api_home, small_demo):
    from resources.tokens import token_store
    from tagsmith.api.app import create_app
    from tagsmith.api.deps import ApiSettings

    settings = ApiSettings(tokens=token_store(api_home), tmp_dir=api_home / "tmp" / "api-small",
                           max_photo_bytes=2048, rate_per_s=0.5, burst=2)  # fmt: skip
    token = create_token("alpha")
    photo = next(p for p in sorted(small_demo.uploads_dir.glob("IMG_0*.jpg")) if p.stat().st_size > 2048).read_bytes()
    with TestClient(create_app(settings)) as client:
        big = client.post("/v1/tag", content=photo, headers=auth(token))
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"

        def chunks():  # no Content-Length: refused while streaming
            yield photo[:1000]
            yield photo[1000:]

        streamed = client.post("/v1/tag", content=chunks(), headers=auth(token))
        assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "payload_too_large"
        limited = client.get("/v1/catalog", headers=auth(token))
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
    assert not list((api_home / "tmp" / "api-small").iterdir())  # refused uploads leave nothing behind


def test_search_and_catalog_speak_the_language_asked(api):
    client, tokens = api
    headers = auth(tokens["alpha"])
    every = client.get("/v1/search", params={"q": "lifestyle", "include_review": True, "limit": 200}, headers=headers)
    n = len(every.json()["hits"])
    # French with and without accents, German, Japanese (full-width too), Arabic without its harakat
    for q in ("mise en scène", "MISE EN SCENE", "stimmungsbild", "ライフスタイル", "ﾗｲﾌｽﾀｲﾙ", "صورة حياتية"):
        found = client.get("/v1/search", params={"q": q, "lang": "fr", "include_review": True, "limit": 200},
                           headers=headers).json()["hits"]  # fmt: skip
        assert len(found) == n, q
        assert {h["matched"] for h in found} == {"Mise en scène"} and found[0]["tag_ids"] == ["lifestyle"]
    japanese = client.get("/v1/search", params={"q": "lifestyle", "lang": "ja", "include_review": True},
                          headers=headers).json()["hits"]  # fmt: skip
    assert japanese[0]["matched"] == "ライフスタイル"
    names = {
        t["tag_id"]: t["name"] for t in client.get("/v1/catalog", params={"lang": "fr"}, headers=headers).json()["tags"]
    }
    assert names["lifestyle"] == "Mise en scène" and names["packshot"] == "Photo détourée" and names["sand"] == "Sand"
    shot = client.get("/v1/search", params={"q": "lifestyle", "facet": "product", "include_review": True},
                      headers=headers).json()  # fmt: skip
    assert shot["hits"] == []  # lifestyle is a shot_type: a product-only search finds none
    # beta has the same tag ids and photos' names, not alpha's names: its token finds nothing by them
    other = client.get(
        "/v1/search", params={"q": "ライフスタイル", "include_review": True}, headers=auth(tokens["beta"])
    )
    assert other.status_code == 200 and other.json()["hits"] == []


def test_a_photo_tagged_now_joins_the_library_and_a_job_tags_it_the_same(api, small_demo):
    import time

    from PIL import Image, ImageOps

    client, tokens = api
    headers = auth(tokens["alpha"])
    source = sorted(small_demo.uploads_dir.glob("IMG_0*.jpg"))[1]
    buffer = io.BytesIO()
    ImageOps.flip(Image.open(source).convert("RGB")).save(buffer, "JPEG", quality=90)  # bytes no library holds
    now = client.post("/v1/tag", params={"add": True, "name": "new-shot.jpg"}, content=buffer.getvalue(),
                      headers=headers)  # fmt: skip
    assert now.status_code == 200, now.text
    tagged = now.json()
    assert tagged["media_id"] not in media_ids("alpha") and tagged["added"]["action"] == "copy"
    assert {t["facet"] for t in tagged["tags"]} == {"product", "colorway", "shot_type"}
    uri = tagged["added"]["uri"]
    assert uri.startswith(media_root("alpha")) and "/api/" in uri
    again = client.post("/v1/media", params={"name": "same-bytes.jpg"}, content=buffer.getvalue(), headers=headers)
    assert again.status_code == 201 and again.json()["action"] == "same"  # the library holds these bytes already
    assert again.json()["media_id"] == tagged["media_id"] == tagged["added"]["media_id"]
    relative = uri[len(media_root("alpha")) + 1 :]
    job = client.post("/v1/jobs", json={"uris": [relative]}, headers=headers)
    assert job.status_code == 202 and job.json()["status"] == "queued"
    job_id = job.json()["job_id"]
    assert client.get(f"/v1/jobs/{job_id}", headers=auth(tokens["beta"])).status_code == 404
    deadline = time.monotonic() + 300
    while (status := client.get(f"/v1/jobs/{job_id}", headers=headers).json())["status"] not in ("success", "failure"):
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert status["status"] == "success", status
    assert status["media"] == [{"uri": uri, "media_id": tagged["media_id"], "kind": "image"}]
    assert job_id in {j["job_id"] for j in client.get("/v1/jobs", headers=headers).json()["jobs"]}
    stored = client.get(f"/v1/media/{tagged['media_id']}/tags", headers=headers).json()["tags"]
    # the run kept every head (no verdict or example changed), and wrote for the photo what tagging it now said
    facts = {(t["facet"], t["tag_id"], t["status"], round(t["score"], 4), t["head_version"]) for t in tagged["tags"]}
    assert {(t["facet"], t["tag_id"], t["status"], round(t["score"], 4), t["head_version"]) for t in stored} == facts


def test_a_library_that_never_ran_is_not_ready(api, tmp_path):
    from resources.libraries import LibraryConfig

    client, _ = api
    service.resources()["libraries"].create(LibraryConfig(name="gamma", media=str(tmp_path)))
    answer = client.get("/v1/search", params={"q": "x"}, headers=auth(create_token("gamma")))
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "not_ready"
