"""Shard sets: a folder of Arrow IPC *file*-format shards plus manifest, rejects and a dataset card.

Layout of a shard set::

    data-00000-of-00003.arrow ...   # Arrow IPC file format, ARROW_SCHEMA, random access by mmap
    rejects.jsonl                   # one line per dropped row: id, source, step, reason, detail
    README.md                       # dataset card with a Hugging Face YAML header
    manifest.json                   # written last: its presence marks a complete set

Writes are atomic (temp file, fsync, rename; manifest last) and deterministic: the same stream
of records gives byte-identical shards (no timestamps, fixed schema, batch boundaries that
depend on the data only).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from slime_data import __version__
from slime_data.card import render_card
from slime_data.record import (
    ARROW_SCHEMA,
    SCHEMA_VERSION,
    Record,
    RecordError,
    Reject,
    check_schema,
    id_problem,
    records_to_table,
    validate_record,
)

MANIFEST = "manifest.json"
REJECTS = "rejects.jsonl"
CARD = "README.md"
DEFAULT_MAX_SHARD_BYTES = 512 * 2**20
DEFAULT_MAX_SHARD_ROWS = 100_000
# Rows per Arrow record batch inside a shard: small enough to bound the writer's memory,
# large enough that per-batch overhead stays negligible.
BATCH_ROWS = 256
BATCH_BYTES = 32 * 2**20


def shard_name(index: int, total: int) -> str:
    return f"data-{index:05d}-of-{total:05d}.arrow"


def sha256_file(path: Path, chunk: int = 4 * 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fsync_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def config_hash(config: Any) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def shard_set_manifest(
    *,
    name: str,
    command: str,
    config: Any,
    shards: list[dict[str, Any]],
    counts: Mapping[str, Mapping[str, int]],
    rejects: Mapping[str, Mapping[str, int]],
    steps: list[dict[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``manifest.json`` of a shard set (also used by writers that write shards in parallel, like ``mix``)."""
    return {
        "kind": "slime-shard-set",
        "name": name,
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "slime", "version": __version__},
        "command": command,
        "config": config,
        "config_sha256": config_hash(config),
        "num_rows": sum(s["rows"] for s in shards),
        "shards": shards,
        "counts": {key: dict(sorted(counter.items())) for key, counter in counts.items()},
        "rejects": {
            "total": sum(sum(r.values()) for r in rejects.values()),
            "by_step": {step: dict(sorted(reasons.items())) for step, reasons in sorted(rejects.items())},
        },
        "steps": steps,
        **(extra or {}),
    }


class ShardWriter:
    """Turn a stream of records (and rejects) into a shard set. Use as a context manager.

    Records are validated, buffered into Arrow record batches of ``BATCH_ROWS`` rows and
    appended to the current shard until it would pass ``max_shard_bytes`` or
    ``max_shard_rows``. Shards are written under temporary names and renamed into place only
    when the whole stream has been written; ``manifest.json`` comes last.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        command: str | None = None,
        config: Any = None,
        max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        max_shard_rows: int = DEFAULT_MAX_SHARD_ROWS,
        name: str | None = None,
    ) -> None:
        if max_shard_bytes <= 0 or max_shard_rows <= 0:
            raise ValueError("max_shard_bytes and max_shard_rows must be positive")
        self.out_dir = Path(out_dir)
        self.command = command if command is not None else " ".join(["slime-data", *sys.argv[1:]])
        self.config = config
        self.max_shard_bytes = max_shard_bytes
        self.max_shard_rows = max_shard_rows
        self.name = name or self.out_dir.name
        self.step_counts: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        self.counts: dict[str, Counter[str]] = {"source": Counter(), "split": Counter(), "task": Counter()}
        self.text_only: Counter[str] = Counter()  # rows without an image, by source (counts["text_only"] when any)
        self.rejects: dict[str, Counter[str]] = defaultdict(Counter)
        self._buffer: list[Record] = []
        self._buffer_bytes = 0
        self._shards: list[dict[str, Any]] = []  # {"tmp": Path, "rows": int}
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._sink: pa.OSFile | None = None
        self._shard_rows = 0
        self._shard_bytes = 0
        self._rejects_file = None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> ShardWriter:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # A stale manifest would make a half-rewritten folder look complete.
        (self.out_dir / MANIFEST).unlink(missing_ok=True)
        for stale in self.out_dir.glob(".data-*.arrow.tmp"):
            stale.unlink()
        self._rejects_tmp = self.out_dir / f".{REJECTS}.tmp"
        self._rejects_file = open(self._rejects_tmp, "w", encoding="utf-8")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self._abort()

    def add(self, item: Record | Reject) -> None:
        if isinstance(item, Reject):
            self.rejects[item.step][item.reason] += 1
            self._rejects_file.write(json.dumps(item.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
            return
        validate_record(item)
        self.counts["source"][item.source] += 1
        self.counts["split"][item.split] += 1
        self.counts["task"][item.task] += 1
        if item.image is None:
            self.text_only[item.source] += 1
        self._buffer.append(item)
        self._buffer_bytes += len(item.image.bytes or b"") if item.image else 0
        if len(self._buffer) >= BATCH_ROWS or self._buffer_bytes >= BATCH_BYTES:
            self._flush()

    def add_all(self, items: Iterable[Record | Reject]) -> None:
        for item in items:
            self.add(item)

    # -- shards ------------------------------------------------------------------------
    def _flush(self) -> None:
        if not self._buffer:
            return
        table = records_to_table(self._buffer)
        self._buffer, self._buffer_bytes = [], 0
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            self._write_batch(batch)

    def _write_batch(self, batch: pa.RecordBatch) -> None:
        size = batch.nbytes
        full = self._writer is not None and (
            self._shard_rows + batch.num_rows > self.max_shard_rows or self._shard_bytes + size > self.max_shard_bytes
        )
        if full:
            self._close_shard()
        if batch.num_rows > self.max_shard_rows - self._shard_rows:
            # Split so that no shard passes the row limit.
            room = self.max_shard_rows - self._shard_rows
            self._write_batch(batch.slice(0, room))
            self._write_batch(batch.slice(room))
            return
        if self._writer is None:
            self._open_shard()
        self._writer.write_batch(batch)
        self._shard_rows += batch.num_rows
        self._shard_bytes += size
        self._shards[-1]["rows"] = self._shard_rows

    def _open_shard(self) -> None:
        tmp = self.out_dir / f".data-{len(self._shards):05d}.arrow.tmp"
        self._sink = pa.OSFile(str(tmp), "wb")
        self._writer = pa.ipc.new_file(self._sink, ARROW_SCHEMA)
        self._shards.append({"tmp": tmp, "rows": 0})
        self._shard_rows = self._shard_bytes = 0

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.flush()
        fd = os.open(self._shards[-1]["tmp"], os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._sink.close()
        self._writer = self._sink = None

    # -- finish ------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        self._flush()
        self._close_shard()
        if not self._shards:  # an empty set still has one (empty) shard, so readers see the schema
            self._open_shard()
            self._close_shard()
        self._rejects_file.flush()
        os.fsync(self._rejects_file.fileno())
        self._rejects_file.close()

        total = len(self._shards)
        keep = {shard_name(i, total) for i in range(total)}
        for old in self.out_dir.glob("data-*-of-*.arrow"):
            if old.name not in keep:
                old.unlink()
        shards = []
        for i, shard in enumerate(self._shards):
            final = self.out_dir / shard_name(i, total)
            os.replace(shard["tmp"], final)
            shards.append(
                {"file": final.name, "rows": shard["rows"], "bytes": final.stat().st_size, "sha256": sha256_file(final)}
            )
        os.replace(self._rejects_tmp, self.out_dir / REJECTS)

        manifest = self.manifest(shards)
        fsync_write(self.out_dir / CARD, render_card(manifest).encode("utf-8"))
        fsync_write(self.out_dir / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode("utf-8"))
        return manifest

    def manifest(self, shards: list[dict[str, Any]]) -> dict[str, Any]:
        counts = {**self.counts, "text_only": self.text_only} if self.text_only else self.counts
        return shard_set_manifest(
            name=self.name,
            command=self.command,
            config=self.config,
            shards=shards,
            counts=counts,
            rejects=self.rejects,
            steps=self.step_counts,
            extra=self.extra,
        )

    def _abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
        if self._rejects_file is not None and not self._rejects_file.closed:
            self._rejects_file.close()
        for shard in self._shards:
            Path(shard["tmp"]).unlink(missing_ok=True)
        Path(self._rejects_tmp).unlink(missing_ok=True)


def write_shard_set(out_dir: str | Path, items: Iterable[Record | Reject], **kwargs: Any) -> dict[str, Any]:
    """Write a whole stream as a shard set and return its manifest."""
    with ShardWriter(out_dir, **kwargs) as writer:
        writer.add_all(items)
    return json.loads((Path(out_dir) / MANIFEST).read_text())


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


class ShardSetError(ValueError):
    """A folder that is not a complete, readable shard set (the message says why)."""


def load_manifest(path: str | Path) -> tuple[Path, dict[str, Any]]:
    path = Path(path)
    folder = path.parent if path.name == MANIFEST else path
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise ShardSetError(f"{folder} is not a folder")
    if not manifest_path.is_file():
        raise ShardSetError(f"{folder} has no {MANIFEST}: not a shard set, or its build did not finish")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ShardSetError(f"{manifest_path} is not valid JSON: {err}") from None
    if manifest.get("kind") != "slime-shard-set":
        raise ShardSetError(f"{manifest_path} is not a shard-set manifest (kind={manifest.get('kind')!r})")
    return folder, manifest


class ShardSet:
    """A shard set opened by memory map: ``len``, iteration, and ``[i]`` by global row index."""

    def __init__(self, path: str | Path) -> None:
        self.root, self.manifest = load_manifest(path)
        self.shard_paths = [self.root / s["file"] for s in self.manifest["shards"]]
        for shard in self.shard_paths:
            if not shard.is_file():
                raise ShardSetError(f"{shard} is listed in the manifest but missing")
        self._tables: list[pa.Table | None] = [None] * len(self.shard_paths)
        rows = [s["rows"] for s in self.manifest["shards"]]
        self._starts = [sum(rows[:i]) for i in range(len(rows))]
        self._len = sum(rows)

    def __len__(self) -> int:
        return self._len

    def table(self, shard: int) -> pa.Table:
        """Shard ``shard`` as a zero-copy table over a memory map."""
        if self._tables[shard] is None:
            source = pa.memory_map(str(self.shard_paths[shard]), "r")
            self._tables[shard] = pa.ipc.open_file(source).read_all()
        return self._tables[shard]

    def locate(self, index: int) -> tuple[int, int]:
        """Global row index -> (shard, row within shard)."""
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"row {index} out of range for a shard set of {self._len} rows")
        shard = bisect.bisect_right(self._starts, index) - 1
        return shard, index - self._starts[shard]

    def row(self, index: int, columns: list[str] | None = None) -> dict[str, Any]:
        shard, local = self.locate(index)
        table = self.table(shard)
        if columns is not None:
            table = table.select(columns)
        return table.slice(local, 1).to_pylist()[0]

    def __getitem__(self, index: int) -> Record:
        return Record.from_row(self.row(index))

    def iter_batches(self, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream record batches shard by shard; memory stays bounded by one batch."""
        for path in self.shard_paths:
            with pa.memory_map(str(path), "r") as source:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    batch = reader.get_batch(i)
                    yield batch.select(columns) if columns is not None else batch

    def __iter__(self) -> Iterator[Record]:
        for batch in self.iter_batches():
            for row in batch.to_pylist():
                yield Record.from_row(row)

    def rejects(self) -> Iterator[dict[str, Any]]:
        path = self.root / REJECTS
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                for line in f:
                    yield json.loads(line)


def check_shard_file(file: Path, expected: dict[str, Any], verify_sha256: bool = True) -> tuple[list[str], int]:
    """Check one shard against its manifest entry (bytes, sha256 unless told not to, Arrow footer and
    schema, rows).

    Returns the problems (each prefixed by the file name) and the rows it holds (0 if unreadable).
    """
    name = file.name
    if not file.is_file():
        return [f"{name}: missing"], 0
    if file.stat().st_size != expected.get("bytes"):
        return [f"{name}: {file.stat().st_size} bytes, manifest says {expected.get('bytes')}"], 0
    if verify_sha256 and sha256_file(file) != expected.get("sha256"):
        return [f"{name}: sha256 does not match the manifest"], 0
    try:
        with pa.memory_map(str(file), "r") as source:
            reader = pa.ipc.open_file(source)
            check_schema(reader.schema)
            rows = sum(reader.get_batch(b).num_rows for b in range(reader.num_record_batches))
    except (pa.ArrowException, OSError, RecordError) as err:  # a damaged footer raises OSError
        return [f"{name}: unreadable Arrow file: {err}"], 0
    if rows != expected.get("rows"):
        return [f"{name}: {rows} rows, manifest says {expected.get('rows')}"], rows
    return [], rows


def row_id_problems(shard_set: ShardSet, shown: int = 5) -> list[str]:
    """Rows whose id or source could name another folder (``record.id_problem``); the first few, then a count."""
    problems, bad = [], 0
    for batch in shard_set.iter_batches(columns=["id", "source"]):
        for row_id, source in zip(batch.column("id").to_pylist(), batch.column("source").to_pylist(), strict=True):
            problem = id_problem(row_id, source)
            if problem is not None:
                bad += 1
                if len(problems) < shown:
                    problems.append(problem)
    if bad > shown:
        problems.append(f"... {bad - shown} more row(s) with a bad id or source")
    return problems


def validate_shard_set(path: str | Path) -> list[str]:
    """Every problem found with a shard set; empty when schema, row counts and sha256 check out."""
    try:
        root, manifest = load_manifest(path)
    except ShardSetError as err:
        return [str(err)]
    problems = []
    if manifest.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"manifest schema_version {manifest.get('schema_version')!r}, expected {SCHEMA_VERSION!r}")
    total = 0
    shards = manifest.get("shards") or []
    if not shards:
        problems.append("manifest lists no shards")
    for i, shard in enumerate(shards):
        expected_name = shard_name(i, len(shards))
        if shard.get("file") != expected_name:
            problems.append(f"shard {i} is named {shard.get('file')!r}, expected {expected_name!r}")
        shard_problems, rows = check_shard_file(root / str(shard.get("file")), shard)
        problems += shard_problems
        total += rows
    if not problems and total != manifest.get("num_rows"):
        problems.append(f"{total} rows in the shards, manifest num_rows says {manifest.get('num_rows')}")
    if not problems:
        problems += row_id_problems(ShardSet(root))
    for extra in sorted(set(p.name for p in root.glob("data-*-of-*.arrow")) - {s.get("file") for s in shards}):
        problems.append(f"{extra}: a shard file the manifest does not list")
    return problems
