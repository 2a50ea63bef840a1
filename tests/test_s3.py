"""Media in S3 by configuration only: moto's server speaks real S3 over HTTP on 127.0.0.1."""

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from assets_defs.embeddings.assets import embeddings
from assets_defs.heads.assets import heads, promoted_heads
from assets_defs.media.assets import media
from assets_defs.partitions import library_partitions
from assets_defs.tags.assets import tags
from assets_defs.training.assets import catalog, examples
from resources.libraries import LibraryConfig
from resources.media_store import S3MediaStore


@pytest.fixture
def s3_endpoint(monkeypatch):
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_pipeline_reads_media_from_s3(s3_endpoint, local_resources, small_demo):
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
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, ["cloud"])
        result = materialize(
            [catalog, media, examples, embeddings, heads, promoted_heads, tags],
            resources=res,
            partition_key="cloud",
            instance=instance,
        )
    assert result.success
    table = res["warehouse"].read("cloud", "media")
    assert table.height == len(uploads)  # notes.txt is not media
    assert table["uri"].str.starts_with("s3://brand-media/incoming/").all()
    assert table.filter(pl.col("status") == "quarantined").height == small_demo.n_corrupt
    tagged = res["warehouse"].read("cloud", "tags")["media_id"].n_unique()
    assert tagged == small_demo.n_uploads
