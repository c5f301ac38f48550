"""The mix's inputs: one shard set per recipe source, opened by memory map, addressed by row pointers.

A row pointer is ``(input, shard, row)``: the input's index in recipe order, the shard inside
that input's set and the row inside that shard. Planning works on numpy arrays of pointers
only; nothing but the compact columns hygiene asks for is read before the rows are gathered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slime_data.mix.recipe import MixRecipe, MixSource
from slime_data.record import RecordError, check_schema
from slime_data.shards import MANIFEST, ShardSet, ShardSetError, sha256_file


class MissingInput(FileNotFoundError):
    """A recipe input that is not a complete shard set; the message names the command that makes it."""


@dataclass
class MixInput:
    index: int  # position in recipe order: stages, then their sources
    stage: str
    spec: MixSource
    shard_set: ShardSet
    manifest_sha256: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def manifest_path(self) -> Path:
        return self.shard_set.root / MANIFEST

    @property
    def shard_rows(self) -> np.ndarray:
        return np.array([s["rows"] for s in self.shard_set.manifest["shards"]], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.shard_set)

    def image_bytes(self) -> np.ndarray:
        """Byte size of every row's image (0 without one), from the offsets alone: what bounds a writer's batch."""
        sizes = [
            pc.binary_length(pc.struct_field(batch.column("image"), "bytes")).fill_null(0).to_numpy()
            for batch in self.shard_set.iter_batches(columns=["image"])
        ]
        return np.concatenate(sizes).astype(np.int64) if sizes else np.zeros(0, dtype=np.int64)

    def pointers(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global row indices of this input -> (shard, row within shard), vectorised."""
        starts = np.concatenate([[0], np.cumsum(self.shard_rows)[:-1]])
        shard = np.searchsorted(starts, rows, side="right") - 1
        return shard.astype(np.int32), (rows - starts[shard]).astype(np.int64)


def open_inputs(recipe: MixRecipe) -> list[MixInput]:
    """Open every input named by the recipe; a missing or unfinished one is an error naming its make command."""
    inputs = []
    for stage in recipe.stages:
        for spec in stage.sources:
            try:
                shard_set = ShardSet(Path(spec.input).expanduser())
            except ShardSetError as err:
                raise MissingInput(
                    f"input {spec.input} of source {spec.name} (stage {stage.name}) is "
                    f"not a finished shard set ({err}); make it with: {spec.make_command}"
                ) from None
            for path in shard_set.shard_paths:
                with pa.memory_map(str(path), "r") as source:
                    try:
                        check_schema(pa.ipc.open_file(source).schema)
                    except (pa.ArrowInvalid, RecordError) as err:
                        raise ValueError(f"input {spec.input}: {path.name}: {err}") from None
            inputs.append(MixInput(len(inputs), stage.name, spec, shard_set, sha256_file(shard_set.root / MANIFEST)))
    return inputs


class InputsView:
    """All inputs read as one dataset, in recipe order: what the global hygiene steps plan over.

    It offers the reading side of ``ShardSet`` that planning uses (``len``, ``iter_batches``),
    so dedup and decontamination see duplicates *across* sources exactly as within one set.
    """

    def __init__(self, inputs: list[MixInput]) -> None:
        self.inputs = inputs
        self.shard_paths = [p for i in inputs for p in i.shard_set.shard_paths]

    def __len__(self) -> int:
        return sum(len(i) for i in self.inputs)

    def iter_batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        for mix_input in self.inputs:
            yield from mix_input.shard_set.iter_batches(columns=columns)
