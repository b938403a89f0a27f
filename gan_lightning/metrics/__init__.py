"""Numbers that say how close G's samples are to the data."""
from gan_lightning.metrics.gaussian import gaussian_distances
from gan_lightning.metrics.mixture import mode_coverage

__all__ = ["gaussian_distances", "mode_coverage"]
