"""The dataset card (`README.md` of a shard set): a Hugging Face YAML header (features, splits) and the
manifest's counts, rejects and provenance in prose and tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_CARD_FEATURES = """\
  features:
  - name: id
    dtype: string
  - name: source
    dtype: string
  - name: split
    dtype: string
  - name: conversations
    list:
    - name: from
      dtype: string
    - name: value
      dtype: string
  - name: task
    dtype: string
  - name: image
    dtype: image
  - name: width
    dtype: int32
  - name: height
    dtype: int32
  - name: image_hash
    dtype: string
  - name: phash
    dtype: uint64
  - name: answer
    dtype: string
  - name: choices
    sequence: string
  - name: rationale
    dtype: string
  - name: meta
    dtype: string
"""


def _text_only_section(text_only: Mapping[str, int], num_rows: int) -> list[str]:
    """Why rows without an image are in a high-resolution set (and how to leave them out)."""
    if not text_only:
        return []
    where = ", ".join(f"{source}: {n}" for source, n in text_only.items())
    return [
        "## Text-only rows",
        "",
        f"{sum(text_only.values())} of {num_rows} rows have no image ({where}). They are kept on purpose. The "
        "paper's ScienceQA share of the sophisticated set (12.7K) is the whole ScienceQA train split (12,726 "
        "problems), and about half of ScienceQA's problems have no image context (Lu et al., 2022), so the "
        "paper's set holds text-only science questions with their lectures and solutions as rationales. They "
        "train step-by-step reasoning in the same conversation format as the image rows and carry no image "
        "tokens in training; the resolution and quality filters do not apply to them (there is no image to "
        "judge), so they are not evidence of low resolution.",
        "",
        "To leave them out: `ds.filter(lambda row: row['image'] is not None)`.",
        "",
    ]


def render_card(manifest: dict[str, Any]) -> str:
    """A dataset card: Hugging Face YAML header (data files, features) + counts from the manifest."""
    counts = manifest["counts"]
    lines = [
        "---",
        "license: other",
        "task_categories:",
        "- visual-question-answering",
        "- image-to-text",
        "language:",
        "- en",
        "tags:",
        "- slime",
        "- multimodal",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data-*.arrow",
        "dataset_info:",
        _CARD_FEATURES.rstrip("\n"),
        "  splits:",
        "  - name: train",
        f"    num_examples: {manifest['num_rows']}",
        "---",
        "",
        f"# {manifest['name']}",
        "",
        f"Made by slime {manifest['tool']['version']} with `{manifest['command']}`.",
        f"{manifest['num_rows']} rows in {len(manifest['shards'])} Arrow shard(s); "
        f"{manifest['rejects']['total']} rows rejected (see `rejects.jsonl`).",
        "",
        "Licences follow the sources (each row's `meta.license`); check them before redistribution.",
        "",
    ]
    for key in ("source", "task", "split"):
        lines += [f"## Rows by {key}", "", f"| {key} | rows |", "|---|---:|"]
        lines += [f"| {name} | {n} |" for name, n in counts[key].items()]
        lines.append("")
    lines += _text_only_section(counts.get("text_only", {}), manifest["num_rows"])
    if manifest["rejects"]["by_step"]:
        lines += ["## Rejects by step and reason", "", "| step | reason | rows |", "|---|---|---:|"]
        for step, reasons in manifest["rejects"]["by_step"].items():
            lines += [f"| {step} | {reason} | {n} |" for reason, n in reasons.items()]
        lines.append("")
    lines += [
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("arrow", data_files="data-*.arrow", split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)
