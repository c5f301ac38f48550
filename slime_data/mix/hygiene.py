"""Hygiene across all inputs: the build's global steps (exact/near dedup, decontamination) over the mix.

The steps are the build pipeline's own (``slime_data.steps``, planned exactly as
``slime-data build`` plans them): each reads compact columns of every input as one dataset and
returns the ids to drop, ignoring the ids earlier steps drop. Here the drops become row masks
per input, rejects (``rejects.jsonl`` of the stage the row would have gone to) and step counts.
Which copy of a duplicate survives is the steps' rule; inputs are read in recipe order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slime_data.mix.inputs import InputsView, MixInput
from slime_data.mix.recipe import MixRecipe
from slime_data.record import Reject
from slime_data.steps.base import GlobalStep, make_step
from slime_data.steps.dedup import SignatureStep, release_signatures


@dataclass
class Hygiene:
    dropped: list[np.ndarray]  # per input: sorted row indices (global within the input) that are dropped
    rejects: list[list[Reject]]  # per input, in row order
    steps: list[dict[str, int | str]] = field(default_factory=list)  # {"step", "in", "out", "rejected"}


def _check_unique_ids(inputs: list[MixInput]) -> None:
    """Steps name drops by id, so an id in two inputs (or twice in one) would be ambiguous."""
    ids = [
        pa.chunked_array([b.column(0) for b in i.shard_set.iter_batches(columns=["id"])], type=pa.string())
        for i in inputs
    ]
    everything = pa.chunked_array([chunk for column in ids for chunk in column.chunks], type=pa.string())
    if pc.count_distinct(everything).as_py() != len(everything):
        counts = pc.value_counts(everything)
        repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        holders = [i.spec.input for i, column in zip(inputs, ids) if pc.any(pc.equal(column, repeated)).as_py()]
        raise ValueError(
            f"record id {repeated!r} occurs more than once (in "
            f"{', '.join(holders)}); ids must be unique across the mix inputs"
        )


def _rejected_rows(
    mix_input: MixInput, verdicts: dict[str, tuple[str, str, str]], drop_ids: pa.Array
) -> tuple[np.ndarray, list[Reject]]:
    """The input's rows whose ids the steps dropped (row indices within the input), and their rejects."""
    rows, rejects, start = [], [], 0
    for batch in mix_input.shard_set.iter_batches(columns=["id", "source"]):
        hit = np.flatnonzero(pc.is_in(batch.column(0), value_set=drop_ids).to_numpy(zero_copy_only=False))
        rows.append(hit + start)
        found = zip(batch.column(0).take(hit).to_pylist(), batch.column(1).take(hit).to_pylist())
        rejects += [Reject(record_id, source, *verdicts[record_id]) for record_id, source in found]
        start += batch.num_rows
    return (np.concatenate(rows) if rows else np.zeros(0)).astype(np.int64), rejects


def plan_drops(recipe: MixRecipe, inputs: list[MixInput], recipe_dir: Path | None = None, workers: int = 1) -> Hygiene:
    """Run the recipe's hygiene steps over all inputs together; what each input loses, and why.

    ``recipe_dir`` is what relative paths in step parameters (decontamination benchmarks) are relative to;
    ``workers``: the processes a step may use. Each step gets the memory to itself: nothing is held
    across steps but the verdicts, and the dedup signatures while a later step still reads them.
    """
    _check_unique_ids(inputs)
    pool = pa.default_memory_pool()
    pool.release_unused()
    context = {"recipe_dir": recipe_dir, "workers": workers}  # what relative benchmark paths are relative to; processes
    steps: list[GlobalStep] = [
        make_step(spec.step, spec.params, context, "hygiene step") for spec in recipe.hygiene if spec.enabled
    ]
    view = InputsView(inputs)
    verdicts: dict[str, tuple[str, str, str]] = {}  # id -> (step, reason, detail)
    counts = []
    remaining = len(view)
    for position, step in enumerate(steps):
        new = {i: v for i, v in step.plan(view, exclude=verdicts.keys()).items() if i not in verdicts}
        verdicts.update((record_id, (step.name, *verdict)) for record_id, verdict in new.items())
        counts.append({"step": step.name, "in": remaining, "out": remaining - len(new), "rejected": len(new)})
        remaining -= len(new)
        if not any(isinstance(later, SignatureStep) for later in steps[position + 1 :]):
            release_signatures(view)
        pool.release_unused()

    drop_ids = pa.array(sorted(verdicts), pa.string())
    dropped, rejects = zip(*(_rejected_rows(i, verdicts, drop_ids) for i in inputs)) if inputs else ((), ())
    return Hygiene(list(dropped), list(rejects), counts)
