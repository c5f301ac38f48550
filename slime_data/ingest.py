"""Ingest one source: native files -> records -> ``load_image`` -> a shard set.

The adapter's stream is read once in the main process (text only, cheap) and cut into units of
``chunk_size`` native items; each unit then loads, checks and hashes its images in a worker.
Units are the resume granularity (see ``slime_data.runner``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from slime_data.record import Record, Reject
from slime_data.runner import RunSummary, Unit, UnitPipeline, UnitResult, run_units
from slime_data.sources import REGISTRY
from slime_data.sources.base import SourceAdapter, SourceNotFound
from slime_data.steps.load_image import DEFAULT_MAX_PIXELS, LoadImages

DEFAULT_CHUNK = 512


def get_adapter(name: str) -> SourceAdapter:
    if name not in REGISTRY:
        raise ValueError(f"unknown source {name!r}; known sources: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def resolve_splits(adapter: SourceAdapter, root: Path, requested: Iterable[str] | None) -> list[str]:
    """``None``/empty -> the adapter's default splits; ``all`` -> every split present."""
    present = adapter.splits(root)
    requested = list(requested or [])
    if not requested:
        wanted = list(adapter.default_splits)
    elif requested == ["all"]:
        return present
    else:
        wanted = requested
    missing = [s for s in wanted if s not in present]
    if missing:
        raise ValueError(
            f"{adapter.name}: split(s) {', '.join(missing)} not found "
            f"under {root}; present: {', '.join(present) or 'none'}"
        )
    return wanted


def native_items(adapter: SourceAdapter, root: Path, splits: list[str], limit: int | None) -> Iterator[Record | Reject]:
    stream = itertools.chain.from_iterable(adapter.read(root, split) for split in splits)
    return itertools.islice(stream, limit) if limit else stream


def make_units(items: Iterable[Record | Reject], chunk_size: int, label: str) -> Iterator[Unit]:
    iterator = iter(items)
    for index in itertools.count():
        chunk = list(itertools.islice(iterator, chunk_size))
        if not chunk:
            return
        yield Unit(index=index, key=f"{label}#{index}", payload=chunk)


def _identity(payload: list[Record | Reject]) -> list[Record | Reject]:
    return payload


def _image_steps(root: str, max_pixels: int, payload: object) -> list[LoadImages]:
    return [LoadImages(root=root, max_pixels=max_pixels)]


@dataclass
class IngestPlan:
    adapter: SourceAdapter
    root: Path  # the located dataset folder
    splits: list[str]


def plan_ingest(source: str, root: str | Path, splits: Iterable[str] | None = None) -> IngestPlan:
    adapter = get_adapter(source)
    root = Path(root)
    if not root.exists():
        raise SourceNotFound(f"--root {root} does not exist")
    located = adapter.locate(root)
    return IngestPlan(adapter, located, resolve_splits(adapter, located, splits))


def ingest(
    source: str,
    root: str | Path,
    out: str | Path,
    *,
    splits: Iterable[str] | None = None,
    limit: int | None = None,
    workers: int = 1,
    force: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    command: str | None = None,
    on_unit_done: Callable[[UnitResult], None] | None = None,
    max_shard_bytes: int | None = None,
) -> RunSummary:
    plan = plan_ingest(source, root, splits)
    config: dict[str, Any] = {
        "source": plan.adapter.name,
        "root": str(plan.root.resolve()),
        "splits": plan.splits,
        "limit": limit,
        "chunk_size": chunk_size,
        "max_pixels": max_pixels,
    }
    units = make_units(native_items(plan.adapter, plan.root, plan.splits, limit), chunk_size, plan.adapter.name)
    pipeline = UnitPipeline(load=_identity, make_steps=partial(_image_steps, str(plan.root), max_pixels))
    return run_units(
        units,
        pipeline,
        out,
        command=command or f"slime-data ingest {plan.adapter.name}",
        config=config,
        workers=workers,
        force=force,
        on_unit_done=on_unit_done,
        max_shard_bytes=max_shard_bytes,
    )
