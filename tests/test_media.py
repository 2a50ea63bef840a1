import io

import numpy as np
import pytest
from PIL import Image

from ml.inspect import inspect_media
from ml.media import MediaProblem, decode_image, probe_image


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
    from ml.media import s3_client

    assert s3_client("http://127.0.0.1:9") is s3_client("http://127.0.0.1:9")
    assert s3_client("http://127.0.0.1:9") is not s3_client("http://127.0.0.1:10")
