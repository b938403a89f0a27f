"""How the GAN's iterations run: one object, built from ``conf/execution/``, that decides once per fit the update
path, compilation, CUDA-graph capture, memory layout and iterations per loader batch, and says so in one line.

None of this changes what is computed (the objective) or when (the schedule in ``gan.py``): each option gives the
same updates, bit for bit where the hardware allows (the tests compare them). The plan is a Lightning callback, so
its decisions are made in hooks: ``setup`` (before the Trainer moves and wraps the module: the memory layout, the
loader batch size) and ``on_train_start`` (the optimizers exist: the update path, compilation, capture). A GAN fitted
without one gets the default plan (``GAN.configure_callbacks``).
"""
from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from gan_lightning.data import real_labels, real_samples
from gan_lightning.errors import require, require_int
from gan_lightning.execution.compiled_nets import compile_net, why_not_compiled
from gan_lightning.execution.cuda_graph import CapturedPhases, capturable_option, why_not_captured
from gan_lightning.execution.update_paths import DirectUpdate, choose_update_path

KEY = "execution"


class ExecutionPlan(L.Callback):
    """``direct_steps``: skip Lightning's per-step hooks when nothing uses them (``update_paths.py``).
    ``cuda_graph``: record each phase of the iteration once as a CUDA graph and replay it (``cuda_graph.py``).
    ``compile_nets``: G and D behind torch.compile in the training updates (``compiled_nets.py``).
    ``channels_last``: conv nets in NHWC; null (auto) for nets with 2-D convolutions.
    ``iterations_per_batch``: K iterations per loader batch, so Lightning's per-batch cost is paid once per K.
    ``check_finite``: stop on a NaN/inf loss or G output, naming its iteration (folded on the device, read at log
    writes, epoch ends and checkpoints)."""

    def __init__(self, direct_steps: bool = True, cuda_graph: bool = False, compile_nets: bool = False,
                 channels_last: bool | None = None, iterations_per_batch: int = 1, check_finite: bool = True) -> None:
        for key, value in (("direct_steps", direct_steps), ("cuda_graph", cuda_graph),
                           ("compile_nets", compile_nets), ("check_finite", check_finite)):
            require(isinstance(value, bool), f"{KEY}.{key}", value, "must be true or false")
        require(channels_last is None or isinstance(channels_last, bool), f"{KEY}.channels_last", channels_last,
                "must be true, false or null (NHWC for conv nets)")
        require_int(f"{KEY}.iterations_per_batch", iterations_per_batch)
        self.direct_steps, self.cuda_graph, self.compile_nets = direct_steps, cuda_graph, compile_nets
        self.channels_last, self.iterations_per_batch = channels_last, iterations_per_batch
        self.check_finite = check_finite
        self.nhwc = False  # the layout decided in setup
        self.update = DirectUpdate(None)  # the update path, decided when training starts
        self.captured: CapturedPhases | None = None
        self.progress = None  # Lightning's step count, advanced here when the update path does not count steps

    # ------------------------------------------------------------------------------------------- decisions
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.prepare(pl_module, trainer.datamodule)

    def prepare(self, module: L.LightningModule, datamodule=None) -> None:
        """What is decided before the module is moved to its device (the ``setup`` hook; also called without a
        Trainer, by the benchmark's bare side): the plan attaches itself as ``module.execution``, puts conv nets in
        NHWC and shapes the DataModule's batches."""
        module.execution = self
        # Images in NHWC: the layout oneDNN and cuDNN's tensor-core kernels are fastest in. Here, before the Trainer
        # moves the module (the layout moves with it) and wraps it for DDP (whose buckets take the parameters'
        # strides).
        has_conv = any(isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d) for m in module.modules())
        self.nhwc = has_conv if self.channels_last is None else self.channels_last and has_conv
        if self.nhwc:
            module.to(memory_format=torch.channels_last)
        # One loader batch holds the real samples of K iterations of d_steps D updates (gan_lightning.data).
        self.shape_batches(datamodule, module.hparams.d_steps)

    def shape_batches(self, datamodule, d_steps: int) -> None:
        """Tell the DataModule how many iterations of how many D updates each loader batch feeds. A DataModule of
        one's own, without a ``shape_batches(d_steps, iterations_per_batch)`` method, must batch d_steps x batch_size
        samples itself; it cannot be asked for several iterations per batch."""
        if datamodule is not None and hasattr(datamodule, "shape_batches"):
            datamodule.shape_batches(d_steps, self.iterations_per_batch)
        else:
            require(self.iterations_per_batch == 1, f"{KEY}.iterations_per_batch", self.iterations_per_batch,
                    f"needs a DataModule that batches several iterations ({type(datamodule).__name__} has no "
                    "shape_batches method)")

    def configure_optimizer_kwargs(self, module: L.LightningModule, factory) -> dict:
        """``capturable=True`` for an optimizer the iteration may be recorded with (Adam, AdamW, RMSprop...: the
        step count then stays on the GPU)."""
        return capturable_option(factory) if self.cuda_graph and module.device.type == "cuda" else {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for optimizer in trainer.optimizers:  # after a resume: the checkpoint may hold the other layout
            match_state_layout(optimizer)
        self.update, why_path = choose_update_path(pl_module, trainer, self.direct_steps)
        self.progress = (None if self.update.counts_steps
                         else trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress)
        nets, why_nets = (pl_module.generator, pl_module.discriminator), "eager"
        if self.compile_nets:
            reason = why_not_compiled(pl_module)
            if reason is None:
                nets, why_nets = tuple(compile_net(n) for n in nets), "compiled (sampling stays eager)"
            else:
                why_nets = f"eager, not compiled ({reason})"
        pl_module.training_nets = nets
        self.captured, why_graph = None, "eager"
        if self.cuda_graph:
            reason = why_not_captured(pl_module, trainer)
            if reason is None:
                self.captured = CapturedPhases(pl_module.iteration_step)
                why_graph = "recorded as a CUDA graph per phase after a few eager iterations, then replayed"
            else:
                why_graph = f"eager, not a CUDA graph ({reason})"
        layout = "NHWC" if self.nhwc else "default"
        if self.channels_last and not self.nhwc:
            layout += f" ({KEY}.channels_last=true changes nothing: the nets have no 2-D convolutions)"
        rank_zero_info(f"Execution: {self.update.name} updates ({why_path}); nets {why_nets}; iteration {why_graph}; "
                       f"{layout} layout; {self.iterations_per_batch} iteration(s) per "
                       f"batch; finiteness {'checked' if self.check_finite else 'not checked'}")

    # ----------------------------------------------------------------------------------- what the GAN calls
    def iterations(self, module: L.LightningModule, batch):
        """The loader batch as (real samples, labels or None) per iteration, in the nets' layout."""
        hp = module.hparams
        real, labels = real_samples(batch), real_labels(batch) if hp.num_classes else None
        if len(real) < hp.d_steps * self.iterations_per_batch:
            raise ValueError(f"a batch of {len(real)} real samples cannot feed {self.iterations_per_batch} "
                             f"iteration(s) of d_steps={hp.d_steps} D updates")
        if self.nhwc and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        return split_with_labels(real, labels, self.iterations_per_batch)

    def run(self, step: Callable, real: torch.Tensor, labels: torch.Tensor | None, phase) -> None:
        """``step(real, labels, phase)``: one iteration, through its phase's CUDA graph when captured."""
        if self.captured is not None:
            self.captured(phase, real, labels)
        else:
            step(real, labels, phase)

    def count_steps(self, steps: int) -> None:
        """Count an iteration's optimizer steps in the loop's progress, which ``trainer.global_step``, ``max_steps``
        and checkpoints read, when the update path did not (a replayed iteration runs no Python)."""
        if self.progress is not None:
            for _ in range(steps):
                self.progress.increment_ready()
                self.progress.increment_completed()


def split_with_labels(real: torch.Tensor, labels: torch.Tensor | None, n: int):
    """``real`` in ``n`` consecutive chunks, each with its labels (None for an unconditional GAN)."""
    return zip(real.tensor_split(n), labels.tensor_split(n) if labels is not None else [None] * n)


def match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each optimizer state tensor its parameter's memory layout. A checkpoint written with another layout
    restores Adam's moments in NCHW strides for NHWC parameters (or the reverse), and a fused step walks parameter,
    gradient and moments as flat memory: on a CPU it would pair the wrong elements, on CUDA it refuses."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
