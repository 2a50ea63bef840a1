"""The evaluation report's section for a multi facet (ml/region_head.py): what its strategies read on the
group-aware folds, per tag applied precision and recall at the calibrated threshold, the `none` photos given a
tag anyway, and the example photos where the applied set was wrong."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping

from ml.report import _bar, _img, _interval


def tag_metric_rows(metrics: Mapping) -> list[dict]:
    """`tag_metrics` rows of a multi facet's head: applied figures only (there is no top-1)."""
    return [
        {
            "tag_id": tag,
            "n_holdout": m["n"],
            "precision": m["precision"],
            "recall": m["recall"],
            "applied_precision": m["precision"],
            "applied_recall": m["recall"],
            "threshold": m["threshold"],
        }
        for tag, m in sorted(metrics.get("per_tag", {}).items())
    ]


def multi_section(f: Mapping, name: Callable[[str], str], thumbnail: Callable[[str], bytes | None]) -> str:
    """HTML of one multi facet: f = {facet, version, strategy, bar, passed, metrics, holdout}."""
    esc = html.escape
    m = f["metrics"]
    strategies = "".join(
        f"<tr{' class=chosen' if s == f['strategy'] else ''}><td>{esc(s)}</td>{_bar(r['accuracy'])}"
        f"{_bar(r['balanced_accuracy'])}<td>{_num(r.get('applied_precision'))}</td>"
        f"<td>{_num(r.get('applied_recall'))}</td><td>{r['fit_seconds']:.1f} s</td></tr>"
        for s, r in m.get("strategies", {}).items()
    )
    tags = "".join(
        f"<tr><td>{esc(name(r['tag_id']))}</td><td>{r['n_holdout']}</td>{_bar(r['applied_precision'])}"
        f"{_bar(r['applied_recall'])}<td>{r['threshold']:.3f}</td></tr>"
        for r in tag_metric_rows(m)
    )
    wrong = [h for h in f["holdout"] if sorted(h["applied"]) != sorted(h["true"])][:12]
    figures = "".join(
        _img(
            thumbnail(h["media_id"]),
            f"shows {', '.join(map(name, h['true'])) or 'none'}; applied "
            f"{', '.join(map(name, h['applied'])) or 'none'}",
        )
        for h in wrong
    )
    none_rate = m.get("none_false_positive_rate")
    verdict = "passes" if f["passed"] else "FAILS"
    precision = _interval(m.get("applied_precision"), m["applied_precision_low"], m["applied_precision_high"])
    return f"""<section><h2>{esc(f["facet"])} (multi): {esc(f["strategy"])} — exact-set accuracy
{m["accuracy"]:.3f} on {m["folds"]} group-aware folds, bar {f["bar"]:.2f}: {verdict}</h2>
<p class="promise">On a new shoot: applied precision {precision} (target {m["target_precision"]:.2f}), applied
recall {_num(m.get("applied_recall"))}; photos labelled <b>none</b> given a tag anyway:
{_num(none_rate)} of {m["none_photos"]}. Every example photo was scored by a head that never saw its group.</p>
<table><tr><th>strategy</th><th>exact-set accuracy</th><th>mean tag recall</th><th>applied precision</th>
<th>applied recall</th><th>fit</th></tr>{strategies}</table>
<h3>Per tag (applied at the tag's threshold)</h3>
<table><tr><th>tag</th><th>photos</th><th>applied precision</th><th>applied recall</th><th>threshold</th></tr>
{tags}</table><h3>Photos whose applied set was wrong</h3>
<div class="row">{figures or "<p>None: every example photo got exactly its tags.</p>"}</div></section>"""


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
