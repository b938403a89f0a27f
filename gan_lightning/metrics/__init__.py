"""Numbers that say how close G's samples are to the data."""
from gan_lightning.metrics.gaussian import gaussian_distances

__all__ = ["gaussian_distances"]
