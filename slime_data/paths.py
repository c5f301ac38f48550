"""Where the repository's data folders are (recipes under ``pipelines/``, mix manifests under ``manifests/``)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
PIPELINES_DIR = REPO_ROOT / "pipelines"
MANIFESTS_DIR = REPO_ROOT / "manifests"


def expand_path(path: str, base: Path | None = None, data_dir: Path | None = None) -> Path:
    """A path from a recipe: ``{package}`` expands to the installed ``slime_data`` folder (the
    bundled corpus), ``{data}`` to ``data_dir``, the folder holding the build's output (``data``
    for the default ``--out data/NAME``); a relative path is taken from ``base`` (``--root``) or
    the working directory."""
    text = path.replace("{package}", str(PACKAGE_DIR)).replace("{data}", str(data_dir or Path("data")))
    expanded = Path(text).expanduser()
    return expanded if expanded.is_absolute() else (base or Path.cwd()) / expanded
