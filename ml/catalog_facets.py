"""A catalog's `facets:` section: what may be forced per facet (strategy, backbone, mode, target precision), checked
against the tags' facets, every problem listed with its line (ml/catalog.py collects them with the tags')."""

from __future__ import annotations

import yaml

# what a catalog's `facets:` section may force per facet: `strategy`, one of the strategies heads compare, and
# `backbone`: the library's own backbone ("base"), the same on the whole frame and centre crops ("views"), the
# one fine-tuned on its examples ("finetuned"), or that one on the same views ("finetuned-views")
BACKBONE_CHOICES = ("base", "colour", "views", "finetuned", "finetuned-views", "large-views", "ensemble")
VISUAL_STRATEGIES = ("logreg", "lightgbm", "prototype")
# combined heads are named "<visual>+<channels in sorted order>" (ml/heads.py): ocr = catalog identifiers,
# text = learnt from the examples' print
EVIDENCE_COMBINATIONS = (
    "ocr",
    "keypoints",
    "keypoints+ocr",
    "text",
    "ocr+text",
    "keypoints+text",
    "keypoints+ocr+text",
)
FORCEABLE = VISUAL_STRATEGIES + tuple(
    f"{s}+{evidence}" for evidence in EVIDENCE_COMBINATIONS for s in VISUAL_STRATEGIES
)


# the precision applied tags of a facet must keep on new photos when the catalog does not say: a sponsor given a
# competitor's photo is the costly error, so sponsor tags are applied only where the holdout says 95 %
PRECISION_BY_FACET = {"sponsor": 0.95}
# `single`: one answer per photo (colourway, shot type); `multi`: any number of the facet's tags, or none of them
# (sponsors, products in event photos, inventory), found where they are (ml/region_head.py)
MODES = ("single", "multi")
MODE_BY_FACET = {"sponsor": "multi"}
FACET_SETTINGS = ("mode", "strategy", "backbone", "target_precision")


def facet_settings(node, facets: set[str], source: str, problems: list[str]) -> dict:
    """The YAML `facets:` section: {facet: {mode: single/multi, strategy: name, backbone: one of BACKBONE_CHOICES,
    target_precision: 0.5..0.999}}, checked against the tags' facets."""
    if node is None:
        return {}
    where = f"{source}:{node.start_mark.line + 1}"
    value = construct(node)
    if not isinstance(value, dict):
        problems.append(f"{where}: 'facets:' must map facet names to settings")
        return {}
    out = {}
    for facet, settings in value.items():
        if facet not in facets:
            problems.append(f"{where}: facets: {facet!r} is not the facet of any tag")
            continue
        if not isinstance(settings, dict) or set(settings) - set(FACET_SETTINGS):
            problems.append(f"{where}: facets: {facet}: only {', '.join(map(repr, FACET_SETTINGS))} can be set")
            continue
        mode = settings.get("mode")
        if mode is not None and mode not in MODES:
            problems.append(f"{where}: facets: {facet}: mode {mode!r} is not one of {list(MODES)}")
            continue
        precision = settings.get("target_precision")
        if precision is not None and (
            isinstance(precision, bool) or not isinstance(precision, int | float) or not 0.5 <= precision <= 0.999
        ):
            problems.append(f"{where}: facets: {facet}: target_precision must be a number from 0.5 to 0.999")
            continue
        strategy = settings.get("strategy")
        if strategy is not None and strategy not in FORCEABLE:
            problems.append(f"{where}: facets: {facet}: strategy {strategy!r} is not one of {list(FORCEABLE)}")
            continue
        if (mode or MODE_BY_FACET.get(facet)) == "multi" and ({"strategy", "backbone"} & set(settings)):
            problems.append(f"{where}: facets: {facet}: a multi facet has no strategy or backbone to force")
            continue
        backbone = settings.get("backbone")
        if backbone is not None and backbone not in BACKBONE_CHOICES:
            problems.append(f"{where}: facets: {facet}: backbone {backbone!r} is not one of {list(BACKBONE_CHOICES)}")
            continue
        out[str(facet)] = dict(settings)
    return out


def construct(node):
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
