"""A contact sheet per video: sampled frames with what the model saw, and the segments on a timeline.

One self-contained HTML file (thumbnails inlined as JPEG data URIs, no scripts, no network), so it can be
mailed or opened from a bucket. The timeline is an SVG: one lane per tag that has a segment, applied
segments solid, review segments hatched, each with its times and peak score as a tooltip. Below it, the
thumbnails in time order, each with its timestamp, why it was sampled and the top tag per facet.

A four-hour video has 14,400 samples at 1 fps: the sheet shows at most `max_thumbs` of them, always keeping
scene changes and segment starts, then evenly spaced interval frames.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

from PIL import Image

from ml.segments import format_timestamp

WIDTH = 1000  # timeline width in SVG units
LANE = 18
FACET_COLOURS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4d7c0f", "#be185d"]
TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]


def pick_thumbnail_times(
    frames: Sequence[tuple[float, str]], segment_starts: Sequence[float] = (), max_thumbs: int = 120
) -> list[float]:
    """Which sampled frames (ts, reason) the sheet shows: scene changes and segment starts first, then
    evenly spaced others, at most `max_thumbs`, in time order."""
    if max_thumbs <= 0 or not frames:
        return []
    times = sorted({round(t, 4) for t, _ in frames})
    starts = {round(t, 4) for t in segment_starts}
    must = [t for t, reason in sorted(frames) if reason == "scene-change" or round(t, 4) in starts]
    must = sorted(set(must))
    if len(must) >= max_thumbs:
        return _evenly(must, max_thumbs)
    rest = [t for t in times if t not in set(must)]
    return sorted(must + _evenly(rest, max_thumbs - len(must)))


def _evenly(items: Sequence[float], k: int) -> list[float]:
    if k >= len(items):
        return list(items)
    if k <= 0:
        return []
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def thumbnail_jpeg(image: Image.Image, width: int = 192, quality: int = 80) -> bytes:
    height = max(1, round(image.height * width / image.width))
    out = io.BytesIO()
    image.convert("RGB").resize((width, height), Image.BILINEAR).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _stamp(seconds: float) -> str:
    """00:38:12, or 00:00:04.4 when the frame is off the whole second (scene changes)."""
    whole = format_timestamp(seconds)
    frac = seconds - int(seconds)
    return whole if abs(frac) < 0.05 or abs(frac - 1) < 0.05 else f"{format_timestamp(int(seconds))}.{int(frac * 10)}"


def _tick_step(duration_s: float) -> int:
    return next((s for s in TICK_STEPS if duration_s / s <= 12), TICK_STEPS[-1])


def render_contact_sheet(
    title: str,
    duration_s: float,
    frames: Sequence[Mapping],
    segments: Sequence[Mapping],
    thumbnails: Mapping[float, bytes],
    tag_names: Mapping[str, str] | None = None,
) -> str:
    """The sheet as HTML.

    frames: {ts, reason, tags: [(facet, tag_id, score)]} for every sampled frame (markers on the timeline; a
    None tag_id is "nothing recognised");
    segments: {facet, tag_id, start_s, end_s, peak_score, status}; thumbnails: ts -> JPEG bytes for the frames
    to show as pictures.
    """
    names = dict(tag_names or {})
    esc = html.escape
    duration = max(float(duration_s), 1e-6)
    facets = sorted({s["facet"] for s in segments} | {f for fr in frames for f, _, _ in fr.get("tags", [])})
    colour = {facet: FACET_COLOURS[i % len(FACET_COLOURS)] for i, facet in enumerate(facets)}

    lanes: list[tuple[str, str]] = []
    for seg in sorted(segments, key=lambda s: (facets.index(s["facet"]), s["start_s"])):
        key = (seg["facet"], seg["tag_id"])
        if key not in lanes:
            lanes.append(key)
    label_w = 220
    height = 40 + LANE * len(lanes) + 20
    x = lambda t: label_w + (WIDTH - label_w) * min(max(t, 0.0), duration) / duration  # noqa: E731
    svg = [
        f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="segments timeline">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="3" height="6" fill="#9ca3af"/></pattern></defs>',
    ]
    step = _tick_step(duration)
    for k in range(int(duration // step) + 1):
        t = k * step
        svg.append(f'<line x1="{x(t):.1f}" y1="14" x2="{x(t):.1f}" y2="{height - 10}" stroke="#e5e7eb"/>')
        svg.append(f'<text x="{x(t):.1f}" y="10" font-size="9" text-anchor="middle">{format_timestamp(t)}</text>')
    for fr in frames:  # a tick per sampled frame; scene changes taller and red
        cut = fr["reason"] == "scene-change"
        svg.append(
            f'<line x1="{x(fr["ts"]):.1f}" y1="{16 if cut else 22}" x2="{x(fr["ts"]):.1f}" y2="28" '
            f'stroke="{"#dc2626" if cut else "#9ca3af"}" stroke-width="{1.2 if cut else 0.6}"/>'
        )
    for i, (facet, tag) in enumerate(lanes):
        y = 34 + i * LANE
        label = f"{facet}: {names.get(tag, tag)}"
        svg.append(f'<text x="4" y="{y + 12}" font-size="11" fill="{colour[facet]}">{esc(label[:34])}</text>')
        for seg in (s for s in segments if (s["facet"], s["tag_id"]) == (facet, tag)):
            x0, x1 = x(seg["start_s"]), x(seg["end_s"])
            fill = colour[facet] if seg["status"] == "applied" else "url(#hatch)"
            tip = (
                f"{names.get(tag, tag)} {_stamp(seg['start_s'])}–{_stamp(seg['end_s'])} "
                f"peak {seg['peak_score']:.2f} {seg['status']}"
            )
            svg.append(
                f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(x1 - x0, 1.5):.1f}" height="{LANE - 5}" rx="2" '
                f'fill="{fill}" stroke="{colour[facet]}"><title>{esc(tip)}</title></rect>'
            )
    svg.append("</svg>")

    cards = []
    by_ts = {round(fr["ts"], 4): fr for fr in frames}
    for ts in sorted(thumbnails):
        fr = by_ts.get(round(ts, 4), {"reason": "", "tags": []})
        data = base64.b64encode(thumbnails[ts]).decode("ascii")
        tags = "".join(
            f'<div style="color:{colour.get(facet, "#111")}">{esc(facet)}: {esc(names.get(tag, tag))} '
            f"<span class=s>{score:.2f}</span></div>"
            if tag is not None
            else f"<div class=s>{esc(facet)}: nothing recognised</div>"
            for facet, tag, score in fr.get("tags", [])
        )
        badge = ' <span class="cut">scene change</span>' if fr["reason"] == "scene-change" else ""
        cards.append(
            f'<figure><img src="data:image/jpeg;base64,{data}" alt="frame at {_stamp(ts)}">'
            f"<figcaption><b>{_stamp(ts)}</b>{badge}{tags}</figcaption></figure>"
        )
    applied = sum(1 for s in segments if s["status"] == "applied")
    summary = (
        f"{_stamp(duration_s)} long · {len(frames)} frames sampled "
        f"({sum(1 for f in frames if f['reason'] == 'scene-change')} at scene changes) · "
        f"{applied} segments applied, {len(segments) - applied} to review · {len(thumbnails)} frames shown"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}: contact sheet</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 20px; color: #111; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }} .sum {{ color: #555; margin-bottom: 12px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(196px, 1fr)); gap: 10px; margin-top: 16px; }}
figure {{ margin: 0; border: 1px solid #e5e7eb; border-radius: 4px; padding: 4px; }}
img {{ width: 100%; display: block; }} figcaption {{ font-size: 11px; margin-top: 3px; }}
.cut {{ background: #dc2626; color: white; border-radius: 3px; padding: 0 3px; font-size: 10px; }}
.s {{ color: #666; }}
</style></head><body>
<h1>{esc(title)}</h1><div class="sum">{esc(summary)}</div>
<p>Solid bars are applied segments, hatched bars go to review. Ticks under the time axis are sampled frames
(red: scene changes). Each picture shows the top tag per facet on that frame, with its raw score.</p>
{"".join(svg)}
<div class="grid">{"".join(cards)}</div>
</body></html>
"""


def render_index(title: str, rows: Sequence[Mapping]) -> str:
    """The library's list of contact sheets: {name, href, duration_s, applied, review, frames}."""
    esc = html.escape
    body = "".join(
        f'<tr><td><a href="{esc(r["href"])}">{esc(r["name"])}</a></td><td>{_stamp(r["duration_s"])}</td>'
        f"<td>{r['frames']}</td><td>{r['applied']}</td><td>{r['review']}</td></tr>"
        for r in rows
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body {{ font: 13px system-ui, sans-serif; margin: 20px; }} td, th {{ padding: 3px 10px; text-align: left; }}
</style></head><body><h1>{esc(title)}</h1>
<table><tr><th>video</th><th>length</th><th>frames</th><th>applied</th><th>review</th></tr>{body}</table>
</body></html>
"""
