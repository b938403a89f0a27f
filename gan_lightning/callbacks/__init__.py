"""Callbacks that turn a training run into things to look at: image grids, 1-D densities and quality metrics in
TensorBoard, the final metrics of the run, and the checkpoint."""
from gan_lightning.callbacks.epoch_checkpoint import EpochCheckpoint
from gan_lightning.callbacks.final_metrics import HparamsWithFinalMetrics, final_metrics
from gan_lightning.callbacks.image_metrics import ImageMetrics
from gan_lightning.callbacks.run_progress import RunProgressBar
from gan_lightning.callbacks.samples import SampleLogger

__all__ = ["EpochCheckpoint", "HparamsWithFinalMetrics", "ImageMetrics", "RunProgressBar", "SampleLogger",
           "final_metrics"]
