"""The load_image step: fills image fields, turns bad images into counted rejects, keeps order."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from PIL import Image

from slime_data.images import content_hash, prepare_image
from slime_data.record import ImageRef, Record, Reject, validate_record
from slime_data.runner import apply_steps
from slime_data.shards import ShardSet, ShardWriter, validate_shard_set
from slime_data.steps.base import STEP_REGISTRY
from slime_data.steps.load_image import LoadImages
from tests.slime_data import image_faults as faults


def record(n: int, path: str | None = None, data: bytes | None = None) -> Record:
    has_image = path is not None or data is not None
    return Record(
        id=f"toy/{n}",
        source="toy",
        split="train",
        conversations=[
            {"from": "human", "value": ("<image>\n" if has_image else "") + f"What is shown in item {n}?"},
            {"from": "gpt", "value": "A test picture."},
        ],
        image=ImageRef(path=path, bytes=data) if has_image else None,
        meta={"license": "test"},
    )


@pytest.fixture
def root(tmp_path):
    """A dataset root with one image of every kind, good and bad."""
    root = tmp_path / "dataset"
    faults.plain_jpeg(root / "images" / "plain.jpg")
    faults.cmyk_jpeg(root / "images" / "cmyk.jpg")
    faults.exif_rotated_jpeg(root / "images" / "rotated.jpg")
    faults.palette_alpha_png(root / "images" / "palette.png")
    faults.png16(root / "images" / "deep.png")
    faults.truncated_jpeg(root / "images" / "truncated.jpg")
    faults.zero_byte(root / "images" / "empty.jpg")
    faults.bomb_png(root / "images" / "bomb.png", side=9_000)
    faults.not_an_image(root / "images" / "page.jpg")
    return root


GOOD = ["plain.jpg", "cmyk.jpg", "rotated.jpg", "palette.png", "deep.png"]
BAD = {
    "truncated.jpg": "image_truncated",
    "empty.jpg": "image_empty",
    "bomb.png": "image_too_large",
    "page.jpg": "image_unreadable",
    "missing.jpg": "image_missing",
    "../../etc/passwd": "image_path_outside_root",
}


def test_good_and_bad_images_in_one_stream_keep_order_and_reasons(root):
    names = [*GOOD, *BAD]
    inputs = [record(i, path=name if name.startswith("..") else f"images/{name}") for i, name in enumerate(names)]
    inputs.insert(2, record(99))  # no image: passes through untouched
    outputs = list(LoadImages(root=root).run(inputs))

    assert [o.id for o in outputs] == [r.id for r in inputs]
    assert outputs[2] is inputs[2]
    rejects = {o.id: o for o in outputs if isinstance(o, Reject)}
    for i, name in enumerate(names):
        if name in BAD:
            reject = rejects[f"toy/{i}"]
            assert (reject.reason, reject.step, reject.source) == (BAD[name], "load_image", "toy")
            assert reject.detail and "\n" not in reject.detail
    kept = [o for o in outputs if isinstance(o, Record) and o.image is not None]
    assert len(kept) == len(GOOD)
    for out in kept:
        validate_record(out)
        assert out.image_hash == content_hash(out.image.bytes)
        assert out.phash is not None and 0 <= out.phash < 2**64
        with Image.open(io.BytesIO(out.image.bytes)) as decoded:
            assert decoded.size == (out.width, out.height)
        assert out.meta == {"license": "test", "original_path": out.image.path}
    by_name = {o.image.path.rsplit("/", 1)[-1]: o for o in kept}
    assert by_name["plain.jpg"].image.bytes == (root / "images" / "plain.jpg").read_bytes()
    assert (by_name["rotated.jpg"].width, by_name["rotated.jpg"].height) == (64, 96)


def test_counts_through_the_runner_balance(root):
    inputs = [record(i, path=f"images/{name}") for i, name in enumerate([*GOOD, "truncated.jpg", "empty.jpg"])]
    stream, counts = apply_steps(inputs, [LoadImages(root=root)])
    outputs = list(stream)
    (count,) = counts
    assert (count.rows_in, count.rows_out, count.rejected) == (7, 5, 2)
    assert sum(isinstance(o, Reject) for o in outputs) == 2


def test_records_with_bytes_are_prepared_or_only_checked(root):
    cmyk = (root / "images" / "cmyk.jpg").read_bytes()
    (fresh,) = LoadImages(root=root).run([record(0, data=cmyk)])
    assert fresh.image.bytes != cmyk and fresh.image_hash == content_hash(fresh.image.bytes)
    assert Image.open(io.BytesIO(fresh.image.bytes)).mode == "RGB"
    assert "original_path" not in fresh.meta

    # Complete: only checked, returned as is.
    (again,) = LoadImages(root=root).run([fresh])
    assert again is fresh

    # A stale hash means the bytes changed since: prepared again.
    stale = dataclasses.replace(fresh, image_hash="0" * 32)
    (redone,) = LoadImages(root=root).run([stale])
    assert redone.image_hash == fresh.image_hash

    # Complete-looking but the bytes are broken: a reject, not a crash.
    broken_bytes = (root / "images" / "truncated.jpg").read_bytes()
    broken = dataclasses.replace(
        fresh, image=ImageRef(bytes=broken_bytes, path=None), image_hash=content_hash(broken_bytes)
    )
    (reject,) = LoadImages(root=root).run([broken])
    assert isinstance(reject, Reject) and reject.reason == "image_truncated"


def test_max_pixels_is_a_step_parameter(root):
    inputs = [record(0, path="images/plain.jpg")]
    (reject,) = LoadImages(root=root, max_pixels=1_000).run(inputs)
    assert isinstance(reject, Reject) and reject.reason == "image_too_large"


def test_registered_and_params_validated(root):
    assert STEP_REGISTRY["load_image"] is LoadImages
    step = STEP_REGISTRY["load_image"](root=str(root), max_pixels=4096)
    assert step.params.max_pixels == 4096
    with pytest.raises(ValueError, match="max_pixel"):
        LoadImages(root=root, max_pixel=10)
    with pytest.raises(ValueError, match="max_pixels"):
        LoadImages(root=root, max_pixels=0)
    with pytest.raises(ValueError, match="root"):
        LoadImages()
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS"):
        LoadImages(root=root, max_pixels=10**9)


def test_output_writes_a_valid_shard_set(root, tmp_path):
    inputs = [record(i, path=f"images/{name}") for i, name in enumerate([*GOOD, "truncated.jpg"])]
    out = tmp_path / "shards"
    with ShardWriter(out, command="test", config=None) as writer:
        for item in LoadImages(root=root).run(inputs):
            writer.add(item)
    assert validate_shard_set(out) == []
    shard_set = ShardSet(out)
    assert len(shard_set) == len(GOOD)
    stored = {r.image.path: r for r in shard_set}
    expected = prepare_image((root / "images" / "cmyk.jpg").read_bytes())
    assert stored["images/cmyk.jpg"].image.bytes == expected.bytes
    assert stored["images/cmyk.jpg"].phash == expected.phash
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejects] == ["image_truncated"]
