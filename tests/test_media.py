import io

import numpy as np
import pytest
from PIL import Image

from ml.inspect import inspect_media
from ml.media import LocalFiles, MediaProblem, decode_image, probe_image


def _jpeg(size=(640, 480), seed=0) -> bytes:
    """Grey noise from a fixed seed (Image.effect_noise draws from C rand(), whose state depends on the test order)."""
    pixels = np.random.default_rng(seed).normal(128, 60, (size[1], size[0])).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty file"), (b"hello, not an image", "not an image"), (_jpeg()[:3000], "truncated")],
)
def test_bad_bytes_give_reasons(data, reason):
    with pytest.raises(MediaProblem) as info:
        probe_image(data)
    assert reason in info.value.reason


def test_probe_reports_true_size_even_with_draft_decoding():
    info = probe_image(_jpeg((1600, 1200)))
    assert (info.width, info.height, info.format) == (1600, 1200, "JPEG")
    assert max(decode_image(_jpeg((1600, 1200)), draft_size=448).size) <= 1600 // 2


def test_inspect_media_quarantines_and_goes_on(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg())
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_bytes(b"plain text")
    rows = {r["uri"].rsplit("/", 1)[-1]: r for r in inspect_media([str(p) for p in sorted(tmp_path.iterdir())])}
    assert rows["good.jpg"]["status"] == "ok" and len(rows["good.jpg"]["media_id"]) == 64
    assert rows["empty.jpg"]["status"] == "quarantined" and "empty" in rows["empty.jpg"]["error"]
    assert rows["text.png"]["status"] == "quarantined" and "not an image" in rows["text.png"]["error"]


def test_one_s3_client_per_process_and_endpoint():
    from resources.s3_media import s3_client

    assert s3_client("http://127.0.0.1:9") is s3_client("http://127.0.0.1:9")
    assert s3_client("http://127.0.0.1:9") is not s3_client("http://127.0.0.1:10")


def test_ml_reads_local_files_and_sends_s3_to_the_media_store(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(b"bytes of a photo")
    assert LocalFiles().read(str(path)) == b"bytes of a photo"
    with LocalFiles().open(str(path)) as stream:
        stream.seek(9)
        assert stream.read() == b"a photo"
    for call in (LocalFiles().read, LocalFiles().open):
        with pytest.raises(ValueError, match="configure an S3 media store"):
            call("s3://bucket/a.jpg")
    (row,) = inspect_media(["s3://bucket/a.jpg"])  # quarantined with the reason, never read from S3 by ml
    assert row["status"] == "quarantined" and "configure an S3 media store" in row["error"]


def test_the_media_store_reader_crosses_into_tasks(tmp_path):
    import pickle

    from resources.media_store import LocalMediaStore, S3MediaStore
    from resources.s3_media import StoreReader, s3_client

    path = tmp_path / "a.jpg"
    path.write_bytes(b"bytes of a photo")
    reader = S3MediaStore(endpoint_url="http://127.0.0.1:9").reader()
    s3_client("http://127.0.0.1:9")  # a client in this process is not part of what a task receives
    assert pickle.loads(pickle.dumps(reader)) == reader == StoreReader("http://127.0.0.1:9")
    assert len(pickle.dumps(reader)) < 200
    assert reader.read(str(path)) == LocalMediaStore().read_bytes(str(path)) == b"bytes of a photo"
    with reader.open(str(path)) as stream:
        assert stream.seekable() and stream.read(5) == b"bytes"


def test_a_task_reading_media_imports_neither_dagster_nor_boto3():
    """A Ray worker unpickles the reader with every task: that costs a module, not Dagster (1.5 s, 80 MB)."""
    import pickle
    import subprocess
    import sys

    from resources.s3_media import StoreReader

    code = (
        "import pickle, sys; import ml.embedding, ml.inspect, ml.video_embedding\n"
        f"pickle.loads({pickle.dumps(StoreReader('http://127.0.0.1:9'))!r})\n"
        "print(sorted(m for m in ('dagster', 'boto3', 'qdrant_client', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
