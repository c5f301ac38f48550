"""Step ``decontaminate``: drop training rows that match an evaluation benchmark item.

A global step: ``plan`` reads the benchmarks named in the recipe (``slime_data.decontam``),
streams the compact columns of the joined shard set (never the images) and decides the drops;
``run`` then removes them. Reasons name the rule and the benchmark —
``benchmark_image:mathvista_testmini``, ``benchmark_question:mmmu_validation``,
``benchmark_options:mmmu_validation`` — and the detail names the matched item. See
``slime_data.decontam.index`` for the rules. Recipe entry::

    - step: decontaminate
      max_hamming: 4      # perceptual-hash bits that may differ from a benchmark image
      ngram: 13           # passage length (tokens) for long questions
      benchmarks:
        - {format: mathvista, path: benchmarks/MathVista/data/testmini.json}
        - {format: mmmu, path: benchmarks/MMMU/answer_dict_val.json}
        - {format: scienceqa, path: benchmarks/ScienceQA/data/scienceqa/problems.json, split: test}

``{package}`` in a path is the installed ``slime_data`` folder (the bundled demo corpus).
Relative paths are taken from the folder the caller gives: ``root`` (the build's ``--root``)
or ``recipe_dir`` (the mix recipe's folder), else the working directory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slime_data.decontam.benchmarks import FORMATS, read_benchmark
from slime_data.decontam.index import BenchmarkIndex
from slime_data.decontam.scan import Verdict, match_shard
from slime_data.parallel import map_in_processes
from slime_data.paths import expand_path
from slime_data.shards import ShardSet
from slime_data.steps.base import GlobalStep, register_step

BenchmarkFormat = Literal[tuple(FORMATS)]  # type: ignore[valid-type]


class BenchmarkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: BenchmarkFormat = Field(description="the release format: " + ", ".join(FORMATS))
    path: str = Field(description="the benchmark file (or folder, see slime_data.decontam.benchmarks)")
    name: str | None = Field(None, description="the name in reasons; default per format, e.g. mathvista_testmini")
    images: str | None = Field(None, description="folder of the benchmark's images, when not beside the file")
    split: str | None = Field(None, description="scienceqa only: the split to hold out (default test)")


class DecontaminateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    benchmarks: list[BenchmarkSpec] = Field(min_length=1)
    max_hamming: int = Field(4, ge=0, le=32, description="perceptual-hash bits that may differ from a benchmark image")
    ngram: int = Field(13, ge=2, le=64, description="passage length in tokens; shorter questions must match exactly")
    min_option_chars: int = Field(20, ge=1, description="an option set this short identifies nothing")


@register_step
class Decontaminate(GlobalStep):
    name = "decontaminate"
    context_keys = ("root", "recipe_dir", "workers")

    def __init__(
        self, root: str | Path | None = None, recipe_dir: str | Path | None = None, workers: int = 1, **params: object
    ) -> None:
        super().__init__()
        self.params = DecontaminateParams(**params)
        self.workers = workers
        base = root if root is not None else recipe_dir
        self.base_dir = Path(base) if base is not None else None
        self.stats: dict[str, dict[str, int]] = {}

    def _path(self, value: str | None) -> Path | None:
        return None if value is None else expand_path(value, self.base_dir)

    def build_index(self) -> BenchmarkIndex:
        benchmarks = [
            read_benchmark(spec.format, self._path(spec.path), spec.name, self._path(spec.images), spec.split)
            for spec in self.params.benchmarks
        ]
        names = [b.name for b in benchmarks]
        if len(set(names)) != len(names):
            raise ValueError(f"decontaminate: two benchmarks share a name ({', '.join(names)}); give each a `name`")
        p = self.params
        return BenchmarkIndex(benchmarks, max_hamming=p.max_hamming, ngram=p.ngram, min_option_chars=p.min_option_chars)

    def plan(self, shard_set: ShardSet, exclude: Collection[str] = ()) -> dict[str, Verdict]:
        """Match the shard files in ``workers`` processes (each gets the index, pickled: it is small)."""
        index = self.build_index()
        drops: dict[str, Verdict] = {}
        jobs = [(index, path) for path in shard_set.shard_paths]
        for matches in map_in_processes(match_shard, jobs, self.workers):
            drops.update((record_id, verdict) for record_id, verdict in matches if record_id not in exclude)
        matched = Counter(reason for reason, _ in drops.values())
        self.stats = {name: {**counts, "rows_dropped": 0} for name, counts in index.stats.items()}
        for reason, count in matched.items():
            self.stats[reason.split(":", 1)[1]]["rows_dropped"] += count
        self.drops = drops
        return drops
