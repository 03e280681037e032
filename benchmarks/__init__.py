"""Benchmarks for kandinsky-lab: `python -m benchmarks.run` (or `make bench`) writes benchmarks/results.md."""
