"""Callbacks that turn a training run into things to look at: image grids and 1-D densities in TensorBoard."""
from gan_lightning.callbacks.image_metrics import ImageMetrics
from gan_lightning.callbacks.run_config import RunConfigInCheckpoint
from gan_lightning.callbacks.samples import SampleLogger

__all__ = ["ImageMetrics", "RunConfigInCheckpoint", "SampleLogger"]
