"""Media in S3 by configuration only: moto's server speaks real S3 over HTTP on 127.0.0.1."""

import polars as pl
import pytest

from assets_defs.embeddings.assets import embeddings
from assets_defs.heads.assets import heads
from assets_defs.heads.evaluation import promoted_heads
from assets_defs.media.assets import media
from assets_defs.tags.assets import tags
from assets_defs.training.assets import catalog, examples
from resources.libraries import LibraryConfig
from resources.media_store import S3MediaStore


def test_pipeline_reads_media_from_s3(s3_endpoint, local_resources, small_demo, run_library):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="brand-media")
    uploads = sorted(p for p in small_demo.uploads_dir.iterdir() if p.is_file())
    for path in uploads:
        client.upload_file(str(path), "brand-media", f"incoming/{path.name}")
    client.put_object(Bucket="brand-media", Key="incoming/notes.txt", Body=b"not media")

    res = {**local_resources, "media_store": S3MediaStore(endpoint_url=s3_endpoint)}
    config = LibraryConfig(
        name="cloud", media="s3://brand-media/incoming", head_strategies=["logreg"], min_holdout_accuracy=0.2
    )
    res["libraries"].create(config)
    res["libraries"].set_catalog("cloud", small_demo.catalog_path)
    res["libraries"].add_examples("cloud", small_demo.examples_manifest)
    # a subset on purpose: the assets that read media bytes (through S3) and what shows they were read
    result = run_library([catalog, media, examples, embeddings, heads, promoted_heads, tags], res, "cloud")
    assert result.success
    table = res["warehouse"].read("cloud", "media")
    assert table.height == len(uploads)  # notes.txt is not media
    assert table["uri"].str.starts_with("s3://brand-media/incoming/").all()
    assert table.filter(pl.col("status") == "quarantined").height == small_demo.n_corrupt
    tagged = res["warehouse"].read("cloud", "tags")["media_id"].n_unique()
    assert tagged == small_demo.n_uploads


def test_s3_objects_read_by_range_like_a_local_file(s3_endpoint, tmp_path):
    import io

    import boto3

    from ml.media import sha256_bytes, sha256_stream
    from resources.s3_media import S3RangeFile, StoreReader

    data = bytes(range(256)) * 1000
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="raw-bytes")
    client.put_object(Bucket="raw-bytes", Key="k.bin", Body=data)
    raw = S3RangeFile("s3://raw-bytes/k.bin", s3_endpoint)
    assert raw.size == len(data)
    raw.seek(1000)
    assert raw.read(10) == data[1000:1010]
    raw.seek(-5, io.SEEK_END)
    assert raw.read(100) == data[-5:]  # short read at the end
    assert raw.read(1) == b""
    with StoreReader(s3_endpoint).open("s3://raw-bytes/k.bin", buffer_size=4096) as stream:
        assert sha256_stream(stream, chunk_size=10_000) == (sha256_bytes(data), len(data))
    with pytest.raises(OSError, match="cannot open s3://raw-bytes/missing.bin"):
        S3RangeFile("s3://raw-bytes/missing.bin", s3_endpoint)
    assert StoreReader(s3_endpoint).read("s3://raw-bytes/k.bin") == data


def test_videos_on_s3_are_probed_and_embedded_by_range(s3_endpoint, tmp_path, model_root):
    import boto3
    import numpy as np
    import pyarrow.parquet as pq

    from ml.backbones import BackboneSpec
    from ml.inspect import inspect_media
    from ml.video import write_h264
    from ml.video_embedding import embed_video_range
    from resources.s3_media import StoreReader

    clip = tmp_path / "event.mp4"
    frames = (np.full((96, 128, 3), (40, 80, 200), np.uint8) for _ in range(40))
    write_h264(str(clip), frames, 10, gop=10)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="videos")
    client.upload_file(str(clip), "videos", "event.mp4")
    (local,) = inspect_media([str(clip)])
    (remote,) = inspect_media(["s3://videos/event.mp4"], StoreReader(s3_endpoint))
    assert remote["status"] == "ok", remote
    assert remote["media_id"] == local["media_id"] and remote["bytes"] == clip.stat().st_size
    assert remote["duration_s"] == pytest.approx(4.0, abs=0.15)

    spec = BackboneSpec(cache_dir=str(model_root))
    out = tmp_path / "r.parquet"
    reader = StoreReader(s3_endpoint)
    result = embed_video_range(spec, local["media_id"], "s3://videos/event.mp4", 1.0, 3.0, str(out), 1.0, reader)
    assert result.error is None
    assert [f["ts"] for f in result.frames] == pytest.approx([1.0, 2.0])
    assert pq.read_table(out)["ts"].to_pylist() == pytest.approx([1.0, 2.0])
