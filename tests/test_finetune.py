"""Fine-tuning: learns under a time budget, keeps only the last blocks trainable, saves a new backbone."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from ml.finetune import FinetuneConfig, finetune, trainable_model


def shapes(n: int, seed: int = 0) -> tuple[list[Image.Image], list[str]]:
    """Red squares and green discs at random places on grey: two tags a tiny network can learn."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        image = Image.new("RGB", (64, 64), (128, 128, 128))
        x, y = rng.integers(4, 36, 2)
        draw = ImageDraw.Draw(image)
        if i % 2:
            draw.rectangle((x, y, x + 24, y + 24), fill=(220, 30, 30))
        else:
            draw.ellipse((x, y, x + 24, y + 24), fill=(30, 200, 30))
        images.append(image)
        labels.append("square" if i % 2 else "disc")
    return images, labels


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)  # its initial weights never depend on which tests ran before (they share torch's RNG)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU()
        )

    def forward(self, x):
        return self.body(x).mean(dim=(2, 3))


def test_tiny_model_learns_and_is_saved(tmp_path):
    images, labels = shapes(32)
    config = FinetuneConfig(epochs=12, size=48, batch_size=8, lr_backbone=3e-2, lr_head=3e-2, budget_s=120)
    result = finetune(images, labels, tmp_path, config, feature_model=Tiny(), normalise=lambda x: x / 255.0, dim=16)
    assert result.stopped_by == "epochs" and result.epochs_done == pytest.approx(12.0)
    assert result.losses[-1] < result.losses[0] * 0.7, result.losses
    saved = torch.load(result.weights_path, weights_only=True)
    assert set(saved) == set(Tiny().state_dict())


def test_facets_train_one_backbone_together(tmp_path):
    images, shape = shapes(32)
    # a second facet (the colour) known on half the photos only: unlabelled photos add no loss there
    colour = [("red" if s == "square" else "green") if i % 4 < 2 else None for i, s in enumerate(shape)]
    config = FinetuneConfig(epochs=10, size=48, batch_size=8, lr_backbone=3e-2, lr_head=3e-2, budget_s=120)
    epochs = []
    result = finetune(
        images,
        {"shape": shape, "colour": colour},
        tmp_path,
        config,
        feature_model=Tiny(),
        normalise=lambda x: x / 255.0,
        dim=16,
        on_epoch=lambda epoch, loss, seconds: epochs.append((epoch, loss)),
    )
    assert [e for e, _ in epochs] == list(range(1, 11)) and [loss for _, loss in epochs] == result.losses
    assert result.losses[-1] < result.losses[0] * 0.7, result.losses


def test_labels_must_tell_something_apart(tmp_path):
    images, _ = shapes(4)
    with pytest.raises(ValueError, match="at least two tags"):
        finetune(images, {"shape": ["disc"] * 4}, tmp_path, feature_model=Tiny(), dim=16)
    with pytest.raises(ValueError, match="3 labels"):
        finetune(images, ["disc", "square", "disc"], tmp_path, feature_model=Tiny(), dim=16)


def test_budget_stops_training(tmp_path):
    images, labels = shapes(8)
    config = FinetuneConfig(epochs=50, size=32, batch_size=4, budget_s=0.0)
    result = finetune(images, labels, tmp_path, config, feature_model=Tiny(), normalise=lambda x: x / 255.0, dim=16)
    assert result.stopped_by == "budget" and result.epochs_done == 0.0


def test_only_the_last_blocks_of_the_default_backbone_learn():
    model = trainable_model(train_blocks=2)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith(("net._blocks.14", "net._blocks.15", "net._conv_head", "net._bn1")) for n in trainable
    )
    assert not any(p.requires_grad for p in model.net._conv_stem.parameters())


def test_finetuned_weights_load_as_a_backbone_of_their_own(tmp_path, model_root):
    from ml.backbones import BackboneSpec

    images, labels = shapes(8)
    config = FinetuneConfig(epochs=1, size=64, batch_size=4, train_blocks=1)
    result = finetune(images, labels, tmp_path / "ft", config)
    tuned = BackboneSpec(name=f"efficientnet-lite0-ft:{result.weights_path}", cache_dir=str(tmp_path / "cache")).build()
    base = BackboneSpec(cache_dir=str(model_root)).build()
    assert tuned.model_id.startswith("efficientnet-lite0-ft@") and tuned.model_id != base.model_id
    a, b = tuned.embed(images[:2]), base.embed(images[:2])
    assert a.shape == b.shape == (2, 1280) and not np.allclose(a, b, atol=1e-4)
    from ml.backbones import BackboneUnavailable

    with pytest.raises(BackboneUnavailable, match="weights file"):
        BackboneSpec(name="efficientnet-lite0-ft:/no/such.pt").build()


def test_learning_rate_anneals_by_the_budget_or_the_epochs():
    from ml.finetune import one_cycle

    assert one_cycle(0.0) == pytest.approx(0.04) and one_cycle(0.1) == pytest.approx(1.0)
    assert one_cycle(0.55) == pytest.approx(0.5, abs=0.01) and one_cycle(1.0) < 0.01 and one_cycle(2.0) < 0.01
    values = [one_cycle(p / 100) for p in range(10, 101)]
    assert values == sorted(values, reverse=True)
