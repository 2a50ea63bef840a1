"""The heads assets on their own (assets_defs/heads): `heads`, `evaluation_report` with its blocking check, and
`promoted_heads`, materialised on a hand-made examples table and hand-made embeddings (no photo is decoded,
no backbone runs), so each step's behaviour is visible: versions, reuse, the bar, what stays promoted."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from assets_defs.heads.assets import head_version, heads, ocr_boxes
from assets_defs.heads.evaluation import evaluation_report, promoted_heads
from assets_defs.partitions import library_partitions
from ml.embedding import write_embeddings
from ml.ocr import OcrSpec
from resources.backbone_plan import BackbonePlan
from resources.libraries import LibraryConfig
from resources.tables import frame

TAGS = ["p0", "p1", "p2"]
DIM, SHOOTS, PER_SHOOT = 16, 10, 4
# a subset on purpose: the heads domain alone, on examples and vectors the tests write themselves
HEADS = [heads, evaluation_report, promoted_heads]


def examples_and_vectors(mislabelled: int, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """Three tags, ten shoots of four photos each; shoots 8 and 9 are the holdout. The first `mislabelled`
    holdout photos of p2 look like p0: the heads get those wrong, so the holdout top-1 drops below 1."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(len(TAGS), DIM))
    rows, vectors = [], []
    for t, tag in enumerate(TAGS):
        for shoot in range(SHOOTS):
            for k in range(PER_SHOOT):
                media_id = f"{tag}-s{shoot}-{k}"
                hold = shoot >= SHOOTS - 2
                looks = 0 if tag == "p2" and hold and (shoot - SHOOTS + 2) * PER_SHOOT + k < mislabelled else t
                vectors.append(means[looks] + 0.3 * rng.normal(size=DIM))
                rows.append(
                    {
                        "media_id": media_id,
                        "uri": f"/nowhere/{media_id}.jpg",  # never decoded, except for the report's thumbnails
                        "facet": "product",
                        "tag_id": tag,
                        "source": "import",
                        "split": "holdout" if hold else "train",
                        "group": f"{tag}-shoot{shoot}",
                        "group_kind": "manifest",
                        "tag_groups": SHOOTS,
                    }
                )
    vectors = np.asarray(vectors, np.float32)
    return frame("examples", rows), vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def library(local_resources, tmp_path):
    """A library whose `examples` and base embeddings are written by the test, with a lenient bar."""
    res = local_resources
    config = LibraryConfig(
        name="gate",
        media=str(tmp_path / "none"),
        head_strategies=["logreg", "prototype"],
        min_holdout_accuracy=0.2,
        ocr="off",
        keypoints=False,
        views=False,
        finetune={"budget_min": 0},
    )
    res["libraries"].create(config)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("tags:\n" + "".join(f"  - {{tag_id: {t}, facet: product}}\n" for t in TAGS))
    res["libraries"].set_catalog("gate", catalog)
    return "gate"


def set_examples(res, library: str, table: pl.DataFrame, vectors: np.ndarray, part: str) -> None:
    """What `examples` would have written: the table, and the photos' vectors under the library's backbone."""
    config = res["libraries"].config(library)
    model = BackbonePlan(config, res["model_store"], res["warehouse"], library).library_model_id()
    res["warehouse"].write(library, "examples", table)
    out = res["warehouse"].embeddings_dir(library, model) / f"part-{part}.parquet"
    write_embeddings(str(out), table["media_id"].to_list(), model, vectors)


def set_bar(res, library: str, bar: float) -> None:
    config = res["libraries"].config(library)
    res["libraries"].create(config.model_copy(update={"min_holdout_accuracy": bar}), exist_ok=True)


def run(res, library: str, instance):
    result = materialize(HEADS, resources=res, partition_key=library, instance=instance, raise_on_error=False)
    (check,) = result.get_asset_check_evaluations()
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    (mat,) = [m for m in result.asset_materializations_for_node("heads") if m.asset_key.path == ["heads"]]
    candidates = mat.metadata["candidates"].value
    return check, done, candidates


def promoted(res, library: str) -> set[str]:
    return set(res["warehouse"].read(library, "heads").filter(pl.col("promoted"))["version"])


def test_the_bar_gates_promotion_and_earlier_heads_stay_in_use(local_resources, library):
    res = local_resources
    table, vectors = examples_and_vectors(mislabelled=4)
    set_examples(res, library, table, vectors, "a")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [library])

        check, done, candidates = run(res, library, instance)
        assert check.passed and done == {"heads", "evaluation_report", "promoted_heads"} | {
            "head_versions",
            "tag_metrics",
            "head_promotions",  # the tables these steps write (resources/tables.py)
        }
        first = candidates["product"]
        history = res["warehouse"].read(library, "heads")
        assert history.height == 1 and history["version"][0] == first and history["bar"][0] == 0.2
        accuracy = history["accuracy"][0]
        assert 0.5 < accuracy < 1.0  # the look-alike holdout photos are missed
        assert promoted(res, library) == {first}
        assert res["model_store"].head_path(library, "product", first).exists()
        metrics = json.loads(history["metrics"][0])
        assert set(metrics["strategies"]) == {"logreg", "prototype"} and metrics["backbone"] == "base"

        # nothing changed: the same version, reused, not trained again
        check, done, candidates = run(res, library, instance)
        assert check.passed and candidates == {"product": first}
        again = res["warehouse"].read(library, "heads")
        assert again.height == 1 and again["trained_at"][0] == history["trained_at"][0]

        # the library's bar raised above the head's holdout top-1: the check fails, nothing is promoted, and the
        # head promoted earlier stays in use
        set_bar(res, library, 0.95)
        check, done, candidates = run(res, library, instance)
        assert not check.passed and f"product group-aware holdout top-1 {accuracy:.3f} < 0.95" in check.description
        assert not {"promoted_heads", "head_promotions"} & done and {"heads", "evaluation_report"} <= done
        assert "FAILS" in (res["warehouse"].reports_dir(library) / "evaluation.html").read_text()
        assert promoted(res, library) == {first}

        # new examples (a new training set): a new version, trained, still below the bar, so not promoted
        extra, extra_vectors = examples_and_vectors(mislabelled=6, seed=1)
        extra = extra.with_columns(pl.col("media_id") + "-b")
        set_examples(res, library, pl.concat([table, extra]), np.vstack([vectors, extra_vectors]), "b")
        check, done, candidates = run(res, library, instance)
        second = candidates["product"]
        assert second != first and not check.passed and "promoted_heads" not in done
        assert res["warehouse"].read(library, "heads").height == 2
        assert promoted(res, library) == {first}

        # the bar lowered again: the current candidate passes and replaces the earlier head
        set_bar(res, library, 0.2)
        check, done, candidates = run(res, library, instance)
        assert check.passed and "promoted_heads" in done and candidates == {"product": second}
        assert promoted(res, library) == {second}
        assert res["warehouse"].read(library, "heads").height == 2  # the bar is no part of a head's version


def test_a_pinned_version_stays_promoted_over_a_newer_passing_candidate(local_resources, library, asset_metadata):
    from resources.pins import pin, release

    res = local_resources
    table, vectors = examples_and_vectors(mislabelled=4)
    set_examples(res, library, table, vectors, "a")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [library])
        first = run(res, library, instance)[2]["product"]
        extra, extra_vectors = examples_and_vectors(mislabelled=2, seed=1)
        extra = extra.with_columns(pl.col("media_id") + "-b")
        set_examples(res, library, pl.concat([table, extra]), np.vstack([vectors, extra_vectors]), "b")
        second = run(res, library, instance)[2]["product"]
        assert second != first and promoted(res, library) == {second}

        pin(res["libraries"].dir(library), "product", first)
        result = materialize(HEADS, resources=res, partition_key=library, instance=instance)
        assert promoted(res, library) == {first}  # the candidate passed the check and was not promoted
        metadata = asset_metadata(result, "promoted_heads")
        assert metadata["pinned"] == {"product": first} and metadata["not_promoted_pinned"] == {"product": second}
        pinned = res["warehouse"].read(library, "heads").filter(pl.col("pinned"))["version"].to_list()
        assert pinned == [first]
        # the pinned facet's candidate below the bar: logged, and it holds back no promotion (it is not promoted)
        set_bar(res, library, 0.99)
        check, done, _ = run(res, library, instance)
        assert check.passed and "promoted_heads" in done and promoted(res, library) == {first}
        set_bar(res, library, 0.2)

        release(res["libraries"].dir(library), "product")
        check, done, candidates = run(res, library, instance)
        assert check.passed and promoted(res, library) == {second} == set(candidates.values())
        assert not res["warehouse"].read(library, "heads")["pinned"].any()


def test_no_examples_is_an_error_that_names_the_library(local_resources, library):
    res = local_resources
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(library_partitions.name, [library])
        result = materialize([heads], resources=res, partition_key=library, instance=instance, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "library 'gate' has no usable examples" in str(failure.event_specific_data.error)


def test_a_head_version_follows_what_the_head_is_trained_from():
    table, _ = examples_and_vectors(mislabelled=0)
    config = LibraryConfig(name="x", media="/m", head_strategies=["logreg", "prototype"])
    version = head_version("product", "lite0@1", table, config)
    assert version.startswith("product-") and len(version) == len("product-") + 12
    # the same rows in another order, the strategies listed in another order, another bar: the same head
    shuffled = table.sample(fraction=1.0, shuffle=True, seed=3)
    reordered = config.model_copy(update={"head_strategies": ["prototype", "logreg"], "min_holdout_accuracy": 0.9})
    assert head_version("product", "lite0@1", shuffled, reordered) == version
    # what it learns from or how: a new head
    flipped = table.with_columns(
        split=pl.when(pl.col("media_id") == "p0-s0-0").then(pl.lit("holdout")).otherwise(pl.col("split"))
    )
    relabelled = table.with_columns(
        tag_id=pl.when(pl.col("media_id") == "p0-s0-0").then(pl.lit("p1")).otherwise("tag_id")
    )
    changes = [
        head_version("product", "lite0@1", flipped, config),
        head_version("product", "lite0@1", relabelled, config),
        head_version("product", "lite0@1", table.head(100), config),
        head_version("product", "lite0@2", table, config),
        head_version("product", "lite0@1", table, config.model_copy(update={"seed": 1})),
        head_version("product", "lite0@1", table, config.model_copy(update={"target_precision": 0.8})),
        head_version("product", "lite0@1", table, config.model_copy(update={"head_strategies": ["logreg"]})),
        head_version("product", "lite0@1", table, config, extra='{"ocr": "rapidocr@1"}'),
    ]
    assert len({version, *changes}) == 1 + len(changes)


def test_ocr_boxes_are_the_photos_text_of_the_current_reader():
    current, old = OcrSpec().model_id, "rapidocr@old-settings"
    table = pl.DataFrame(
        [
            ("m1", None, "AS-100", 0.9, current),
            ("m1", None, "Aurora", 0.7, current),
            ("m2", None, "H500", 0.8, old),  # read with other settings: not evidence
            ("v1", 3.0, "H750", 0.9, current),  # a video frame's text: not a photo's
        ],
        schema={
            "media_id": pl.String,
            "ts": pl.Float64,
            "text": pl.String,
            "confidence": pl.Float64,
            "model": pl.String,
        },
        orient="row",
    )
    assert ocr_boxes(table) == {"m1": [("AS-100", 0.9), ("Aurora", 0.7)]}
    assert ocr_boxes(table.clear()) == {}  # a library OCR never read: the empty table
