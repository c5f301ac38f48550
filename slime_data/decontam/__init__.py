"""Decontamination against evaluation benchmarks: readers for their release formats
(``benchmarks``) and the index that matches training rows against their items (``index``)."""

from slime_data.decontam.benchmarks import FORMATS, Benchmark, BenchmarkItem, read_benchmark
from slime_data.decontam.index import MATCH_COLUMNS, BenchmarkIndex, Match

__all__ = ["FORMATS", "MATCH_COLUMNS", "Benchmark", "BenchmarkIndex", "BenchmarkItem", "Match", "read_benchmark"]
