"""``python -m gan_lightning.sample ckpt=PATH [num_images=64] [seed=0] [num_samples=N] [use_ema=true]``.

Rebuilds the GAN from the config stored in the checkpoint, draws ``num_images`` latents from ``seed`` and writes
a PNG grid (images) or a histogram (1-D samples) to ``out_dir`` (default: ``samples/`` in the run folder); with
``num_samples=N`` it also saves N samples as a tensor file (``torch.load`` gives an (N, ...) float tensor in the
data's range). Uses the EMA generator when the checkpoint has one.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torchvision.utils import save_image

from gan_lightning.checkpoint import load_gan
from gan_lightning.errors import ConfigError
from gan_lightning.figures import density_figure, image_grid
from gan_lightning.sampling import generate_many

DEFAULTS = {"ckpt": "???", "num_images": 64, "nrow": None, "seed": 0, "num_samples": 0, "out_dir": None,
            "use_ema": True, "device": "cpu"}


def main(argv: list[str] | None = None) -> list[Path]:
    cfg = OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.from_cli(sys.argv[1:] if argv is None else argv))
    model = load_gan(cfg.ckpt, cfg.device)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.ckpt).resolve().parent.parent / "samples"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    samples = generate_many(model, cfg.num_images, cfg.seed, cfg.use_ema)
    picture = out_dir / f"samples_seed{cfg.seed}.png"
    if samples.dim() == 4:
        save_image(image_grid(samples, cfg.nrow), picture)
    else:
        density_figure(None, samples.flatten().numpy(), None, fake_label="G(z)").savefig(picture)
    written.append(picture)
    if cfg.num_samples:
        tensor_path = out_dir / f"samples_{cfg.num_samples}_seed{cfg.seed}.pt"
        torch.save(generate_many(model, cfg.num_samples, cfg.seed, cfg.use_ema), tensor_path)
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
