"""LLaVA-Pretrain LCS-558K (liuhaotian/LLaVA-Pretrain): BLIP captions of LAION/CC/SBU images.

The data of SliME's stages 1a, 1b and 2. Conversations are kept as published (one short
"describe" instruction, one caption), with ``<image>`` moved to the start of the human turn
as LLaVA's own preprocessing does. The 558K-record JSON list is streamed, not loaded whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slime_data.record import Record, Reject
from slime_data.sources.base import SourceAdapter, register
from slime_data.sources.common import (
    image_ref,
    iter_json_list,
    llava_conversation,
    locate_dataset,
    make_record,
    native_id_of,
    record_or_reject,
    require,
    require_object,
    require_text,
)

ANNOTATIONS = "blip_laion_cc_sbu_558k.json"
SPLITS = ("train",)


@register
class LLaVAPretrain(SourceAdapter):
    name = "llava_pretrain"
    license = "LAION/CC/SBU terms (images); BLIP captions"
    default_splits = ("train",)
    layout = """\
<root>/LLaVA-Pretrain/               (or that folder itself)
  blip_laion_cc_sbu_558k.json        [{"id", "image": "00453/004539375.jpg", "conversations": [...]}, ...]
  images/<00453>/<id>.jpg            images.zip unpacked (or the <00453>/ folders beside the JSON)"""

    def locate(self, root: Path) -> Path:
        return locate_dataset(self.name, root, ("", "LLaVA-Pretrain"), (ANNOTATIONS,))

    def splits(self, root: Path) -> list[str]:
        self.locate(root)
        return list(SPLITS)

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        self.require_split(split, SPLITS)
        image_dir = "images/" if (root / "images").is_dir() else ""
        for index, item in enumerate(iter_json_list(root / ANNOTATIONS)):
            native_id = native_id_of(item, index, allow_int=True)
            yield record_or_reject(self, native_id, lambda: self._record(root, split, native_id, image_dir, item))

    def _record(self, root: Path, split: str, native_id: str, image_dir: str, item: Any) -> Record:
        item = require_object(item)
        require(item, "id", (str, int))
        image = image_ref(root, image_dir + require_text(item, "image"))
        conversations = llava_conversation(item.get("conversations"), has_image=True)
        return make_record(self, native_id, split, task="caption", conversations=conversations, image=image)
