"""Generators and discriminators. Discriminators always return logits (no final sigmoid)."""
from gan_lightning.nets.batch_features import BatchDiscriminator, Moments, SquaredDeviations
from gan_lightning.nets.conditional import LabelConditioned
from gan_lightning.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_lightning.nets.mlp import MLP

__all__ = [
    "MLP",
    "BatchDiscriminator",
    "Moments",
    "SquaredDeviations",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "LabelConditioned",
]
