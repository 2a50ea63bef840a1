"""Fine-tuning the backbone on a library's examples: the last blocks and a classifier, with augmentation, under
a time budget.

Why: frozen ImageNet features stop at ~80 % on fine-grained produce (benchmarks/accuracy.py); adapting the
last blocks to the catalog is what moves past that. On CPU it is affordable for small catalogs (a nightly
job), on a GPU it is fast. Only the last `train_blocks` MBConv blocks and the head convolution learn (lr
`lr_backbone`), plus a linear classifier (lr `lr_head`) that is thrown away afterwards: what is kept is the
feature extractor, saved as a new backbone (`efficientnet-lite0-ft:<weights file>`) whose model id names the
weights, so its embeddings are cached apart from the original's.

Augmentation: random resized crops and colour jitter, no flips (a mirrored label reads wrong).
The budget is checked before every batch: training stops when the next batch would overrun it. The learning
rate follows a one-cycle shape (warm-up, cosine down) over whichever ends first, the epochs or the budget,
so a run cut short by the budget has still annealed.

A library labels a photo in several facets (product, colourway, shot type): `labels` may be one list of tags
or {facet: tags, None where the photo has no tag in that facet}; each facet gets its own classifier and the
losses of the facets a photo is labelled in are summed, so one backbone learns every facet at once.

Pure ML code: no Dagster, no Ray.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ml.backbones import resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    budget_s: float = 1800.0  # wall-clock limit of the training loop
    epochs: int = 10
    train_blocks: int = 3  # last MBConv blocks that learn (plus the head convolution)
    lr_backbone: float = 2e-4
    lr_head: float = 2e-3
    batch_size: int = 0  # 0 = by device: 16 on CPU, 64 on CUDA
    size: int = 224
    label_smoothing: float = 0.1
    seed: int = 0
    device: str = "auto"
    augment: str = "light"  # a key of AUGMENT


@dataclass
class FinetuneResult:
    weights_path: str | None
    epochs_done: float
    seconds: float
    stopped_by: str  # "epochs" or "budget"
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    images_per_s: float = 0.0


# name -> (smallest crop area, colour jitter): "light" keeps 60-100 % of the photo, jitter +-20 %; "strong" cuts
# down to 20 % (a product that fills a fifth of the frame becomes a close-up, as the views candidate's crops
# do) with jitter +-35 %
AUGMENT: dict[str, tuple[float, float]] = {"light": (0.6, 0.2), "strong": (0.2, 0.35)}


def _augment(image: Image.Image, size: int, rng: np.random.Generator, strength: str = "light") -> np.ndarray:
    """A random resized crop (aspect 3/4-4/3) and brightness/contrast/saturation jitter, as AUGMENT[strength]."""
    min_area, jitter = AUGMENT[strength]
    lo, hi = 1 - jitter, 1 + jitter
    w, h = image.size
    area = w * h * rng.uniform(min_area, 1.0)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw, ch = min(w, int(round(np.sqrt(area * aspect)))), min(h, int(round(np.sqrt(area / aspect))))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    crop = image.crop((x, y, x + cw, y + ch)).resize((size, size), Image.BILINEAR)
    pixels = np.asarray(crop, dtype=np.float32)
    pixels = (pixels - pixels.mean()) * rng.uniform(lo, hi) + pixels.mean() * rng.uniform(lo, hi)
    grey = pixels.mean(axis=2, keepdims=True)
    pixels = grey + (pixels - grey) * rng.uniform(lo, hi)
    return np.clip(pixels, 0, 255).transpose(2, 0, 1)


def finetune(
    images: Sequence[Image.Image],
    labels: Sequence[str] | Mapping[str, Sequence[str | None]],
    out_dir: Path,
    config: FinetuneConfig = FinetuneConfig(),
    feature_model=None,
    normalise: Callable[[np.ndarray], np.ndarray] | None = None,
    dim: int = 1280,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> FinetuneResult:
    """Train on (images, labels) and save the feature extractor's weights under `out_dir`.

    `labels`: one tag per image, or {facet: one tag or None per image} (a classifier per facet).
    `feature_model` (a torch module mapping (n, 3, H, W) to (n, dim)) defaults to EfficientNet-Lite0 with
    only its last blocks trainable; tests pass a tiny one. `normalise` maps 0..255 pixels to the model's
    input range (default: the Lite weights' (x - 127) / 128). `on_epoch(epoch, mean loss, seconds so far)`
    is called after every epoch (progress for the caller's log).
    """
    import torch

    tasks = _label_codes(labels, len(images))
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if feature_model is None:
        feature_model = trainable_model(config.train_blocks)
    normalise = normalise or (lambda x: (x - 127.0) / 128.0)
    y = torch.tensor(np.stack([codes for _, codes in tasks.values()], axis=1))  # (n, facets), -1: no tag
    head = torch.nn.ModuleList([torch.nn.Linear(dim, len(classes)) for classes, _ in tasks.values()])
    feature_model.to(device).train()
    for module in feature_model.modules():  # frozen batch norms keep their ImageNet statistics
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not any(
            p.requires_grad for p in module.parameters()
        ):
            module.eval()
    head.to(device)
    trainable = [p for p in feature_model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [{"params": trainable, "lr": config.lr_backbone}, {"params": head.parameters(), "lr": config.lr_head}],
        weight_decay=1e-4,
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing, ignore_index=-1, reduction="sum")

    def batch_loss(x, targets):
        features = feature_model(x)
        total = sum(loss_fn(linear(features).float(), targets[:, k]) for k, linear in enumerate(head))
        return total / max(1, int((targets >= 0).sum()))  # mean over the (photo, facet) labels of the batch

    batch_size = config.batch_size or (64 if device == "cuda" else 16)
    steps_per_epoch = max(1, int(np.ceil(len(images) / batch_size)))
    total_steps = steps_per_epoch * config.epochs
    peaks = [config.lr_backbone, config.lr_head]
    steps = 0
    rgb = [shrink(image, round(config.size * 8 / 7)) for image in images]  # crops are taken from ~256 px
    started, seen, losses, stopped_by = time.perf_counter(), 0, [], "epochs"
    batch_seconds = 0.0
    epoch = 0
    for epoch in range(config.epochs):
        order = rng.permutation(len(rgb))
        epoch_losses = []
        for start in range(0, len(order), batch_size):
            elapsed = time.perf_counter() - started
            if elapsed + batch_seconds > config.budget_s:
                stopped_by = "budget"
                break
            t = time.perf_counter()
            # the schedule follows whichever ends first, the epochs or the budget: a run the budget stops
            # has annealed by then instead of stopping at a high learning rate
            progress = max(steps / total_steps, elapsed / config.budget_s if config.budget_s > 0 else 1.0)
            for group, peak in zip(optimiser.param_groups, peaks, strict=True):
                group["lr"] = peak * one_cycle(progress)
            idx = order[start : start + batch_size]
            batch = np.stack([_augment(rgb[i], config.size, rng, config.augment) for i in idx])
            x = torch.from_numpy(normalise(batch).astype(np.float32)).to(device)
            with torch.autocast(device, enabled=device == "cuda"):
                loss = batch_loss(x, y[idx].to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
            epoch_losses.append(float(loss.detach()))
            seen += len(idx)
            batch_seconds = time.perf_counter() - t
        if epoch_losses:
            losses.append(round(float(np.mean(epoch_losses)), 4))
            log.info("fine-tune epoch %d: loss %.4f (%.0f s)", epoch + 1, losses[-1], time.perf_counter() - started)
            if on_epoch is not None:
                on_epoch(epoch + 1, losses[-1], time.perf_counter() - started)
        if stopped_by == "budget":
            break
    seconds = time.perf_counter() - started
    feature_model.eval().cpu()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "weights.tmp"
    torch.save(feature_model.state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    path = out_dir / f"efficientnet-lite0-ft-{digest}.pt"
    tmp.replace(path)
    done = seen / len(images)
    return FinetuneResult(str(path), round(done, 2), round(seconds, 1), stopped_by, losses, round(seen / seconds, 1))


def one_cycle(progress: float, warmup: float = 0.1) -> float:
    """The learning rate's share of its peak at `progress` (0..1): a linear warm-up from 1/25 of the peak over
    the first `warmup`, then a cosine down to nearly 0 (OneCycleLR's shape, driven by progress not steps)."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return 0.04 + 0.96 * progress / warmup
    return 1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi * (progress - warmup) / (1 - warmup)))


def shrink(image: Image.Image, short: int) -> Image.Image:
    """RGB with the short side at most `short` px: every augmented crop is cut from this once-resized copy."""
    image = image.convert("RGB")
    scale = short / min(image.size)
    if scale >= 1:
        return image
    return image.resize((max(short, round(image.width * scale)), max(short, round(image.height * scale))))


def _label_codes(
    labels: Sequence[str] | Mapping[str, Sequence[str | None]], n: int
) -> dict[str, tuple[list[str], np.ndarray]]:
    """{facet: (classes, code per image, -1 where unlabelled)}; a plain list of tags is one facet."""
    per_facet = labels if isinstance(labels, Mapping) else {"": list(labels)}
    out = {}
    for facet, tags in per_facet.items():
        if len(tags) != n:
            raise ValueError(f"{len(tags)} labels for facet {facet!r} but {n} images")
        classes = sorted({t for t in tags if t is not None})
        if len(classes) < 2:
            continue  # nothing to tell apart in this facet
        index = {c: k for k, c in enumerate(classes)}
        out[facet] = (classes, np.array([index[t] if t is not None else -1 for t in tags], dtype=np.int64))
    if not out:
        raise ValueError("fine-tuning needs a facet with at least two tags among the images")
    return out


def trainable_model(train_blocks: int, variant: str = "efficientnet-lite0"):
    """The feature model of `variant` (the default backbone unless a benchmark asks for a larger one) with
    everything frozen but the last blocks and the head conv."""
    from ml.backbones.efficientnet import build_torch_feature_model

    model = build_torch_feature_model(variant=variant)
    for p in model.parameters():
        p.requires_grad = False
    net = model.net
    for block in list(net._blocks)[-train_blocks:] if train_blocks > 0 else []:
        for p in block.parameters():
            p.requires_grad = True
    for module in (net._conv_head, net._bn1):
        for p in module.parameters():
            p.requires_grad = True
    return model
