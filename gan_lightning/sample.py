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
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torchvision.utils import save_image

from gan_lightning.callbacks.samples import density_figure, image_grid
from gan_lightning.gan import GAN

DEFAULTS = {"ckpt": "???", "num_images": 64, "nrow": None, "seed": 0, "num_samples": 0, "out_dir": None,
            "use_ema": True, "device": "cpu"}


def load_gan(ckpt: str | Path, device: str = "cpu") -> GAN:
    checkpoint = torch.load(ckpt, map_location=device, weights_only=False)
    if "gan_config" not in checkpoint:
        raise SystemExit(f"error: {ckpt} has no stored config (not written by gan_lightning.train)")
    model = instantiate(checkpoint["gan_config"]["model"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


@torch.no_grad()
def draw(model: GAN, n: int, seed: int, use_ema: bool, chunk: int = 1000) -> torch.Tensor:
    generator = torch.Generator(device=model.device).manual_seed(seed)
    return torch.cat([model.generate(model.sample_latent(min(chunk, n - start), generator=generator), use_ema)
                      for start in range(0, n, chunk)]).cpu()


def main(argv: list[str] | None = None) -> list[Path]:
    cfg = OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.from_cli(sys.argv[1:] if argv is None else argv))
    model = load_gan(cfg.ckpt, cfg.device)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.ckpt).resolve().parent.parent / "samples"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    samples = draw(model, cfg.num_images, cfg.seed, cfg.use_ema)
    picture = out_dir / f"samples_seed{cfg.seed}.png"
    if samples.dim() == 4:
        save_image(image_grid(samples, cfg.nrow), picture)
    else:
        density_figure(None, samples.flatten().numpy(), None).savefig(picture)
    written.append(picture)
    if cfg.num_samples:
        tensor_path = out_dir / f"samples_{cfg.num_samples}_seed{cfg.seed}.pt"
        torch.save(draw(model, cfg.num_samples, cfg.seed, cfg.use_ema), tensor_path)
        written.append(tensor_path)
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    main()
