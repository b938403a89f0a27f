"""The benchmarks, outside the package, run from the repository root: ``python -m benchmarks`` (the project against
the hand-written originals, ``__main__.py``), ``python -m benchmarks.op_count`` (the operations of one iteration)
and ``python -m benchmarks.quality`` (a preset's metrics over seeds). The bare and limit sides run the project's own
GAN, objective and schedule without Lightning (``bare.py``, ``limit.py``), not a copy of them."""
