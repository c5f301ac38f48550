"""Reading recipe YAML into typed, validated configs (build, mix and training recipes alike).

Every mistake becomes one ``ValueError`` line that names the file, the place and the key —
``pipelines/x.yaml: steps.2.min_short_sid: unknown key 'min_short_sid'`` — which the CLIs print
without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def load_yaml(path: Path) -> Any:
    """``yaml.safe_load`` of the file, with errors that name it and quote the line with a caret."""
    loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))  # text, not a stream: errors quote the line
    loader.name = str(path)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The YAML file at ``path`` as a mapping; ``what`` names the kind of recipe in errors."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        raw = load_yaml(path)
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a {what} is a mapping of keys to values")
    return raw


def validation_message(err: ValidationError) -> str:
    """The first error as ``place: message``, with unknown keys named."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = f"unknown key {first['loc'][-1]!r}" if first["type"] == "extra_forbidden" else first["msg"]
    return f"{where}: {message}"


def load_recipe_file(file: str | Path, model: type[Model], what: str, /, **extra: Any) -> tuple[Model, dict[str, Any]]:
    """Parse and validate ``file`` as ``model`` (``extra`` fields added); returns it and the raw mapping."""
    file = Path(file)
    raw = read_yaml_mapping(file, what)
    try:
        return model(**raw, **extra), raw
    except ValidationError as err:
        raise ValueError(f"{file}: {validation_message(err)}") from None
