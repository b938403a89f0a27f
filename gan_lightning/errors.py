"""How a run ends other than well: a bad setting (raised where the setting is used, reported as one line naming
the key) or a signal."""
from __future__ import annotations

import math
from typing import Any


class ConfigError(ValueError):
    """A setting that cannot work; the message names the config key and its value."""


def require(ok: bool, key: str, value: Any, why: str) -> None:
    """Raise ``ConfigError("key=value: why")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}={value}: {why}")


def is_int(value: Any) -> bool:
    """An integer setting (YAML ``true`` is a bool, which Python would also count as an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float setting (not a bool, not inf or NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require_int(key: str, value: Any, minimum: int = 1) -> None:
    require(is_int(value) and value >= minimum, key, value, f"must be an integer >= {minimum}")


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): enough for a one-line error."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


class NoSpaceLeft(OSError):
    """A file could not be written because its filesystem is full (or the user's quota is spent)."""


class TrainingInterrupted(Exception):
    """The run stopped by SIGTERM (preemption, ``kill``, ``timeout``) or SIGINT (Ctrl+C); ``iteration`` is None when
    it came before training started."""

    def __init__(self, signal_name: str, iteration: int | None, checkpoint: str | None) -> None:
        self.signal_name, self.iteration, self.checkpoint = signal_name, iteration, checkpoint
        self.exit_code = 128 + {"SIGINT": 2, "SIGTERM": 15}[signal_name]  # the shell's convention
        if iteration is None:
            super().__init__(f"{signal_name} received before training started: nothing was trained")
            return
        resume = f"resume with ckpt_path={checkpoint}" if checkpoint else "no checkpoint was written by this run"
        super().__init__(f"{signal_name} received: training stopped after iteration {iteration}; {resume}")
