"""The optional ``group`` step: QAs about one image become one multi-turn conversation."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from slime_data.images import content_hash
from slime_data.record import ImageRef, Record, Reject
from slime_data.runner import apply_steps
from slime_data.shards import ShardSet, write_shard_set
from slime_data.steps.group import Group


def png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buffer, "PNG")
    return buffer.getvalue()


def qa(n: int, color: str, source: str = "chartqa") -> Record:
    data = png(color)
    return Record(
        id=f"{source}/{n}",
        source=source,
        split="train",
        task="chart",
        conversations=[{"from": "human", "value": f"<image>\nquestion {n}?"}, {"from": "gpt", "value": f"answer {n}"}],
        image=ImageRef(bytes=data, path=f"{color}.png"),
        width=32,
        height=24,
        image_hash=content_hash(data),
        phash=0,
        answer=f"answer {n}",
    )


def test_questions_about_one_image_merge_and_counts_balance(tmp_path: Path) -> None:
    rows = [
        qa(0, "red"),
        qa(1, "blue"),
        qa(2, "red"),
        qa(3, "red"),
        qa(4, "green", source="dvqa"),
        qa(5, "red", source="dvqa"),
    ]
    write_shard_set(tmp_path, rows)
    step = Group(max_turns=2)
    drops = step.plan(ShardSet(tmp_path))
    assert drops == {"chartqa/2": ("grouped", "merged into chartqa/0")}  # chartqa/3 starts a new group of one
    stream, (count,) = apply_steps(iter(ShardSet(tmp_path)), [step])
    out = list(stream)
    merged = next(r for r in out if isinstance(r, Record) and r.id == "chartqa/0")
    assert [t["value"] for t in merged.conversations] == ["<image>\nquestion 0?", "answer 0", "question 2?", "answer 2"]
    assert merged.meta["grouped"] == [{"id": "chartqa/2", "answer": "answer 2", "choices": None, "rationale": None}]
    assert [r.id for r in out if isinstance(r, Reject)] == ["chartqa/2"]
    assert count.rows_in == 6 and count.rows_out == 5 and count.rejected == 1
    assert step.stats == {"groups": 1, "rows_merged": 1}
