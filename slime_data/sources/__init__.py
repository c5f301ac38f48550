"""Source adapters, one module per public dataset; importing this package registers them all.

``REGISTRY`` maps a source name to its adapter (see ``slime_data.sources.base``).
"""

from slime_data.sources import (  # noqa: F401  (imported to register the adapters)
    ai2d,
    arxivqa,
    chartqa,
    dvqa,
    geometry3k,
    geoqa3,
    geoqa_plus,
    llava_pretrain,
    mathvision,
    scienceqa,
    sharegpt4v,
    synth,
    tabmwp,
    tqa,
)
from slime_data.sources.base import REGISTRY, SourceAdapter, SourceNotFound

__all__ = ["REGISTRY", "SourceAdapter", "SourceNotFound"]
