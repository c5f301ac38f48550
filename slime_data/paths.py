"""Where the repository's data folders are (recipes under ``pipelines/``, mix manifests under ``manifests/``)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
PIPELINES_DIR = REPO_ROOT / "pipelines"
MANIFESTS_DIR = REPO_ROOT / "manifests"
