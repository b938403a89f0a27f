"""How the GAN runs: the execution plan and the mechanisms it chooses between (update paths, torch.compile,
CUDA-graph capture)."""
from gan_lightning.execution.plan import ExecutionPlan, split_with_labels

__all__ = ["ExecutionPlan", "split_with_labels"]
