"""``manifests/mix.json``: what a mix wrote, validated against ``manifests/mix.schema.json`` on every read.

Paths inside are relative to the manifest, so a checkout can move as a whole. Readers (the
trainer, ``inspect``, ``validate``) go through ``load_mix_manifest``, which rejects a manifest
that breaks the schema with a message naming the offending field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow as pa
import pyarrow.compute as pc
from jsonschema.exceptions import best_match

from slime_data.mix.references import SEPARATOR
from slime_data.paths import MANIFESTS_DIR
from slime_data.shards import check_shard_file, fsync_write, sha256_file

MIX_KIND = "slime-mix"
MIX_VERSION = "1.0"
SCHEMA_PATH = MANIFESTS_DIR / "mix.schema.json"


class MixManifestError(ValueError):
    """A mix manifest that is missing, not JSON, or breaks the schema (the message names the field)."""


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(data: Any) -> list[str]:
    """Every schema violation as 'field: message', most relevant first ('$' is the whole manifest)."""
    errors = list(_validator().iter_errors(data))
    if not errors:
        return []
    first = best_match(errors)
    rest = sorted((e for e in errors if e is not first), key=lambda e: e.json_path)
    return [f"{e.json_path}: {e.message}" for e in [first, *rest]]


def relative(path: Path, manifest_path: Path) -> str:
    """``path`` relative to the manifest's folder, with forward slashes."""
    return Path(os.path.relpath(Path(path).resolve(), Path(manifest_path).resolve().parent)).as_posix()


@dataclass
class MixManifest:
    path: Path
    data: dict[str, Any]

    @property
    def stages(self) -> list[str]:
        """Stage names in training order (the recipe's order)."""
        return list(self.data["stages"])

    def resolve(self, relative_path: str) -> Path:
        return (self.path.parent / relative_path).resolve()

    def stage_dir(self, stage: str) -> Path:
        """The stage's shard-set folder (a regular shard set: ``ShardSet(manifest.stage_dir("sft"))``)."""
        return self.resolve(self._stage(stage)["path"])

    def shard_paths(self, stage: str) -> list[Path]:
        return [self.resolve(s["file"]) for s in self._stage(stage)["shards"]]

    def _stage(self, stage: str) -> dict[str, Any]:
        if stage not in self.data["stages"]:
            raise KeyError(f"{self.path} has no stage {stage!r}; stages: {', '.join(self.stages)}")
        return self.data["stages"][stage]


def is_mix_manifest(path: Path) -> bool:
    """A JSON file (not a shard set's own manifest.json) that says it is a mix manifest."""
    if not path.is_file() or path.suffix != ".json" or path.name == "manifest.json":
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("kind") == MIX_KIND
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return False


def load_mix_manifest(path: str | Path) -> MixManifest:
    path = Path(path)
    if not path.is_file():
        raise MixManifestError(f"{path} not found: make it with `slime-data mix --target 2M`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MixManifestError(f"{path} is not valid JSON: {err}") from None
    problems = schema_errors(data)
    if problems:
        raise MixManifestError(f"{path} breaks {SCHEMA_PATH.name}: {problems[0]}")
    return MixManifest(path, data)


def write_mix_manifest(path: Path, data: dict[str, Any]) -> None:
    """Validate, then write atomically (the last file a mix writes)."""
    problems = schema_errors(data)
    if problems:
        raise AssertionError(f"the mix manifest being written breaks the schema: {problems[0]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fsync_write(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def _shard_problems(manifest: MixManifest, stage: str, shard: dict[str, Any]) -> tuple[list[str], int]:
    problems, rows = check_shard_file(manifest.resolve(shard["file"]), shard)
    # Name the file as the manifest does (paths are relative to it), under its stage.
    return [f"{stage}: {shard['file']}: {p.split(': ', 1)[1]}" for p in problems], rows


def validate_mix(path: str | Path) -> list[str]:
    """Every problem with a mix: schema, shard files (presence, bytes, sha256, Arrow schema, rows), counts."""
    try:
        manifest = load_mix_manifest(path)
    except MixManifestError as err:
        return [str(err)]
    data, problems = manifest.data, []
    total = 0
    for stage, info in data["stages"].items():
        rows, damaged = 0, False
        for shard in info["shards"]:
            found, n = _shard_problems(manifest, stage, shard)
            problems += found
            damaged = damaged or bool(found)
            rows += n
        if rows != info["rows"] and not damaged:
            problems.append(f"{stage}: {rows} rows in its shards, manifest says {info['rows']}")
        from_sources = sum(s["rows_out"] for s in info["sources"].values())
        if from_sources != info["rows"]:
            problems.append(f"{stage}: its sources give {from_sources} rows, the stage says {info['rows']}")
        for name, source in info["sources"].items():
            repeats = source["repeats"]
            if source["rows_in"] != source["dropped"] + source["available"]:
                problems.append(
                    f"{stage}/{name}: rows_in {source['rows_in']} != dropped "
                    f"{source['dropped']} + available {source['available']}"
                )
            if source["rows_out"] != repeats["whole"] * source["available"] + repeats["remainder"]:
                problems.append(
                    f"{stage}/{name}: rows_out {source['rows_out']} != {repeats['whole']} "
                    f"x {source['available']} + {repeats['remainder']}"
                )
            if source["rows_out"] > repeats["max"] * source["available"]:
                problems.append(
                    f"{stage}/{name}: {source['rows_out']} rows out of "
                    f"{source['available']} passes max_repeats {repeats['max']}"
                )
        total += info["rows"]
    if total != data["target"]:
        problems.append(f"the stages hold {total} rows, the target is {data['target']}")
    if data["recipe"].get("images") == "reference" and not problems:
        # The rows' images live in the inputs: they must be the very inputs the mix was made from.
        problems += input_drift(manifest) or [
            p for stage in data["stages"] for p in reference_problems(manifest, stage)
        ]
    return problems


def reference_problems(manifest: MixManifest, stage: str) -> list[str]:
    """Pointers of a by-reference stage that lead nowhere: a missing input shard, or a row past its end."""
    stage_dir = manifest.stage_dir(stage)
    rows_of: dict[str, int | None] = {}
    problems = []
    for shard in manifest.shard_paths(stage):
        images = pa.ipc.open_file(pa.memory_map(str(shard), "r")).read_all().column("image")
        paths = pc.struct_field(images, "path").drop_null().to_pylist()
        for path in sorted(set(paths)):
            file, _, row = path.rpartition(SEPARATOR)
            if file not in rows_of:
                target = stage_dir / file
                rows_of[file] = _rows(target) if target.is_file() else None
            if rows_of[file] is None:
                problems.append(f"{stage}: {shard.name}: image pointer {path}: {file} is missing")
            elif not row.isdigit() or int(row) >= rows_of[file]:
                problems.append(
                    f"{stage}: {shard.name}: image pointer {path} is past the end of {file} ({rows_of[file]} rows)"
                )
    return problems


def _rows(path: Path) -> int:
    reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
    return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def input_drift(manifest: MixManifest) -> list[str]:
    """Inputs that are gone or changed since the mix was made (a note, not an error: the mix stands alone)."""
    notes = []
    for item in manifest.data["inputs"]:
        path = manifest.resolve(item["path"])
        if not path.is_file():
            notes.append(f"input {item['path']} is no longer there")
        elif sha256_file(path) != item["sha256"]:
            notes.append(f"input {item['path']} changed since this mix was made")
    return notes
