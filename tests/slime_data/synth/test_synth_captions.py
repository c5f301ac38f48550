"""The caption set: the LLaVA-558K format exactly, read by the ``llava_pretrain`` adapter, and
captions that state what the generating data says."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from PIL import Image

from slime_data.record import Record, validate_record
from slime_data.sources import REGISTRY
from slime_data.synth import FIGURE_KINDS
from slime_data.synth.captions import BRIEF_PROMPTS


def test_caption_file_is_in_the_558k_format(synth_dir: Path) -> None:
    folder = synth_dir / "LLaVA-Pretrain"
    entries = json.loads((folder / "blip_laion_cc_sbu_558k.json").read_text(encoding="utf-8"))
    assert isinstance(entries, list) and len(entries) == 6
    kinds = ["chart", "table", "document", "geometry", "hatching", "chart"]  # round-robin over the kinds
    for index, (kind, entry) in enumerate(zip(kinds, entries, strict=True)):
        assert set(entry) == {"id", "image", "conversations"}
        assert re.fullmatch(r"\d{9}", entry["id"]) and int(entry["id"]) == index
        assert entry["image"] == f"{entry['id'][:5]}/{entry['id']}.jpg"
        human, gpt = entry["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt" and set(human) == set(gpt) == {"from", "value"}
        instruction, placeholder = human["value"].rsplit("\n", 1)
        assert placeholder == "<image>" and instruction in BRIEF_PROMPTS
        assert gpt["value"] == gpt["value"].lower() and "<image>" not in gpt["value"]
        with Image.open(folder / "images" / entry["image"]) as image:
            # hatching pages are two tiny-model crops a side (synth/hatching.py), the others high-resolution
            assert image.format == "JPEG" and max(image.size) >= (224 if kind == "hatching" else 1344)
    words = {
        "chart": " chart ",
        "table": "a table",
        "document": "text page",
        "geometry": "geometry",
        "hatching": "panel",
    }
    assert all(words[kind] in entry["conversations"][1]["value"] for kind, entry in zip(kinds, entries))


def test_llava_pretrain_adapter_reads_the_caption_set(synth_dir: Path) -> None:
    adapter = REGISTRY["llava_pretrain"]
    assert adapter.locate(synth_dir) == synth_dir / "LLaVA-Pretrain"
    items = list(adapter.read(synth_dir, "train"))
    assert len(items) == 6 and all(isinstance(i, Record) for i in items)
    for record in items:
        validate_record(record)
        assert record.task == "caption" and record.conversations[0]["value"].startswith("<image>\n")
        assert (synth_dir / "LLaVA-Pretrain" / record.image.path).is_file()


def test_captions_state_the_generating_data() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        chart = FIGURE_KINDS["chart"].sample(rng)
        caption = FIGURE_KINDS["chart"].describe(chart)
        assert caption.startswith(f"a {chart['chart']} chart") and caption == caption.lower()
        assert all(f"{s['name'].lower()} in {s['colour']}" in caption for s in chart["series"])
        flat = [v for row in chart["values"] for v in row]
        assert f"values range from {min(flat)} to {max(flat)}" in caption

        table = FIGURE_KINDS["table"].sample(rng)
        caption = FIGURE_KINDS["table"].describe(table)
        assert f"with {len(table['rows'])} rows" in caption and table["rows"][0]["label"].lower() in caption

        document = FIGURE_KINDS["document"].sample(rng)
        caption = FIGURE_KINDS["document"].describe(document)
        assert f"{len(document['sections'])} numbered sections" in caption
        assert f"page {document['page']} of {document['pages']}" in caption

        sheet = FIGURE_KINDS["geometry"].sample(rng)
        caption = FIGURE_KINDS["geometry"].describe(sheet)
        assert f"with {len(sheet['panels'])} figures" in caption
        assert all(f"figure {k + 1}," in caption for k in range(len(sheet["panels"])))
