"""slime_data.images: header probe, rejects for every bad input, normalisation, hashes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import imagehash
import numpy as np
import pytest
import xxhash
from PIL import ExifTags, Image, ImageDraw, ImageFile

from slime_data.images import (
    DEFAULT_MAX_PIXELS,
    ImageProbe,
    ImageRejected,
    check_image,
    content_hash,
    phash64,
    prepare_image,
    probe,
    read_image_file,
)
from tests.slime_data import image_faults as faults

REPO = Path(__file__).resolve().parents[2]


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def rejection(call, *args, **kwargs) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        call(*args, **kwargs)
    return info.value


def realistic_jpeg(seed: int, size: tuple[int, int] = (1280, 960)) -> bytes:
    """Gradient + shapes + noise: a photo-like JPEG whose phash is not trivially stable."""
    rng = np.random.default_rng(seed)
    image = faults.picture(size)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        box = [x0, y0, x0 + int(rng.integers(20, size[0] // 2)), y0 + int(rng.integers(20, size[1] // 2))]
        draw.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    pixels = np.asarray(image).astype(np.int16) + rng.normal(0, 6, (size[1], size[0], 1)).astype(np.int16)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


# -- probe ----------------------------------------------------------------------------------


def test_probe_reads_the_header_only(tmp_path):
    # A truncated file has an intact header: probing it succeeds, decoding it does not.
    data = faults.truncated_jpeg(tmp_path / "t.jpg", size=(300, 200)).read_bytes()
    assert probe(data) == ImageProbe("JPEG", 300, 200, "RGB")
    assert rejection(prepare_image, data).reason == "image_truncated"


def test_probe_reports_raw_size_and_mode(tmp_path):
    assert probe(faults.cmyk_jpeg(tmp_path / "c.jpg").read_bytes()) == ImageProbe("JPEG", 96, 64, "CMYK")
    assert probe(faults.palette_alpha_png(tmp_path / "p.png").read_bytes()) == ImageProbe("PNG", 96, 64, "P")
    # EXIF rotation is not applied by the probe: this is the stored size.
    assert probe(faults.exif_rotated_jpeg(tmp_path / "r.jpg").read_bytes()).width == 96


@pytest.mark.parametrize(
    ("make", "reason"),
    [(faults.zero_byte, "image_empty"), (faults.not_an_image, "image_unreadable")],
)
def test_probe_rejects_non_images(tmp_path, make, reason):
    assert rejection(probe, make(tmp_path / "x.jpg").read_bytes()).reason == reason


def test_formats_outside_the_allowed_list_are_refused(tmp_path):
    buffer = io.BytesIO()
    faults.picture().save(buffer, "PPM")
    error = rejection(prepare_image, buffer.getvalue())
    assert error.reason == "image_unreadable" and "supported format" in error.detail


# -- rejects --------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [faults.truncated_jpeg, faults.truncated_png])
def test_truncated_images_are_rejected(tmp_path, make):
    data = make(tmp_path / "t.img").read_bytes()
    assert rejection(prepare_image, data).reason == "image_truncated"
    assert rejection(check_image, data).reason == "image_truncated"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("side", "whose_limit"),
    [(9_000, "ours"), (12_000, "PIL's warning"), (20_000, "PIL's error")],
)
def test_decompression_bombs_are_too_large_without_warnings(tmp_path, side, whose_limit):
    data = faults.bomb_png(tmp_path / "bomb.png", side=side).read_bytes()
    assert len(data) < 100_000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in (prepare_image, check_image):
            error = rejection(call, data)
            assert error.reason == "image_too_large", whose_limit
            assert str(side) in error.detail or str(side * side) in error.detail
    assert not caught


def test_pixel_limit_is_a_parameter_checked_before_decoding(tmp_path):
    data = faults.plain_jpeg(tmp_path / "a.jpg", size=(100, 80)).read_bytes()
    assert prepare_image(data, max_pixels=8_000).width == 100
    assert rejection(prepare_image, data, max_pixels=7_999).reason == "image_too_large"
    # Checked from the header: a truncated body is never reached.
    truncated = faults.truncated_jpeg(tmp_path / "t.jpg", size=(100, 80)).read_bytes()
    assert rejection(prepare_image, truncated, max_pixels=100).reason == "image_too_large"
    assert DEFAULT_MAX_PIXELS >= 8000 * 8000  # the paper's largest images pass by default


def test_read_image_file_checks_the_path_text_and_follows_symlinks(tmp_path):
    root = tmp_path / "dataset"
    faults.plain_jpeg(root / "images" / "ok.jpg")
    faults.plain_jpeg(tmp_path / "elsewhere" / "linked.jpg")
    (root / "images" / "link.jpg").symlink_to(tmp_path / "elsewhere" / "linked.jpg")
    (root / "other-disk").symlink_to(tmp_path / "elsewhere")
    for path in ("../../etc/passwd", "../elsewhere/linked.jpg", "/etc/passwd", "images/../../x.jpg", "images/\x00.jpg"):
        assert rejection(read_image_file, root, path).reason == "image_path_outside_root", path
    assert read_image_file(root, "images/../images/ok.jpg").width == 96
    # The user's own symlinks (a file, a folder on another disk) are followed.
    assert read_image_file(root, "images/link.jpg").width == 96
    assert read_image_file(root, "other-disk/linked.jpg").width == 96


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("images/missing.jpg", "image_missing"),
        ("images", "image_missing"),
        ("", "image_missing"),
        (None, "image_missing"),
        ("images/empty.jpg", "image_empty"),
    ],
)
def test_read_image_file_rejects_missing_and_empty_files(tmp_path, path, reason):
    faults.zero_byte(tmp_path / "images" / "empty.jpg")
    assert rejection(read_image_file, tmp_path, path).reason == reason


# -- kept as is -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "fmt", "mode"),
    [
        (faults.plain_jpeg, "JPEG", "RGB"),
        (lambda p: faults.plain_jpeg(p, gray=True), "JPEG", "L"),
        (faults.plain_png, "PNG", "RGB"),
        (lambda p: faults.plain_png(p, gray=True), "PNG", "L"),
    ],
)
def test_plain_8bit_images_keep_their_original_bytes(tmp_path, make, fmt, mode):
    data = make(tmp_path / "plain.img").read_bytes()
    prepared = prepare_image(data)
    assert prepared.bytes == data
    assert (prepared.format, prepared.width, prepared.height) == (fmt, 96, 64)
    assert decoded(prepared.bytes).mode == mode
    assert prepared.content_hash == xxhash.xxh3_128_hexdigest(data)


# -- normalised -----------------------------------------------------------------------------


def test_cmyk_jpeg_becomes_rgb_jpeg_with_the_same_colours(tmp_path):
    prepared = prepare_image(faults.cmyk_jpeg(tmp_path / "c.jpg").read_bytes())
    image = decoded(prepared.bytes)
    assert (prepared.format, image.format, image.mode, image.size) == ("JPEG", "JPEG", "RGB", (96, 64))
    difference = np.abs(np.asarray(image, dtype=int) - np.asarray(faults.picture(), dtype=int))
    assert difference.mean() < 4


def test_16bit_rgb_png_is_scaled_to_8bit_rgb(tmp_path):
    data = faults.png16(tmp_path / "16.png").read_bytes()
    assert data[24] == 16  # IHDR bit depth
    prepared = prepare_image(data)
    image = decoded(prepared.bytes)
    assert (image.format, image.mode) == ("PNG", "RGB") and prepared.bytes[24] == 8
    np.testing.assert_array_equal(np.asarray(image), np.asarray(faults.picture()))


def test_16bit_gray_png_is_scaled_not_clipped(tmp_path):
    image = decoded(prepare_image(faults.png16(tmp_path / "g.png", gray=True).read_bytes()).bytes)
    row = np.asarray(image)[0, :, 0].astype(int)  # the ramp 0..65535 across the width
    assert image.mode == "RGB"
    assert row[0] == 0 and row[-1] == 255 and abs(row[len(row) // 2] - 128) <= 2
    assert np.all(np.diff(row) >= 0)


def test_palette_with_alpha_is_flattened_on_white(tmp_path):
    prepared = prepare_image(faults.palette_alpha_png(tmp_path / "p.png").read_bytes())
    pixels = np.asarray(decoded(prepared.bytes))
    assert decoded(prepared.bytes).mode == "RGB"
    assert np.all(pixels[:, :48] == 255)  # the transparent half
    assert not np.all(pixels[:, 48:] == 255)


def test_rgba_is_flattened_on_white(tmp_path):
    pixels = np.asarray(decoded(prepare_image(faults.rgba_png(tmp_path / "a.png").read_bytes()).bytes))
    assert pixels.shape == (64, 96, 3)
    assert np.all(pixels[:32] == 255)
    np.testing.assert_array_equal(pixels[32:], np.asarray(faults.picture())[32:])


@pytest.mark.parametrize(("orientation", "red_corner"), [(6, (0, -1)), (8, (-1, 0)), (3, (-1, -1))])
def test_exif_rotation_is_applied_and_sizes_are_upright(tmp_path, orientation, red_corner):
    data = faults.exif_rotated_jpeg(tmp_path / "r.jpg", orientation=orientation).read_bytes()
    prepared = prepare_image(data)
    image = decoded(prepared.bytes)
    upright = (64, 96) if orientation in (6, 8) else (96, 64)
    assert (prepared.width, prepared.height) == image.size == upright
    assert image.getexif().get(ExifTags.Base.Orientation) is None
    # The red block stored at the top-left is where a viewer would show it.
    r, g, b = np.asarray(image)[red_corner].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_gif_is_reencoded_as_png(tmp_path):
    buffer = io.BytesIO()
    faults.picture().save(buffer, "GIF")
    prepared = prepare_image(buffer.getvalue())
    assert prepared.format == "PNG" and decoded(prepared.bytes).mode == "RGB"


def test_reencoding_is_deterministic_across_processes(tmp_path):
    makers = [faults.cmyk_jpeg, faults.palette_alpha_png, faults.png16, faults.exif_rotated_jpeg, faults.rgba_png]
    paths = [make(tmp_path / f"{i}.img") for i, make in enumerate(makers)]
    here = {str(p): prepare_image(p.read_bytes()).content_hash for p in paths}
    assert here == {str(p): prepare_image(p.read_bytes()).content_hash for p in paths}
    script = (
        "import json, sys; from pathlib import Path; from slime_data.images import prepare_image; "
        "print(json.dumps({p: prepare_image(Path(p).read_bytes()).content_hash for p in sys.argv[1:]}))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script, *here], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == here


# -- hashes ---------------------------------------------------------------------------------


def test_content_hash_is_xxh3_128_hex():
    assert content_hash(b"abc") == xxhash.xxh3_128(b"abc").hexdigest()
    assert len(content_hash(b"")) == 32


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_phash64_is_bit_compatible_with_imagehash(mode):
    rng = np.random.default_rng(0)
    for _ in range(5):
        image = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).convert(mode)
        expected = int(str(imagehash.phash(image)), 16)
        assert phash64(image) == expected
        assert 0 <= expected < 2**64


def test_fast_jpeg_phash_stays_close_to_imagehash_on_the_full_image():
    distances = []
    for seed in range(4):
        data = realistic_jpeg(seed)
        prepared = prepare_image(data)
        assert prepared.bytes == data  # the fast path: kept, draft-decoded only
        full = int(str(imagehash.phash(decoded(data))), 16)
        distances.append(bin(prepared.phash ^ full).count("1"))
    assert max(distances) <= 6, distances


def test_phash_of_kept_and_reencoded_pngs_matches_the_stored_image_exactly(tmp_path):
    for make in (faults.plain_png, faults.palette_alpha_png, faults.png16):
        prepared = prepare_image(make(tmp_path / "x.png").read_bytes())
        assert prepared.phash == int(str(imagehash.phash(decoded(prepared.bytes))), 16)


def test_a_bug_in_our_code_is_not_mistaken_for_an_unreadable_image(monkeypatch):
    """Only what PIL raises about the bytes is a reject; an error from our own code propagates."""
    import slime_data.images as images

    def broken(image):
        raise KeyError("a bug in the normalisation code")

    monkeypatch.setattr(images, "_reencode", broken)
    cmyk = io.BytesIO()
    Image.new("CMYK", (64, 48)).save(cmyk, format="JPEG")  # not plain: goes through _reencode
    with pytest.raises(KeyError, match="a bug in the normalisation code"):
        images.prepare_image(cmyk.getvalue())


def test_a_corrupt_header_that_pil_reports_with_a_value_error_is_a_reject():
    """PIL's parsers raise assorted types about bad bytes (here ValueError: a PNG whose IHDR chunk
    claims 5 bytes instead of 13); raised inside PIL, that is the image's fault: a counted reject."""
    import slime_data.images as images

    png = io.BytesIO()
    Image.new("RGB", (24, 16), (10, 200, 30)).save(png, format="PNG")
    broken = bytearray(png.getvalue())
    broken[11] = 5  # IHDR length (big-endian, bytes 8-11)
    with pytest.raises(images.ImageRejected) as rejected:
        images.prepare_image(bytes(broken))
    assert rejected.value.reason == "image_unreadable" and "ValueError" in rejected.value.detail
