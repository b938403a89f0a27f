"""``python -m gan_lightning.sample ckpt=PATH [num_images=64] [seed=0] [num_samples=N] [use_ema=true] [label=K]``.

Rebuilds the GAN from the config stored in the checkpoint, draws ``num_images`` latents from ``seed`` and writes
a PNG grid (images), a histogram (1-D samples) or a scatter plot (2-D samples) to ``out_dir`` (default:
``samples/`` in the run folder); with ``num_samples=N`` it also saves N samples as a tensor file (``torch.load``
gives an (N, ...) float tensor in the data's range). Uses the EMA generator when the checkpoint has one. A
conditional GAN's grid has one row per class, or, with ``label=K``, holds only class K (so do the N samples;
without it they cycle through the classes).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torchvision.utils import save_image

from gan_lightning.checkpoint import load_gan
from gan_lightning.errors import ConfigError, first_line, is_int, require, require_int
from gan_lightning.figures import density_figure, image_grid, scatter_figure
from gan_lightning.sampling import class_rows, generate_many

DEFAULTS = {"ckpt": "???", "num_images": 64, "nrow": None, "seed": 0, "num_samples": 0, "out_dir": None,
            "use_ema": True, "device": "cpu", "label": None}


def parse(argv: list[str]) -> DictConfig:
    """The command line as ``key=value`` settings over DEFAULTS; each value checked, with one-line errors."""
    defaults = OmegaConf.create(DEFAULTS)
    OmegaConf.set_struct(defaults, True)
    try:
        cfg = OmegaConf.merge(defaults, OmegaConf.from_cli(argv))
    except Exception as err:  # an unknown key, or not key=value
        raise ConfigError(f"{' '.join(argv)}: {first_line(err)}; settings: {', '.join(DEFAULTS)}") from err
    require(OmegaConf.is_missing(cfg, "ckpt") is False, "ckpt", "???", "required: the checkpoint to sample from")
    require_int("num_images", cfg.num_images)
    require_int("num_samples", cfg.num_samples, minimum=0)
    require(is_int(cfg.seed), "seed", cfg.seed, "must be an integer")
    require(cfg.nrow is None or (is_int(cfg.nrow) and cfg.nrow >= 1), "nrow", cfg.nrow, "must be an integer >= 1")
    require(isinstance(cfg.use_ema, bool), "use_ema", cfg.use_ema, "must be true or false")
    require(cfg.label is None or (is_int(cfg.label) and cfg.label >= 0), "label", cfg.label,
            "must be a class number >= 0")
    try:
        device = torch.device(cfg.device)
    except RuntimeError as err:
        raise ConfigError(f"device={cfg.device}: not a torch device (cpu, cuda, cuda:1, ...)") from err
    require(device.type != "cuda" or torch.cuda.is_available(), "device", cfg.device, "no CUDA GPU is available")
    require(Path(cfg.ckpt).is_file(), "ckpt", cfg.ckpt, "no such checkpoint file")
    return cfg


def main(argv: list[str] | None = None) -> list[Path]:
    cfg = parse(sys.argv[1:] if argv is None else list(argv))
    model = load_gan(cfg.ckpt, cfg.device)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.ckpt).resolve().parent.parent / "samples"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    classes = model.hparams.get("num_classes", 0)
    require(cfg.label is None or cfg.label < classes, "label", cfg.label,
            f"the checkpoint's GAN has classes 0 to {classes - 1}" if classes else
            "the checkpoint's GAN is not conditional (model.num_classes = 0)")
    nrow, grid_labels = cfg.nrow, None
    if classes and cfg.label is None:  # one row per class
        grid_labels, per_row = class_rows(cfg.num_images, classes)
        nrow = nrow or per_row
    elif classes:
        grid_labels = torch.full((cfg.num_images,), cfg.label)
    samples = generate_many(model, cfg.num_images, cfg.seed, cfg.use_ema, labels=grid_labels)
    many = None
    if cfg.num_samples:
        many_labels = torch.full((cfg.num_samples,), cfg.label) if cfg.label is not None else None
        many = generate_many(model, cfg.num_samples, cfg.seed, cfg.use_ema, labels=many_labels)
    suffix = f"_label{cfg.label}" if cfg.label is not None else ""
    picture = out_dir / f"samples_seed{cfg.seed}{suffix}.png"
    if samples.dim() == 4:
        save_image(image_grid(samples, nrow), picture)
    else:  # a histogram (1-D) or a scatter plot (2-D): from the larger draw
        drawn = many if many is not None and len(many) > len(samples) else samples
        if drawn.dim() == 2 and drawn.shape[1] == 2:
            scatter_figure(None, drawn.numpy(), fake_label="G(z)").savefig(picture)
        else:
            density_figure(None, drawn.flatten().numpy(), None, fake_label="G(z)").savefig(picture)
    written.append(picture)
    if many is not None:
        tensor_path = out_dir / f"samples_{cfg.num_samples}_seed{cfg.seed}{suffix}.pt"
        torch.save(many, tensor_path)
        written.append(tensor_path)
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    try:
        main()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)  # one clear message instead of a traceback
        sys.exit(2)
