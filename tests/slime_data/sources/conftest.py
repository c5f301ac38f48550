"""Fixtures shared by the source adapter tests: where the samples are, writable copies, reading
a split into checked records and rejects."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from slime_data.record import Record, Reject, validate_record
from slime_data.sources.base import SourceAdapter

REPO = Path(__file__).resolve().parents[3]


@dataclass
class AdapterOutput:
    records: list[Record] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    @property
    def reasons(self) -> dict[str, str]:
        """Reject id -> reason."""
        return {r.id: r.reason for r in self.rejects}

    def by_id(self, record_id: str) -> Record:
        return next(r for r in self.records if r.id == record_id)


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """Real excerpts of the releases, kept beside the clone (CI checks ``../shared`` out there too)."""
    return (REPO / "../shared/real-samples").resolve()


@pytest.fixture(scope="session")
def source_fixtures() -> Path:
    return REPO / "tests" / "fixtures" / "sources"


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[..., Path]:
    """``copy_of(src, name=None)`` -> a writable copy of the tree ``src`` (the shared one is read-only)."""

    def copy(src: Path, name: str | None = None) -> Path:
        dst = tmp_path / (name or src.name)
        shutil.copytree(src, dst, copy_function=shutil.copyfile)
        for folder, _, _ in os.walk(dst):
            os.chmod(folder, 0o755)
        return dst

    return copy


@pytest.fixture
def read_split() -> Callable[[SourceAdapter, Path, str], AdapterOutput]:
    """``read_split(adapter, root, split)``: locate, read, and check every item against the contract."""

    def read(adapter: SourceAdapter, root: Path, split: str) -> AdapterOutput:
        output = AdapterOutput()
        for item in adapter.read(adapter.locate(root), split):
            if isinstance(item, Reject):
                assert item.step == "source" and item.source == adapter.name
                assert item.reason and item.detail and "\n" not in item.detail, item
                output.rejects.append(item)
            else:
                validate_record(item)
                assert item.source == adapter.name and item.split == split
                assert item.meta["license"] == adapter.license and item.meta["prompt_version"]
                assert item.id == f"{adapter.name}/{item.meta['native_id']}" or item.id.startswith(
                    f"{adapter.name}/{item.meta['native_id']}/"
                )
                if item.image is not None:
                    assert item.image.bytes is None and (adapter.locate(root) / item.image.path).is_file()
                output.records.append(item)
        assert len(set(output.ids)) == len(output.ids), "record ids must be unique"
        return output

    return read
