"""The benchmark harness: ``python -m benchmarks [--quick] [--json]``.

Every figure is the median of repeated runs and, where the issue asks for one,
sits beside a baseline measured in the same run: the same logical work done
with raw ``sqlite3`` on the same database file. See ``BENCHMARKS.md``.
"""
