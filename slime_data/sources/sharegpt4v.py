"""ShareGPT4V SFT mix (Lin-Chen/ShareGPT4V): LLaVA-1.5's mix665k with 23K GPT-4V captions.

Part of SliME's stage-3 data. Conversations are kept as published, ``<image>`` moved to the
start of the first human turn; items without an ``image`` key (ShareGPT text conversations)
become text-only records. Native ids repeat in this file, so the k-th repeat of an id (k ≥ 1,
in file order) gets the suffix ``/k``. The 665K-record JSON list is streamed.
"""

from __future__ import annotations

from collections import Counter
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
)

ANNOTATIONS = "sharegpt4v_mix665k_cap23k_coco-ap9k_lcs3k_sam9k_div2k.json"
SPLITS = ("train",)


@register
class ShareGPT4V(SourceAdapter):
    name = "sharegpt4v"
    license = "CC BY-NC 4.0 (annotations); images under their sources' terms"
    default_splits = ("train",)
    layout = f"""\
<root>/                            the data root: image paths in the JSON are relative to it
  sharegpt4v/{ANNOTATIONS}   (or the JSON directly in <root>)
  coco/train2017/  sam/images/  llava/llava_pretrain/images/  gqa/images/  ocr_vqa/images/
  textvqa/train_images/  vg/VG_100K/  vg/VG_100K_2/  share_textvqa/images/
  web-celebrity/images/  web-landmark/images/  wikiart/images/"""

    def locate(self, root: Path) -> Path:
        return locate_dataset(self.name, root, ("", "data"), (f"sharegpt4v/{ANNOTATIONS}", ANNOTATIONS))

    def splits(self, root: Path) -> list[str]:
        self.locate(root)
        return list(SPLITS)

    def read(self, root: Path, split: str) -> Iterator[Record | Reject]:
        root = self.locate(root)
        self.require_split(split, SPLITS)
        annotations = root / "sharegpt4v" / ANNOTATIONS
        if not annotations.is_file():
            annotations = root / ANNOTATIONS
        seen: Counter[str] = Counter()
        for index, item in enumerate(iter_json_list(annotations)):
            native_id = native_id_of(item, index, allow_int=True)
            repeat = seen[native_id]
            seen[native_id] += 1
            unique_id = f"{native_id}/{repeat}" if repeat else native_id
            yield record_or_reject(self, unique_id, lambda: self._record(root, split, native_id, repeat or None, item))

    def _record(self, root: Path, split: str, native_id: str, repeat: int | None, item: Any) -> Record:
        item = require_object(item)
        require(item, "id", (str, int))
        image_path = require(item, "image", str, optional=True)
        image = image_ref(root, image_path) if image_path is not None else None
        conversations = llava_conversation(item.get("conversations"), has_image=image is not None)
        return make_record(
            self, native_id, split, task="general", conversations=conversations, image=image, part=repeat
        )
