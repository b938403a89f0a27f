"""FID, KID, Inception-style score, mode coverage and KL(p(y) || uniform) in the feature space of DigitClassifier."""
from __future__ import annotations

import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from gan_lightning.metrics.classifier import DigitClassifier, Features, Logits


@torch.no_grad()
def image_quality(classifier: DigitClassifier, real: torch.Tensor, fake: torch.Tensor, num_classes: int = 10,
                  batch_size: int = 500, min_share: float = 0.02) -> dict[str, float]:
    """Compare ``fake`` with ``real`` images (both (N, C, H, W) in [-1, 1]).

    fid/kid: torchmetrics' FID and KID (mean over subsets of up to 1,000) on the classifier's 128-d features;
    inception_score: exp(E KL(p(y|x) || p(y))) from its softmax (torchmetrics, 10 splits); modes: classes that
    receive at least ``min_share`` of the samples (argmax); kl_uniform: KL(p(y) || uniform) of that histogram.
    """
    classifier = classifier.eval()
    device = next(classifier.parameters()).device
    features = Features(classifier)
    fid = FrechetInceptionDistance(feature=features).to(device)
    kid = KernelInceptionDistance(feature=features, subset_size=min(1000, len(real), len(fake))).to(device)
    inception = InceptionScore(feature=Logits(classifier), splits=10).to(device)
    counts = torch.zeros(num_classes, dtype=torch.long)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device).float()
            fid.update(batch, real=is_real)
            kid.update(batch, real=is_real)
            if not is_real:
                inception.update(batch)
                counts += torch.bincount(classifier(batch).argmax(1).cpu(), minlength=num_classes)
    share = counts.double() / counts.sum()
    nonzero = share[share > 0]
    kid_mean, _ = kid.compute()
    is_mean, _ = inception.compute()
    return {
        "fid": float(fid.compute()),
        "kid": float(kid_mean),
        "inception_score": float(is_mean),
        "modes": int((share >= min_share).sum()),
        "kl_uniform": float((nonzero * (nonzero * num_classes).log()).sum()),
        "max_class_share": float(share.max()),
    }


def uniform_noise_like(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The "worst generator" reference: uniform noise in [-1, 1] with the images' shape."""
    return torch.rand(images.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


__all__ = ["image_quality", "uniform_noise_like"]
