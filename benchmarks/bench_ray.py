"""Benchmark ``--executor ray`` against ``--executor local`` on this machine, and project cluster wall times.

    python benchmarks/bench_ray.py                     # demo build + 210K-row mix, local vs Ray (minutes on 2 cores)
    python benchmarks/bench_ray.py --rows 60000        # a quicker mix

Baseline: ``--executor local`` (spawned processes, ``--workers`` = this machine's CPUs), the
default every command has. A user runs this before moving a build to a cluster, to see (1) what
Ray costs on one machine — its start, per-task overhead, fresh workers importing the pipeline —
and (2) what a cluster would buy: the wall time of the full SMR build (~476K images) and of the 2M
mix on 8 and 32 nodes of 16 cores, projected from the per-job costs measured here.

How the projection is made: every parallel map of a run (build units, dedup signatures,
decontamination scans, mix shard jobs) is timed through the executor interface; what is not
inside a map is the driver's serial work (planning, reductions, the final filtering pass,
manifests). Scaling to N rows: serial time x N / measured rows; each map's jobs keep their
measured size, there are proportionally more of them, and they run ``cores`` at a time at their
measured cost per job plus Ray's measured per-task overhead. Ray's start and the nodes' own
start are not included. The per-row costs are those of the demo's images (synthetic charts and
ScienceQA samples) and bench_mix's tiny generated rows; real releases with larger images cost
more per row in the parallel part, which only makes the cluster's share larger.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mix import generate, recipe  # noqa: E402 -- the same generated inputs as bench_mix

from slime_data.build.pipeline import STAGE1, BuildContext, run_phase1, run_phase2  # noqa: E402
from slime_data.build.prepare import prepare_inputs  # noqa: E402
from slime_data.build.recipe import load_recipe  # noqa: E402
from slime_data.executor import Executor, LocalExecutor, use_executor  # noqa: E402
from slime_data.mix.recipe import load_mix_recipe  # noqa: E402
from slime_data.mix.run import run_mix  # noqa: E402
from slime_data.paths import PIPELINES_DIR  # noqa: E402
from slime_data.ray_executor import RayExecutor  # noqa: E402
from slime_data.shards import ShardSet  # noqa: E402

SMR_ROWS = 476_000
MIX_ROWS = 2_000_000
CLUSTERS = (8, 32)  # nodes of
CORES_PER_NODE = 16


@dataclass
class Timed:
    """An executor that records, per job function, how many jobs ran and the wall time of their maps."""

    inner: Executor
    maps: dict[str, list[float]] = field(default_factory=dict)  # function -> [jobs, seconds]

    @property
    def name(self) -> str:
        return self.inner.name

    def map(self, function: Callable, jobs: Iterable) -> Iterator:
        jobs = list(jobs)
        clock = time.perf_counter()
        yield from self.inner.map(function, jobs)
        entry = self.maps.setdefault(function.__name__, [0, 0.0])
        entry[0] += len(jobs)
        entry[1] += time.perf_counter() - clock


@dataclass
class Run:
    wall: float
    maps: dict[str, list[float]]
    identity: list[str]  # shard sha256s: the outputs must match


def build_demo(executor: Executor, out: Path, workers: int) -> Run:
    recipe_obj, raw = load_recipe(PIPELINES_DIR / "sophisticated-demo.yaml")
    ctx = BuildContext(recipe_obj, raw, None, out, workers, True, "bench")
    prepare_inputs(ctx)  # the synthetic source: generated once, outside the timing (same for both)
    timed = Timed(executor)
    clock = time.perf_counter()
    with use_executor(timed):  # the two phases of `slime-data build`; the report (plots) is left out
        run_phase1(ctx, out / STAGE1)
        manifest = run_phase2(recipe_obj, raw, out / STAGE1, out, command="bench", workers=workers)
    return Run(time.perf_counter() - clock, timed.maps, [s["sha256"] for s in manifest["shards"]])


def mix_200k(executor: Executor, root: Path, out: Path, target: int, workers: int) -> Run:
    timed = Timed(executor)
    clock = time.perf_counter()
    with use_executor(timed):
        mix_recipe = load_mix_recipe(recipe(root, True))
        result = run_mix(mix_recipe, target, out=out, manifest_path=out / "mix.json", workers=workers)
    shards = [s["sha256"] for stage in result.manifest["stages"].values() for s in stage["shards"]]
    return Run(time.perf_counter() - clock, timed.maps, shards)


@ray.remote(num_cpus=1)
def _import_pipelines() -> None:
    import slime_data.build.pipeline  # noqa: F401
    import slime_data.mix.run  # noqa: F401


def warm_workers(cpus: int) -> float:
    """Seconds for fresh Ray workers to import the pipelines (once per worker process, per node)."""
    clock = time.perf_counter()
    ray.get([_import_pipelines.remote() for _ in range(cpus)])
    return time.perf_counter() - clock


def task_overhead(cpus: int, tasks: int = 200) -> float:
    """Seconds of Ray per task beyond its work: no-op tasks with a CPU each, ``cpus`` at a time."""

    @ray.remote(num_cpus=1)
    def nothing(i: int) -> int:
        return i

    ray.get([nothing.remote(i) for i in range(cpus)])  # warm workers
    clock = time.perf_counter()
    ray.get([nothing.remote(i) for i in range(tasks)])
    return (time.perf_counter() - clock) * cpus / tasks


def projection(run: Run, rows: int, target_rows: int, workers: int, overhead: float, cores: int) -> float:
    scale = target_rows / rows
    mapped = sum(seconds for _, seconds in run.maps.values())
    total = (run.wall - mapped) * scale  # the driver's serial work
    for jobs, seconds in run.maps.values():
        per_job = seconds * min(workers, jobs) / jobs  # each job's own time, measured
        total += math.ceil(jobs * scale / cores) * (per_job + overhead)
    return total


def report(
    title: str, local: Run, on_ray: Run, rows: int, target_rows: int, target: str, workers: int, overhead: float
) -> None:
    """Both runs side by side, then the cluster projection from the Ray run's (warm workers) per-job costs."""
    same = "identical" if local.identity == on_ray.identity else "DIFFERENT"
    print(f"\n{title}: {rows:,} rows, {workers} CPU(s)  (outputs {same})")
    print(f"  {'executor':<8} {'wall s':>8} {'ratio':>6}   per map: jobs, seconds")
    for name, run in (("local", local), ("ray", on_ray)):
        maps = ", ".join(f"{fn} {int(jobs)} in {seconds:.1f}s" for fn, (jobs, seconds) in run.maps.items())
        print(f"  {name:<8} {run.wall:8.1f} {run.wall / local.wall:6.2f}   {maps}")
    serial = on_ray.wall - sum(s for _, s in on_ray.maps.values())
    print(f"  serial driver work: {serial:.1f}s of {on_ray.wall:.1f}s (ray run)")
    here = projection(on_ray, rows, target_rows, workers, 0.0, workers)
    print(f"  projected {target} on this machine ({workers} cores, same per-job costs): {here / 60:8.1f} min")
    for nodes in CLUSTERS:
        seconds = projection(on_ray, rows, target_rows, workers, overhead, nodes * CORES_PER_NODE)
        print(
            f"  projected {target} on {nodes:>2} nodes x {CORES_PER_NODE} cores (ray):   {seconds / 60:8.1f} min "
            f"(x{here / seconds:.0f} faster; serial driver share {100 * serial * target_rows / rows / seconds:.0f}%)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=210_000, help="mix input rows (default 210K, for a 200K target)")
    parser.add_argument("--target", type=int, default=200_000)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print("note: timings on a shared machine vary; compare the ratios of one run")

    clock = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter() - clock
    warm = warm_workers(args.cpus)
    overhead = task_overhead(args.cpus)
    print(
        f"ray start {started:.1f}s; fresh workers import the pipelines in {warm:.1f}s; "
        f"per-task overhead {overhead * 1000:.1f} ms (no-op tasks, {args.cpus} at a time)"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
            root = Path(tmp)
            os.chdir(root)  # the demo recipe writes under ./data
            ray_executor = RayExecutor(max_retries=3)
            local = build_demo(LocalExecutor(args.cpus), root / "build-local", args.cpus)
            on_ray = build_demo(ray_executor, root / "build-ray", args.cpus)
            rows = ShardSet(root / "build-local").manifest["stage1"]["rows"]
            report("demo build", local, on_ray, rows, SMR_ROWS, "full SMR build (476K rows)", args.cpus, overhead)

            generate(root, args.rows, seed=0)
            local = mix_200k(LocalExecutor(args.cpus), root, root / "mix-local", args.target, args.cpus)
            on_ray = mix_200k(ray_executor, root, root / "mix-ray", args.target, args.cpus)
            title = f"mix --target {args.target:,}"
            report(title, local, on_ray, args.rows, MIX_ROWS * args.rows // args.target, "2M mix", args.cpus, overhead)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
