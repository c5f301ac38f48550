"""slime_model: SliME (arXiv 2406.08487) as a transformers model, its processor and checkpoint conversion.

Public API (imported lazily so that `slime-model --help` does not load torch):
`SliMEConfig`, `SliMEModel`, `SliMEForConditionalGeneration`, `SliMEProcessor`, `tiny_tokenizer`,
`PARAMETER_GROUPS`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SliMEConfig": "slime_model.configuration",
    "SliMEModel": "slime_model.modeling",
    "SliMEForConditionalGeneration": "slime_model.modeling",
    "PARAMETER_GROUPS": "slime_model.modeling",
    "SliMEProcessor": "slime_model.processing",
    "tiny_tokenizer": "slime_model.tiny",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'slime_model' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
