"""Where the repository's data folders are (recipes under ``pipelines/``, mix manifests under ``manifests/``)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PIPELINES_DIR = REPO_ROOT / "pipelines"
MANIFESTS_DIR = REPO_ROOT / "manifests"
