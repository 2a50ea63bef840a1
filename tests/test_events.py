"""Events (library.yaml `events:`) and their sponsor report: config checks, the event's media, the
`sponsor_report` asset on hand-written tables (exact figures in the tables it writes, pages, zips, metadata),
sql/sponsor_report.sql over them, the jobs, the event sensor and `tagsmith report`.

The library: media/cup/ is the event `cup` (p1: two Acme boxes and a Zed box; p2: Acme on the whole photo; p3:
a product tag only, no sponsor; p4: a Zed box waiting for review; keynote.mp4: overlapping Acme segments, a Zed
segment and a Zed segment in review), media/outside.jpg an applied Acme photo and media/other.mp4 an Acme video
outside the event. `day2` is a tag event: the photos tagged `cup-day2` (p2 only). The screenshot of the pages is
tested in test_sponsor_report.py.
"""

import zipfile

import polars as pl
import pytest
from dagster import DagsterInstance, MultiPartitionKey, MultiPartitionsDefinition, materialize
from PIL import Image
from pydantic import ValidationError

from assets_defs.events.assets import sponsor_report
from resources.events import event_media
from resources.libraries import ConfigError, LibraryConfig, LibraryError, config_problems
from resources.tables import frame

SPONSOR_BOX = [0.1, 0.1, 0.3, 0.2]
EVENTS = {"cup": {"folder": "cup", "quiet_minutes": 0}, "day2": {"tag": "cup-day2"}}


def _photo(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), colour).save(path, "JPEG")
    return str(path.resolve())


def build_library(libraries, warehouse, media_dir, events=EVENTS, name="shop"):
    """The library of the module docstring: its library.yaml, media files and the four tables."""
    uris = {
        "m1": _photo(media_dir / "cup" / "p1.jpg", (200, 30, 30)),
        "m2": _photo(media_dir / "cup" / "p2.jpg", (30, 200, 30)),
        "m3": _photo(media_dir / "cup" / "p3.jpg", (30, 30, 200)),
        "m4": _photo(media_dir / "cup" / "p4.jpg", (90, 90, 90)),
        "m5": _photo(media_dir / "outside.jpg", (250, 250, 0)),
        "v1": str((media_dir / "cup" / "keynote.mp4").resolve()),
        "v2": str((media_dir / "other.mp4").resolve()),
    }
    libraries.create(LibraryConfig(name=name, media=str(media_dir), events=events), exist_ok=True)
    media = [
        {
            "media_id": m,
            "uri": u,
            "kind": "video" if m.startswith("v") else "image",
            "status": "ok",
            "duration_s": {"v1": 60.0, "v2": 120.0}.get(m),
        }
        for m, u in uris.items()
    ]
    catalog = [
        {"tag_id": "acme", "facet": "sponsor", "name": "Acme"},
        {"tag_id": "zed", "facet": "sponsor", "name": "Zed & Co"},
        {"tag_id": "jacket", "facet": "product", "name": "Jacket"},
        {"tag_id": "cup-day2", "facet": "event", "name": "Cup, day 2"},
    ]
    tags = [  # (media, facet, tag, score, status, box)
        ("m1", "sponsor", "acme", 0.9, "applied", SPONSOR_BOX),
        ("m1", "sponsor", "acme", 0.6, "applied", [0.6, 0.6, 0.2, 0.2]),
        ("m1", "sponsor", "zed", 0.8, "applied", [0.5, 0.1, 0.3, 0.3]),
        ("m2", "sponsor", "acme", 0.7, "applied", None),
        ("m2", "event", "cup-day2", 0.99, "applied", None),
        ("m3", "product", "jacket", 0.9, "applied", None),
        ("m4", "sponsor", "zed", 0.5, "review", [0.2, 0.2, 0.2, 0.2]),
        ("m5", "sponsor", "acme", 0.95, "applied", [0.0, 0.0, 0.5, 0.5]),
    ]
    segments = [  # (video, tag, start, end, peak, status)
        ("v1", "acme", 0.0, 10.0, 0.7, "applied"),
        ("v1", "acme", 5.0, 15.0, 0.9, "applied"),  # overlaps: 0-15 once
        ("v1", "zed", 20.0, 30.0, 0.8, "applied"),
        ("v1", "zed", 40.0, 50.0, 0.4, "review"),
        ("v2", "acme", 0.0, 100.0, 0.9, "applied"),  # outside the event
    ]
    warehouse.write(name, "media", frame("media", media))
    warehouse.write(name, "catalog", frame("catalog", catalog))
    tag_rows = [dict(zip(("media_id", "facet", "tag_id", "score", "status", "box"), t, strict=True)) for t in tags]
    warehouse.write(name, "tags", frame("tags", tag_rows))
    keys = ("media_id", "tag_id", "start_s", "end_s", "peak_score", "status")
    seg_rows = [{**dict(zip(keys, s, strict=True)), "facet": "sponsor"} for s in segments]
    warehouse.write(name, "video_segments", frame("video_segments", seg_rows))
    return uris


@pytest.fixture
def library(local_resources, tmp_path):
    uris = build_library(local_resources["libraries"], local_resources["warehouse"], tmp_path / "media")
    return local_resources, uris


def report(res, event, library="shop", instance=None, raise_on_error=True):
    """materialize() of the (library, event) report, on an ephemeral instance unless one is given."""
    if instance is None:
        with DagsterInstance.ephemeral() as own:
            return report(res, event, library, own, raise_on_error)
    instance.add_dynamic_partitions("library", [library])
    instance.add_dynamic_partitions("event", [event])
    keep = {k: res[k] for k in ("libraries", "media_store", "warehouse")}
    key = MultiPartitionKey({"library": library, "event": event})
    return materialize(
        [sponsor_report], partition_key=key, resources=keep, instance=instance, raise_on_error=raise_on_error
    )


def failure_line(result) -> str:
    """The last line of the user's exception behind a run's step failure."""
    error = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
    while error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1]


def test_events_config_is_checked_key_by_key():
    config = LibraryConfig(name="shop", media="/m", events={"cup-2026": {"folder": "./cup//day1/"}})
    assert config.events["cup-2026"].folder == "cup/day1" and config.events["cup-2026"].sponsor_facet == "sponsor"
    assert config.events["cup-2026"].quiet_minutes == 10
    cases = {
        "cup": ({"folder": "x", "foldr": "y"}, "unknown key 'events.cup.foldr' (did you mean 'folder'?)"),
        "Cup 2026": ({"folder": "x"}, "event name 'Cup 2026' (events:) must be 1-64 of a-z, 0-9, '_', '-'"),
        "both": ({"folder": "x", "tag": "t"}, "events.both = {'folder': 'x', 'tag': 't'} is not allowed: give"),
        "up": ({"folder": "../x"}, "events.up.folder = '../x' is not allowed: a sub-folder of the library's"),
    }
    for name, (spec, line) in cases.items():
        with pytest.raises(ValidationError) as exc:
            LibraryConfig(name="shop", media="/m", events={name: spec})
        problems = config_problems(LibraryConfig, exc.value)
        assert len(problems) == 1 and problems[0].startswith(line), problems
    with pytest.raises(LibraryError, match="^library 'shop' has no event 'nope' in its library.yaml \\(events: cup-"):
        config.event("nope")


def test_event_media_by_folder_and_by_tag(library):
    res, uris = library
    warehouse = res["warehouse"]
    config = res["libraries"].config("shop")
    media, tags = warehouse.read("shop", "media"), warehouse.read("shop", "tags")
    location = res["media_store"].location_uri(f"{config.media}/cup")
    by_folder = event_media(media, config.events["cup"], location, tags)
    assert sorted(by_folder["media_id"].to_list()) == ["m1", "m2", "m3", "m4", "v1"]
    by_tag = event_media(media, config.events["day2"], None, tags, warehouse.read("shop", "video_segments"))
    assert by_tag["media_id"].to_list() == ["m2"]
    # a folder whose name starts like the event's is not the event's
    media = pl.concat([media, frame("media", [{"media_id": "m9", "uri": location + "-old/x.jpg", "status": "ok"}])])
    assert "m9" not in event_media(media, config.events["cup"], location)["media_id"].to_list()


def test_sponsor_report_writes_exact_figures_pages_zips_and_tables(library, asset_metadata):
    res, uris = library
    warehouse = res["warehouse"]
    result = report(res, "cup")
    summary = warehouse.read("shop", "sponsor_summary")
    assert summary.select("event", "tag_id", "name", "photos", "video_appearances", "videos").rows() == [
        ("cup", "acme", "Acme", 2, 2, 1),
        ("cup", "zed", "Zed & Co", 1, 1, 1),
    ]
    figures = {r["tag_id"]: r for r in summary.to_dicts()}
    assert figures["acme"]["mean_score"] == pytest.approx(0.8) and figures["acme"]["min_score"] == pytest.approx(0.7)
    assert figures["acme"]["screen_time_s"] == pytest.approx(15.0) and figures["zed"]["screen_time_s"] == 10.0
    assert figures["acme"]["photo_share"] == pytest.approx(2 / 3) and figures["zed"]["photo_share"] == pytest.approx(
        1 / 3
    )
    assert figures["acme"]["screen_share"] == pytest.approx(0.6) and figures["zed"]["screen_share"] == pytest.approx(
        0.4
    )

    photos = warehouse.read("shop", "sponsor_photos").sort("tag_id", "media_id")
    assert photos.select("tag_id", "media_id", "score", "boxes").rows() == [
        ("acme", "m1", 0.9, 2),
        ("acme", "m2", 0.7, 1),
        ("zed", "m1", 0.8, 1),
    ]
    assert photos["box"].to_list()[:2] == [SPONSOR_BOX, None] and photos["uri"].to_list()[0] == uris["m1"]
    segments = warehouse.read("shop", "sponsor_segments").sort("tag_id")
    assert segments.select("tag_id", "media_id", "start_s", "end_s", "peak_score").rows() == [
        ("acme", "v1", 0.0, 15.0, 0.9),
        ("zed", "v1", 20.0, 30.0, 0.8),
    ]
    assert warehouse.files("shop", "sponsor_summary") == [
        str(warehouse.library_dir("shop") / "events" / "cup" / "sponsor_summary.parquet")
    ]

    out = warehouse.reports_dir("shop") / "events" / "cup"
    index = (out / "index.html").read_text("utf-8")
    assert "Acme" in index and "Zed &amp; Co" in index and "Jacket" not in index
    assert sorted(p.name for p in out.iterdir()) == [
        "index.html",
        "sponsor-acme.html",
        "sponsor-acme.zip",
        "sponsor-zed.html",
        "sponsor-zed.zip",
    ]
    assert '<a href="sponsor-acme.zip">Download the photo set</a>' in (out / "sponsor-acme.html").read_text("utf-8")
    with zipfile.ZipFile(out / "sponsor-acme.zip") as zf:
        assert zf.namelist() == ["p1.jpg", "p2.jpg"]
        assert zf.read("p2.jpg") == open(uris["m2"], "rb").read()

    meta = asset_metadata(result, "sponsor_report")
    assert meta["photos/acme"] == 2 and meta["screen_time_s/zed"] == 10.0 and meta["event_media"] == 5
    assert (
        meta["report"] == str(out / "index.html") and "| Acme | 2 | 0.80 | 15.0 | 66.7% | 60.0% |" in meta["sponsors"]
    )
    tables = {
        m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("sponsor_report")
    }
    assert tables["sponsor_photos"]["rows"].value == 3 and tables["sponsor_segments"]["rows"].value == 2


def test_each_event_writes_its_own_files_and_the_sql_reads_them_all(library):
    res, _ = library
    warehouse = res["warehouse"]
    with DagsterInstance.ephemeral() as instance:
        report(res, "cup", instance=instance)
        report(res, "day2", instance=instance)
    day2 = warehouse.query("shop", "sponsor_report", {"event": "day2"})
    assert day2.select("event", "tag_id", "photos", "screen_time_s", "photo_share").rows() == [
        ("day2", "acme", 1, 0.0, 1.0),
        ("day2", "zed", 0, 0.0, 0.0),
    ]
    assert day2["screen_share"].to_list() == [None, None]  # no sponsor on screen in this event
    both = warehouse.query("shop", "sponsor_report", {"event": ""})
    summary = warehouse.read("shop", "sponsor_summary").sort("event", "tag_id")
    assert both.sort("event", "tag_id").select("event", "tag_id", "photos", "screen_time_s").rows() == (
        summary.select("event", "tag_id", "photos", "screen_time_s").rows()
    )
    cup = both.filter(pl.col("event") == "cup").sort("tag_id")
    assert cup["photo_share"].to_list() == pytest.approx([2 / 3, 1 / 3])
    assert cup["screen_share"].to_list() == pytest.approx([0.6, 0.4])
    # the shared DuckDB file analysts open reads both events' files
    with warehouse.connect() as con:
        assert con.execute('SELECT count(*) FROM "shop".sponsor_summary').fetchone() == (4,)


def test_an_event_the_library_does_not_name_fails_in_one_line(library):
    res, _ = library
    result = report(res, "nope", raise_on_error=False)
    assert not result.success
    assert failure_line(result) == (
        "resources.libraries.LibraryError: library 'shop' has no event 'nope' in its library.yaml (events: cup, day2)"
    )


def test_a_tag_event_whose_tag_is_not_an_event_tag_fails_in_one_line(local_resources, tmp_path):
    res = local_resources
    build_library(res["libraries"], res["warehouse"], tmp_path / "media", events={"fan-day": {"tag": "jacket"}})
    result = report(res, "fan-day", raise_on_error=False)
    assert failure_line(result) == (
        "resources.libraries.LibraryError: event tag 'jacket' is not a catalog tag of facet 'event' "
        "(library.yaml events:, tag)"
    )


def test_jobs_keep_event_reports_apart(tmp_path):
    from pipelines.definitions import build_definitions

    defs = build_definitions({"TAGSMITH_HOME": str(tmp_path)})
    job = defs.resolve_job_def("sponsor_report")
    assert isinstance(job.partitions_def, MultiPartitionsDefinition)
    assert {d.name for d in job.partitions_def.partitions_defs} == {"library", "event"}
    event_keys = {"sponsor_report", "sponsor_photos", "sponsor_segments", "sponsor_summary"}
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == event_keys
    for name in ("tag_library", "retrain_heads"):
        keys = {k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.selected_asset_keys}
        assert "tags" in keys and not keys & event_keys
    assert defs.resolve_sensor_def("event_report_sensor").job_name == "sponsor_report"


def test_cli_report_prints_the_index_and_refuses_an_unknown_event_in_one_line(cli, tmp_path):
    from resources import build_resources

    res = build_resources({"TAGSMITH_HOME": str(tmp_path / "home"), "TAGSMITH_RUNNER": "inprocess"})
    build_library(res["libraries"], res["warehouse"], tmp_path / "media")
    missing = cli("report", "shop", "nope")
    assert missing.exit_code == 1
    assert missing.output.strip() == "library 'shop' has no event 'nope' in its library.yaml (events: cup, day2)"
    done = cli("report", "shop", "cup")
    assert done.exit_code == 0, done.output
    index = res["warehouse"].reports_dir("shop") / "events" / "cup" / "index.html"
    assert done.output.strip().splitlines()[-1] == str(index) and index.exists()


def test_config_error_of_events_reads_as_one_line_per_problem(tmp_path):
    from resources.libraries import LibraryStore

    store = LibraryStore(root=str(tmp_path))
    store.create(LibraryConfig(name="shop", media=str(tmp_path)))
    path = store.dir("shop") / "library.yaml"
    path.write_text(path.read_text("utf-8") + "events:\n  cup:\n    folder: cup\n    quiet: 5\n", "utf-8")
    with pytest.raises(ConfigError) as exc:
        store.config("shop")
    assert exc.value.problems == ["unknown key 'events.cup.quiet' (allowed: folder, tag, sponsor_facet, quiet_minutes)"]
