"""Matching one shard file against a benchmark index: the unit of work the ``decontaminate`` step
spreads over processes. Kept apart from the step so that a worker imports only the index's modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from slime_data.decontam.index import MATCH_COLUMNS, BenchmarkIndex
from slime_data.executor import unit_of_work

# Rows matched at once: few enough that a batch of compact columns stays small (tens of MB with
# long conversations), many enough that the per-batch cost of the vectorised matching vanishes.
MATCH_ROWS = 16_384
Verdict = tuple[str, str]  # (reason, detail)


@unit_of_work(num_cpus=1, memory_gib=1, describe=lambda job: f"decontamination scan of {job[1]}")
def match_shard(job: tuple[BenchmarkIndex, Path]) -> list[tuple[str, Verdict]]:
    """(id, verdict) of every row of one shard file that matches a benchmark item, in row order."""
    index, path = job
    matches: list[tuple[str, Verdict]] = []
    for batch in compact_batches(path):
        found = index.match_batch(batch)
        if found.count(None) == len(found):
            continue  # the common case, checked at C speed
        rows = [row for row, match in enumerate(found) if match is not None]
        for record_id, row in zip(batch.column("id").take(pa.array(rows, pa.int64())).to_pylist(), rows):
            matches.append((record_id, (found[row].reason, found[row].detail)))
    return matches


def compact_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The ``MATCH_COLUMNS`` of a shard file in batches of about ``MATCH_ROWS`` rows (shards are
    written in small batches, sized for images), read by memory map."""
    with pa.memory_map(str(path), "r") as source:
        reader = pa.ipc.open_file(source)
        pending: list[pa.RecordBatch] = []
        rows = 0
        for i in range(reader.num_record_batches):
            pending.append(reader.get_batch(i).select(MATCH_COLUMNS))
            rows += pending[-1].num_rows
            if rows >= MATCH_ROWS:
                yield pa.concat_batches(pending)
                pending, rows = [], 0
        if pending:
            yield pa.concat_batches(pending)
