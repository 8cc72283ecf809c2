"""The one image reader of ``ulsad``: every image and mask file is decoded here.

Pillow opens many kinds of files, but ``convert("RGB")`` silently clips 16-bit
data to 255 (an all-white picture) and float data to 0 or 1 (all black). Here
each kind is scaled by its real range, what cannot be decoded is refused in one
line that names the file, and the pixel count is bounded before decoding.

How a file becomes values in [0, 1]:

- 8-bit kinds (1-bit, L, LA, P, PA, RGB, RGBA, RGBX, CMYK, YCbCr) go through
  Pillow's ``convert("RGB")`` and are divided by 255, as the package always
  did: palettes are looked up, CMYK uses Pillow's conversion, and alpha is
  dropped, not composited (the colour stored under transparent pixels is
  kept). 16-bit colour PNGs and TIFFs arrive here too: Pillow keeps their high
  byte, within 1/255 of the full value.
- 16-bit grayscale (Pillow's I;16 modes) is divided by 65535.
- 32-bit integer grayscale (Pillow's mode I) is divided by ``2**bits - 1``,
  ``bits`` being the file's TIFF BitsPerSample; a file without one (a 16-bit
  PNG in older Pillow) is taken as 16 bit. Signed samples, and values outside
  ``0 .. 2**bits - 1``, are refused (Pillow reads unsigned 32-bit samples as
  signed, so those above ``2**31 - 1`` arrive negative and are refused too).
- float grayscale (Pillow's mode F) is taken as given and must lie in [0, 1]:
  no range can be guessed from float data, so none is.
- grayscale becomes three equal channels.

EXIF orientation is applied to images and masks alike, so that a phone's
portrait JPEG comes out upright and its mask still fits it. Images are resized
bilinearly (Pillow's filter, antialiased when shrinking), masks by nearest
neighbour, so that they stay binary.

``max_pixels`` bounds width x height, checked from the header before anything
is decoded. Pillow's own bound (twice ``PIL.Image.MAX_IMAGE_PIXELS``) is
checked when the file is opened, before this one, so a ``max_pixels`` above it
also needs that raised.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from PIL import Image, ImageOps

from .errors import DataError

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
MAX_PIXELS = 100_000_000  # 10000 x 10000: 300 MB as 8-bit RGB, far above any benchmark image

_KINDS = "8/16-bit grayscale or RGB, palette, or float in [0, 1]"  # what can be decoded, for messages
_EIGHT_BIT = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"})
_SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_BITS_PER_SAMPLE, _SAMPLE_FORMAT, _SIGNED = 258, 339, 2  # TIFF tags, and SampleFormat's value for signed integers


def read_image(path, size: int | None = None, *, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """An image file as float32 3 x H x W in [0, 1], or 3 x size x size when ``size`` is given."""
    return image_tensor(open_image(path, max_pixels), path, size)


def read_mask(path, size_expected: tuple[int, int] | None = None, size: int | None = None, *,
              max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """A ground-truth mask file as a bool H x W tensor, or size x size when ``size`` is given.

    Any non-zero value is anomalous: MVTec stores 255, MVTec LOCO and VisA
    store defect ids. Alpha is dropped as for images and the other channels
    must be equal (gray saved as RGB), since a colour mask has no agreed
    meaning. ``size_expected`` is the (H, W) of the mask's image: a mask of
    another size is refused rather than stretched onto it.
    """
    mask = open_image(path, max_pixels)
    if size_expected is not None and (mask.height, mask.width) != tuple(size_expected):
        height, width = size_expected
        raise DataError(f"{path}: mask of {mask.width}x{mask.height} pixels for an image of {width}x{height}; "
                        "expected a mask the size of its image")
    binary = Image.fromarray(_mask_values(mask, path) > 0)
    return torch.from_numpy(np.array(_resized(binary, size, Image.NEAREST)))


def open_image(path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A file's image, decoded and upright; a damaged, unknown or too large file is a DataError naming it.

    Decoding happens here, in full, so that a damaged file fails with its name
    and not later inside a resize.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # max_pixels is the bound that counts
            with Image.open(path) as image:
                _check_pixels(image, path, max_pixels)  # from the header, before decoding
                image.load()
                ImageOps.exif_transpose(image, in_place=True)  # in place: keeps the TIFF tags _integer_top reads
    except DataError:
        raise
    except Image.DecompressionBombError as error:  # Pillow's own bound, met when opening, before ours
        raise DataError(f"{path}: {str(error).rstrip('.')}; expected a smaller image") from None
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read this image ({error}); "
                        f"expected an intact {'/'.join(IMAGE_SUFFIXES)} file of {_KINDS}") from error
    return image


def image_tensor(image: Image.Image, path, size: int | None = None) -> torch.Tensor:
    """An image from :func:`open_image` as float32 3 x H x W in [0, 1] (3 x size x size, bilinear).

    ``path`` only names the file in errors.
    """
    if image.mode in _EIGHT_BIT:
        rgb = _resized(image.convert("RGB"), size, Image.BILINEAR)
        return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()
    # resized as float (mode F), so that the extra bits are not rounded away
    gray = _resized(Image.fromarray(_unit_gray(image, path)), size, Image.BILINEAR)
    return torch.from_numpy(np.array(gray)).expand(3, -1, -1).contiguous()


def _check_pixels(image: Image.Image, path, max_pixels: int) -> None:
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise DataError(f"{path}: image size {image.width}x{image.height} ({pixels} pixels) exceeds the limit of "
                        f"{max_pixels} pixels, could be a decompression bomb; expected a smaller image")


def _unit_gray(image: Image.Image, path) -> np.ndarray:
    """A single-channel image of more than 8 bits as float32 in [0, 1], scaled by its real range."""
    values = np.asarray(image)
    if image.mode in _SIXTEEN_BIT:
        return (values / 65535).astype(np.float32)
    if image.mode == "I":
        return (values / _integer_top(image, values, path)).astype(np.float32)
    if image.mode == "F":
        _check_range(values, 0, 1, path, "float")
        return values.astype(np.float32)
    raise DataError(f"{path}: Pillow mode {image.mode} images are not supported; expected {_KINDS}")


def _integer_top(image: Image.Image, values: np.ndarray, path) -> int:
    """The white of mode I data, ``2**bits - 1``: bits from the TIFF header, else 16 (see the module docstring)."""
    tags = getattr(image, "tag_v2", {})
    if tags.get(_SAMPLE_FORMAT, (1,))[0] == _SIGNED:
        raise DataError(f"{path}: signed integer images are not supported; expected {_KINDS}")
    bits = tags.get(_BITS_PER_SAMPLE, (16,))[0]
    _check_range(values, 0, 2 ** bits - 1, path, f"{bits}-bit integer")
    return 2 ** bits - 1


def _check_range(values: np.ndarray, low, high, path, kind: str) -> None:
    """Refuse values outside [low, high], naming the range found: a wrong guess would pass unnoticed."""
    found_low, found_high = values.min(), values.max()
    if not (low <= found_low and found_high <= high):  # NaN fails too
        raise DataError(f"{path}: {kind} values range from {found_low} to {found_high}; "
                        f"expected values in [{low}, {high}]")


def _mask_values(mask: Image.Image, path) -> np.ndarray:
    """The mask's one channel: alpha dropped, the other channels required equal."""
    values = np.asarray(mask)
    if values.ndim == 2:
        return values
    bands = mask.getbands()
    values = values[..., [i for i, band in enumerate(bands) if band != "A"]]
    if (values != values[..., :1]).any():
        raise DataError(f"{path}: colour mask (its {'/'.join(bands)} channels differ); "
                        "expected a single-channel mask, non-zero where anomalous")
    return values[..., 0]


def _resized(image: Image.Image, size: int | None, resample) -> Image.Image:
    return image if size is None else image.resize((size, size), resample)
