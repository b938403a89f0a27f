"""Sanity of the image metrics, in the feature space of a classifier trained (here) on rendered digits."""
from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from gan_lightning.metrics.classifier import load_or_train
from gan_lightning.metrics.image_quality import image_quality, uniform_noise_like


def render_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n uint8 (1, 28, 28) images of the digits 0-9 drawn with Pillow's font at random offsets and sizes."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=gen)
    images = torch.empty(n, 1, 28, 28, dtype=torch.uint8)
    fonts = {size: ImageFont.load_default(size=size) for size in (18, 20, 22)}
    for i, label in enumerate(labels.tolist()):
        size, dx, dy = (torch.randint(lo, hi, (1,), generator=gen).item() for lo, hi in ((18, 23), (4, 11), (0, 4)))
        canvas = Image.new("L", (28, 28))
        ImageDraw.Draw(canvas).text((dx, dy), str(label), fill=255, font=fonts[min(fonts, key=lambda s: abs(s - size))])
        images[i, 0] = torch.frombuffer(bytearray(canvas.tobytes()), dtype=torch.uint8).view(28, 28)
    return images, labels


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    train_images, train_labels = render_digits(3000, seed=0)
    test_images, test_labels = render_digits(1000, seed=1)
    classifier, info = load_or_train(train_images, train_labels, test_images, test_labels,
                                     cache_dir=tmp_path_factory.mktemp("cache"), epochs=4, log=lambda _: None)
    scale = lambda x: x.float() / 127.5 - 1  # noqa: E731
    return classifier, info, scale(train_images[:1000]), scale(test_images), test_labels


def test_classifier_learns_the_digits_and_is_cached(digits, tmp_path):
    classifier, info, *_ = digits
    assert info["held_out_accuracy"] >= 0.97 and info["held_out_images"] == 1000
    images, labels = render_digits(200, seed=0)
    again, info_again = load_or_train(images, labels, cache_dir=tmp_path, epochs=1, log=lambda _: None)
    assert info_again["data_key"] != info["data_key"]  # other images, another classifier


def test_real_vs_real_is_near_zero_and_far_below_noise(digits):
    classifier, _, real, other_real, _ = digits
    same = image_quality(classifier, real, other_real)
    noise = image_quality(classifier, real, uniform_noise_like(other_real))
    assert same["fid"] < 0.05 * noise["fid"] and same["kid"] < 0.05 * noise["kid"]
    assert same["modes"] == 10 and same["kl_uniform"] < 0.1
    assert same["inception_score"] > 8 > noise["inception_score"]
    identical = image_quality(classifier, real, real)
    assert abs(identical["fid"]) < 1e-3


def test_ten_thousand_copies_of_one_digit_are_one_mode(digits):
    classifier, _, real, other_real, labels = digits
    one = other_real[(labels == 7).nonzero()[0, 0]].expand(10_000, -1, -1, -1)
    scores = image_quality(classifier, real, one)
    assert scores["modes"] == 1 and scores["max_class_share"] == 1.0
    assert scores["kl_uniform"] == pytest.approx(torch.log(torch.tensor(10.0)).item())
    assert scores["inception_score"] == pytest.approx(1.0, abs=1e-3)


def test_label_accuracy_is_the_share_classified_as_requested(digits):
    """Real digits "requested" with their true labels score the classifier's accuracy; with every label shifted by
    one they score (almost) nothing. Without requested labels there is no label_accuracy."""
    classifier, info, real, other_real, labels = digits
    right = image_quality(classifier, real, other_real, requested_labels=labels)
    wrong = image_quality(classifier, real, other_real, requested_labels=(labels + 1) % 10)
    assert right["label_accuracy"] == pytest.approx(info["held_out_accuracy"])
    assert wrong["label_accuracy"] <= 1 - info["held_out_accuracy"]
    assert "label_accuracy" not in image_quality(classifier, real, other_real)
