"""The evaluation report of a library's heads: one self-contained HTML page a person reads before trusting them.

It leads with the truth: per facet, what to expect on a new shoot (the group-aware holdout's top-1, applied
precision and share sent to review, each with its interval, and the precision-coverage curve the thresholds
were read from), and which tags had a single shoot (their figures are optimistic); only then the same-shoot
figure a random split would report, labelled as optimistic.

Then per facet: the backbone and strategy chosen and why (each backbone's best head, every strategy's holdout
accuracy, the bar, what the combiner learnt to weigh from printed text and keypoints), per-tag precision and
recall on the holdout split, and the confusions that matter most (the tag pairs mixed up most often) with
thumbnails of the confused photos next to an example of the tag they were taken for.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

THUMB = 120


def tag_metrics(holdout: Sequence[Mapping], thresholds: Mapping[str, float]) -> list[dict]:
    """Per tag on the holdout: n, precision and recall of the top-1 prediction, and of the `applied` ones
    (score at or above the tag's threshold)."""
    tags = sorted({r["true"] for r in holdout} | {r["predicted"] for r in holdout})
    out = []
    for tag in tags:
        true = [r for r in holdout if r["true"] == tag]
        predicted = [r for r in holdout if r["predicted"] == tag]
        applied = [r for r in predicted if r["score"] >= thresholds.get(tag, 1.0)]
        hits = sum(r["true"] == tag for r in predicted)
        applied_hits = sum(r["true"] == tag for r in applied)
        out.append(
            {
                "tag_id": tag,
                "n_holdout": len(true),
                "precision": round(hits / len(predicted), 4) if predicted else None,
                "recall": round(hits / len(true), 4) if true else None,
                "applied_precision": round(applied_hits / len(applied), 4) if applied else None,
                "applied_recall": round(applied_hits / len(true), 4) if true else None,
                "threshold": round(float(thresholds.get(tag, 1.0)), 4),
            }
        )
    return out


def promise_figures(heads: Iterable[Mapping]) -> dict:
    """What each facet's head promises for a new shoot (group-aware holdout, with its interval) first, then the
    same-shoot figure, optimistic by construction, from `heads` table rows (facet, accuracy, metrics JSON):
    the Dagster metadata of the `heads` and `evaluation_report` assets."""
    out: dict = {}
    for row in heads:
        metrics = json.loads(row["metrics"])
        new, facet = metrics.get("new_shoot") or {}, row["facet"]
        if new:
            out[f"new_shoot_top1/{facet}"] = new["top1_projected"]
            out[f"new_shoot_top1_interval/{facet}"] = f"{new['top1_low']:.3f}-{new['top1_projected_high']:.3f}"
            if new["applied_precision"] is not None:
                out[f"new_shoot_applied_precision/{facet}"] = new["applied_precision"]
            out[f"new_shoot_share_applied/{facet}"] = new["share_applied"]
        out[f"holdout_top1/{facet}"] = round(row["accuracy"], 4)
        taught = metrics.get("self_training") or {}
        if taught.get("pool"):
            out[f"self_trained_rows/{facet}"] = taught.get("shipped_pseudo_rows", 0) if taught["used"] else 0
        same = (metrics.get("same_shoot") or {}).get("top1")
        if same is not None:
            out[f"same_shoot_top1_optimistic/{facet}"] = same
    return out


def confusions(holdout: Sequence[Mapping], top: int = 8) -> list[tuple[str, str, int, list[Mapping]]]:
    """The (true, predicted) pairs mixed up most often: (true, predicted, count, the rows)."""
    wrong = [r for r in holdout if r["true"] != r["predicted"]]
    counts = Counter((r["true"], r["predicted"]) for r in wrong)
    return [
        (t, p, n, [r for r in wrong if (r["true"], r["predicted"]) == (t, p)]) for (t, p), n in counts.most_common(top)
    ]


def _img(jpeg: bytes | None, caption: str) -> str:
    if not jpeg:
        return f'<figure class="missing"><figcaption>{html.escape(caption)}</figcaption></figure>'
    data = base64.b64encode(jpeg).decode("ascii")
    return f'<figure><img src="data:image/jpeg;base64,{data}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _bar(value: float | None) -> str:
    if value is None:
        return "<td>–</td>"
    colour = "#16a34a" if value >= 0.9 else "#d97706" if value >= 0.7 else "#dc2626"
    return (
        f'<td><div class="bar"><div style="width:{value * 100:.0f}%;background:{colour}"></div></div>{value:.2f}</td>'
    )


def _interval(value: float | None, low: float, high: float) -> str:
    return "–" if value is None else f"<b>{value:.3f}</b> ({low:.3f}–{high:.3f})"


def _top1(new: Mapping) -> str:
    """The promised top-1 of the head in use, its interval, and the holdout figure it is projected from."""
    if "top1_projected" not in new:
        return _interval(new["top1"], new["top1_low"], new["top1_high"])
    return (
        f"{_interval(new['top1_projected'], new['top1_low'], new['top1_projected_high'])}; measured on the holdout "
        f"by the head trained without it: {new['top1']:.3f}"
    )


def curve_svg(
    curve: Sequence[Mapping], target: float, coverage: float | None, width: int = 320, height: int = 160
) -> str:
    """The precision-coverage curve on the holdout as inline SVG: precision (solid) and its lower bound
    (dashed) against the share of photos applied, the target as a line and the chosen coverage as a dot."""
    if not curve:
        return ""
    pad, w, h = 28, width - 36, height - 36
    x = lambda c: pad + c * w  # noqa: E731
    y = lambda p: 8 + (1 - max(0.0, p - 0.5) / 0.5) * h  # precision 0.5..1 fills the plot  # noqa: E731
    line = lambda key: " ".join(f"{x(pt['coverage']):.1f},{y(pt[key]):.1f}" for pt in curve)  # noqa: E731
    dot = f'<circle cx="{x(coverage):.1f}" cy="{y(target):.1f}" r="4" fill="#2563eb"/>' if coverage is not None else ""
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="precision against coverage">'
        f'<rect x="{pad}" y="8" width="{w}" height="{h}" fill="#fafafa" stroke="#ddd"/>'
        f'<line x1="{pad}" x2="{pad + w}" y1="{y(target):.1f}" y2="{y(target):.1f}" stroke="#d97706" '
        f'stroke-dasharray="3 3"/><polyline fill="none" stroke="#111" stroke-width="1.5" points="{line("precision")}"/>'
        f'<polyline fill="none" stroke="#666" stroke-dasharray="4 2" points="{line("precision_low")}"/>{dot}'
        f'<text x="{pad}" y="{height - 6}" font-size="10">0 ← share applied → 1</text>'
        f'<text x="2" y="14" font-size="10">1.0</text><text x="2" y="{8 + h}" font-size="10">0.5</text></svg>'
    )


def new_shoot_html(metrics: Mapping, name: Callable[[str], str]) -> str:
    """What the facet's head promises for a new shoot, first in its section."""
    new = metrics.get("new_shoot")
    if not new:
        return "<p>No new-shoot figures (head trained before group-aware holdouts).</p>"
    esc = html.escape
    target = metrics.get("target_precision", 0.9)
    single = metrics.get("single_group_tags") or []
    single_html = (
        f"<p class=warn>{len(single)} tag(s) had a single shoot, so their holdout is other photos of that shoot "
        f"(look-alike clusters, near-copies kept together) and their figures are <b>optimistic</b>: "
        f"{esc(', '.join(name(t) for t in single[:20]))}"
        f"{' …' if len(single) > 20 else ''}. Add photos from another shoot (or a `group` column) to measure them.</p>"
        if single
        else ""
    )
    same = metrics.get("same_shoot") or {}
    same_html = (
        f"<p class=optimistic>Same-shoot figure (a random split: photos of one shoot on both sides), "
        f"<b>optimistic, not a forecast</b>: the visual head ({esc(same.get('strategy', ''))}) alone gets top-1 "
        f"{same['top1']:.3f} there, against {same.get('group_aware_top1', float('nan')):.3f} on the group-aware "
        f"holdout.</p>"
        if same.get("top1") is not None
        else ""
    )
    taught = metrics.get("self_training") or {}
    taught_html = (
        f"<p>The head also learnt from the library: it was fitted again with the {taught['pseudo_rows']} of "
        f"{taught['pool']} unlabelled photos (library and holdout) it was surest of, each with its predicted tag, "
        f"and the holdout's balanced accuracy went from {taught['holdout_balanced_plain']:.3f} to "
        f"{taught['holdout_balanced']:.3f} (<b>{'kept' if taught['used'] else 'not kept'}</b>). The figures above "
        f"hold for a shoot that is in the library when the head is trained; one that arrives later is read by "
        f"the same head.</p>"
        if taught.get("pool")
        else ""
    )
    confidence = int(round(new["confidence"] * 100))
    applied = _interval(new["applied_precision"], new["applied_precision_low"], new["applied_precision_high"])
    return (
        f"<div class=promise><h3>What to expect on a new shoot</h3><table>"
        f"<tr><th>top-1</th><td>{_top1(new)}</td></tr>"
        f"<tr><th>precision of applied tags</th><td>{applied}"
        f" (target {target:.2f})</td></tr>"
        f"<tr><th>applied automatically</th><td>{new['share_applied']:.1%}</td></tr>"
        f"<tr><th>sent to review</th><td>{new['share_review']:.1%}</td></tr></table>"
        f"<p>Measured on {new['n_holdout']} holdout photos from shoots (or look-alike clusters) the head never saw; "
        f"intervals are {confidence} % Wilson bounds. Top-1 is projected to the head in use, refitted on every "
        f"example, along the learning curve of the head trained on the train split (ml/projection.py). "
        f"Thresholds: the lowest score at which the lower bound of precision reaches the target; the precision "
        f"shown counts every photo at the facet's threshold, not the higher ones of tags the holdout showed worse "
        f"(chosen on a few photos each, they help new photos by about half what their own photos say).</p>"
        f"{curve_svg(metrics.get('curve') or [], target, new['share_applied'] if new['n_applied'] else None)}"
        f"{taught_html}{single_html}{same_html}</div>"
    )


def render_evaluation(
    library: str,
    facets: Sequence[Mapping],
    names: Mapping[str, str],
    thumbnail: Callable[[str], bytes | None],
    example_of: Mapping[str, str],
    extra_sections: Sequence[str] = (),
) -> str:
    """HTML for `facets`: [{facet, version, strategy, forced, bar, passed, metrics, thresholds, holdout}].

    `thumbnail(media_id)` gives a JPEG (or None); `example_of[tag_id]` is a media_id of a training example;
    `extra_sections`: HTML sections of facets of other kinds (multi facets: ml/multi_report.py), after these.
    """
    esc = html.escape
    name = lambda t: names.get(t, t)  # noqa: E731
    sections = []
    for f in facets:
        metrics = f["metrics"]
        strategies = metrics.get("strategies", {})
        rows = "".join(
            f"<tr{' class=chosen' if s == f['strategy'] else ''}><td>{esc(s)}</td>{_bar(r['accuracy'])}"
            f"{_bar(r['balanced_accuracy'])}<td>{r['n_holdout']}</td><td>{r['fit_seconds']:.1f} s</td></tr>"
            for s, r in sorted(strategies.items(), key=lambda kv: -kv[1]["balanced_accuracy"])
        )
        why = (
            "forced by the catalog (facets: section)"
            if metrics.get("forced")
            else "best holdout balanced accuracy (ties: accuracy, then the simpler strategy)"
        )
        backbones = metrics.get("backbones") or {}
        chosen_backbone = metrics.get("backbone", "base")
        backbone_html = f"<p>Backbone: <b>{esc(chosen_backbone)}</b>; no candidates compared (one, not probed).</p>"
        if backbones:
            backbone_rows = "".join(
                f"<tr{' class=chosen' if r == chosen_backbone else ''}><td>{esc(r)}</td><td>{esc(b['model'])}</td>"
                f"{_bar(b['top1'])}{_bar(b['balanced'])}<td>{b['n_holdout']}</td></tr>"
                for r, b in backbones.items()
            )
            backbone_why = (
                "forced by the catalog"
                if metrics.get("backbone_forced")
                else "the best linear probe on the group-aware holdout (a costlier backbone only where it wins by "
                "a point of balanced accuracy)"
                if len(backbones) > 1
                else "the only candidate"
            )
            backbone_html = (
                f"<p>Backbone: <b>{esc(chosen_backbone)}</b>, {backbone_why}. Each candidate's linear probe:</p>"
                "<table><tr><th>backbone</th><th>model</th><th>top-1</th><th>balanced accuracy</th>"
                f"<th>holdout photos</th></tr>{backbone_rows}</table><p>Strategies on the chosen backbone:</p>"
            )
        weights = metrics.get("combiner_weights")
        combiner = (
            "<p>Learned combiner weights (pair features → is this the tag): "
            + ", ".join(f"{esc(k)} {v:+.2f}" for k, v in weights.items())
            + "</p>"
            if weights
            else ""
        )
        verdict = "passes" if f["passed"] else "FAILS"
        per_tag = tag_metrics(f["holdout"], f["thresholds"])
        tag_rows = "".join(
            f"<tr><td>{esc(name(m['tag_id']))}</td><td>{m['n_holdout']}</td>{_bar(m['precision'])}"
            f"{_bar(m['recall'])}{_bar(m['applied_precision'])}{_bar(m['applied_recall'])}"
            f"<td>{m['threshold']:.2f}</td></tr>"
            for m in sorted(per_tag, key=lambda m: (m["recall"] if m["recall"] is not None else 2, m["tag_id"]))
        )
        pairs = confusions(f["holdout"])
        confusion_html = (
            "".join(
                f"<div class=pair><h4>{esc(name(t))} taken for {esc(name(p))} ({n}×)</h4><div class=row>"
                + "".join(
                    _img(thumbnail(r["media_id"]), f"a {name(t)} photo, score {r['score']:.2f}") for r in rows_[:4]
                )
                + _img(thumbnail(example_of.get(p, "")), f"an example of {name(p)}")
                + "</div></div>"
                for t, p, n, rows_ in pairs
            )
            or "<p>No confusions on the holdout.</p>"
        )
        sections.append(
            f"""<section><h2>{esc(f["facet"])}: {esc(f["strategy"])} — group-aware holdout top-1
{metrics.get("accuracy", float("nan")):.3f}, bar {f["bar"]:.2f}: {verdict}</h2>
{new_shoot_html(metrics, name)}
<p>Chosen: {why}. Version {esc(f["version"])}; {metrics.get("n_train", 0)} training and
{metrics.get("n_holdout", 0)} holdout examples.</p>
{backbone_html}
<table><tr><th>strategy</th><th>accuracy</th><th>balanced accuracy</th><th>holdout</th><th>fit</th></tr>{rows}</table>
{combiner}
<h3>Per tag on the holdout (top-1, and applied at the tag's threshold)</h3>
<table><tr><th>tag</th><th>n</th><th>precision</th><th>recall</th><th>applied precision</th><th>applied recall</th>
<th>threshold</th></tr>{tag_rows}</table>
<h3>Confusions that matter most</h3>{confusion_html}</section>"""
        )
    overall = np.mean([f["metrics"].get("accuracy", 0.0) for f in facets]) if facets else float("nan")
    multi = f" (and {len(extra_sections)} multi facets, below)" if extra_sections else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(library)}: evaluation</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 20px; color: #111; max-width: 1100px; }}
h2 {{ font-size: 16px; margin-top: 28px; }} h3 {{ font-size: 14px; }} h4 {{ font-size: 12px; margin: 6px 0; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 2px 10px; text-align: left; border-bottom: 1px solid #eee; }}
tr.chosen {{ font-weight: bold; background: #f0f9ff; }}
.bar {{ display: inline-block; width: 80px; height: 8px; background: #eee; margin-right: 6px; }}
.bar div {{ height: 8px; }} .row {{ display: flex; gap: 8px; }}
figure {{ margin: 0; width: {THUMB}px; font-size: 10px; }} figure img {{ width: {THUMB}px; }}
figure.missing {{ height: {THUMB}px; background: #f3f4f6; }} .pair {{ margin-bottom: 10px; }}
.promise {{ background: #f0fdf4; padding: 4px 12px; border-left: 4px solid #16a34a; }}
.warn {{ color: #b45309; }} .optimistic {{ color: #6b7280; }}
</style></head><body>
<h1>{esc(library)}: evaluation of the heads</h1>
<p>{len(facets)} facets{multi}, mean new-shoot top-1 {overall:.3f}. Everything below is measured on the group-aware
holdout: shoots, sessions and look-alike clusters the head did not train on, the closest the examples get to the
next shoot.</p>
<table><tr><th>facet</th><th>new-shoot top-1</th><th>applied precision</th><th>applied</th><th>to review</th>
<th>same-shoot top-1 of the visual head (optimistic)</th></tr>{summary_rows(facets)}</table>
{"".join(sections)}
{"".join(extra_sections)}
</body></html>
"""


def summary_rows(facets: Sequence[Mapping]) -> str:
    """One line per facet for the top of the report: the new-shoot promise, then the optimistic figure."""
    out = []
    for f in facets:
        new = f["metrics"].get("new_shoot") or {}
        same = (f["metrics"].get("same_shoot") or {}).get("top1")
        cells = (
            [
                _top1(new).split(";")[0],
                _interval(new["applied_precision"], new["applied_precision_low"], new["applied_precision_high"]),
                f"{new['share_applied']:.1%}",
                f"{new['share_review']:.1%}",
            ]
            if new
            else ["–"] * 4
        )
        cells.append("–" if same is None else f"{same:.3f}")
        out.append(f"<tr><td>{html.escape(f['facet'])}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(out)
