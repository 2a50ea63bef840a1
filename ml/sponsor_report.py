"""The sponsor report an event team hands over within the hour: self-contained HTML pages, one per sponsor.

`render_event_report` turns `sponsor_figures` (ml/sponsor_figures.py, where every figure is defined) into
`index.html` (the sponsors' figures side by side, share of voice as an inline SVG bar chart, every video's
timeline) and `sponsor-<tag_id>.html` per sponsor (its photo set as thumbnails with the box drawn and the score,
its stretches on each video's timeline with start and end stamps, its screen time). Like the contact sheets:
inline CSS, thumbnails as JPEG data URIs, no scripts, no network, every name escaped, so the files can be
mailed, zipped or opened from a bucket.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Mapping, Sequence

from ml.segments import format_timestamp
from ml.sponsor_figures import (
    Box,
    export_photo_set,
    file_name_of,
    merge_stretches,
    sponsor_figures,
    thumbnail_with_box,
)

__all__ = [
    "export_photo_set",
    "merge_stretches",
    "render_event_report",
    "sponsor_figures",
    "sponsor_page_name",
    "thumbnail_with_box",
]

WIDTH = 1000  # timeline and chart width in SVG units
LABEL_W = 200
LANE = 22
COLOURS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4d7c0f", "#be185d"]
PHOTO_COLOUR, SCREEN_COLOUR = "#2563eb", "#d97706"
TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]
esc = html.escape
Thumbnail = Callable[[str, Box | None], bytes | None]  # (uri, box) -> JPEG with the box drawn, or None

CSS = """
body { font: 13px system-ui, sans-serif; margin: 20px; color: #111; max-width: 1240px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 22px 0 6px; }
h3 { font-size: 13px; margin: 14px 0 4px; } .sum { color: #555; margin-bottom: 12px; }
table { border-collapse: collapse; } td, th { padding: 4px 10px; text-align: right; border-bottom: 1px solid #eee; }
td:first-child, th:first-child { text-align: left; } th { background: #f9fafb; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px; }
figure { margin: 0; border: 1px solid #e5e7eb; border-radius: 4px; padding: 4px; }
img { width: 100%; display: block; } figcaption { font-size: 11px; margin-top: 3px; overflow-wrap: anywhere; }
.missing { background: #f3f4f6; min-height: 120px; } .none { color: #555; font-style: italic; }
.key { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; }
"""


def sponsor_page_name(tag_id: str) -> str:
    """`sponsor-<tag_id>.html`, with anything but letters, digits, '-', '_' and '.' in the tag id replaced, so
    a tag id can never name a file outside the report's folder."""
    return f"sponsor-{re.sub(r'[^A-Za-z0-9_.-]', '_', str(tag_id)).lstrip('.') or 'tag'}.html"


def page_names(rows: Sequence[Mapping]) -> dict[str, str]:
    """tag_id -> page file, distinct even where two tag ids sanitise to the same name."""
    out: dict[str, str] = {}
    for row in rows:
        name, n = sponsor_page_name(row["tag_id"]), 1
        while name in out.values():
            n += 1
            name = sponsor_page_name(f"{row['tag_id']}-{n}")
        out[row["tag_id"]] = name
    return out


def zip_name_of(page: str) -> str:
    """The photo-set zip beside a sponsor's page: `sponsor-<tag_id>.zip`."""
    return page.removesuffix(".html") + ".zip"


def _stamp(seconds: float) -> str:
    return format_timestamp(seconds)


def _duration(seconds: float) -> str:
    """83.5 -> '1 min 23.5 s'; 3725 -> '1 h 02 min 05 s'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {secs:04.1f} s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours} h {minutes:02d} min {int(secs):02d} s"


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share:.1%}"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def share_chart_svg(rows: Sequence[Mapping]) -> str:
    """Share of voice as horizontal bars: per sponsor its photo share (blue) and screen share (orange), each
    bar the share of the chart's width, with the percentage written next to it."""
    bar_h, gap = 12, 10
    height = 10 + len(rows) * (2 * bar_h + gap)
    scale = WIDTH - LABEL_W - 70
    parts = [f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="share of voice">']
    for i, row in enumerate(rows):
        y = 6 + i * (2 * bar_h + gap)
        parts.append(f'<text x="4" y="{y + bar_h + 4}" font-size="12">{esc(str(row["name"])[:30])}</text>')
        for k, (key, colour) in enumerate((("photo_share", PHOTO_COLOUR), ("screen_share", SCREEN_COLOUR))):
            share, top = row[key], y + k * bar_h
            w = scale * (share or 0.0)
            parts.append(
                f'<rect x="{LABEL_W}" y="{top}" width="{w:.1f}" height="{bar_h - 2}" fill="{colour}">'
                f"<title>{esc(str(row['name']))}: {_pct(share)}</title></rect>"
                f'<text x="{LABEL_W + w + 4:.1f}" y="{top + bar_h - 3}" font-size="10">{_pct(share)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(
    duration_s: float, lanes: Sequence[tuple[str, Sequence[tuple[float, float, float]], str]], stamps: bool = False
) -> str:
    """One video's timeline: a lane per (label, stretches, colour), stretches as bars with a tooltip; with
    `stamps`, each bar's start-end stamps written under it (alternating rows where bars are close)."""
    duration = max(float(duration_s), 1e-6)
    lane_h = LANE + (14 if stamps else 0)
    height = 24 + lane_h * max(1, len(lanes)) + 6
    x = lambda t: LABEL_W + (WIDTH - LABEL_W - 10) * min(max(t, 0.0), duration) / duration  # noqa: E731
    step = next((s for s in TICK_STEPS if duration / s <= 10), TICK_STEPS[-1])
    svg = [f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="timeline">']
    for k in range(int(duration // step) + 1):
        t = k * step
        svg.append(f'<line x1="{x(t):.1f}" y1="14" x2="{x(t):.1f}" y2="{height - 4}" stroke="#e5e7eb"/>')
        anchor = "end" if x(t) > WIDTH - 30 else "middle"  # the last stamp stays inside the picture
        svg.append(f'<text x="{x(t):.1f}" y="10" font-size="9" text-anchor="{anchor}">{_stamp(t)}</text>')
    svg.append(f'<line x1="{x(duration):.1f}" y1="14" x2="{x(duration):.1f}" y2="{height - 4}" stroke="#9ca3af"/>')
    if not lanes:
        svg.append(f'<text x="{LABEL_W}" y="{24 + LANE // 2 + 4}" font-size="11" fill="#555">no sponsor seen</text>')
    for i, (label, runs, colour) in enumerate(lanes):
        y = 20 + i * lane_h
        svg.append(f'<text x="4" y="{y + 14}" font-size="11" fill="{colour}">{esc(str(label)[:30])}</text>')
        last_right = -1e9
        row = 0
        for start, end, peak in runs:
            x0, x1 = x(start), x(end)
            tip = f"{label} {_stamp(start)}–{_stamp(end)} ({_duration(end - start)}), peak {peak:.2f}"
            svg.append(
                f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1.5):.1f}" height="{LANE - 7}" rx="2" '
                f'fill="{colour}"><title>{esc(tip)}</title></rect>'
            )
            if stamps:
                row = 1 - row if x0 < last_right else 0
                last_right = x0 + 96
                tx, anchor = (x1, "end") if x0 > WIDTH - 100 else (x0, "start")
                svg.append(
                    f'<text x="{tx:.1f}" y="{y + LANE + 5 + row * 8}" font-size="9" fill="#333" text-anchor="{anchor}">'
                    f"{_stamp(start)}–{_stamp(end)}</text>"
                )
    svg.append("</svg>")
    return "".join(svg)


def _photo_card(photo: Mapping, thumbnail: Thumbnail) -> str:
    jpeg = thumbnail(photo["uri"], photo["box"])
    name = file_name_of(photo["uri"])
    extra = len(photo["boxes"]) - 1
    caption = f"<b>{photo['score']:.2f}</b> {esc(name)}" + (f" (+{extra} more)" if extra > 0 else "")
    if not jpeg:
        return f'<figure class="missing"><figcaption>{caption} · no preview</figcaption></figure>'
    data = base64.b64encode(jpeg).decode("ascii")
    return (
        f'<figure><img src="data:image/jpeg;base64,{data}" alt="{esc(name)}"><figcaption>{caption}</figcaption>'
        f"</figure>"
    )


def _sponsor_page(
    event: str, row: Mapping, figures: Mapping, colour: str, thumbnail: Thumbnail, zip_name: str | None = None
) -> str:
    name = str(row["name"])
    summary = (
        f"{row['photos']} photos (mean score {_score(row['mean_score'])}, min {_score(row['min_score'])}) · "
        f"{row['video_appearances']} video appearances in {row['videos']} of {figures['n_videos']} videos · "
        f"screen time {_duration(row['screen_time_s'])} · share of voice: {_pct(row['photo_share'])} of sponsor "
        f"photo appearances, {_pct(row['screen_share'])} of sponsor screen time"
    )
    photos = (
        f'<div class="grid">{"".join(_photo_card(p, thumbnail) for p in row["photo_set"])}</div>'
        if row["photo_set"]
        else '<p class="none">No photos of this sponsor.</p>'
    )
    videos = []
    for video in figures["videos"]:
        runs = video["stretches"].get(row["tag_id"])
        if not runs:
            continue
        seconds = sum(e - s for s, e, _ in runs)
        table = "".join(
            f"<tr><td>{_stamp(s)}–{_stamp(e)}</td><td>{_duration(e - s)}</td><td>{p:.2f}</td></tr>" for s, e, p in runs
        )
        videos.append(
            f"<h3>{esc(str(video['uri']))} · {_stamp(video['duration_s'])} long · on screen {_duration(seconds)}</h3>"
            f"{timeline_svg(video['duration_s'], [(name, runs, colour)], stamps=True)}"
            f"<table><tr><th>stretch</th><th>length</th><th>peak score</th></tr>{table}</table>"
        )
    body = (
        f'<p><a href="index.html">← {esc(event)}: all sponsors</a></p><h1>{esc(name)}</h1>'
        f'<div class="sum">{esc(summary)}</div>'
        f"<h2>Screen time: {_duration(row['screen_time_s'])}</h2>"
        f"<p>Overlapping or touching segments of one video are counted once.</p>"
        f"<h2>Photos ({row['photos']})</h2><p>Best box drawn in yellow, its score in bold."
        + (f' <a href="{esc(zip_name)}">Download the photo set</a> (the original files, zip).' if zip_name else "")
        + f"</p>{photos}"
        f"<h2>Videos ({row['videos']})</h2>" + ("".join(videos) or '<p class="none">Not seen in any video.</p>')
    )
    return _page(f"{event}: {name}", body)


def render_event_report(
    event: str,
    figures: Mapping,
    thumbnail: Thumbnail,
    generated_at: str | None = None,
) -> dict[str, str]:
    """{file name: HTML}: `index.html` and, when any sponsor was seen, `sponsor-<tag_id>.html` for each sponsor
    (zero-figure sponsors included, so a sponsor asking sees its zero). `figures` from `sponsor_figures`;
    `thumbnail(uri, box)` gives the photo's JPEG with the box drawn (`thumbnail_with_box`), or None."""
    rows = figures["sponsors"]
    header = (
        f"<h1>{esc(event)}: sponsor report</h1>"
        f'<div class="sum">{figures["photo_total"]} sponsor photo appearances · {figures["n_videos"]} videos · '
        f"{_duration(figures['screen_total_s'])} sponsor screen time"
        + (f" · generated {esc(generated_at)}" if generated_at else "")
        + "</div>"
    )
    if not figures["found"]:
        who = f"none of the {len(rows)} sponsors was" if rows else "no sponsors were given, so none was"
        body = f'{header}<p class="none"><b>No sponsor found</b> in this event: {who} seen in its photos or videos.</p>'
        return {"index.html": _page(f"{event}: sponsor report", body)}

    pages = page_names(rows)
    colour = {row["tag_id"]: COLOURS[i % len(COLOURS)] for i, row in enumerate(rows)}
    table = "".join(
        f'<tr><td><a href="{esc(pages[r["tag_id"]])}">{esc(str(r["name"]))}</a></td><td>{r["photos"]}</td>'
        f"<td>{_score(r['mean_score'])}</td><td>{_score(r['min_score'])}</td><td>{r['video_appearances']}</td>"
        f"<td>{r['videos']}</td><td>{_duration(r['screen_time_s'])}</td><td>{_pct(r['photo_share'])}</td>"
        f"<td>{_pct(r['screen_share'])}</td></tr>"
        for r in rows
    )
    names = {r["tag_id"]: r["name"] for r in rows}
    timelines = "".join(
        f"<h3>{esc(str(v['uri']))} · {_stamp(v['duration_s'])} long</h3>"
        + timeline_svg(v["duration_s"], [(names[t], runs, colour[t]) for t, runs in v["stretches"].items()])
        for v in figures["videos"]
    )
    body = (
        f"{header}<h2>Sponsors</h2><table><tr><th>sponsor</th><th>photos</th><th>mean score</th><th>min score</th>"
        f"<th>video appearances</th><th>videos</th><th>screen time</th><th>photo share</th><th>screen share</th>"
        f"</tr>{table}</table>"
        f"<p>Photos: distinct photos with the sponsor's logo; scores are each photo's best box. Screen time: per "
        f"video, the union of the sponsor's segments (overlaps counted once). Shares are among the sponsors only: "
        f"a sponsor's photos over all sponsors' photo appearances, its screen time over all sponsors' screen "
        f"time.</p><h2>Share of voice</h2>"
        f'<div><span class="key" style="background:{PHOTO_COLOUR}"></span>photo share'
        f'<span class="key" style="background:{SCREEN_COLOUR}"></span>screen share</div>{share_chart_svg(rows)}'
        f"<h2>Videos</h2>" + (timelines or '<p class="none">No videos in this event.</p>')
    )
    out = {"index.html": _page(f"{event}: sponsor report", body)}
    for row in rows:
        zip_name = zip_name_of(pages[row["tag_id"]]) if row["photo_set"] else None
        out[pages[row["tag_id"]]] = _sponsor_page(event, row, figures, colour[row["tag_id"]], thumbnail, zip_name)
    return out
