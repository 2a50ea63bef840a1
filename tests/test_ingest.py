"""`tagsmith ingest` never loses a photo and never replaces one: folders kept, collisions renamed, identical
bytes recognised, dry runs write nothing; the same on S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image

from resources.ingest import apply_ingest, gather_sources, plan_ingest
from resources.media_destinations import LocalDestination, S3Destination
from resources.media_store import LocalMediaStore


def photo(path: Path, colour: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 12), colour).save(path)
    return path


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) with the sha256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sha8(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


@pytest.fixture(autouse=True)
def _no_progress_bar(monkeypatch):
    monkeypatch.setenv("TAGSMITH_PROGRESS", "0")


@pytest.fixture
def media(cli, tmp_path) -> Path:
    folder = tmp_path / "media"
    assert cli("init", "shop", "--media", folder).exit_code == 0
    return folder


def test_two_sub_folders_with_the_same_file_name_keep_both_photos(cli, media, tmp_path):
    shoot = tmp_path / "shoots" / "2026-03-01"
    a = photo(shoot / "camera_a" / "IMG_0001.jpg", (200, 0, 0))
    b = photo(shoot / "camera_b" / "IMG_0001.jpg", (0, 0, 200))
    (shoot / "notes.txt").write_text("call list", "utf-8")

    result = cli("ingest", "shop", shoot)
    assert result.exit_code == 0, result.output
    assert f"2 files copied into {media}, 0 already in the library, 1 skipped" in result.output
    assert f"skipped {shoot / 'notes.txt'}: not a photo or video extension" in result.output
    assert tree(media) == {
        "2026-03-01/camera_a/IMG_0001.jpg": hashlib.sha256(a.read_bytes()).hexdigest(),
        "2026-03-01/camera_b/IMG_0001.jpg": hashlib.sha256(b.read_bytes()).hexdigest(),
    }
    # the pipeline's listing sees both, each under its shoot folder (ml/groups.py groups by folder)
    listed = [Path(o.uri).relative_to(media.resolve()).as_posix() for o in LocalMediaStore().list_media(str(media))]
    assert listed == ["2026-03-01/camera_a/IMG_0001.jpg", "2026-03-01/camera_b/IMG_0001.jpg"]


def test_a_name_the_library_holds_with_other_bytes_gets_a_distinct_stable_name(cli, media, tmp_path):
    existing = photo(media / "IMG_0001.jpg", (10, 200, 10))
    before = existing.read_bytes()
    incoming = photo(tmp_path / "card" / "IMG_0001.jpg", (200, 10, 10))
    renamed = f"IMG_0001-{sha8(incoming)}.jpg"

    result = cli("ingest", "shop", incoming)
    assert result.exit_code == 0, result.output
    assert f"stored {incoming} as {media / renamed}: IMG_0001.jpg holds different bytes" in result.output
    assert "1 files copied" in result.output and "(1 under a new name)" in result.output
    assert existing.read_bytes() == before  # never replaced
    assert (media / renamed).read_bytes() == incoming.read_bytes()

    again = cli("ingest", "shop", incoming)
    assert f"not copied {incoming}: already in the library as {renamed}" in again.output
    assert "0 files copied" in again.output and "1 already in the library" in again.output
    assert sorted(tree(media)) == sorted(["IMG_0001.jpg", renamed])


def test_identical_bytes_are_the_same_media_under_any_name(cli, media, tmp_path):
    original = photo(media / "2025" / "keep.jpg", (90, 90, 30))
    drop = tmp_path / "drop"
    (drop / "x").mkdir(parents=True)
    (drop / "x" / "renamed copy.jpg").write_bytes(original.read_bytes())
    (drop / "twice_1.png").write_bytes(photo(tmp_path / "t.png", (1, 2, 3)).read_bytes())
    (drop / "twice_2.png").write_bytes((tmp_path / "t.png").read_bytes())

    result = cli("ingest", "shop", drop)
    assert result.exit_code == 0, result.output
    assert f"not copied {drop / 'x' / 'renamed copy.jpg'}: already in the library as 2025/keep.jpg" in result.output
    assert f"not copied {drop / 'twice_2.png'}: same bytes as drop/twice_1.png in this ingest" in result.output
    assert "1 files copied" in result.output and "2 already in the library" in result.output
    assert sorted(tree(media)) == ["2025/keep.jpg", "drop/twice_1.png"]


def test_dry_run_lists_every_decision_and_writes_nothing(cli, media, tmp_path):
    photo(media / "shoot" / "IMG_0002.jpg", (0, 0, 0))
    same = photo(media / "shoot" / "IMG_0003.jpg", (5, 5, 5))
    shoot = tmp_path / "shoot"
    photo(shoot / "IMG_0001.jpg", (1, 1, 1))
    clash = photo(shoot / "IMG_0002.jpg", (255, 255, 255))
    (shoot / "IMG_0003.jpg").write_bytes(same.read_bytes())
    (shoot / "readme.md").write_text("#", "utf-8")
    before = tree(media)

    result = cli("ingest", "shop", shoot, "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"would copy {shoot / 'IMG_0001.jpg'} -> {media / 'shoot' / 'IMG_0001.jpg'}" in lines
    assert f"would store {clash} as {media / 'shoot' / f'IMG_0002-{sha8(clash)}.jpg'}: " \
           "shoot/IMG_0002.jpg holds different bytes" in lines
    assert f"not copied {shoot / 'IMG_0003.jpg'}: already in the library as shoot/IMG_0003.jpg" in lines
    assert f"skipped {shoot / 'readme.md'}: not a photo or video extension" in lines
    assert lines[-1] == (f"2 files would be copied into {media} (1 under a new name), 1 already in the library, "
                         "1 skipped; dry run: nothing was written")
    assert tree(media) == before


def test_overwrite_replaces_only_when_asked(cli, media, tmp_path):
    photo(media / "IMG_0001.jpg", (10, 10, 10))
    incoming = photo(tmp_path / "IMG_0001.jpg", (20, 20, 20))
    result = cli("ingest", "shop", incoming, "--overwrite")
    assert result.exit_code == 0, result.output
    assert f"replaced {media / 'IMG_0001.jpg'} with {incoming}" in result.output
    assert tree(media) == {"IMG_0001.jpg": hashlib.sha256(incoming.read_bytes()).hexdigest()}


def test_mistakes_get_one_line_and_no_traceback(cli, media, tmp_path):
    missing = cli("ingest", "shop", tmp_path / "nowhere")
    assert missing.exit_code == 1 and missing.output.strip() == f"no such file or folder: {tmp_path / 'nowhere'}"
    unknown = cli("ingest", "nosuchlib", tmp_path)
    assert unknown.exit_code == 1 and len(unknown.output.strip().splitlines()) == 1
    assert "no library named 'nosuchlib'" in unknown.output and "Traceback" not in unknown.output


def test_odd_names_links_and_unreadable_files_are_reported_not_fatal(cli, media, tmp_path, monkeypatch):
    import resources.ingest as ingest

    drop = tmp_path / "drop"
    spaced = photo(drop / "with space.jpg", (250, 0, 0))
    newline = drop / "line\nbreak.jpg"
    newline.write_bytes(photo(tmp_path / "n.jpg", (0, 250, 0)).read_bytes())
    script = photo(drop / "東京 写真.jpg", (0, 0, 250))
    locked = photo(drop / "locked.jpg", (120, 120, 120))
    (drop / "loop").symlink_to(drop, target_is_directory=True)  # a link loop
    (drop / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    real_digest = ingest.file_digest

    def digest(path):
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_digest(path)

    monkeypatch.setattr(ingest, "file_digest", digest)
    result = cli("ingest", "shop", drop)
    assert result.exit_code == 0, result.output
    assert f"skipped {drop / 'loop'}: a link to a folder: not followed" in result.output
    assert f"skipped {drop / 'dangling.jpg'}: a broken link" in result.output
    assert f"skipped {locked}: unreadable: Permission denied" in result.output
    assert "3 files copied" in result.output and "3 skipped" in result.output
    assert sorted(tree(media)) == sorted(f"drop/{p.name}" for p in (spaced, newline, script))
    assert "line\\nbreak.jpg" not in result.output  # copied silently: the name is printed only when escaped

    dry = cli("ingest", "shop", drop, "--dry-run")
    assert f"not copied {drop}/line\\nbreak.jpg: already in the library as drop/line\\nbreak.jpg" in dry.output


def test_progress_bar_on_a_terminal(cli, media, tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSMITH_PROGRESS", "1")
    result = cli("ingest", "shop", photo(tmp_path / "a.jpg", (4, 4, 4)))
    assert "reading: 100%" in result.output and "copying: 100%" in result.output


def test_a_name_taken_after_planning_is_not_replaced(tmp_path):
    media = tmp_path / "media"
    incoming = photo(tmp_path / "in" / "IMG_0001.jpg", (9, 9, 9))
    destination = LocalDestination(media)
    sources, skipped = gather_sources([tmp_path / "in"])
    assert skipped == []
    (step,) = plan_ingest(sources, destination)
    assert (step.action, step.target) == ("copy", "in/IMG_0001.jpg")
    squatter = photo(media / "in" / "IMG_0001.jpg", (99, 0, 0))  # another ingest won the race
    squatter_bytes = squatter.read_bytes()
    (done,) = apply_ingest([step], destination)
    assert (done.action, done.target) == ("rename", f"in/IMG_0001-{sha8(incoming)}.jpg")
    assert done.reason == "in/IMG_0001.jpg appeared while ingesting"
    assert squatter.read_bytes() == squatter_bytes
    assert sorted(tree(media)) == sorted(["in/IMG_0001.jpg", f"in/IMG_0001-{sha8(incoming)}.jpg"])


def test_an_interrupted_or_changed_copy_leaves_no_file_under_a_media_name(tmp_path, monkeypatch):
    import resources.media_destinations as destinations

    media = tmp_path / "media"
    source = photo(tmp_path / "in" / "a.jpg", (7, 7, 7))
    destination = LocalDestination(media)
    steps = plan_ingest(gather_sources([source])[0], destination)

    def killed(*_):  # dies after the bytes are written, before the file gets its name
        raise KeyboardInterrupt

    monkeypatch.setattr(destinations.shutil, "copystat", killed)
    with pytest.raises(KeyboardInterrupt):
        apply_ingest(steps, destination)
    assert tree(media) == {}  # not even the temporary file
    monkeypatch.undo()

    source.write_bytes(source.read_bytes() + b"edited")  # the bytes changed between plan and copy
    (failed,) = apply_ingest(steps, destination)
    assert failed.action == "failed" and failed.reason == f"{source} changed while it was being copied"
    assert tree(media) == {}

    # a temporary file left by a killed process is hidden: no media name, not listed by the pipeline
    (media / "in").mkdir(parents=True, exist_ok=True)
    (media / "in" / ".ingest-x.partial").write_bytes(b"half")
    assert LocalMediaStore().list_media(str(media)) == []
    assert destination.existing() == {}


# ---- S3 -------------------------------------------------------------------------------------------------


@pytest.fixture
def s3(s3_endpoint):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="brand-media")
    yield s3_endpoint, client


def objects(client, prefix: str = "incoming/") -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket="brand-media", Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket="brand-media", Key=o["Key"])["Body"].read() for o in listed}


def test_s3_ingest_keeps_folders_never_replaces_a_key_and_skips_known_bytes(cli, tmp_path, s3, monkeypatch):
    endpoint, client = s3
    monkeypatch.setenv("TAGSMITH_MEDIA_BACKEND", "s3")
    monkeypatch.setenv("TAGSMITH_S3_ENDPOINT_URL", endpoint)
    assert cli("init", "cloud", "--media", "s3://brand-media/incoming").exit_code == 0
    shoot = tmp_path / "2026-03-01"
    a = photo(shoot / "a" / "IMG_0001.jpg", (200, 0, 0))
    b = photo(shoot / "b" / "IMG_0001.jpg", (0, 0, 200))
    known = photo(shoot / "b" / "IMG_0002.jpg", (0, 200, 0))
    # already in the bucket: other bytes under a's key, and IMG_0002's bytes under another key (uploaded by
    # another tool: no sha256 metadata, compared by ETag)
    client.put_object(Bucket="brand-media", Key="incoming/2026-03-01/a/IMG_0001.jpg", Body=b"older photo")
    client.put_object(Bucket="brand-media", Key="incoming/old/green.jpg", Body=known.read_bytes())
    before = objects(client)

    dry = cli("ingest", "cloud", shoot, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would copy {b} -> s3://brand-media/incoming/2026-03-01/b/IMG_0001.jpg" in dry.output
    assert objects(client) == before

    result = cli("ingest", "cloud", shoot)
    assert result.exit_code == 0, result.output
    renamed = f"incoming/2026-03-01/a/IMG_0001-{sha8(a)}.jpg"
    assert f"stored {a} as s3://brand-media/{renamed}: 2026-03-01/a/IMG_0001.jpg holds different bytes" in (
        result.output
    )
    assert f"not copied {known}: already in the library as old/green.jpg" in result.output
    assert "2 files copied into s3://brand-media/incoming (1 under a new name), 1 already in the library" in (
        result.output
    )
    after = objects(client)
    assert after == {**before, renamed: a.read_bytes(), "incoming/2026-03-01/b/IMG_0001.jpg": b.read_bytes()}
    head = client.head_object(Bucket="brand-media", Key=renamed)
    assert head["Metadata"] == {"sha256": hashlib.sha256(a.read_bytes()).hexdigest()}

    again = cli("ingest", "cloud", shoot)
    assert "0 files copied" in again.output and "3 already in the library" in again.output
    assert objects(client) == after


def test_s3_overwrite_replaces_the_key_only_when_asked(cli, tmp_path, s3, monkeypatch):
    endpoint, client = s3
    monkeypatch.setenv("TAGSMITH_MEDIA_BACKEND", "s3")
    monkeypatch.setenv("TAGSMITH_S3_ENDPOINT_URL", endpoint)
    assert cli("init", "cloud", "--media", "s3://brand-media/incoming/").exit_code == 0
    client.put_object(Bucket="brand-media", Key="incoming/IMG_0001.jpg", Body=b"older photo")
    incoming = photo(tmp_path / "IMG_0001.jpg", (1, 2, 3))
    result = cli("ingest", "cloud", incoming, "--overwrite")
    assert result.exit_code == 0, result.output
    assert f"replaced s3://brand-media/incoming/IMG_0001.jpg with {incoming}" in result.output
    assert objects(client) == {"incoming/IMG_0001.jpg": incoming.read_bytes()}


def test_s3_multipart_upload_refuses_a_key_that_appeared_and_renames(tmp_path, s3):
    endpoint, client = s3
    big = tmp_path / "in" / "clip.mp4"
    big.parent.mkdir()
    big.write_bytes(os.urandom(11 << 20))  # three 5 MiB parts
    destination = S3Destination("s3://brand-media/incoming", endpoint, multipart_from=1 << 20, part_size=5 << 20)
    steps = plan_ingest(gather_sources([big])[0], destination)
    assert [(s.action, s.target) for s in steps] == [("copy", "clip.mp4")]
    client.put_object(Bucket="brand-media", Key="incoming/clip.mp4", Body=b"someone else's clip")
    (done,) = apply_ingest(steps, destination)
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    assert (done.action, done.target) == ("rename", f"clip-{digest[:8]}.mp4")
    stored = objects(client)
    assert stored["incoming/clip.mp4"] == b"someone else's clip"
    assert stored[f"incoming/clip-{digest[:8]}.mp4"] == big.read_bytes()
    assert client.list_multipart_uploads(Bucket="brand-media").get("Uploads", []) == []  # the refused one aborted
    # a multipart ETag is no MD5: the next plan compares by the sha256 metadata
    (again,) = plan_ingest(gather_sources([big])[0], destination)
    assert (again.action, again.reason) == ("same", f"already in the library as clip-{digest[:8]}.mp4")


def test_s3_unknown_bucket_is_one_line(cli, tmp_path, s3, monkeypatch):
    endpoint, _ = s3
    monkeypatch.setenv("TAGSMITH_MEDIA_BACKEND", "s3")
    monkeypatch.setenv("TAGSMITH_S3_ENDPOINT_URL", endpoint)
    assert cli("init", "cloud", "--media", "s3://no-such-bucket/x").exit_code == 0
    result = cli("ingest", "cloud", photo(tmp_path / "a.jpg", (1, 1, 1)))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("cannot list s3://no-such-bucket/x: ") and len(result.output.splitlines()) == 1


def test_the_readme_ingest_commands_run_as_shown(cli, tmp_path, monkeypatch):
    import re
    import shlex

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    commands = [line for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
                for line in block.splitlines() if line.startswith("tagsmith ingest ")]
    assert len(commands) == 2 and "--dry-run" in commands[0]
    monkeypatch.setenv("HOME", str(tmp_path))
    shoot = tmp_path / "Downloads" / "new_shoot"
    photo(shoot / "IMG_0001.jpg", (30, 60, 90))
    assert cli("init", "shoes", "--media", tmp_path / "photos").exit_code == 0
    outputs = []
    for command in commands:
        args = [os.path.expanduser(a) for a in shlex.split(command)[1:]]
        result = cli(*args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "would copy" in outputs[0] and "1 files copied" in outputs[1]
    assert sorted(tree(tmp_path / "photos")) == ["new_shoot/IMG_0001.jpg"]
