"""Source adapters: one module per public dataset, reading its native release layout.

An adapter turns native files into ``Record``s whose ``image`` is an ``ImageRef`` with ``path``
relative to the dataset root it found (``locate``) and ``bytes=None``; the ingest runner loads,
checks and hashes the image. A malformed native record becomes a ``Reject`` (step
``"source"``), never an exception. A path from an annotation file never leaves the dataset
root (``safe_relative_path``); symlinks the user made inside it are followed.
"""

from __future__ import annotations

import os
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from slime_data.record import Record, Reject

SOURCE_STEP = "source"


class SourceNotFound(FileNotFoundError):
    """The dataset's files are not where the adapter looked (the message names the paths)."""


class SourceAdapter(ABC):
    name: ClassVar[str]
    license: ClassVar[str]
    layout: ClassVar[str]  # the expected native layout, shown by `slime-data sources`
    default_splits: ClassVar[tuple[str, ...]]  # the split(s) SliME trained on

    @abstractmethod
    def locate(self, root: Path) -> Path:
        """Return the dataset's own folder given the release root or the inner folder."""

    @abstractmethod
    def splits(self, root: Path) -> list[str]:
        """Splits present under the located root."""

    @abstractmethod
    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        """Yield records (image path relative to ``root``) or rejects, in a stable order."""

    def require_split(self, split: str, present: list[str] | tuple[str, ...]) -> None:
        """Raise ``SourceNotFound`` naming the present splits when ``split`` is not one of them."""
        if split not in present:
            raise SourceNotFound(f"{self.name}: no split {split!r}; present: {', '.join(present)}")

    def reject(self, native_id: str, reason: str, detail: str = "") -> Reject:
        return Reject(id=f"{self.name}/{native_id}", source=self.name, step=SOURCE_STEP, reason=reason, detail=detail)


def safe_relative_path(relative: str) -> str | None:
    """``relative`` normalised lexically (``a/./b/../c`` -> ``a/c``); None when it is empty,
    absolute, holds a NUL or climbs above where it starts with ``..``.

    Paths read from annotation files are checked this way, by their text only: annotation
    content must not reach outside the dataset folder, but the user's own symlinks (an
    ``images/`` folder on another disk, the usual set-up) are followed like any other folder.
    """
    if not relative or "\x00" in relative or os.path.isabs(relative):
        return None
    normalised = posixpath.normpath(relative.replace(os.sep, "/"))
    if normalised in (".", "..") or normalised.startswith("../") or normalised.startswith("/"):
        return None
    return normalised


REGISTRY: dict[str, SourceAdapter] = {}


def register(cls: type[SourceAdapter]) -> type[SourceAdapter]:
    REGISTRY[cls.name] = cls()
    return cls
