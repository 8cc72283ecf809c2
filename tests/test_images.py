"""The one image reader: every kind of file comes out by its real range, or is refused in one line naming it."""
from __future__ import annotations

import csv
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ulsad.cli import main
from ulsad.cli import read_image as cli_read_image
from ulsad.data import DataError
from ulsad.data.images import image_tensor, read_image, read_mask

ONE_LEVEL = 1 / 255 + 1e-6  # one 8-bit grey level, with float32 slack


def picture(height=24, width=32) -> np.ndarray:
    """An 8-bit grayscale picture with every kind of value: black, white, a gradient and some noise."""
    rng = np.random.default_rng(0)
    values = np.linspace(0, 255, height * width).reshape(height, width) + rng.normal(0, 20, (height, width))
    values[0, 0], values[-1, -1] = 0, 255
    return values.clip(0, 255).round().astype(np.uint8)


def colour_picture(height=24, width=32) -> np.ndarray:
    gray = picture(height, width)
    return np.stack([gray, gray[::-1], 255 - gray], axis=-1)


def save(array: np.ndarray, path: Path, **options) -> Path:
    Image.fromarray(array).save(path, **options)
    return path


def write_png(path: Path, width: int, height: int, bit_depth: int, colour_type: int, data: bytes) -> Path:
    """A PNG written by hand, for what Pillow cannot write: 16-bit colour, a header lying about its size."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data))
                     + chunk(b"IEND", b""))
    return path


def refusal(call, *args, **kwargs) -> str:
    """The message of the DataError that ``call`` raises; it must be one line."""
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- bit depths ---------------------------------------------------------------

@pytest.mark.parametrize("suffix, byte_order", [(".png", "<"), (".tif", "<"), (".tif", ">")])
@pytest.mark.parametrize("size", [None, 16])
def test_16_bit_grayscale_reads_as_its_8_bit_version(tmp_path, suffix, byte_order, size):
    eight = save(picture(), tmp_path / f"eight{suffix}")
    sixteen = save((picture().astype(np.uint16) * 257).astype(f"{byte_order}u2"), tmp_path / f"sixteen{suffix}")
    with Image.open(sixteen) as opened:
        assert opened.mode.startswith("I;16")  # what Pillow's convert("RGB") used to clip to white
    expected, got = read_image(eight, size), read_image(sixteen, size)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got - expected).abs().max() <= ONE_LEVEL
    assert torch.equal(got[0], got[1]) and torch.equal(got[0], got[2])


def test_16_bit_rgb_png_reads_as_its_8_bit_version(tmp_path):
    rgb = colour_picture()
    height, width, _ = rgb.shape
    rows = (rgb.astype(">u2") * 257).reshape(height, width * 3)
    sixteen = write_png(tmp_path / "rgb48.png", width, height, 16, 2,
                        b"".join(b"\x00" + row.tobytes() for row in rows))  # filter byte 0 before each row
    eight = save(rgb, tmp_path / "rgb24.png")
    assert (read_image(sixteen) - read_image(eight)).abs().max() <= ONE_LEVEL


def test_mode_i_without_a_declared_depth_is_taken_as_16_bit(tmp_path):
    # Pillow opens a 16-bit PGM (and, before Pillow 10.x, a 16-bit PNG) as 32-bit mode I with no bit depth
    pgm = save(picture().astype(np.uint16) * 257, tmp_path / "sixteen.pgm")
    with Image.open(pgm) as opened:
        assert opened.mode == "I"
    assert (read_image(pgm) - read_image(save(picture(), tmp_path / "eight.png"))).abs().max() <= ONE_LEVEL


def test_signed_integer_tiff_is_refused_not_guessed(tmp_path):
    signed = save(picture().astype(np.int32), tmp_path / "signed.tif")  # Pillow writes mode I as signed 32 bit
    assert refusal(read_image, signed).startswith(f"{signed}: signed integer images are not supported; expected")


def test_float_tiff_in_zero_one_is_read_as_given(tmp_path):
    values = picture().astype(np.float32) / 255
    path = save(values, tmp_path / "float.tif")
    got = read_image(path)
    assert got.shape == (3, *values.shape)
    assert torch.equal(got, torch.from_numpy(values).expand(3, -1, -1))
    assert (read_image(path, 16) - read_image(save(picture(), tmp_path / "eight.png"), 16)).abs().max() <= ONE_LEVEL


@pytest.mark.parametrize("low, high", [(-0.5, 1.0), (0.0, 2.0), (0.0, float("nan"))])
def test_float_tiff_outside_zero_one_is_refused_naming_the_range_found(tmp_path, low, high):
    values = np.full((8, 8), 0.5, dtype=np.float32)
    values[0, 0], values[-1, -1] = low, high
    path = save(values, tmp_path / "float.tif")
    message = refusal(read_image, path)
    assert message.startswith(f"{path}: float values range from")
    assert "expected values in [0, 1]" in message


# --- 8-bit kinds: today's conversion ---------------------------------------------

def test_palette_image_is_looked_up(tmp_path):
    palette = Image.fromarray(colour_picture()).quantize(16)
    palette.save(tmp_path / "p.png")
    expected = np.asarray(palette.convert("RGB"), dtype=np.float32) / 255
    assert torch.equal(read_image(tmp_path / "p.png"), torch.from_numpy(expected).permute(2, 0, 1))


def test_gray_with_alpha_drops_the_alpha(tmp_path):
    alpha = np.zeros_like(picture())  # fully transparent: the gray values stored under it are kept
    la = save(np.stack([picture(), alpha], axis=-1), tmp_path / "la.png")
    assert Image.open(la).mode == "LA"
    assert torch.equal(read_image(la), read_image(save(picture(), tmp_path / "l.png")))


def test_rgba_drops_the_alpha_without_compositing(tmp_path):
    alpha = np.tile(np.array([0, 128, 255], dtype=np.uint8), 32 * 8)[: 24 * 32].reshape(24, 32)
    rgba = save(np.concatenate([colour_picture(), alpha[..., None]], axis=-1), tmp_path / "rgba.png")
    assert torch.equal(read_image(rgba), read_image(save(colour_picture(), tmp_path / "rgb.png")))


def test_one_bit_image_is_black_and_white(tmp_path):
    bits = picture() > 127
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    assert Image.open(path).mode == "1"
    assert torch.equal(read_image(path), torch.from_numpy(bits).float().expand(3, -1, -1))


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    upright = np.zeros((40, 20, 3), dtype=np.uint8)  # portrait: red top half, blue bottom half
    upright[:20, :, 0] = upright[20:, :, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the camera stored it lying on its side
    path = tmp_path / "phone.jpg"
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    got = read_image(path)
    assert got.shape == (3, 40, 20)
    assert (got - torch.from_numpy(upright / 255).permute(2, 0, 1)).abs()[:, 2:18, 2:18].max() < 0.1
    assert (got - torch.from_numpy(upright / 255).permute(2, 0, 1)).abs()[:, 22:38, 2:18].max() < 0.1


def test_a_mode_it_cannot_decode_is_refused_saying_what_was_expected():
    message = refusal(image_tensor, Image.new("HSV", (4, 4)), "odd.tif")
    assert message == ("odd.tif: Pillow mode HSV images are not supported; "
                       "expected 8/16-bit grayscale or RGB, palette, or float in [0, 1]")


# --- files it must refuse -----------------------------------------------------------

def test_unreadable_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    assert refusal(read_image, path).startswith(f"{path}: cannot read this image")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    # 100000 x 100000 claimed by the header: 10 gigapixels, 30 GB as RGB, from a file of a few bytes
    bomb = write_png(tmp_path / "bomb.png", 100_000, 100_000, 8, 2, b"")
    message = refusal(read_image, bomb)
    assert message.startswith(f"{bomb}:") and "10000000000 pixels" in message and "exceeds" in message


def test_the_pixel_limit_is_a_parameter(tmp_path):
    path = save(picture(), tmp_path / "small.png")
    message = refusal(read_image, path, max_pixels=100)
    assert message.startswith(f"{path}: image size 32x24 (768 pixels) exceeds the limit of 100 pixels")
    assert read_image(path, max_pixels=768).shape == (3, 24, 32)


# --- masks ------------------------------------------------------------------------

def test_mask_non_zero_is_anomalous_and_nearest_resize_keeps_it_binary(tmp_path):
    values = np.zeros((24, 32), dtype=np.uint8)
    values[:, :16] = 7  # a LOCO/VisA defect id, not 255
    mask = read_mask(save(values, tmp_path / "mask.png"), (24, 32), 16)
    assert mask.dtype == torch.bool and mask.shape == (16, 16)
    assert mask[:, :8].all() and not mask[:, 8:].any()


def test_mask_of_another_size_than_its_image_is_refused(tmp_path):
    path = save(np.zeros((20, 20), dtype=np.uint8), tmp_path / "000_mask.png")
    message = refusal(read_mask, path, (24, 32), 16)
    assert message == f"{path}: mask of 20x20 pixels for an image of 32x24; expected a mask the size of its image"


def test_mask_alpha_is_dropped_and_gray_saved_as_rgb_is_accepted(tmp_path):
    gray = np.zeros((24, 32), dtype=np.uint8)
    gray[:12] = 255
    rgba = np.stack([gray, gray, gray, np.full_like(gray, 255)], axis=-1)  # opaque everywhere: not all anomalous
    assert torch.equal(read_mask(save(rgba, tmp_path / "rgba.png")), torch.from_numpy(gray > 0))


def test_colour_mask_is_refused(tmp_path):
    rgb = np.zeros((24, 32, 3), dtype=np.uint8)
    rgb[:12, :, 0] = 255
    path = save(rgb, tmp_path / "red.png")
    assert refusal(read_mask, path).startswith(f"{path}: colour mask (its R/G/B channels differ); expected")


# --- the command line -----------------------------------------------------------------

def test_predict_reads_a_16_bit_image_as_its_8_bit_version(trained, tmp_path):
    eight = save(picture(80, 80), tmp_path / "eight.png")
    sixteen = save(picture(80, 80).astype(np.uint16) * 257, tmp_path / "sixteen.png")
    assert (cli_read_image(sixteen, 64) - cli_read_image(eight, 64)).abs().max() <= ONE_LEVEL
    checkpoint = trained[0].save(tmp_path / "det.ckpt")
    assert main(["predict", "--checkpoint", str(checkpoint), str(eight), str(sixteen),
                 "--out", str(tmp_path / "out")]) == 0
    score_8, score_16 = (float(r["score"]) for r in csv.DictReader(open(tmp_path / "out/scores.csv")))
    assert score_16 == pytest.approx(score_8, rel=0.01, abs=0.01)


def test_predict_refuses_a_decompression_bomb_in_one_line(trained, tmp_path, capsys):
    bomb = write_png(tmp_path / "bomb.png", 100_000, 100_000, 8, 2, b"")
    checkpoint = trained[0].save(tmp_path / "det.ckpt")
    assert main(["predict", "--checkpoint", str(checkpoint), str(bomb), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bomb}:") and err.count("\n") == 1 and "Traceback" not in err
