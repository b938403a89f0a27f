"""What a GAN computes: the paired losses, D's regularisers, and the objective that assembles them."""
from gan_lightning.objective.losses import D_LOSSES, G_LOSSES, LOSSES, discriminator_loss, generator_loss
from gan_lightning.objective.objective import Objective
from gan_lightning.objective.regularisers import R1, R2, GradientPenalty, Regulariser, gradient_penalty, r1_penalty

__all__ = ["D_LOSSES", "G_LOSSES", "LOSSES", "Objective", "R1", "R2", "GradientPenalty", "Regulariser",
           "discriminator_loss", "generator_loss", "gradient_penalty", "r1_penalty"]
