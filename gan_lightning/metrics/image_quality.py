"""FID, KID, Inception-style score, precision/recall/density/coverage, mode coverage and KL(p(y) || uniform) in the
feature space of DigitClassifier."""
from __future__ import annotations

import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from gan_lightning.metrics.classifier import DigitClassifier
from gan_lightning.metrics.histogram import kl_to_uniform
from gan_lightning.metrics.prdc import prdc


class _Precomputed(torch.nn.Module):
    """torchmetrics calls its feature module on what ``update`` receives; we pass features computed once."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@torch.no_grad()
def image_quality(classifier: DigitClassifier, real: torch.Tensor, fake: torch.Tensor, num_classes: int = 10,
                  batch_size: int = 500, min_share: float = 0.02, min_samples: int | None = None,
                  requested_labels: torch.Tensor | None = None) -> dict[str, float]:
    """Compare ``fake`` with ``real`` images (both (N, C, H, W) in [-1, 1]).

    fid/kid: torchmetrics' FID and KID (mean over subsets of up to 1,000) on the classifier's 128-d features;
    inception_score: exp(E KL(p(y|x) || p(y))) from its softmax (torchmetrics, 10 splits); modes: of the
    ``num_classes`` classes, those that receive at least ``min_share`` of the samples (argmax), or at least
    ``min_samples`` samples when that is given (Stacked MNIST's rule: 1); kl_uniform: KL(p(y) || uniform) of that
    histogram; label_accuracy (with ``requested_labels``, the classes a conditional G was asked for): the share of fake
    images classified as requested; precision, recall (k = 3), density and coverage (k = 5): ``prdc`` on the
    same features. Each image goes through the classifier once.
    """
    classifier = classifier.eval()
    device = next(classifier.parameters()).device
    features = _Precomputed(classifier.num_features)
    # Measured by one process (rank zero): no syncing of metric states across DDP ranks.
    local = {"sync_on_compute": False}
    fid = FrechetInceptionDistance(feature=features, **local).to(device)
    kid = KernelInceptionDistance(feature=features, subset_size=min(1000, len(real), len(fake)), **local).to(device)
    inception = InceptionScore(feature=_Precomputed(num_classes), splits=10, **local).to(device)
    counts = torch.zeros(num_classes, dtype=torch.long)
    predicted = []
    feature_sets = {True: [], False: []}  # kept for prdc's nearest neighbours
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            feats = classifier.features(images[start : start + batch_size].to(device))
            fid.update(feats.double(), real=is_real)  # FID's covariance square root wants float64
            kid.update(feats, real=is_real)
            feature_sets[is_real].append(feats)
            if not is_real:
                logits = classifier.head(feats)
                inception.update(logits.double())
                predicted.append(logits.argmax(1).cpu())
                counts += torch.bincount(predicted[-1], minlength=num_classes)
    share = counts.double() / counts.sum()
    kid_mean, _ = kid.compute()
    is_mean, _ = inception.compute()
    scores = {
        "fid": float(fid.compute()),
        "kid": float(kid_mean),
        "inception_score": float(is_mean),
        "modes": int((counts >= min_samples).sum() if min_samples is not None else (share >= min_share).sum()),
        "kl_uniform": kl_to_uniform(counts),
        "max_class_share": float(share.max()),
        **prdc(torch.cat(feature_sets[True]), torch.cat(feature_sets[False])),
    }
    if requested_labels is not None:
        scores["label_accuracy"] = float((torch.cat(predicted) == requested_labels.cpu()).double().mean())
    return scores


@torch.no_grad()
def inception_fid(real: torch.Tensor, fake: torch.Tensor, batch_size: int = 200,
                  device: str | torch.device = "cpu") -> float:
    """The standard FID (torchmetrics' InceptionV3, 2048-d pool features) for images in [-1, 1].

    Needs ``pip install torch-fidelity`` and the Inception weights, which torch-fidelity downloads on first use:
    only for machines with a network. Grayscale images are repeated to 3 channels; torchmetrics resizes to 299.
    """
    fid = FrechetInceptionDistance(feature=2048, normalize=True, sync_on_compute=False).to(device)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device).float().add(1).div(2).clamp(0, 1)
            fid.update(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x, real=is_real)
    return float(fid.compute())


def uniform_noise_like(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The "worst generator" reference: uniform noise in [-1, 1] with the images' shape."""
    return torch.rand(images.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


__all__ = ["image_quality", "inception_fid", "uniform_noise_like"]
