"""Draw samples from a trained GAN: python -m gan_lightning.sample ckpt=PATH [setting=value ...] (--help: all).

Rebuilds the GAN from the config stored in the checkpoint, draws num_images latents from seed and writes a PNG
grid (images), a histogram (1-D samples) or a scatter plot (2-D samples) to out_dir; with num_samples=N it also
saves N samples as a tensor file (torch.load gives an (N, ...) float tensor in the data's range). Uses the EMA
generator when the checkpoint has one. A conditional GAN's grid has one row per class (8 each by default), or,
with label=K, holds only class K (so do the N samples; without it they cycle through the classes).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torchvision.utils import save_image

from gan_lightning.checkpoint import load_gan, what_is_there
from gan_lightning.errors import ConfigError, first_line, is_int, require, require_int
from gan_lightning.figures import density_figure, image_grid, scatter_figure
from gan_lightning.preflight import host_memory_bytes, why_not_creatable
from gan_lightning.sampling import class_rows, generate_many

# A grid of more images is no longer a picture to look at (100 x 100 MNIST digits are 3,002 pixels square); more
# samples go to a tensor file (num_samples=N).
MAX_GRID_IMAGES = 10_000
# The samples are held in memory as float32, briefly twice while their chunks are joined: a share well under RAM.
MEMORY_SHARE = 0.4
# Drawn 1000 at a time: ten million take over a minute even for a 1-D Gaussian's tiny G on a CPU (a billion: hours).
MAX_SAMPLES = 10_000_000

# Every setting: its default and what it does (``--help`` prints this table).
SETTINGS = {
    "ckpt": ("???", "the checkpoint to sample from (required), e.g. outputs/<name>/<time>/checkpoints/last.ckpt"),
    "num_images": (None, "images in the grid (at most 10000) or points in the plot (null: 64; a conditional GAN: a row "
                         "of 8 per class)"),
    "nrow": (None, "images per grid row (null: a square grid; a conditional GAN: one row per class)"),
    "seed": (0, "seeds the latents: the same seed draws the same samples"),
    "num_samples": (0, "N > 0: also save N samples (at most 10000000) as a tensor file (torch.load: an (N, ...) "
                       "float tensor)"),
    "out_dir": (None, "the folder to write to (null: samples/ in the checkpoint's run folder)"),
    "use_ema": (True, "draw from the EMA generator when the checkpoint has one"),
    "device": ("cpu", "the torch device to generate on: cpu, cuda, cuda:1, ..."),
    "label": (None, "a conditional GAN: draw class K only (null: every class)"),
}
DEFAULTS = {name: default for name, (default, _) in SETTINGS.items()}

EXAMPLES = """\
  python -m gan_lightning.sample ckpt=outputs/mnist_dcgan/<time>/checkpoints/last.ckpt
  python -m gan_lightning.sample ckpt=CKPT seed=1 num_images=100 nrow=10      # another 10 x 10 grid
  python -m gan_lightning.sample ckpt=CKPT num_samples=10000 out_dir=drawn     # + drawn/samples_10000_seed0.pt
  python -m gan_lightning.sample ckpt=CKPT label=3 device=cuda                 # a conditional GAN's 3s, on a GPU"""


def _as_typed(value) -> str:
    """A default as it is typed on the command line: null, true, 64 (PATH for the required ckpt)."""
    if value == "???":
        return "PATH"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def usage() -> str:
    """``--help``: the usage line, every setting with its default, and examples."""
    settings = "\n".join(f"  {name + '=' + _as_typed(default):<17} {text}"
                         for name, (default, text) in SETTINGS.items())
    description = __doc__.split("\n\n", 1)[1].strip()  # the docstring after its first line
    return (f"usage: python -m gan_lightning.sample ckpt=PATH [setting=value ...]\n\n{description}\n\n"
            f"settings (default):\n{settings}\n\nexamples:\n{EXAMPLES}")


def parse(argv: list[str]) -> DictConfig:
    """The command line as ``key=value`` settings over DEFAULTS; each value checked, with one-line errors."""
    defaults = OmegaConf.create(DEFAULTS)
    OmegaConf.set_struct(defaults, True)
    try:
        cfg = OmegaConf.merge(defaults, OmegaConf.from_cli(argv))
    except Exception as err:  # an unknown key, or not key=value
        raise ConfigError(f"{' '.join(argv)}: {first_line(err)}; settings: {', '.join(DEFAULTS)}") from err
    require(OmegaConf.is_missing(cfg, "ckpt") is False, "ckpt", "???",
            "required: the checkpoint to sample from (--help: every setting)")
    require(cfg.num_images is None or (is_int(cfg.num_images) and cfg.num_images >= 1), "num_images",
            cfg.num_images, "must be an integer >= 1 (or null: rows of 8)")
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
    why = what_is_there(cfg.ckpt)
    require(why is None, "ckpt", cfg.ckpt, why)
    return cfg


def output_folder(cfg: DictConfig) -> Path:
    """out_dir (default: samples/ in the checkpoint's run folder), checked but not yet made."""
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.ckpt).resolve().parent.parent / "samples"
    why = why_not_creatable(out_dir)
    require(why is None, "out_dir", out_dir, f"cannot write there ({why})")
    return out_dir


def default_num_images(classes: int, label: int | None) -> int:
    """Full rows of 8: one row per class when a conditional GAN draws every class, else an 8 x 8 grid."""
    return classes * 8 if classes and label is None else 64


def check_sizes(cfg: DictConfig, sample_shape: tuple[int, ...]) -> None:
    """Refuse before drawing what would fill the memory (or take hours) and a grid too large to look at."""
    values = math.prod(sample_shape)
    needed = (cfg.num_images + cfg.num_samples) * values * 4  # float32, all held at once
    ram = host_memory_bytes()
    key = "num_samples" if cfg.num_samples > cfg.num_images else "num_images"  # the one to lower
    gib = 2**30
    require(needed <= MEMORY_SHARE * ram, key, cfg[key],
            f"{cfg.num_images + cfg.num_samples} samples of {values} values need about {needed / gib:.1f} GiB of "
            f"memory, over the limit of {MEMORY_SHARE * ram / gib:.1f} GiB ({MEMORY_SHARE:.0%} of the host's "
            f"{ram / gib:.1f} GiB); draw fewer")
    for count in ("num_images", "num_samples"):
        require(cfg[count] <= MAX_SAMPLES, count, cfg[count], f"at most {MAX_SAMPLES} samples a call (drawn 1000 "
                "at a time, that many take minutes already); draw more in several calls with other seeds")
    if len(sample_shape) == 3 and cfg.num_images > MAX_GRID_IMAGES:
        side, (_, height, width) = math.isqrt(MAX_GRID_IMAGES), sample_shape
        raise ConfigError(f"num_images={cfg.num_images}: a grid holds at most {MAX_GRID_IMAGES} images ({side} x {side}"
                          f": {side * (height + 2) + 2} x {side * (width + 2) + 2} pixels here); save more samples "
                          f"with num_samples={cfg.num_images}")


def main(argv: list[str] | None = None) -> list[Path]:
    argv = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(argv):
        print(usage())
        return []
    cfg = parse(argv)
    out_dir = output_folder(cfg)
    model = load_gan(cfg.ckpt, cfg.device)
    classes = model.hparams.get("num_classes", 0)
    require(cfg.label is None or cfg.label < classes, "label", cfg.label,
            f"the checkpoint's GAN has classes 0 to {classes - 1}" if classes else
            "the checkpoint's GAN is not conditional (model.num_classes = 0)")
    cfg.num_images = cfg.num_images or default_num_images(classes, cfg.label)
    check_sizes(cfg, tuple(generate_many(model, 1, cfg.seed, cfg.use_ema).shape[1:]))  # one sample for its shape
    try:  # every check passed: only now is anything made
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # what the check cannot see, e.g. /proc, which tells root that it is writable
        raise ConfigError(f"out_dir={out_dir}: cannot write there ({err.strerror or err})") from err
    written = []
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
        write(picture, lambda: save_image(image_grid(samples, nrow), picture))
    else:  # a histogram (1-D) or a scatter plot (2-D): from the larger draw
        drawn = many if many is not None and len(many) > len(samples) else samples
        figure = (scatter_figure(None, drawn.numpy(), fake_label="G(z)") if drawn.dim() == 2 and drawn.shape[1] == 2
                  else density_figure(None, drawn.flatten().numpy(), None, fake_label="G(z)"))
        write(picture, lambda: figure.savefig(picture))
    written.append(picture)
    if many is not None:
        tensor_path = out_dir / f"samples_{cfg.num_samples}_seed{cfg.seed}{suffix}.pt"
        write(tensor_path, lambda: torch.save(many, tensor_path))
        written.append(tensor_path)
    for path in written:
        print(path)
    return written


def write(path: Path, save: Callable[[], object]) -> None:
    """Run ``save`` (which writes ``path``); an OS error (a full disk, a quota) is one line naming the file, and the
    partial file is removed rather than left to look like samples."""
    try:
        save()
    except OSError as err:
        path.unlink(missing_ok=True)
        raise ConfigError(f"out_dir={path.parent}: cannot write {path.name} ({err.strerror or err})") from err


if __name__ == "__main__":
    try:
        main()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)  # one clear message instead of a traceback
        sys.exit(2)
