"""Decontamination against evaluation benchmarks: readers for their release formats
(``benchmarks``) and the index that matches training rows against their items (``index``; it
reads rows through ``rows`` and ``sketch``, a shard file at a time in ``scan``)."""

from slime_data.decontam.benchmarks import FORMATS, Benchmark, BenchmarkItem, read_benchmark
from slime_data.decontam.index import MATCH_COLUMNS, BenchmarkIndex, Match

__all__ = ["FORMATS", "MATCH_COLUMNS", "Benchmark", "BenchmarkIndex", "BenchmarkItem", "Match", "read_benchmark"]
