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
    resolved config and the final metrics, into the run's event file before the logger closes it.

    TensorBoard's HParams view shows, for each metric, the last point of the scalar series with the metric's own
    name. So the final values are written under their own names (``train/g_loss``, ``metrics/fid``) at the last
    iteration, the end of their curves: no separate section of one-point charts in the Scalars and Time Series
    tabs (which ``log_hyperparams`` without a step would write at step 0)."""

    def __init__(self, hparams: dict[str, Any]) -> None:
        self.hparams = hparams

    def on_train_end(self, trainer, pl_module) -> None:
        metrics = final_metrics(trainer)
        for logger in trainer.loggers:
            logger.log_hyperparams(self.hparams, metrics=metrics, step=pl_module.iteration)
