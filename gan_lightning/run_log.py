"""What a run says: Lightning's and the project's messages into Hydra's ``train.log`` as well as the terminal,
known noise silenced by its exact message, and where the run went, said at the end."""
from __future__ import annotations

import logging
import warnings

from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger("gan_lightning")

# Warnings that every run would print and that ask nothing of the user (matched by message, nothing broader).
NOISE_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # torch's pytree, from inside Lightning
    r".*`IterableDataset` has `__len__` defined.*",  # the Gaussian stream sets its epoch length on purpose
    r".*does not have many workers.*",  # data is decoded once and sliced in memory: workers only add cost
    r".*will save all extracted features in buffer.*",  # torchmetrics KID/IS: 10,000 features are ~5 MB
)
# Lightning's INFO lines that are advertisements or restate the config.
NOISE_LOG_LINES = ("litlogger", "limit_train_batches=1.0)` was configured")


class _DropNoise(logging.Filter):
    """Drops Lightning's INFO lines listed above; everything else (other loggers, warnings, errors) passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("lightning") or record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(noise in message for noise in NOISE_LOG_LINES)


def set_up_run_log() -> None:
    """Call inside Hydra's job (after it configured logging): Lightning's loggers, which keep their own console
    handler and do not propagate when imported before logging was configured, now go through the root logger's
    handlers: the terminal and the run's train.log."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _DropNoise) for f in handler.filters):
            handler.addFilter(_DropNoise())
    for pattern in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.captureWarnings(True)  # the warnings that remain reach train.log too


@rank_zero_only
def say_where_the_run_went(output_dir: str) -> None:
    log.info(f"Run folder: {output_dir}  (TensorBoard: tensorboard --logdir {output_dir})")
