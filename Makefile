# Two commands do all the set-up: `make train` (the default offline run) and `make test` (the test suite);
# `make bench` runs the benchmark (benchmarks/, `python -m benchmarks $(ARGS)` from this folder) the same way.
# Both create .venv with the package installed (editable, so conf/ is found) when it is missing or stale.
# On a machine without a GPU, add TORCH=cpu (`make test TORCH=cpu`) to the first command: torch and torchvision then
# come from PyTorch's CPU index (a CPU build of a few hundred MB instead of the CUDA build's several GB). To switch
# an existing .venv, `make clean-venv` first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= default
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: train test bench docs results readme-images clean-venv gpu-check

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	if [ "$(TORCH)" = cpu ]; then $(BIN)/python -m pip install --quiet --index-url $(TORCH_CPU_INDEX) \
		'torch>=2.5,<2.15' 'torchvision>=0.20,<0.30'; fi
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $@

train: $(BIN)/.installed
	$(BIN)/python -m gan_lightning.train $(ARGS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# e.g. make bench ARGS="--workloads gaussian_moments --rounds 1"
bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks $(ARGS)

# The documentation site, built as CI builds it: any warning (a broken link, a page left out) fails.
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

# The measured figures of docs/ (quality of presets over seeds) and the README's pictures. MNIST_DATA: a folder
# holding MNIST/raw. Long: mnist_best trains for about 35 minutes on 2 CPU cores. Then python docs/render_results.py.
MNIST_DATA ?= data
results: $(BIN)/.installed
	$(BIN)/python -m benchmarks.quality --out docs/results/quality_ring_gan.json --seeds 0,1,2,3,4,5,6,7,8,9 \
		--parallel 2 --threads 1 experiment=ring_gan
	$(BIN)/python -m benchmarks.quality --out docs/results/quality_ring_sn_gan.json --seeds 0,1,2,3 --parallel 2 \
		--threads 1 experiment=ring_sn_gan
	$(BIN)/python -m benchmarks.quality --out docs/results/quality_ring_pacgan.json --seeds 0,1,2,3,4,5,6,7,8,9 \
		--parallel 2 --threads 1 experiment=ring_pacgan
	$(BIN)/python -m benchmarks.quality --out docs/results/quality_grid_gan.json --seeds 0,1,2,3,4,5,6,7,8,9 \
		--parallel 2 --threads 1 experiment=grid_gan
	$(BIN)/python -m benchmarks.quality --out docs/results/quality_mnist_best.json --seeds 0 --threads 1 \
		experiment=mnist_best data.data_dir=$(MNIST_DATA)
	$(BIN)/python docs/render_results.py
readme-images: $(BIN)/.installed
	$(BIN)/python -m gan_lightning.sample ckpt=outputs/quality/quality_mnist_best/seed0/checkpoints/last.ckpt \
		out_dir=docs/images/mnist_best num_images=100
	$(BIN)/python -m gan_lightning.sample ckpt=outputs/quality/quality_ring_pacgan/seed0/checkpoints/last.ckpt \
		out_dir=docs/images/ring_pacgan num_images=2500

clean-venv:
	rm -rf $(VENV)

# On a CUDA machine whose Python already has the dependencies (no .venv; e.g. `make -k gpu-check PYTHON=python3`):
# the GPU-only tests, then issue 13's rows, each with the project's CUDA graph on and the limit side (a few minutes).
# One target per check, so that `make -k` runs the others when one fails. BENCH_DATA="--data-dir DIR" reads the real
# MNIST from DIR/MNIST/raw (otherwise generated digits of the same shape).
GPU_BENCH = $(PYTHON) -m benchmarks --device cuda --rounds 2 --sides project limit $(BENCH_DATA)
GPU_CHECKS = gpu-tests gpu-mlp gpu-mlp-k8 gpu-mlp-bf16 gpu-dcgan gpu-dcgan-nchw gpu-gaussian gpu-compile \
	gpu-gaussian-compile
.PHONY: $(GPU_CHECKS)
gpu-check: $(GPU_CHECKS)
gpu-tests:
	$(PYTHON) -m pytest -q -k on_a_gpu tests/test_cuda_graph.py tests/test_sync_free.py
gpu-mlp:
	$(GPU_BENCH) --workloads mnist_mlp --batch-sizes 64 1024 --iterations 1000 --set execution=cuda_graph
# The same rows with 8 iterations per Lightning batch (execution.iterations_per_batch): Lightning's per-batch cost
# paid once per 8 replays. 1000 iterations and the 200 of warm-up are whole batches.
gpu-mlp-k8:
	$(GPU_BENCH) --workloads mnist_mlp --batch-sizes 64 1024 --iterations 1000 \
		--set execution=cuda_graph execution.iterations_per_batch=8
# bf16-mixed against fp32 in one run: side A in both precisions every round, interleaved (a row each).
gpu-mlp-bf16:
	$(GPU_BENCH) --workloads mnist_mlp --batch-sizes 1024 --iterations 1000 --precision 32-true bf16-mixed \
		--set execution=cuda_graph
# DCGAN as its preset has it (channels-last), and in NCHW for comparison.
gpu-dcgan:
	$(GPU_BENCH) --workloads mnist_dcgan --batch-sizes 128 --iterations 300 --set execution=cuda_graph
gpu-dcgan-nchw:
	$(GPU_BENCH) --workloads mnist_dcgan --batch-sizes 128 --iterations 300 \
		--set execution=cuda_graph execution.channels_last=false
# 5,000 iterations of the 1-D GAN on the GPU: whole command, start-up included; then its final W1 and moments.
GAUSSIAN_5K = experiment=gaussian_moments trainer=gpu execution=cuda_graph data.batches_per_epoch=500 \
	trainer.max_epochs=10 callbacks.samples.every_n_iterations=0
gpu-gaussian: SHELL := /bin/bash
gpu-gaussian:
	rm -rf outputs/gpu-checks/gaussian
	time $(PYTHON) -m gan_lightning.train $(GAUSSIAN_5K) hydra.run.dir=outputs/gpu-checks/gaussian
	cat outputs/gpu-checks/gaussian/metrics.json
# The same with G and D compiled inside the graph: the replay is kernel-bound (about 3,200 kernels per iteration
# eager: python -m benchmarks.op_count experiment=gaussian_moments).
gpu-gaussian-compile: SHELL := /bin/bash
gpu-gaussian-compile:
	rm -rf outputs/gpu-checks/gaussian-compile
	time $(PYTHON) -m gan_lightning.train $(GAUSSIAN_5K) execution.compile_nets=true \
		hydra.run.dir=outputs/gpu-checks/gaussian-compile
	cat outputs/gpu-checks/gaussian-compile/metrics.json
# The batch-64 MLP row again with G and D compiled inside the graph (torch.compile: fewer, fused kernels to
# replay); one round, since each round compiles afresh.
gpu-compile:
	$(GPU_BENCH) --workloads mnist_mlp --batch-sizes 64 --iterations 1000 --rounds 1 \
		--set execution=compiled
