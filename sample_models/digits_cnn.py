"""A small mobile-net-style CNN *trained* on scikit-learn's digits (see :mod:`sample_models.digits`).

Stem conv + BN + ReLU, then three depthwise-separable blocks (depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN +
hardswish; the last two depthwise convs have stride 2), global average pool and a 10-way linear head:
~16k parameters on a 1x1x8x8 input. Unlike the other samples its weights are not random: they come from
``digits_cnn.npz`` beside this file, which :func:`train` wrote (reproduce it with
``python -m sample_models.digits_cnn``: seeded, one thread, ~10 s on one core). The file also holds a few
test-split images used as example inputs, so :func:`build` needs neither scikit-learn nor training;
``digits_cnn.json`` records the held-out accuracy measured when it was written (``edgeport samples`` shows it).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

WEIGHTS = Path(__file__).with_name("digits_cnn.npz")
FACTS = WEIGHTS.with_suffix(".json")
NUM_CLASSES = 10
EXAMPLES = 8  # test-split images stored with the weights as example inputs
TRAIN_SEED = 0
EPOCHS = 30
BATCH = 32


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act())


class DigitsCNN(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(1, widths[0], 3)]
        for k, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            stride = 1 if k == 0 else 2
            layers.append(_conv_bn(cin, cin, 3, stride, groups=cin))  # depthwise
            layers.append(_conv_bn(cin, cout, 1, act=nn.Hardswish))  # pointwise
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(image))
        return self.classifier(torch.flatten(x, 1))


def load_trained(path: Path = WEIGHTS) -> tuple[DigitsCNN, np.ndarray]:
    """``(model in eval mode with the trained weights, example images (EXAMPLES, 1, 8, 8))``."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    examples = arrays.pop("__examples__")
    model = DigitsCNN()
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}, strict=True)
    return model.eval(), examples


def build(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The trained model; ``seed`` picks which stored test image is the example input (weights are fixed)."""
    model, examples = load_trained()
    return model, (torch.from_numpy(examples[int(seed) % len(examples)][None].copy()),)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # the same reduction order on every run, whatever the machine's core count
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _shifted(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image moved by -1..1 pixels in each direction (zero fill at the normalised background value)."""
    background = float(x.min())
    padded = nn.functional.pad(x, (1, 1, 1, 1), value=background)
    dy = torch.randint(0, 3, (x.shape[0],), generator=gen)
    dx = torch.randint(0, 3, (x.shape[0],), generator=gen)
    return torch.stack([padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8] for i in range(x.shape[0])])


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(images)).argmax(1).numpy()
    return float(np.mean(pred == labels))


def train(epochs: int = EPOCHS, seed: int = TRAIN_SEED) -> tuple[DigitsCNN, dict[str, Any]]:
    """Train from scratch on the train split: seeded, one thread, deterministic. Returns (model, facts)."""
    from sample_models import digits

    x_train, y_train = digits.load("train")
    x_test, y_test = digits.load("test")
    t0 = time.perf_counter()
    with _one_thread():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = DigitsCNN()
        opt = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=1e-4)
        steps = epochs * ((len(y_train) + BATCH - 1) // BATCH)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(yt), generator=gen)
            for i in range(0, len(order), BATCH):
                idx = order[i:i + BATCH]
                loss = nn.functional.cross_entropy(model(_shifted(xt[idx], gen)), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        facts = {"test_accuracy": accuracy(model, x_test, y_test), "train_accuracy": accuracy(model, x_train, y_train),
                 "epochs": epochs, "seed": seed, "train_seconds": time.perf_counter() - t0}
    return model, facts


def save(model: DigitsCNN, facts: dict[str, Any], path: Path = WEIGHTS) -> None:
    """Write the weights (+ example images) to ``path`` and the training facts beside it (``.json``)."""
    import json

    from sample_models import digits

    x_test, _ = digits.load("test")
    arrays: dict[str, np.ndarray] = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    arrays["__examples__"] = x_test[:EXAMPLES]
    np.savez_compressed(path, **arrays)
    kept = {k: facts[k] for k in ("test_accuracy", "train_accuracy", "epochs", "seed")}
    kept["test_samples"] = int(len(x_test))
    path.with_suffix(".json").write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    model, facts = train()
    save(model, facts)
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes): held-out accuracy {facts['test_accuracy']:.4f} "
          f"(train {facts['train_accuracy']:.4f}), {facts['train_seconds']:.1f} s")


if __name__ == "__main__":
    main()
