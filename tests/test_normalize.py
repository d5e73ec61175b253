"""normalize(): every defect report's repro, unreadable files, and renders of the real crops read
back exactly. The renders are made at run time from the data folder (the artwork is not ours to
ship)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from punktraits.errors import ImageError
from punktraits.normalize import MAX_PIXELS, collection_palette, normalize

BLUE = (0x63, 0x85, 0x96)


def render(punk, size, bg=BLUE, resample=Image.NEAREST):
    """The punk resized to size x size (RGBA, as a browser scales it), then on `bg` if given."""
    im = Image.fromarray(punk, "RGBA").resize((size, size), resample)
    if bg is None:
        return im
    canvas = Image.new("RGBA", im.size, bg + (255,))
    canvas.alpha_composite(im)
    return canvas.convert("RGB")


def encode(im, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def palette(punks):
    return collection_palette(punks.images)


def read(data, palette, name="x.png"):
    return normalize(data, *palette, name=name)


# --- defect 1: the colour counts were shadowed by the corner-colour counts --------------------


def test_site_blue_with_noise_is_no_punk(palette):
    rng = np.random.default_rng(0)
    img = np.full((192, 192, 3), BLUE, np.int16) + rng.integers(-1, 2, (192, 192, 3))
    with pytest.raises(ImageError, match=r"^x.png: no punk in it") as e:
        read(encode(Image.fromarray(img.astype(np.uint8))), palette)
    assert e.value.status == 422


def test_png_with_noise_and_webp_are_read(punks, palette):
    rng = np.random.default_rng(1)
    for i in (0, 2890, 8348):
        im = np.asarray(render(punks.images[i], 192)).astype(np.int16)
        noisy = np.clip(im + rng.integers(-1, 2, im.shape), 0, 255).astype(np.uint8)
        out, _ = read(encode(Image.fromarray(noisy)), palette)
        np.testing.assert_array_equal(out, punks.images[i], err_msg=f"punk {i} +-1 noise")
        out, _ = read(encode(render(punks.images[i], 192), "WEBP", quality=80), palette)
        np.testing.assert_array_equal(out, punks.images[i], err_msg=f"punk {i} WebP q80")


def test_a_punk_on_a_gradient_and_a_photo_give_one_line_errors_or_a_punk(punks, palette):
    ramp = np.linspace(60, 200, 192)[None, :, None] * np.ones((192, 1, 3))
    im = Image.fromarray(ramp.astype(np.uint8)).convert("RGBA")
    im.alpha_composite(Image.fromarray(punks.images[5]).resize((192, 192), Image.NEAREST))
    try:
        out, _ = read(encode(im.convert("RGB")), palette)
    except ImageError as e:
        assert str(e).startswith("x.png: ") and "\n" not in str(e)
    else:
        assert out.shape == (24, 24, 4) and out.dtype == np.uint8
    rng = np.random.default_rng(2)
    photo = Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).resize((300, 300), 3)
    with pytest.raises(ImageError, match=r"^x.png: "):
        read(encode(photo, "JPEG", quality=85), palette)


# --- defect 5: only regular files, read with a bound ------------------------------------------


def test_fifo_directory_and_devices_are_refused_without_reading(tmp_path, palette):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="pipe.png: not a regular file"):
        normalize(fifo, *palette)  # would hang if opened for a blocking read
    with pytest.raises(ImageError, match="not a regular file"):
        normalize("/dev/zero", *palette)
    with pytest.raises(ImageError, match=f"{tmp_path}: .*directory"):
        normalize(tmp_path, *palette)
    with pytest.raises(ImageError, match="nothing.png: cannot read it .No such file"):
        normalize(tmp_path / "nothing.png", *palette)


def test_unreadable_file_names_the_file(tmp_path, punks, palette):
    if os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file; the permission case cannot be made")
    path = tmp_path / "locked.png"
    path.write_bytes(encode(render(punks.images[0], 48)))
    path.chmod(0)
    with pytest.raises(ImageError, match="locked.png: cannot read it .Permission denied"):
        normalize(path, *palette)


# --- defect 4: pixels are counted from the header, before decoding ----------------------------


def test_pixel_limit_is_checked_before_decoding(palette):
    side = int(MAX_PIXELS**0.5)
    assert side == 2048
    data = encode(Image.new("1", (side + 1, side + 1)))
    with pytest.raises(ImageError, match="2049x2049 is over the 4,194,304-pixel limit") as e:
        read(data, palette)
    assert e.value.status == 413


# --- defect 6: EXIF orientation -----------------------------------------------------------------


@pytest.mark.parametrize("turn, stored", [(3, Image.ROTATE_180), (6, Image.ROTATE_90),
                                          (8, Image.ROTATE_270)])  # fmt: skip
def test_exif_orientation_is_applied(punks, palette, turn, stored):
    exif = Image.Exif()
    exif[0x0112] = turn
    data = encode(render(punks.images[42], 192).transpose(stored), "JPEG", quality=90,
                  exif=exif.tobytes())  # fmt: skip
    out, info = read(data, palette)
    np.testing.assert_array_equal(out, punks.images[42])
    assert info.notes == [f"EXIF orientation {turn} applied"]
