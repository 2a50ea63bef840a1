"""The sensor's incremental listing (resources/media_changes.py): what changed since a cursor, at the cost of
what changed; local folders by folder times, S3 by the keys after the last one."""

import json
import os
import time

import pytest

from resources.media_store import LocalMediaStore, S3MediaStore

MARGIN_NS = 50_000_000  # 50 ms instead of 2 s: the tests wait it out after writing files


def settle():
    """Wait out the margin, so the folders just written count as settled (a tick two seconds later)."""
    time.sleep(MARGIN_NS / 1e9 + 0.01)


def tick(folder, cursor):
    from resources.media_changes import local_changes

    return local_changes(folder, cursor, margin_ns=MARGIN_NS)


@pytest.fixture
def library_folder(tmp_path):
    """Two folders of 100 tiny 'photos' each (the listing goes by file name: bytes are not read), a document."""
    media = tmp_path / "media"
    for folder in ("a", "b"):
        (media / folder).mkdir(parents=True)
        for i in range(100):
            (media / folder / f"{i:03d}.jpg").write_bytes(b"x")
    (media / "a" / "notes.txt").write_text("not media")
    settle()
    return media


def test_a_tick_with_nothing_new_stats_the_folders_and_scans_none(library_folder):
    baseline = tick(library_folder, None)
    assert baseline.baseline and baseline.changed == []
    assert set(baseline.cursor["dirs"]) == {"", "a", "b"}
    assert {rel: count for rel, (_, count) in baseline.cursor["dirs"].items()} == {"": 0, "a": 100, "b": 100}
    quiet = tick(library_folder, baseline.cursor)
    assert (quiet.changed, quiet.removed, quiet.baseline) == ([], 0, False)
    assert (quiet.folders_scanned, quiet.entries_scanned, quiet.stats) == (0, 0, 3)
    assert quiet.describe() == ""


def test_new_files_in_a_new_folder_and_copied_with_old_times_are_the_changes(library_folder):
    baseline = tick(library_folder, None)
    (library_folder / "b" / "new").mkdir()
    (library_folder / "b" / "new" / "upload.png").write_bytes(b"y")
    copied = library_folder / "a" / "copied.jpg"
    copied.write_bytes(b"z")
    old = time.time() - 30 * 86400
    os.utime(copied, (old, old))  # `cp -p`: a month-old mtime; its ctime is now
    (library_folder / "a" / "readme.txt").write_text("not media either")

    changed = tick(library_folder, baseline.cursor)
    assert [o.uri for o in changed.changed] == [str(copied), str(library_folder / "b" / "new" / "upload.png")]
    assert changed.describe() == "2 new or changed files"
    # a, b (their entries moved) and the new folder; the root and nothing else
    assert (changed.folders_scanned, changed.entries_scanned) == (3, 103 + 101 + 1)
    assert set(changed.cursor["dirs"]) == {"", "a", "b", "b/new"}

    settle()
    again = tick(library_folder, changed.cursor)
    assert again.changed == []  # seen once: the files of the margin's window are remembered by name
    assert tick(library_folder, again.cursor).folders_scanned == 0


def test_removed_files_and_folders_are_counted(library_folder):
    baseline = tick(library_folder, None)
    (library_folder / "a" / "000.jpg").unlink()
    for path in (library_folder / "b").iterdir():
        path.unlink()
    (library_folder / "b").rmdir()
    gone = tick(library_folder, baseline.cursor)
    assert (gone.changed, gone.removed, gone.describe()) == ([], 101, "101 removed")
    assert set(gone.cursor["dirs"]) == {"", "a"}


def test_the_cursor_holds_folders_not_files(library_folder):
    baseline = tick(library_folder, None)
    for i in range(2000):
        (library_folder / "a" / f"more-{i:04d}.jpg").write_bytes(b"x")
    settle()
    grown = tick(library_folder, baseline.cursor)
    assert len(grown.changed) == 2000
    assert grown.cursor["dirs"]["a"][1] == 2100 and grown.cursor["recent"] == {}
    assert len(json.dumps(grown.cursor)) < 400  # 2,200 media files; three folders
    assert len(json.dumps(grown.cursor)) - len(json.dumps(baseline.cursor)) <= 2  # "100" became "2100"


def test_a_cursor_of_another_folder_is_a_new_baseline(library_folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.jpg").write_bytes(b"x")
    cursor = tick(library_folder, None).cursor
    moved = LocalMediaStore().changes_since(str(other), cursor)
    assert moved.baseline and moved.changed == [] and set(moved.cursor["dirs"]) == {""}
    with pytest.raises(FileNotFoundError, match="media folder not found"):
        LocalMediaStore().changes_since(str(tmp_path / "missing"), None)


def test_s3_lists_only_the_keys_after_the_last_one(s3_endpoint):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="brand")
    for day in ("2026-12-01", "2026-12-02"):
        for i in range(3):
            client.put_object(Bucket="brand", Key=f"uploads/{day}/{i}.jpg", Body=b"x")
    client.put_object(Bucket="brand", Key="other/2026-12-09/0.jpg", Body=b"x")  # outside the prefix
    store = S3MediaStore(endpoint_url=s3_endpoint)
    location = "s3://brand/uploads"

    baseline = store.changes_since(location, None)
    assert baseline.baseline and baseline.changed == [] and baseline.entries_scanned == 6
    assert baseline.cursor == {"location": location, "start_after": "uploads/2026-12-02/2.jpg"}
    quiet = store.changes_since(location, baseline.cursor)
    assert (quiet.changed, quiet.entries_scanned, quiet.cursor) == ([], 0, baseline.cursor)

    client.put_object(Bucket="brand", Key="uploads/2026-12-03/0.jpg", Body=b"new")
    client.put_object(Bucket="brand", Key="uploads/2026-12-03/notes.txt", Body=b"not media")
    client.put_object(Bucket="brand", Key="uploads/2026-12-01/late.jpg", Body=b"y")  # sorts before: not seen
    new = store.changes_since(location, quiet.cursor)
    assert [o.uri for o in new.changed] == ["s3://brand/uploads/2026-12-03/0.jpg"]
    assert new.entries_scanned == 2  # the two keys after the last one, not the prefix's nine
    assert new.cursor["start_after"] == "uploads/2026-12-03/notes.txt"
    assert new.fingerprint() != quiet.fingerprint()
    assert store.changes_since(location, new.cursor).changed == []

    with pytest.raises(LookupError, match="NoSuchBucket"):
        store.changes_since("s3://no-such-bucket/x", None)
