"""The project's own feature network for FID/KID/IS on MNIST-like data: a small CNN trained on the data set's own
training images (MNIST's digits, Fashion-MNIST's clothes).

Inception weights cannot be downloaded offline; this classifier is trained here, cached on disk keyed by a hash of
the exact training images, and reports its held-out accuracy. Its 128-d penultimate layer is the FID/KID feature
space; its softmax gives the Inception-style score and the class histogram (mode coverage).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from gan_lightning.data.batches import to_model_range
from gan_lightning.errors import first_line


class DigitClassifier(nn.Module):
    """The PyTorch MNIST example's CNN (99 % on MNIST after one epoch) on images in [-1, 1]."""

    num_features = 128  # torchmetrics reads this instead of probing with a 299x299 dummy image

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 12 * 12, self.num_features), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(self.num_features, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def data_key(images: torch.Tensor) -> str:
    """A short hash of the exact uint8 training images: a classifier is reused only for the data it learnt."""
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(os.environ.get("GAN_LIGHTNING_CACHE", Path.home() / ".cache" / "gan_lightning")) / "classifiers"


def train_classifier(train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
                     test_labels: torch.Tensor, epochs: int = 2, batch_size: int = 128, seed: int = 0,
                     device: str | torch.device = "cpu", log=None) -> tuple[DigitClassifier, float]:
    """Adam on uint8 (N, 1, 28, 28) images; returns the model (eval mode) and its accuracy on the held-out set.
    ``log`` (when given) hears the expected duration, measured on the first batches."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier(train_images.shape[1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.enable_grad():  # callers may be measuring under no_grad
        _fit(model, optimizer, train_images, train_labels, epochs, batch_size, generator, device, log)
    return model.eval(), accuracy(model, test_images, test_labels, device)


def _fit(model, optimizer, train_images, train_labels, epochs, batch_size, generator, device, log=None) -> None:
    batches = epochs * math.ceil(len(train_images) / batch_size)
    started, timed = time.perf_counter(), 20
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_images), generator=generator)
        for step, start in enumerate(range(0, len(order), batch_size)):
            if log is not None and epoch == 0 and step == timed and batches > timed:
                seconds = (time.perf_counter() - started) / timed * batches
                log(f"Feature classifier: about {seconds:.0f} s for {batches} batches (measured on the first {timed})")
            index = order[start : start + batch_size]
            x, y = to_model_range(train_images[index]).to(device), train_labels[index].to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


@torch.no_grad()
def accuracy(model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor, device="cpu") -> float:
    model.eval()
    correct = 0
    for start in range(0, len(images), 1000):
        logits = model(to_model_range(images[start : start + 1000]).to(device))
        correct += (logits.argmax(1).cpu() == labels[start : start + 1000]).sum().item()
    return correct / len(images)


def load_or_train(train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor | None = None,
                  test_labels: torch.Tensor | None = None, cache_dir: str | Path | None = None, epochs: int = 2,
                  log=print) -> tuple[DigitClassifier, dict]:
    """The cached classifier for these exact images, or a new one trained now (and cached) with its accuracy.

    Without a test split the last 10 % of the training images are held out.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key = data_key(train_images)
    path = cache_dir / f"digits-{key}.pt"
    if path.is_file():
        try:  # tensors and plain data only: a file planted in the cache must not run code
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = DigitClassifier(saved["in_channels"])
            model.load_state_dict(saved["state_dict"])
            return model.eval(), saved["info"]
        except Exception as err:
            log(f"Ignoring the cached classifier {path}, which cannot be loaded safely ({first_line(err)}); "
                "training a new one")
    if test_images is None:
        split = int(len(train_images) * 0.9)
        train_images, test_images = train_images[:split], train_images[split:]
        train_labels, test_labels = train_labels[:split], train_labels[split:]
    log(f"Training the feature classifier for FID/KID on {len(train_images)} images ({epochs} epochs): once for "
        f"these images, cached in {path}")
    model, acc = train_classifier(train_images, train_labels, test_images, test_labels, epochs=epochs, log=log)
    info = {"data_key": key, "held_out_accuracy": acc, "train_images": len(train_images),
            "held_out_images": len(test_images), "epochs": epochs}
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "in_channels": train_images.shape[1], "info": info}, tmp)
    os.replace(tmp, path)
    (cache_dir / f"digits-{key}.json").write_text(json.dumps(info, indent=2))
    log(f"Feature classifier held-out accuracy: {acc:.4f}")
    return model, info
