"""The evaluation report of a library's heads: one self-contained HTML page a person reads before trusting them.

Per facet: the backbone and strategy chosen and why (each backbone's best head, every strategy's holdout
accuracy, the bar, what the combiner learnt to weigh from printed text and keypoints), per-tag precision and
recall on the holdout split, and the confusions that matter most (the tag pairs mixed up most often) with
thumbnails of the confused photos next to an example of the tag they were taken for.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

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


def render_evaluation(
    library: str,
    facets: Sequence[Mapping],
    names: Mapping[str, str],
    thumbnail: Callable[[str], bytes | None],
    example_of: Mapping[str, str],
) -> str:
    """HTML for `facets`: [{facet, version, strategy, forced, bar, passed, metrics, thresholds, holdout}].

    `thumbnail(media_id)` gives a JPEG (or None); `example_of[tag_id]` is a media_id of a training example.
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
        backbone_html = ""
        if backbones:
            backbone_rows = "".join(
                f"<tr{' class=chosen' if r == chosen_backbone else ''}><td>{esc(r)}</td><td>{esc(b['model'])}</td>"
                f"<td>{esc(b['chosen'])}</td>{_bar(b['accuracy'])}{_bar(b['balanced_accuracy'])}</tr>"
                for r, b in backbones.items()
            )
            backbone_why = (
                "forced by the catalog"
                if len(backbones) == 1 and chosen_backbone != "base"
                else "the better head on the holdout (a tie keeps the base backbone)"
                if len(backbones) > 1
                else "the only one (fine-tuning is off)"
            )
            backbone_html = (
                f"<p>Backbone: <b>{esc(chosen_backbone)}</b>, {backbone_why}. Each backbone's best head:</p>"
                "<table><tr><th>backbone</th><th>model</th><th>strategy</th><th>accuracy</th>"
                f"<th>balanced accuracy</th></tr>{backbone_rows}</table><p>Strategies on the chosen backbone:</p>"
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
            f"""<section><h2>{esc(f["facet"])}: {esc(f["strategy"])} — holdout accuracy
{metrics.get("accuracy", float("nan")):.3f}, bar {f["bar"]:.2f}: {verdict}</h2>
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
</style></head><body>
<h1>{esc(library)}: evaluation of the heads</h1>
<p>{len(facets)} facets, mean holdout accuracy {overall:.3f}. Everything below is measured on the holdout split
(examples the head did not train on).</p>
{"".join(sections)}
</body></html>
"""
