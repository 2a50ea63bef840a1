"""The figures of an event's sponsor report: how often and how long each sponsor was seen, against the others.

Inputs are the rows region recognition and video segmentation already write, per event:

- photo hits: {media_id, uri, tag_id, score, box}, box = (x, y, w, h) normalised to the photo (0..1);
- video segments: {media_id, uri, tag_id, start_s, end_s, peak_score};
- videos: {media_id, uri, duration_s};
- sponsors: {tag_id: display name}. Only these tags count; hits of other tags are ignored.

Definitions (what a sponsor is told, so they are spelt out here once):

- photos: distinct photos with at least one box of the sponsor. A photo's score for the sponsor is its best
  box's score; mean and min score are over those photos.
- video appearances: the number of segments of the sponsor (as segmentation wrote them, before merging).
- screen time: per video, the union of the sponsor's segments clipped to [0, duration], so overlapping or
  touching segments are not counted twice; summed over the videos. Two sponsors on screen at the same time
  each get the full time.
- share of voice, two columns, each among the sponsors only (never against the whole event):
  photo share = the sponsor's photos / the sum of every sponsor's photos (a photo showing two sponsors counts
  once for each), screen share = the sponsor's screen time / the sum of every sponsor's screen time. Each
  column sums to 1 when any sponsor was seen in that medium; it is None for everyone when none was.
- timeline: per video, per sponsor, the merged stretches (start_s, end_s, peak score of the merged segments).

Also the photo set's export (a zip of the original files) and the thumbnail with the box drawn.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from PIL import Image, ImageDraw

Box = tuple[float, float, float, float]


def merge_stretches(
    segments: Iterable[tuple[float, float, float]], duration_s: float | None = None
) -> list[tuple[float, float, float]]:
    """(start_s, end_s, peak) segments merged where they overlap or touch, clipped to [0, duration_s]; the peak
    of a merged stretch is the highest of its segments. Empty stretches after clipping are dropped."""
    hi = float("inf") if duration_s is None else float(duration_s)
    clipped = sorted((max(0.0, float(s)), min(hi, float(e)), float(p)) for s, e, p in segments)
    out: list[tuple[float, float, float]] = []
    for start, end, peak in clipped:
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            last = out[-1]
            out[-1] = (last[0], max(last[1], end), max(last[2], peak))
        else:
            out.append((start, end, peak))
    return out


def _share(value: float, total: float) -> float | None:
    return value / total if total > 0 else None


def sponsor_figures(
    photo_hits: Sequence[Mapping],
    segments: Sequence[Mapping],
    videos: Sequence[Mapping],
    sponsors: Mapping[str, str],
) -> dict:
    """The event's figures (definitions in the module docstring).

    Returns {"sponsors": [row per sponsor, most screen time then most photos first], "videos": [timeline per
    video], "photo_total", "screen_total_s", "n_videos", "found"}. A sponsor row: tag_id, name, photos,
    mean_score, min_score (None without photos), video_appearances, videos (how many videos it is in),
    screen_time_s, photo_share, screen_share, and photo_set: [{media_id, uri, score, box, boxes}] best first
    (box: the best box; boxes: all of the sponsor's boxes on that photo). A timeline: media_id, uri,
    duration_s, stretches {tag_id: [(start_s, end_s, peak)]} for the sponsors seen in it.
    """
    durations = {v["media_id"]: float(v["duration_s"]) for v in videos}
    uris = {v["media_id"]: v["uri"] for v in videos}

    photos: dict[str, dict[str, dict]] = defaultdict(dict)  # tag -> media_id -> photo
    for hit in photo_hits:
        tag = hit["tag_id"]
        if tag not in sponsors:
            continue
        box = tuple(float(v) for v in hit["box"]) if hit.get("box") is not None else None
        photo = photos[tag].setdefault(
            hit["media_id"], {"media_id": hit["media_id"], "uri": hit["uri"], "score": -1.0, "box": None, "boxes": []}
        )
        photo["boxes"].append(box)
        if float(hit["score"]) > photo["score"]:
            photo["score"], photo["box"] = float(hit["score"]), box

    raw: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))  # tag -> video -> segments
    for seg in segments:
        if seg["tag_id"] not in sponsors:
            continue
        raw[seg["tag_id"]][seg["media_id"]].append((seg["start_s"], seg["end_s"], seg["peak_score"]))
        uris.setdefault(seg["media_id"], seg["uri"])

    stretches = {
        tag: {vid: merge_stretches(segs, durations.get(vid)) for vid, segs in per_video.items()}
        for tag, per_video in raw.items()
    }
    screen = {
        tag: sum(e - s for runs in per_video.values() for s, e, _ in runs) for tag, per_video in stretches.items()
    }
    photo_total = sum(len(p) for p in photos.values())
    screen_total = sum(screen.values())

    rows = []
    for tag, name in sponsors.items():
        photo_set = sorted(photos.get(tag, {}).values(), key=lambda p: (-p["score"], str(p["uri"])))
        scores = [p["score"] for p in photo_set]
        seen_in = {vid for vid, runs in stretches.get(tag, {}).items() if runs}
        rows.append(
            {
                "tag_id": tag,
                "name": name,
                "photos": len(photo_set),
                "mean_score": sum(scores) / len(scores) if scores else None,
                "min_score": min(scores) if scores else None,
                "video_appearances": sum(len(segs) for segs in raw.get(tag, {}).values()),
                "videos": len(seen_in),
                "screen_time_s": screen.get(tag, 0.0),
                "photo_share": _share(len(photo_set), photo_total),
                "screen_share": _share(screen.get(tag, 0.0), screen_total),
                "photo_set": photo_set,
            }
        )
    rows.sort(key=lambda r: (-r["screen_time_s"], -r["photos"], str(r["name"])))

    video_ids = list(durations) + sorted(set(uris) - set(durations))
    timelines = []
    for vid in video_ids:
        seen = {tag: per_video[vid] for tag, per_video in stretches.items() if per_video.get(vid)}
        ends = [e for runs in seen.values() for _, e, _ in runs]
        timelines.append(
            {
                "media_id": vid,
                "uri": uris.get(vid, vid),
                "duration_s": durations.get(vid, max(ends, default=0.0)),
                "stretches": seen,
            }
        )
    return {
        "sponsors": rows,
        "videos": timelines,
        "photo_total": photo_total,
        "screen_total_s": screen_total,
        "n_videos": len(timelines),
        "found": photo_total > 0 or screen_total > 0,
    }


def thumbnail_with_box(image: Image.Image, box: Box | None, width: int = 240, quality: int = 82) -> bytes:
    """A JPEG `width` pixels wide with the normalised (x, y, w, h) box drawn on it: a yellow frame with a dark
    edge, visible on light and dark photos alike. No box: the plain thumbnail."""
    height = max(1, round(image.height * width / max(1, image.width)))
    thumb = image.convert("RGB").resize((width, height), Image.BILINEAR)
    if box is not None:
        x, y, w, h = (min(max(float(v), 0.0), 1.0) for v in box)
        x0, y0 = round(x * width), round(y * height)
        x1, y1 = round(min(x + w, 1.0) * width) - 1, round(min(y + h, 1.0) * height) - 1
        line = max(2, width // 80)
        draw = ImageDraw.Draw(thumb)
        draw.rectangle((x0, y0, max(x0, x1), max(y0, y1)), outline=(17, 17, 17), width=line + 2)
        draw.rectangle((x0 + 1, y0 + 1, max(x0 + 1, x1 - 1), max(y0 + 1, y1 - 1)), outline=(250, 204, 21), width=line)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=quality)
    return out.getvalue()


def file_name_of(uri: str) -> str:
    """The original file name of a media uri (local path, file://, s3://, https://)."""
    name = PurePosixPath(unquote(urlparse(str(uri)).path or str(uri))).name
    return name or "photo"


def export_photo_set(hits: Iterable[Mapping], dest_zip: Path, read_bytes: Callable[[str], bytes]) -> list[str]:
    """A zip of the photos' original files, each once (hits of the same photo: one file), under their own
    names; two different photos with the same name become `name.jpg` and `name-2.jpg`. Written to a temporary
    file first, so a failed read leaves no half zip behind. Returns the names in the zip, in order."""
    dest_zip = Path(dest_zip)
    seen: set[str] = set()
    taken: set[str] = set()
    plan: list[tuple[str, str]] = []
    for hit in hits:
        uri = str(hit["uri"])
        key = str(hit.get("media_id") or uri)
        if key in seen:
            continue
        seen.add(key)
        name = file_name_of(uri)
        stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        taken.add(candidate.lower())
        plan.append((candidate, uri))
    dest_zip.parent.mkdir(parents=True, exist_ok=True)
    partial = dest_zip.with_name(dest_zip.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as zf:  # photos are compressed already
            for name, uri in plan:
                zf.writestr(name, read_bytes(uri))
        partial.replace(dest_zip)
    finally:
        partial.unlink(missing_ok=True)
    return [name for name, _ in plan]
