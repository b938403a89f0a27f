"""What a run ends with: the last logged training values and every callback's quality metrics, returned by
``train()`` and written, with the resolved config, into TensorBoard's HPARAMS view."""
from __future__ import annotations

from typing import Any

import lightning as L


def final_metrics(trainer: L.Trainer) -> dict[str, float]:
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if name != "step"}
    for callback in trainer.callbacks:
        metrics.update(getattr(callback, "metrics", {}))
    return metrics


class HparamsWithFinalMetrics(L.Callback):
    """At the end of training (after the metric callbacks listed before it), write the HPARAMS summary: the
    resolved config and ``final/<metric>`` values, into the run's event file before the logger closes it."""

    def __init__(self, hparams: dict[str, Any]) -> None:
        self.hparams = hparams

    def on_train_end(self, trainer, pl_module) -> None:
        metrics = {f"final/{name}": value for name, value in final_metrics(trainer).items()}
        for logger in trainer.loggers:
            logger.log_hyperparams(self.hparams, metrics=metrics)
