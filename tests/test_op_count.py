"""``python -m benchmarks.op_count`` counts one iteration's operations by phase: each D update adds the
same number, the batch size changes none, and the command prints the count."""
from __future__ import annotations

from benchmarks.op_count import count_iteration, main

COMMON = ["data.batch_size=50", "model.g_steps=1", "torch_threads=1"]


def test_each_d_update_adds_the_same_operations_whatever_the_batch_size():
    two, four = (count_iteration([*COMMON, f"model.d_steps={k}"]).by_phase for k in (2, 4))
    assert two["d_update"] > 0 and four["d_update"] == 2 * two["d_update"]
    assert four["g_update"] == two["g_update"] > 0
    assert four["bookkeeping"] == two["bookkeeping"] > 0
    bigger = count_iteration(["data.batch_size=100", "model.g_steps=1", "torch_threads=1", "model.d_steps=2"])
    assert bigger.by_phase == two


def test_the_command_prints_the_total_and_its_phases(capsys):
    main([*COMMON, "model.d_steps=1"])
    header = next(line for line in capsys.readouterr().out.splitlines() if "operations in one iteration:" in line)
    total, phases = header.split(" operations in one iteration: ")
    counts = dict(part.split() for part in phases.split(", "))
    assert set(counts) == {"d_update", "g_update", "bookkeeping"}
    assert int(total) == sum(int(n) for n in counts.values()) > 0
