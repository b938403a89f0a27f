"""A benchmark's --data-dir checked up front: a folder without MNIST's files is said in one line before any work."""
from __future__ import annotations

from pathlib import Path

from gan_lightning.data.mnist import SPLITS, find_idx_file
from gan_lightning.errors import ConfigError


def check_data_dir(data_dir: str | None, splits: tuple[str, ...] = ("train", "test"), who: str = "the benchmark needs",
                   otherwise: str = ", or leave it out for generated digits") -> None:
    """Raise ``ConfigError`` unless ``data_dir`` (when given) holds ``MNIST/raw`` with the files of ``splits``
    (``who`` needs them; ``otherwise``: what leaving --data-dir out does)."""
    if data_dir is None:
        return
    if not Path(data_dir).is_dir():
        raise ConfigError(f"--data-dir={data_dir}: {'not a folder' if Path(data_dir).exists() else 'no such folder'} "
                          f"(give the folder that holds MNIST/raw{otherwise})")
    source = Path(data_dir) / "MNIST" / "raw"
    missing = [name for split in splits for name in SPLITS[split] if find_idx_file(source, name) is None]
    if missing:
        raise ConfigError(f"--data-dir={data_dir}: {source} has no {', '.join(missing)} (raw or .gz); {who} "
                          f"MNIST's {' and '.join(splits)} files")
