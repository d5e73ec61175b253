"""Turn any image of a punk into the 24x24 RGBA punk it shows, and say how.

People have marketplace renders (336x336 or 1024x1024 on the blue #638596), browser screenshots
smoothed by bilinear or bicubic scaling, JPEGs, WebPs, GIFs, crops with a border. `normalize()`
reads them by analysis by synthesis: it finds the punk whose drawing, made the way the image was
made, reproduces the image.

1. open safely: only regular files, read with a bound; PNG, JPEG, GIF (first frame), WebP or BMP;
   the pixel count checked from the header before decoding (2048x2048 at most); the EXIF
   orientation applied; empty, truncated, greyscale and non-image files refused in one line;
2. find the drawing: for each axis, which 24-cell resize (nearest, box, bilinear, hamming,
   bicubic, lanczos as Pillow computes them, or an area average) with which border fits lines
   across the image best (`_grids`); scales need not be whole (1024 / 24 = 42.67);
3. fit the punk: least squares gives each cell's colour; the background is the corner cells'
   (a punk's corners are always background) or the image's own transparency; each cell snaps to
   the collection's palette *as shown on that background*, so the background returns to
   transparent (0,0,0,0) and the half-transparent smoke of Cigarette and Pipe to its RGBA colour;
4. correct it: coordinate descent on a linear model of the drawing that clips where Pillow clips
   (`_Drawing.descend`), then a local search with Pillow's resize emulated bit for bit
   (`_Drawing.polish`): a Pillow render is reproduced exactly. The browser's order (resize with
   transparency, then composite) and the other (composite, then resize) are both tried;
5. lossy files: with noise the fit also weighs how common each colour is; the punk is drawn
   again through the input's own JPEG tables (or the WebP quality that reproduces it) and the
   close colours of each cell are decided by which re-encodes to the input (`_refine`).

Every step is bounded (samples per axis, rounds, re-encodings, time). Any error numpy or Pillow
raises on an input becomes an ImageError naming the file.
"""

from __future__ import annotations

import copy
import io
import os
import stat
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import cached_property, lru_cache

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from .errors import ImageError
from .webp import Webp, _decoded, _encoded, vp8_header
from .work import EXACT, GAINS, charge, counted_work

FORMATS = {"PNG", "JPEG", "GIF", "WEBP", "BMP"}
MAX_SIDE = 2048
MAX_PIXELS = MAX_SIDE * MAX_SIDE  # refuse bigger images before decoding them (a 4.2 MP image
# costs ~17 MB as RGBA; a punk needs no more: a 1024 px marketplace render is 43 px a pixel)
ORIENTATION = 0x0112  # the EXIF tag
MAX_BYTES = 50 * 1024 * 1024
MATTE = np.array([255.0, 0.0, 255.0])  # where an image has alpha, it is composited on this first


@dataclass
class Normalized:
    """How an image was turned into a punk."""

    source_size: tuple[int, int]  # (width, height) of the input
    format: str  # PNG, JPEG, ...
    scale: tuple[float, float]  # pixels per punk pixel, x and y
    offset: tuple[float, float]  # border in pixels, x and y
    background: str  # "transparent" or "#rrggbb"
    snapped: int  # punk pixels whose colour was not exactly a palette colour on the background
    notes: list[str] = field(default_factory=list)  # e.g. "GIF: first of 3 frames"
    filter: str = "nearest"  # how it was resized, as far as can be told: a key of FILTERS
    fit: Fit | None = field(default=None, repr=False, compare=False)  # scores whole drawings
    # against the image (None: the image was read exactly, nothing to weigh)

    def to_dict(self) -> dict:
        """Plain JSON types (tuples become lists), as `predict --format json` prints it."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fit"}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass(frozen=True, eq=False)
class Fit:
    """How well a whole 24x24 punk explains an image, drawn the way the image was drawn (its
    grid, filter and background; linear: Pillow's rounding and clipping aside): the squared
    error over the samples the normaliser compared. A lossy or smoothed image may not give back
    every pixel, yet among whole drawings (a head and its accessories) the one that explains
    the image best is still told apart: this is what `verify` weighs them with.

    error(V) = sum over channels of |wy V wx' - r|^2 = <V, gy V gx> - 2 <V, b> + |r|^2, with V
    the punk relative to the background (premultiplied RGB and alpha where the image kept its
    transparency) and r the samples likewise: 24x24 products, not image-sized ones."""

    gy: np.ndarray  # (24, 24) wy' wy
    gx: np.ndarray  # (24, 24) wx' wx
    b: np.ndarray  # (24, 24, C) wy' r wx
    const: float  # |r|^2
    bg: np.ndarray | None  # (3,) the background, or None: compared with transparency
    samples: int  # values compared (samples x channels)
    reencode: Callable[..., np.ndarray] | None = None  # a small lossy image: punks (N, 24, 24,
    #   4) -> (N,) mean |drawing re-encoded with the file's own encoder - file|; the drawing
    #   (filter, background) is settled on the first punk of the first call (or of a call
    #   with again=True); exact=True, like=a punk that gives the file back: only 0 (given
    #   back) is exact, others just > 0

    @classmethod
    def of(cls, d: _Drawing, reencode=None) -> Fit:
        alpha = d.kind == "alpha"
        r = d.y if alpha else d.y - d.bg
        return cls(d.wy.T @ d.wy, d.wx.T @ d.wx, _project(d.wy, r, d.wx), float((r * r).sum()),
                   None if alpha else d.bg.astype(np.float64), int(r.size), reencode)  # fmt: skip

    def errors(self, punks: np.ndarray) -> np.ndarray:
        """(N,) squared errors of (N, 24, 24, 4) uint8 punks."""
        q = punks.astype(np.float64)
        a = q[..., 3:] / 255.0
        v = np.concatenate([q[..., :3] * a, q[..., 3:]], -1)
        if self.bg is not None:
            v = q[..., :3] * a - self.bg * a  # shown on bg, minus bg
        v = np.ascontiguousarray(v.transpose(0, 3, 1, 2))  # (N, C, 24, 24)
        quad = ((self.gy @ v) * (v @ self.gx)).sum((1, 2, 3))  # <V, gy V gx>, gx symmetric
        cross = v.reshape(len(v), -1) @ self.b.transpose(2, 0, 1).ravel()
        return quad - 2 * cross + self.const

    def rms(self, punks: np.ndarray) -> np.ndarray:
        """(N,) root mean squared error per value compared."""
        return np.sqrt(np.maximum(self.errors(punks), 0.0) / self.samples)


def read_bytes(source, name: str) -> bytes:
    """The bytes of a path or bytes-like `source`, at most MAX_BYTES; only regular files are read
    (a FIFO, a directory or /dev/zero is refused, not read)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            # O_NONBLOCK: opening a FIFO does not wait for a writer; fstat then refuses it.
            fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                    raise ImageError(f"{name}: {kind}; give an image file")
                if st.st_size > MAX_BYTES:
                    raise ImageError(
                        f"{name}: {st.st_size:,} bytes is over the {MAX_BYTES:,}-byte limit", 413
                    )
                data = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise ImageError(f"{name}: cannot read it ({e.strerror or e})") from None
    else:
        raise TypeError(f"expected a path or bytes, not {type(source).__name__}")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{name}: over the {MAX_BYTES:,}-byte limit", 413)
    if not data:
        raise ImageError(f"{name}: the file is empty")
    return data


def open_image(source, name: str | None = None, max_pixels: int = MAX_PIXELS
               ) -> tuple[np.ndarray, bool, str, list[str], dict]:  # fmt: skip
    """Decode a path or bytes into (H, W, 4) uint8 RGBA, whether it has alpha, its format, notes
    and the encoder's settings: a JPEG's quantisation tables and subsampling, a lossy WebP's
    frame header (`{"vp8": webp.vp8_header}`: its quantisers), or {}. Images over `max_pixels` are refused
    before they are decoded (a screenshot may be allowed more than one punk: locate.py)."""
    name = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<bytes>")
    data = read_bytes(source, name)
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: too many pixels; not decoded", 413) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{name}: not an image (expected PNG, JPEG, GIF, WebP or BMP)", 415
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{name}: the image data is truncated or corrupt ({e})") from None
    if im.format not in FORMATS:
        raise ImageError(f"{name}: {im.format} is not supported (PNG, JPEG, GIF, WebP or BMP)", 415)
    w, h = im.size
    if w * h > max_pixels:
        side = int(max_pixels**0.5)
        raise ImageError(
            f"{name}: {w}x{h} is over the {max_pixels:,}-pixel limit ({side}x{side}); not decoded",
            413,
        )
    notes = []
    try:
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            notes.append(f"{im.format}: first of {frames} frames used")
            im.seek(0)
        im.load()
        jpeg = {}
        if im.format == "JPEG":
            jpeg = {"qtables": im.quantization, "subsampling": JpegImagePlugin.get_sampling(im)}
        elif im.format == "WEBP" and (header := vp8_header(data)) is not None:
            jpeg = {"vp8": header}
        fmt = im.format
        turn = im.getexif().get(ORIENTATION, 1)
        if turn in range(2, 9):  # a camera's Orientation tag: show the picture the right way up
            im = ImageOps.exif_transpose(im)
            notes.append(f"EXIF orientation {turn} applied")
            jpeg = {}  # the JPEG blocks encoded the unturned pixels: no re-encoding check
        if im.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit greyscale: keep the top 8 bits
            a = np.asarray(im, np.int64)
            im = Image.fromarray((a >> 8 if a.max() > 255 else a).astype(np.uint8), "L")
        alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            im.mode == "P" and "transparency" in im.info
        )
        rgba = np.asarray(im.convert("RGBA"))
        # An RGBA file whose every pixel is opaque (a render on the site blue saved with an
        # alpha channel) has no transparency to read: its background is its corners' colour.
        alpha = alpha and bool((rgba[..., 3] < 255).any())
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        raise ImageError(f"{name}: the image data is truncated or corrupt ({e})") from None
    return rgba, alpha, fmt, notes, jpeg


# --- How Pillow draws a punk at another size: the forward model ------------------------------

# name: (Pillow filter, kernel support in source pixels); ties go to the earlier one
FILTERS = {
    "nearest": (Image.NEAREST, 0.0),
    "box": (Image.BOX, 0.5),
    "bilinear": (Image.BILINEAR, 1.0),
    "hamming": (Image.HAMMING, 1.0),
    "bicubic": (Image.BICUBIC, 2.0),
    "lanczos": (Image.LANCZOS, 3.0),
    "area": (None, 0.0),  # each pixel the mean of the area it covers: a large nearest render
    # box-filtered down (also OpenCV's INTER_AREA); not one Pillow resize, so drawn approximately,
    # but re-encoding settles it exactly as a render of each of AREA_SOURCES' sizes
}
PILLOW_FILTERS = ("box", "bilinear", "hamming", "bicubic", "lanczos")  # one resize each
RINGING = ("bicubic", "lanczos")  # negative lobes: values overshoot and Pillow clips them


def _is_nearest(filt: str) -> bool:
    """Pillow's nearest, or "nearest/k": nearest cells cut at another phase k (of 24), as a
    browser's `image-rendering: pixelated` cuts them (Chromium: k = 11, Pillow's ~12)."""
    return filt == "nearest" or filt.startswith("nearest/")


def _phase_note(filt: str) -> list[str]:
    if not filt.startswith("nearest/"):
        return []
    return ["nearest-neighbour cells cut at another phase than Pillow's, as a browser's "
            "pixelated scaling cuts them"]  # fmt: skip


def _kinds(filt: str, both=("before", "after")) -> tuple[str, ...]:
    """How an opaque image may have handled the transparency, drawn with `filt`: a nearest
    upscale copies pixels (the same either way); Skia's smoothing is a browser's (resized with
    the transparency, then shown on the page); Pillow's filters, either way (in `both`'s order)."""
    return ("after",) if _is_nearest(filt) else ("before",) if filt.startswith("skia") else both


def _slow(filt: str) -> bool:
    """Whether a lossless drawing with `filt` is slow to read by descent: ringing (values
    overshoot and are clipped) or an area average (the others' descent is quick)."""
    return filt in RINGING or filt == "area"


def _family(filt: str) -> str:
    """The filter's name as reported: "nearest/k" is nearest, "area1024" is area."""
    if filt.startswith("area") or filt.startswith("skia"):
        return filt[:4]
    return "nearest" if _is_nearest(filt) else filt


ONE, HALF = float(1 << 22), float(1 << 21)  # Pillow's fixed point for 8-bit resampling
ONES3 = np.ones(3, np.float32)
F32_054, F32_046 = float(np.float32(0.54)), float(np.float32(0.46))  # Pillow's hamming floats


def _kernel(filt: str, x: np.ndarray) -> np.ndarray:
    """Pillow's filter functions (libImaging/Resample.c), in float64 as it computes them."""
    ax = np.abs(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        if filt == "box":
            return ((x > -0.5) & (x <= 0.5)).astype(np.float64)
        if filt == "bilinear":
            return np.where(ax < 1.0, 1.0 - ax, 0.0)
        if filt == "hamming":
            px = ax * np.pi
            v = np.sin(px) / px * (F32_054 + F32_046 * np.cos(px))
            return np.where(ax == 0.0, 1.0, np.where(ax >= 1.0, 0.0, v))
        if filt == "bicubic":
            a = -0.5
            near = ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1
            far = (((ax - 5) * ax + 8) * ax - 4) * a
            return np.where(ax < 1.0, near, np.where(ax < 2.0, far, 0.0))

        def sinc(v):
            return np.where(v == 0.0, 1.0, np.sin(v * np.pi) / (v * np.pi))

        return np.where((x >= -3.0) & (x < 3.0), sinc(x) * sinc(x / 3), 0.0)  # lanczos


AREA_SOURCES = (1024, 336)  # an area average is settled (`_reencoder`) as a nearest render of
#   these sizes box-filtered down too: the large marketplace renders (README), drawn exactly


@lru_cache(maxsize=256)
def _weights(n: int, filt: str, m: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """How Pillow's resize of m pixels (a punk's 24) to n weighs them: (n, m) float64, and the
    same in its 22-bit fixed point (integers held in float64: matrix products of them stay
    exact). "area": each pixel the mean of the area it covers; "area1024": a nearest render of
    1024 pixels box-filtered down — one linear resize of the punk: its fixed-point weights,
    summed over each cell's pixels (a nearest render copies values, so nothing is rounded
    between the two)."""
    if filt.startswith("skia"):  # a browser's smoothing (Chromium: Skia's bilinear, tested
        # bit for bit on its screenshots): each pixel's centre mapped to 16.16 fixed point, less
        # half a pixel; the two nearest pixels weighed by the fraction's top 4 bits (x / 16).
        # "skia/mask": the ties (`_skia_ties`) whose bit is set fall just below their 16th
        i = np.arange(n)
        at = ((2 * i + 1) * (m << 16)) // (2 * n) - (1 << 15)
        if "/" in filt:
            ties = _skia_ties(n, m)
            mask = int(filt[5:])
            at[ties] -= np.array([(mask >> j) & 1 for j in range(len(ties))], np.int64)
        lo, frac = at >> 16, (at >> 12) & 15
        w = np.zeros((n, m))
        np.add.at(w, (i, np.clip(lo, 0, m - 1)), 16 - frac)
        np.add.at(w, (i, np.clip(lo + 1, 0, m - 1)), frac)
        return w / 16, w
    if filt.startswith("nearest/"):  # cells cut at phase k (`_phase_edges`)
        starts = _phase_edges(n, int(filt[8:]), m)
        x = np.arange(n)[:, None]
        w = ((x >= starts[None, :-1]) & (x < starts[None, 1:])).astype(np.float64)
        return w, w * ONE
    if filt == "nearest":  # an affine transform in Pillow, not a filter: ask Pillow itself
        eye = Image.fromarray(np.eye(m, dtype=np.float32), "F")
        w = np.asarray(eye.resize((n, m), Image.NEAREST), np.float64).T.copy()
        return w, w * ONE
    if filt.startswith("area") and filt != "area":
        big = int(filt[4:])
        near, box = _weights(big, "nearest"), _weights(n, "box", big)
        return box[0] @ near[0], box[1] @ near[0]
    if filt == "area":
        edges = np.arange(n + 1) * (24 / n)
        lo, hi = edges[:-1, None], edges[1:, None]
        x = np.arange(24)
        w = np.clip(np.minimum(hi, x + 1) - np.maximum(lo, x), 0, None) / (hi - lo)
        return w, np.round(w * ONE)
    scale = m / n
    fscale = max(scale, 1.0)
    support = FILTERS[filt][1] * fscale
    center = (np.arange(n) + 0.5) * scale
    lo = np.maximum((center - support + 0.5).astype(int), 0)  # C casts truncate, as here
    hi = np.minimum((center + support + 0.5).astype(int), m)
    x = np.arange(m)
    k = _kernel(filt, (x - center[:, None] + 0.5) * (1.0 / fscale))
    k = np.where((x >= lo[:, None]) & (x < hi[:, None]), k, 0.0)
    total = k.sum(1, keepdims=True)
    w = np.divide(k, total, out=k.copy(), where=total != 0.0)
    s = w * ONE
    return w, np.where(w < 0, np.trunc(s - 0.5), np.trunc(s + 0.5))


def _phase_edges(n: int, k: int, m: int = 24) -> np.ndarray:
    """Where each of m nearest cells scaled to n pixels starts, cut at phase k (0 <= k < m):
    cell c at ceil((c n - k) / m), and the last ends at n."""
    return -(-(np.arange(m + 1) * n - k) // m)


def _skia_ties(n: int, m: int = 24) -> np.ndarray:
    """The pixels of a Skia resize of m to n whose centre maps exactly onto a 16th of a source
    pixel: the browser maps them in floating point with the image's place on the page, which
    rounds them to that 16th or just below it, and the picture alone does not say which."""
    twice = (2 * np.arange(n) + 1) * (m << 16)
    return np.flatnonzero((twice % (2 * n) == 0) & (((twice // (2 * n)) & 0xFFF) == 0))


def _axes(h: int, w: int, by: int, bx: int, filt: str, n: int) -> tuple[_Axis, _Axis]:
    """The two axes of a drawing with `filt` ("skia/ymask/xmask": each axis its own ties)."""
    fy = fx = filt
    if filt.startswith("skia/"):
        _, ym, xm = filt.split("/")
        fy, fx = f"skia/{ym}", f"skia/{xm}"
    return _axis(h, by, fy, n), _axis(w, bx, fx, n)


def _resample(src: np.ndarray, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Pillow's 8-bit resize of (24, 24, C) integer pixels with fixed-point weights (ny, 24) and
    (nx, 24): a horizontal pass rounded and clipped to 8 bits, then a vertical one."""
    h = np.tensordot(src, fx, ([1], [1]))  # (24, C, nx)
    h = np.clip(np.floor((h + HALF) / ONE), 0, 255).transpose(0, 2, 1)  # (24, nx, C)
    v = np.tensordot(fy, h, 1)  # (ny, nx, C)
    return np.clip(np.floor((v + HALF) / ONE), 0, 255)


def _skia(premult: np.ndarray, fy: np.ndarray, fx: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Skia's bilinear drawing of premultiplied pixels (24, 24, 4) int with 4-bit weights (ny,
    24) and (nx, 24) (each row summing to 16), in one pass (the sum over 256 floored), shown on
    an opaque `bg` as Skia blends (the background times 256 - alpha, over 256, floored):
    (ny, nx, 3) int64."""
    v = np.tensordot(fy, np.tensordot(premult.astype(np.float64), fx, ([1], [1])), 1)
    s = np.floor(v.transpose(0, 2, 1) / 256).astype(np.int64)  # (ny, nx, 4)
    return s[..., :3] + ((np.asarray(bg, np.int64) * (256 - s[..., 3:])) >> 8)


def _muldiv255(a, b):
    t = a * b + 128
    return ((t >> 8) + t) >> 8


def _premultiply(rgba: np.ndarray) -> np.ndarray:
    """Pillow's RGBA -> RGBa (int64)."""
    a = rgba[..., 3:]
    return np.concatenate([_muldiv255(rgba[..., :3], a), a], -1)


def _unpremultiplied(pm: np.ndarray) -> np.ndarray:
    """Pillow's RGBa -> RGBA (int64), by its formula. (255 p // a, in float32: the quotient is
    never within 1/255 of an integer it is not, so the floor is exact.)"""
    a = pm[..., 3:]
    q = np.floor(255 * pm[..., :3].astype(np.float32) / np.maximum(a, 1).astype(np.float32))
    rgb = np.where((a == 0) | (a == 255), pm[..., :3], np.minimum(q, 255).astype(np.int64))
    return np.concatenate([rgb, a], -1)


def _composited(bg: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """Pillow's alpha_composite of RGBA pixels (int) over an opaque colour, by its formula: RGB
    (int32). Over an opaque colour its coefficients reduce to 128 a and 128 (255 - a)."""
    a = rgba[..., 3:].astype(np.int32)
    t = rgba[..., :3].astype(np.int32) * (128 * a) + np.asarray(bg, np.int32) * (128 * (255 - a))
    t += 0x80 << 7
    t += t >> 8
    t >>= 15
    return t


@lru_cache(maxsize=1)
def _every_pixel() -> np.ndarray:
    """(v, v, v, a) for every 8-bit value v at every alpha a: (65536, 4), row 256 a + v (what
    the tables below are built from, once, when first needed)."""
    a, v = np.divmod(np.arange(65536), 256)
    return np.stack([v, v, v, a], -1)


@lru_cache(maxsize=1)
def _unpremultiply_table() -> np.ndarray:
    """`_unpremultiplied` of every premultiplied value v at every alpha a: (65536,) uint8 at
    256 a + v."""
    return _unpremultiplied(_every_pixel())[:, 0].astype(np.uint8)


@lru_cache(maxsize=256)
def _composite_table(level: int) -> np.ndarray:
    """`_composited` of every value v at every alpha a over a background channel at `level`:
    (65536,) uint8 at 256 a + v (64 KiB; one per level a background has)."""
    return _composited(np.full(3, level), _every_pixel())[:, 0].astype(np.uint8)


def _unpremultiply(pm: np.ndarray) -> np.ndarray:
    """Pillow's RGBa -> RGBA (int64) of 8-bit values (0..255), looked up (`_unpremultiplied`,
    ~5 times faster at 310 px)."""
    k = pm[..., 3:].astype(np.intp) * 256
    out = np.empty(pm.shape, np.int64)
    out[..., :3] = _unpremultiply_table().take(k + pm[..., :3])
    out[..., 3:] = pm[..., 3:]
    return out


def _composite(bg: np.ndarray, rgba: np.ndarray, dtype=np.int64) -> np.ndarray:
    """Pillow's alpha_composite of 8-bit RGBA pixels (int) over an opaque colour `bg` (3,):
    RGB as `dtype`, each channel looked up (`_composite_table`); over several backgrounds at
    once (`bg` (..., 3), broadcast), `_composited`."""
    bg = np.asarray(bg)
    if bg.shape != (3,):
        return _composited(bg, rgba).astype(dtype)
    k = rgba[..., 3].astype(np.intp) * 256
    out = np.empty(rgba.shape[:-1] + (3,), dtype)
    for c in range(3):
        out[..., c] = _composite_table(int(bg[c])).take(k + rgba[..., c])
    return out


def _shown_before(bg: np.ndarray, pm: np.ndarray, dtype=np.int64) -> np.ndarray:
    """`_composite(bg, _unpremultiply(pm))` of 8-bit premultiplied pixels `pm` (..., 4): each
    channel two lookups (~15 times faster than the formulas at 310 px)."""
    k = pm[..., 3].astype(np.intp) * 256
    table = _unpremultiply_table()
    out = np.empty(pm.shape[:-1] + (3,), dtype)
    for c in range(3):
        out[..., c] = _composite_table(int(bg[c])).take(k + table.take(k + pm[..., c]))
    return out


@dataclass(frozen=True)
class _Axis:
    """One axis of a candidate drawing: `side` pixels, `border` of them before and after the
    punk, resized with `filt`; sampled at positions `pos`."""

    side: int
    border: int
    filt: str
    pos: tuple[int, ...]

    @cached_property
    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(len(pos), 24) float weights and fixed-point ones; rows in the border are zero."""
        w, f = _weights(self.side - 2 * self.border, self.filt)
        inner = np.asarray(self.pos) - self.border
        inside = (inner >= 0) & (inner < w.shape[0])
        idx = np.clip(inner, 0, w.shape[0] - 1)
        return np.where(inside[:, None], w[idx], 0.0), np.where(inside[:, None], f[idx], 0.0)

    @cached_property
    def inside(self) -> np.ndarray:
        return self.weights[0].any(1)

    @cached_property
    def cell(self) -> np.ndarray:
        """The cell each sample shows most of; 24 in the border."""
        return np.where(self.inside, self.weights[0].argmax(1), 24)

    @cached_property
    def pinv(self) -> np.ndarray:
        """(24, samples): the least-squares inverse of the resize on this axis. For a nearest
        upscale only the central 75% of each cell counts: JPEG and WebP smear colour across
        the cell edges."""
        w = self.weights[0]
        use = self.inside.copy()
        if _is_nearest(self.filt):
            n = self.side - 2 * self.border
            centre = self.border + (self.cell.clip(0, 23) + 0.5) * n / 24
            core = np.abs(np.asarray(self.pos) + 0.5 - centre) <= 0.375 * n / 24
            if (np.bincount(self.cell[use & core], minlength=25)[:24] > 0).all():
                use &= core
        return np.linalg.pinv(np.where(use[:, None], w, 0.0))

    @cached_property
    def reach(self) -> int:
        """How many cells apart two cells can be and still share a sample (weights under 2%,
        lanczos' outer lobes, aside)."""
        g = np.abs(self.weights[0]) > 0.02
        share = (g.T.astype(int) @ g.astype(int)) > 0
        i, j = np.nonzero(share)
        return int(np.abs(i - j).max())


@lru_cache(maxsize=64)
def _axis(side: int, border: int, filt: str, n: int) -> _Axis:
    pos = np.unique(np.linspace(0, side - 1, min(side, n)).round().astype(int))
    return _Axis(side, border, filt, tuple(int(p) for p in pos))


def _project(wy, z, wx):
    """wy^T z wx over (ny, nx, K) -> (24, 24, K)."""
    t = np.tensordot(wy.T, z, 1)  # (24, nx, K)
    return np.tensordot(t, wx, ([1], [0])).transpose(0, 2, 1)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distances (N, P) between the rows of a (N, C) and b (P, C), a channel at a time:
    the very values of `((a[:, None] - b[None]) ** 2).sum(-1)` (its sum adds the channels in
    order too) at an eighth of the time (4.2 -> 0.5 ms for 576 cells and 222 colours)."""
    out = (a[:, None, 0] - b[None, :, 0]) ** 2
    for c in range(1, a.shape[1]):
        out += (a[:, None, c] - b[None, :, c]) ** 2
    return out


@lru_cache(maxsize=64)
def _commonest_alike(shown: bytes, counts: bytes) -> np.ndarray:
    """(P,): for each colour, the commonest (by `counts`, int64) of those that show alike as it
    does (`shown` (P, 3) float64, as bytes: a cache key): the same for every image on one
    background (1.4 ms a reading otherwise)."""
    n = np.frombuffer(counts, np.int64)
    s = np.frombuffer(shown).reshape(len(n), -1)
    same = (s[:, None] == s[None]).all(-1)  # (P, P)
    out = np.where(same, n[None], -1).argmax(1)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=64)
def _alike(shown: bytes, n: int) -> np.ndarray:
    """`_Drawing.similar` of colours `shown` (n, C) float64, as bytes (a cache key)."""
    s = np.frombuffer(shown).reshape(n, -1)
    out = np.argsort(_distances(s, s), 1)[:, 1:7]
    out.flags.writeable = False  # (shared by the drawings that ask)
    return out


class _Drawing:
    """One way the punk may have been drawn: a grid and filter, and `kind`, how transparency was
    handled: "alpha" (the image kept it: compared premultiplied), "after" (the punk was put on
    the background `bg`, then resized) or "before" (resized with its transparency, as a browser
    does, then put on `bg`). `exact` renders candidate punks bit for bit as Pillow would; the
    linear `gains` propose recolourings and `descend` keeps those that lower the error."""

    def __init__(self, y, ay: _Axis, ax: _Axis, palette: np.ndarray, kind: str, bg, clock):
        self.y, self.ay, self.ax, self.kind, self.clock = y, ay, ax, kind, clock
        self.filt = ay.filt
        self.wy, self.fy = ay.weights
        self.wx, self.fx = ax.weights
        pal = palette.astype(np.int64)
        self.q = np.hstack([pal[:, :3] * pal[:, 3:] / 255.0, pal[:, 3:]])  # premultiplied
        if kind == "alpha":
            self.bg = np.zeros(4)
            self.s = self.q
        else:
            self.bg = np.asarray(bg, np.int64)
            self.s = self.q[:, :3] + self.bg * (1 - pal[:, 3:] / 255.0)  # as shown on bg
            self.shown = _composite(self.bg, pal, np.float64)  # exactly so, by Pillow
        self.observed = _observe(pal)
        self.shown8 = self.shown.astype(np.uint8) if kind != "alpha" else None
        self.premult = _premultiply(pal)  # a resize (not NEAREST) works premultiplied
        self.pal8 = palette.astype(np.uint8)
        self.transparent = int(np.flatnonzero(pal[:, 3] == 0)[0])
        opaque_black = np.flatnonzero((pal == [0, 0, 0, 255]).all(1))
        self.black = int(opaque_black[0]) if len(opaque_black) else self.transparent
        self.inside = ay.inside[:, None] & ax.inside[None, :]
        self.sy, self.sx = (self.wy != 0).astype(np.float64), (self.wx != 0).astype(np.float64)
        self.energy = np.outer((self.wy**2).sum(0), (self.wx**2).sum(0)).ravel() + 1e-9

    @cached_property
    def similar(self) -> np.ndarray:
        """(P, 6) the colours that look most alike (on this background): the same for every
        image drawn alike, so computed once for them (~1.5 ms a drawing)."""
        return _alike(self.s.tobytes(), len(self.s))

    # -- exact ------------------------------------------------------------------------------

    @cached_property
    def by_pillow(self) -> bool:
        """Whether Pillow itself can draw it: one of its filters, an opaque kind, the punk
        inside the image, every pixel sampled (then `exact` asks Pillow, 3-10 times faster than
        its numpy twin, which is tested to give the same pixels)."""
        return self.kind != "alpha" and _by_pillow(self.ay, self.ax)

    def pillow(self, idx: np.ndarray) -> np.ndarray:
        """The drawing of punk `idx` by Pillow's own resize (and alpha_composite, "before"):
        (h, w, 3) uint8, every pixel; only where `by_pillow`."""
        ay, ax, f = self.ay, self.ax, FILTERS[self.filt][0]
        nh, nw = ay.side - 2 * ay.border, ax.side - 2 * ax.border
        bg = self.bg.astype(np.uint8)
        if self.kind == "after":
            im = Image.fromarray(self.shown8[idx].reshape(24, 24, 3), "RGB").resize((nw, nh), f)
        else:
            im = Image.fromarray(self.pal8[idx].reshape(24, 24, 4), "RGBA").resize((nw, nh), f)
            shown = Image.new("RGBA", (nw, nh), (*(int(v) for v in bg), 255))
            shown.alpha_composite(im)
            im = shown.convert("RGB")
        if ay.border == ax.border == 0:
            return np.asarray(im)
        out = np.empty((ay.side, ax.side, 3), np.uint8)
        out[:] = bg
        out[ay.border : ay.border + nh, ax.border : ax.border + nw] = np.asarray(im)
        return out

    def exact(self, idx: np.ndarray, rows=slice(None), cols=slice(None)) -> np.ndarray:
        """The observation Pillow's drawing of punk `idx` gives at the sampled rows and cols."""
        charge(EXACT)
        if self.by_pillow and _all(rows) and _all(cols):
            return self.pillow(idx).astype(np.float64)
        cells = idx.reshape(24, 24)
        if _is_nearest(self.filt):  # each sample is one cell's colour: look it up
            table = self.observed if self.kind == "alpha" else self.shown
            return _lookup(table[cells], self.bg, self.ay.cell[rows], self.ax.cell[cols])
        fy, fx = self.fy[rows], self.fx[cols]
        if self.filt.startswith("skia"):
            return _skia(self.premult[cells], fy, fx, self.bg).astype(np.float64)
        if self.kind == "after":
            out = _resample(self.shown[cells], fy, fx)
            return np.where(self.inside[rows, cols][..., None], out, self.bg)
        pm = _resample(self.premult[cells].astype(np.float64), fy, fx).astype(np.int64)
        if self.kind == "before":
            return _shown_before(self.bg, pm, np.float64)
        return _observe(_unpremultiply(pm))

    def image(self, idx: np.ndarray) -> np.ndarray:
        """The drawing of punk `idx` as 8-bit RGB (an opaque kind, every sample)."""
        if _is_nearest(self.filt):
            cells = self.shown8[idx.reshape(24, 24)]
            return _lookup(cells, self.bg.astype(np.uint8), self.ay.cell, self.ax.cell)
        if self.by_pillow:
            return self.pillow(idx)
        return self.exact(idx).astype(np.uint8)

    def error(self, idx: np.ndarray) -> float:
        return float(((self.y - self.exact(idx)) ** 2).sum())

    def errors_near(self, idx: np.ndarray, cands: list[np.ndarray]) -> np.ndarray:
        """`error` of each of `cands` (punks (576,) that differ from `idx` in a few cells): only
        the samples the changed cells reach are drawn again."""
        r = ((self.y - self.exact(idx)) ** 2).sum(-1)  # (ny, nx)
        total = float(r.sum())
        sy, sx = self.wy != 0, self.wx != 0
        out = np.full(len(cands), total)
        for j, c in enumerate(cands):
            changed = (c != idx).reshape(24, 24)
            if changed.any():
                ys = np.flatnonzero(sy[:, changed.any(1)].any(1))
                xs = np.flatnonzero(sx[:, changed.any(0)].any(1))
                rows, cols = slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1)
                now = float(((self.y[rows, cols] - self.exact(c, rows, cols)) ** 2).sum())
                out[j] = total - float(r[rows, cols].sum()) + now
        return out

    # -- fast, linear -----------------------------------------------------------------------

    def linear(self, idx: np.ndarray):
        """The drawing without rounding, clipped after each pass as Pillow clips; and masks of
        the values no clip touched: (horizontal pass (24, nx, K), vertical (ny, nx, K))."""
        e = 1e-6
        if self.kind == "before":
            v, lo, hi = self.q[idx].reshape(24, 24, 4), 0.0, 255.0
        else:
            v = (self.s[idx] - self.bg).reshape(24, 24, -1)  # relative to the background, so a
            lo, hi = -self.bg, 255.0 - self.bg  # border (zero weights) draws the background
        h = np.tensordot(v, self.wx, ([1], [1])).transpose(0, 2, 1)  # (24, nx, K)
        mh = (h > lo - e) & (h < hi + e)
        lin = np.tensordot(self.wy, np.clip(h, lo, hi), 1)  # (ny, nx, K)
        if self.kind == "before":
            p, a = lin[..., :3], lin[..., 3:]
            ac = np.clip(a, 0, 255)
            m = np.clip(p, 0, ac) + self.bg * (1 - ac / 255)
            return m, (mh, np.concatenate([(p > -e) & (p < ac + e), (a > -e) & (a < 255 + e)], -1))
        mv = (lin > lo - e) & (lin < hi + e)
        return np.clip(lin, lo, hi) + self.bg, (mh, mv)

    def gains(self, idx: np.ndarray, m: np.ndarray, masks) -> np.ndarray:
        """(576, P): how recolouring each cell to each colour changes the squared error, to
        second order, where the drawing is linear around `idx` (clipped values stay clipped):
        for cell i and colour vector v, (v - v_i)' A_i (v - v_i) - 2 b_i' (v - v_i)."""
        charge(GAINS)
        r = self.y - m
        wy, wx, wy2, wx2 = self.wy, self.wx, self.wy**2, self.wx**2
        mh, mv = (x.astype(np.float64) for x in masks)

        def pro(w, zv, zh, w2):  # sum over pixels of w[y,i] zv[y,x] zh[i,x] w2[x,j]
            t = np.tensordot(w.T, zv, 1) * zh  # (24, nx, K)
            return np.tensordot(t, w2, ([1], [0])).transpose(0, 2, 1).reshape(576, -1)

        if self.kind != "before":
            c = mv.shape[-1]
            v = self.s
            a = np.zeros((576, c, c))
            a[:, np.arange(c), np.arange(c)] = pro(wy2, mv, mh, wx2)
            b = pro(wy, r * mv, mh, wx)
        else:
            bg = self.bg / 255
            v = self.q
            vp, va, hp, ha = mv[..., :3], mv[..., 3:], mh[..., :3], mh[..., 3:]
            a = np.zeros((576, 4, 4))
            a[:, np.arange(3), np.arange(3)] = pro(wy2, vp, hp, wx2)
            a[:, 3, :3] = a[:, :3, 3] = -pro(wy2, vp * va, hp * ha, wx2) * bg
            a[:, 3, 3] = pro(wy2, va, ha, wx2)[:, 0] * (bg * bg).sum()
            b = np.concatenate(
                [pro(wy, r * vp, hp, wx), pro(wy, -(r * bg).sum(-1, keepdims=True) * va, ha, wx)],
                1,
            )
        vi = v[idx]  # (576, C)
        avi = np.einsum("icd,id->ic", a, vi)
        const = (vi * avi).sum(1) + 2 * (b * vi).sum(1)
        quad = a.reshape(576, -1) @ (v[:, :, None] * v[:, None, :]).reshape(len(v), -1).T
        return quad - 2 * (avi + b) @ v.T + const[:, None]

    def descend(self, idx: np.ndarray, prior=None, iters: int = 40) -> np.ndarray:
        """Coordinate descent on the linear drawing: each round, recolour the cells whose change
        the second-order model expects to lower the error most, many far-apart cells at once;
        keep each change that lowers the error where that cell draws, ban the others."""
        idx = idx.copy()
        m, masks = self.linear(idx)
        ry, rx = self.ay.reach, self.ax.reach
        banned = np.zeros((576, len(self.s)), bool)
        for _ in range(iters):
            self.clock.check("fitting the colours")
            de = self.gains(idx, m, masks)
            if prior is not None:
                de -= prior[None] - prior[idx][:, None]
            de[banned] = np.inf
            best = de.argmin(1)
            gain = de[np.arange(576), best]
            order = np.flatnonzero(gain < -1e-3)
            if not len(order):
                break
            taken = np.zeros((24 + 2 * ry, 24 + 2 * rx), bool)
            members = []
            for k in order[np.argsort(gain[order])]:
                i, j = divmod(int(k), 24)
                if not taken[i : i + 2 * ry + 1, j : j + 2 * rx + 1].any():
                    taken[i + ry, j + rx] = True
                    members.append(k)
            members = np.asarray(members)
            trial = idx.copy()
            trial[members] = best[members]
            m2, masks2 = self.linear(trial)
            # the members share no pixel: each one's change shows where it draws
            change = self.blame(m2)[members] - self.blame(m)[members]
            if prior is not None:
                change -= prior[best[members]] - prior[idx[members]]
            good = change < -1e-6
            banned[members[~good], best[members[~good]]] = True
            if not good.any():
                continue
            idx[members[good]] = best[members[good]]
            m, masks = (m2, masks2) if good.all() else self.linear(idx)
        return idx

    def blame(self, m: np.ndarray) -> np.ndarray:
        """(576,): the squared error of drawing `m` summed over the samples each cell draws."""
        r2 = ((self.y - m) ** 2).sum(-1)
        return (self.sy.T @ r2 @ self.sx).ravel()

    # -- exact local search -----------------------------------------------------------------

    def polish(self, idx: np.ndarray, evaluations: int = 2000, prior=None):
        """Where the exact drawing still differs from the input, try the likeliest other colours
        of each cell to blame, alone and then with its same-coloured neighbours, rendering
        exactly what each change touches; keep the best if it lowers the error. Sweeps until
        nothing improves or `evaluations` drawings are spent. Returns the punk and how many
        cells moved."""
        idx = idx.copy()
        sy, sx = (self.wy != 0).astype(np.float64), (self.wx != 0).astype(np.float64)
        ry, rx = self.ay.reach, self.ax.reach
        always = np.array([[self.transparent, self.black]])
        moved = 0
        tried: set[tuple[int, ...]] = set()  # (cells..., colour) found no better
        while evaluations > 0 and not self.clock.late():
            self.clock.check("checking the drawing")
            r = self.y - self.exact(idx)
            blame = (sy.T @ (r**2).sum(-1) @ sx).ravel()  # (576,) error where each cell draws
            suspects = np.flatnonzero(blame > 0.5)
            if not len(suspects):
                break
            # Innocent cells next to a wrong one share its blame; how much the residual looks
            # like what a cell draws (a matched filter) tells the culprit apart.
            look = (_project(self.wy, r, self.wx) ** 2).sum(-1).ravel() / self.energy
            m, masks = self.linear(idx)
            de = self.gains(idx, m, masks)
            top = np.argsort(de, 1)[:, :6]  # likeliest colours per cell
            # near clipping the linear guess misleads: also the colours that look like the
            # cell's own (240 vs 238 grey), the background and the outline
            top = np.hstack([top, self.similar[idx], np.repeat(always, 576, 0)])
            swept = False
            for k in suspects[np.argsort(-look[suspects])]:
                if evaluations <= 0 or self.clock.late():
                    break
                i, j = divmod(int(k), 24)
                near = np.zeros((24, 24), bool)
                near[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2] = True
                patch = np.flatnonzero(near.ravel() & (idx == idx[k]))
                for cells in ([int(k)], patch.tolist()) if len(patch) > 1 else ([int(k)],):
                    rows = np.flatnonzero(sy[:, np.unique(np.asarray(cells) // 24)].any(1))
                    cols = np.flatnonzero(sx[:, np.unique(np.asarray(cells) % 24)].any(1))
                    rs, cs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
                    target = self.y[rs, cs]
                    here = best = float(((target - self.exact(idx, rs, cs)) ** 2).sum())
                    choice = None
                    for c in dict.fromkeys(top[k].tolist()):
                        key = (*cells, c)
                        if c == idx[k] or key in tried or evaluations <= 0:
                            continue
                        tried.add(key)
                        trial = idx.copy()
                        trial[cells] = c
                        evaluations -= 1
                        e = float(((target - self.exact(trial, rs, cs)) ** 2).sum())
                        if prior is not None:  # a lossy image: how common each colour is
                            e -= len(cells) * float(prior[c] - prior[idx[k]])
                        if e < best - 1e-6:
                            best, choice = e, c
                    if choice is not None and best < here:
                        idx = idx.copy()
                        idx[cells] = choice
                        moved += len(cells)
                        swept = True
                        # verdicts on cells that share pixels with the moved ones are void
                        tried = {
                            t
                            for t in tried
                            if abs(t[0] // 24 - i) > ry + 1 or abs(t[0] % 24 - j) > rx + 1
                        }
                        break
            if not swept:
                break
        return idx, moved


def _all(s) -> bool:
    return isinstance(s, slice) and s == slice(None)


def _lookup(cells: np.ndarray, bg, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """A nearest drawing: (24, 24, C) cell colours at sample cells ys, xs (24: the border)."""
    ext = np.empty((25, 25, cells.shape[-1]), cells.dtype)
    ext[:24, :24] = cells
    ext[24], ext[:, 24] = bg, bg
    return np.take(np.take(ext, ys, 0), xs, 1)


def _observe(rgba: np.ndarray) -> np.ndarray:
    """What is compared for an image with transparency: premultiplied RGB and alpha, float."""
    rgba = rgba.astype(np.float64)
    a = rgba[..., 3:]
    return np.concatenate([rgba[..., :3] * a / 255, a], -1)


# --- finding the grid ---------------------------------------------------------------------------


def _lines(rgba: np.ndarray, has_alpha: bool, axis: int, n: int = 32) -> np.ndarray:
    """(side, n, 3) float: n lines across the image along `axis`, as it looks (an image with
    transparency on MATTE)."""
    other = rgba.shape[1 - axis]
    picks = np.unique(np.linspace(0, other - 1, min(other, n)).astype(int))
    lines = rgba[:, picks] if axis == 0 else rgba[picks].transpose(1, 0, 2)
    lines = lines.astype(np.float64)
    if has_alpha:
        a = lines[..., 3:] / 255
        return lines[..., :3] * a + MATTE * (1 - a)
    return np.ascontiguousarray(lines[..., :3])  # (reshaped flat a dozen times: no copies)


def _border_misfits(prof: np.ndarray, bs) -> list[float]:
    """How far the lines `prof` (side, L) are from a nearest upscale with each border b of
    `bs`: the mean absolute difference of each pixel from its cell's centre. The borders are
    drawn together (up to ~1M values at once); each mean is over its own contiguous slice, the
    value one border at a time gives."""
    side = prof.shape[0]
    bs = np.asarray(bs, np.int64)
    out: list[float] = []
    chunk = max(1, 2**20 // prof.size)
    for some in (bs[at : at + chunk] for at in range(0, len(bs), chunk)):
        cell = (side - 2 * some) / 24  # (B,)
        centres = np.minimum(
            (some[:, None] + (np.arange(24) + 0.5) * cell[:, None]).astype(int), side - 1
        )
        which = np.floor((np.arange(side) - some[:, None]) / cell[:, None]).astype(int)
        inner = np.take_along_axis(centres, np.clip(which, 0, 23), 1)
        idx = np.where(which < 0, 0, np.where(which > 23, side - 1, inner))  # (B, side)
        diff = prof[idx]  # (B, side, L), in place: 8x quicker than a broadcast subtraction
        diff -= prof  # into a new array at these shapes
        np.abs(diff, out=diff)
        out += [float(diff[k].mean()) for k in range(len(some))]
    return out


def _nearest_border(prof: np.ndarray) -> int:
    """The border b (0 to 1/8 of the side) whose grid of cells (side - 2b) / 24 makes a nearest
    upscale fit the lines best; 0 unless one fits clearly better (a border region is uniform, so
    it always fits). Large images are searched coarse (a tenth of a cell), then fine."""
    side = prof.shape[0]
    prof = prof[:, :: max(1, prof.shape[1] // 12)].reshape(side, -1)  # a dozen lines tell a
    done: dict[int, float] = {}  # grid; border -> its misfit

    def misfits(bs) -> list[tuple[float, int]]:
        todo = [b for b in bs if b not in done]
        done.update(zip(todo, _border_misfits(prof, todo)))
        return [(done[b], b) for b in bs]

    top = max(0, min(side // 8, (side - 24) // 2))
    none = misfits([0])[0][0]
    if none == 0.0 or top == 0:
        return 0  # an exact upscale with no border: nothing can fit better
    step = max(1, side // 240)
    coarse = min(misfits(range(0, top + 1, step)))
    fine = range(max(0, coarse[1] - step + 1), min(top, coarse[1] + step - 1) + 1)
    err, b = min([coarse] + misfits(fine))
    return b if err <= 0.5 * none else 0


@lru_cache(maxsize=1024)
def _span(side: int, border: int, filt: str) -> np.ndarray:
    """Orthonormal basis (side, k) of the lines a resize of 24 pixels to side - 2 * border,
    with that border of one colour on both ends, can draw."""
    w = np.zeros((side, 25 if border else 24))
    w[border : side - border, :24] = _weights(side - 2 * border, filt)[0]
    if border:
        w[:border, 24] = w[side - border :, 24] = 1
    return np.linalg.qr(w)[0]


def _line_misfit(prof: np.ndarray, border: int, filt: str) -> float:
    """Mean squared distance of the lines (side, L, 3) from what that drawing can make."""
    flat = prof.reshape(prof.shape[0], -1)
    c = _span(prof.shape[0], border, filt).T @ flat
    return max(float((flat * flat).sum() - (c * c).sum()), 0.0) / flat.size


def _phases(sides: set) -> list[int]:
    """The phases k of nearest cells ("nearest/k", `_weights`) that cut axes of these (side,
    border)s differently from each other: one k for each distinct set of cuts."""
    seen, out = set(), []
    for k in range(24):
        key = tuple(tuple(_phase_edges(side - 2 * b, k)) for side, b in sorted(sides))
        if key not in seen:
            seen.add(key)
            out.append(k)
    return out if len(out) > 1 else []  # (a whole-number scale: every phase cuts alike)


def _cut_misfit(sums: np.ndarray, total: float, border: int, k: int) -> float:
    """`_line_misfit` of "nearest/k" from the lines' cumulative sums (side + 1, L*3) and total
    square: each cell's best value is its mean, so what is left is each cell's spread (a few
    hundred operations, where the projection costs the lines times the side)."""
    side = sums.shape[0] - 1
    n = side - 2 * border
    edges = border + _phase_edges(n, k)
    seg = sums[edges[1:]] - sums[edges[:-1]]  # (24, L*3)
    kept = float(((seg * seg).sum(1) / np.diff(edges)).sum())
    if border:  # the border, both ends, is one colour
        b = sums[border] + sums[side] - sums[side - border]
        kept += float((b * b).sum()) / (2 * border)
    return max(total - kept, 0.0) / sums[1:].size


def _grids(rgba: np.ndarray, has_alpha: bool, phased: bool = True
           ) -> list[tuple[float, str, int, int]]:  # fmt: skip
    """Candidate drawings, best first: (misfit, filter, border y, border x). `phased`: nearest
    cells may be cut at another phase than Pillow's (not in a square cut from a page: a few
    pixels of its neighbour would pass for a wider cell)."""
    found = {}
    drawn_by = [*FILTERS] if has_alpha else [*FILTERS, "skia"]  # (a browser's, on its page)
    profs = [_lines(rgba, has_alpha, axis) for axis in (0, 1)]
    sides = [{(rgba.shape[axis], b) for b in (0, _nearest_border(profs[axis]))} for axis in (0, 1)]
    phases = _phases(sides[0] | sides[1]) if phased else []
    for axis in (0, 1):
        prof = profs[axis]
        borders = {b for _, b in sides[axis]}
        for filt in drawn_by:
            found[axis, filt] = min((_line_misfit(prof, b, filt), b) for b in sorted(borders))
        if phases:
            flat = prof.reshape(prof.shape[0], -1)
            sums = np.concatenate([np.zeros((1, flat.shape[1])), np.cumsum(flat, 0)])
            total = float((flat * flat).sum())
            for k in phases:
                found[axis, f"nearest/{k}"] = min(
                    (_cut_misfit(sums, total, b, k), b) for b in sorted(borders))  # fmt: skip
    # nearest cells cut at another phase than Pillow's (a browser's pixelated scaling): the
    # phase that fits best, when it fits better than Pillow's nearest, and last (a Pillow
    # filter that draws the same — box, upscaling by 1.5 — is that filter)
    phased = [f for f in {a[1] for a in found} if f.startswith("nearest/")]
    near = min(["nearest", *phased], key=lambda f: found[0, f][0] + found[1, f][0])
    out, drawn = [], []
    for f in [*drawn_by, near] if near != "nearest" else drawn_by:
        (ey, by), (ex, bx) = found[0, f], found[1, f]
        key = (
            by,
            bx,
            _weights(rgba.shape[0] - 2 * by, f)[1],
            _weights(rgba.shape[1] - 2 * bx, f)[1],
        )
        if any(
            k[:2] == key[:2] and all(np.array_equal(a, b) for a, b in zip(k[2:], key[2:]))
            for k in drawn
        ):
            continue  # draws the same as an earlier filter (box is nearest at whole scales)
        drawn.append(key)
        out.append((ey + ex, f, by, bx))
    return sorted(out, key=lambda t: t[0])


def _likely(grids: list) -> list:
    """The drawings tried: the three that fit best, and a fourth when Skia's is among them (it
    is a few levels from Pillow's bilinear: it must not crowd a Pillow filter out)."""
    return grids[: 4 if any(g[1] == "skia" for g in grids[:3]) else 3]


# --- normalize ----------------------------------------------------------------------------------

SAMPLES = 192  # at most this many rows and columns are compared (8 a cell), each as drawn
MAX_MISFIT = 24.0  # RMS difference between the image and the punk's drawing above which the
# image is not a drawing of a punk (JPEG q70 noise is ~3; a photo ~30)
CODEC_PIXELS = 1024 * 1024  # larger JPEG and WebP images are not re-encoded to check them
REENCODE_PIXELS = 112 * 112  # smaller lossy images keep what weighs whole drawings by
# re-encoding them (Fit.reencode): where noise blurs a colour across cells, the linear fit can
# prefer a wrong accessory; re-encoded, the right one gives the file back
REENCODE_WEBP_PIXELS = 96 * 96  # (WebP: its quality is guessed; at x4 re-encoding misled more
# than it helped: nearest 100 px WebP q80 99% -> 94% right)
KNOWN_WEBP_PIXELS = 160 * 160  # an opaque WebP this small whose quality an answer's drawing
# confirmed (its frame header), or a transparent one, is weighed by its own encoder, and any
# WebP this small is walked from its answers (`_Answers`): at 152 px lanczos q70 the linear fit
# kept a Silver Chain on the darkest skin, favoured by WebP's colour rounding 10x beyond its
# noise (5 of 1,000 opaque, 2 of 300 transparent); re-encoded, the truth gives the file back
CODEC_ENCODE_PIXELS = 8_000_000  # pixels re-encoded per image at most (~0.2 s)
MAX_ENCODES = 200  # and re-encodings
WEBP_QUALITIES = (80, 75, 90, 85, 70, 95, 100)  # tried in this order: Pillow's default first
# (a WebP whose frame header cannot be read)
WEBP_SETTLE = 4  # times an answer's background is moved toward a WebP's (`_webp_background`)
WEBP_NEAR = 3.0  # mean levels within which a WebP's answer, drawn, is near enough to try the
# backgrounds a level around (at 36 px q70 the truth a level off the file's blue is 0.2-2.9;
# an answer an edit away 0.9 up, 3.1 at the tenth percentile)
WEBP_AROUND = 6  # drawings (the nearest first) whose backgrounds a level around are tried
WEBP_CLOSE = 1.5  # mean levels within which a way is searched a level around at once
FAR_CLOSE = 1.15  # while no drawing has confirmed a WebP's quality, the moves beyond a level
# of one channel are encoded at each quality coming this close to the closest (summed levels;
# #9212 at 152 px lanczos q70: q71 closest on the background found, a level off in two
# channels; the file's q70 1.087x, and the truth gives it back there; #8714 at 36 px bilinear
# q70: a second quality at 1.245x spent the encodings its truth needed)
AROUND_NOW = 2  # an answer's ways searched so at once, at most (the rest after every answer)
WEBP_ANSWER_ENCODES = 240  # a WebP's answers drawn back stop after this many encodings (~1.5
# ms each at 100 px, up to three qualities a drawing): #219 at 100 px bilinear spent the whole
# soft second there, and the search that reads it was left no time to re-encode
DRAWN_BACK = 2  # answers the verifier settles on again that an opaque WebP draws back (each
# ~0.1 s at 36 px, ~1 s at 100 px when none gives it back: the verifier settles on up to 4)
SMALL_NEAR, SMALL_DRAWN_BACK = 8.0, 4  # the same two in a WebP of at most TWO_LEVELS_PIXELS:
# the verifier's answers shed a wrong trait at a time (#4978 at 36 px nearest q70: 6, 5, 4
# accessories, each one more of the network's) and the truth with one too many re-encodes
# beyond WEBP_NEAR (a Clown Nose: 6 levels), so neither its edits nor its backgrounds two
# levels around were searched (1,000 punks at 36 px q70: nearest 99.2 -> 99.5% right)
EDITS_BACK = 2  # answers an edit away from the verifier's, the closest, drawn back when it is
# not (36 px seed-2 sample: 2 of its 4 misses, #2195 bilinear q80 and #8674 nearest q70, so
# drawn back; #8674 bilinear q70's truth came 5th, #6778's truth was the verifier's own)
EDITS_RERANK = 8  # of them, the closest encoded again at each quality the file may have
AROUND_ENCODES = WEBP_ANSWER_ENCODES + WEBP_AROUND * 41  # (the answers may have spent theirs;
# 27 backgrounds, 7 of them at up to 3 qualities)
SOFT_SECONDS = 1.0  # optional checks (re-encoding, redrawing) stop after this long
MAX_SECONDS = 10.0  # an image taking longer is refused (none should come near this)
SOFT_IN_ALL = 3.0  # times its soft time an image's optional checks may take in all, however
# often the verifier restarts it (settled on another answer: #5136 at 36 px box WebP q70
# settled 9 times, 4.3 s of counted work, and still ended wrong)
COUNTED_SLACK = 4.0  # a clock counting work is late after this many times its soft time of CPU
# time as well: a guard for work the count misses, reached first only on a machine some two
# times slower than 2026-12-07's (on which the counted soft second takes about two)


def reencode_pixels(webp: bool) -> int:
    """The largest lossy image (a WebP: `webp`, else a JPEG) whose answers are weighed by
    re-encoding them whole."""
    return KNOWN_WEBP_PIXELS if webp else REENCODE_PIXELS


def _soft_seconds(webp: bool, h: int, w: int) -> float:
    """How long an image's optional checks may take: SOFT_SECONDS; for an opaque WebP (`webp`)
    whose answers are re-encoded whole beyond REENCODE_PIXELS (up to KNOWN_WEBP_PIXELS), more in
    proportion to its pixels, as each encoding costs more (~3.5 ms at 152 px: its answers drawn
    back, their backgrounds a level around and the walk ran out of the time 112 px leaves them,
    #756 at 152 px lanczos q70)."""
    if webp and REENCODE_PIXELS < h * w <= KNOWN_WEBP_PIXELS:
        return SOFT_SECONDS * h * w / REENCODE_PIXELS
    return SOFT_SECONDS


def normalize(
    source, palette: np.ndarray, counts: np.ndarray | None = None, name: str | None = None,
    exact=None, guess=None,
) -> tuple[np.ndarray, Normalized]:  # fmt: skip
    """The 24x24 RGBA uint8 punk that `source` (a path or bytes) shows, and how it was found.

    `palette` is the collection's RGBA colours (P, 4) uint8, transparent (0,0,0,0) included;
    `counts` how many pixels of the collection have each (a prior for noisy images).
    `exact(rgba, has_alpha, fmt, jpeg)`: a cheap reading tried first on a decoded image that
    needed no note (a whole-number nearest upscale: locate.exact_punk in a lossless file, 0.3 ms
    instead of the search's ~12 ms; locate.exact_jpeg in a JPEG (`jpeg`: its tables), ~5 ms
    instead of ~60 ms); None from it means "search".
    `guess(punk)`: the drawings (N, 24, 24, 4) uint8 of the answers likely for a rough reading
    `punk` (the network's); one that, drawn at the image's size the way it was drawn (and
    re-encoded, a JPEG), gives every pixel of the image back is the reading (`_Answers`: a few
    ms where the search takes 50-400). `guess(None, near=drawing)`: the drawings of the answers
    one edit away from one it gave or any clean drawing of an answer (a small JPEG walks from
    the network's answer to the one whose drawing explains it best; a small WebP draws back
    the closest neighbours of the answer the verifier settled on).
    """
    name = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<bytes>")
    try:
        return _normalize(source, palette, counts, name, exact, guess)
    except ImageError:
        raise
    except (ArithmeticError, LookupError, MemoryError, OSError, ValueError, struct.error) as e:
        # numpy or Pillow choked on something about this input that the checks above missed:
        # the user gets one line about their file; the cause stays chained for a traceback.
        reason = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        raise ImageError(f"{name}: could not be read as a punk ({reason})") from e


def _background(est: np.ndarray, y: np.ndarray, ay: _Axis, ax: _Axis, name: str,
                spread: float = 16.0) -> np.ndarray:  # fmt: skip
    """The background colour (int RGB): the four corner cells of a punk are always background
    (and so is a border around it). Refuses an image whose corners differ by more than
    `spread` levels (a gradient, a photo)."""
    corners = est[[0, 0, 23, 23], [0, 23, 0, 23]]  # (4, 3)
    near = np.abs(corners[:, None] - corners[None]).max(-1) <= spread
    agree = near[near.sum(1).argmax()]
    if agree.sum() < 3:
        raise ImageError(
            f"{name}: no one background colour (the corners differ); a punk image has one"
        )
    border = y[~(ay.inside[:, None] & ax.inside[None, :])]
    bg = np.median(border, 0) if len(border) else corners[agree].mean(0)
    return np.clip(np.rint(bg), 0, 255).astype(np.int64)


def _greyscale(rgba: np.ndarray) -> bool:
    """Whether (nearly) every visible pixel has R = G = B: a greyscale image. Every punk has
    colour (its skin at least: a tenth of the image or more)."""
    step = max(1, min(rgba.shape[:2]) // 256)
    px = rgba[::step, ::step].reshape(-1, 4)
    if not px[:, 3].all():  # (an opaque image, JPEG's always, needs no selection: 3x faster)
        px = px[px[:, 3] > 0]
    r, g, b = px[:, 0], px[:, 1], px[:, 2]  # a channel at a time, 8-bit (the largest is never
    spread = np.maximum(np.maximum(r, g), b)  # below the smallest): the same spreads
    spread -= np.minimum(np.minimum(r, g), b)
    return len(px) > 0 and float(np.percentile(spread, 99)) <= 8


def _lookalikes(idx, bg, palette, name: str, notes: list[str]) -> np.ndarray:
    """A background that looks like an opaque punk colour hides that colour. Black, the colour
    of every outline, is refused. For another (white, say), the cells of either that reach the
    corners through each other are taken as background, the others as the colour (right for
    88% of the punks with white), and a note says so."""
    transparent = int(np.flatnonzero(palette[:, 3] == 0)[0])
    look = np.flatnonzero((palette[:, 3] == 255) & (np.abs(palette[:, :3] - bg).max(1) <= 6))
    for c in look:
        if not palette[c, :3].any():
            raise ImageError(
                f"{name}: the background is black, like the punk's outlines, so the two cannot "
                "be told apart; give the image with transparency or on another colour"
            )
        either = np.isin(idx, (transparent, c)).reshape(24, 24)
        reach = np.zeros((24, 24), bool)
        reach[[0, 0, 23, 23], [0, 23, 0, 23]] = True
        reach &= either
        while True:
            grown = reach.copy()
            grown[1:] |= reach[:-1]
            grown[:-1] |= reach[1:]
            grown[:, 1:] |= reach[:, :-1]
            grown[:, :-1] |= reach[:, 1:]
            grown &= either
            if (grown == reach).all():
                break
            reach = grown
        idx = np.where(either.ravel(), np.where(reach.ravel(), transparent, c), idx)
        notes.append(
            "background #{:02x}{:02x}{:02x} looks like the punk colour #{:02x}{:02x}{:02x}: "
            "where that colour touches the background it is read as background".format(
                *bg, *palette[c, :3]
            )
        )
    return idx


def normalize_pixels(
    rgba: np.ndarray, has_alpha: bool, fmt: str, palette: np.ndarray,
    counts: np.ndarray | None = None, name: str = "<pixels>", notes: list[str] | None = None,
    jpeg: dict | None = None, frame: tuple[np.ndarray, int, int] | None = None,
) -> tuple[np.ndarray, Normalized]:  # fmt: skip
    """`normalize` for an image already decoded by `open_image`, or a part of one (a punk's
    square in a screenshot): then `frame` is (the file's pixels (H, W, 3) around it, aligned to
    its 16x16 JPEG blocks, and the part's x, y in them), so that a drawing is re-encoded with
    its surroundings, in the file's own blocks."""
    try:
        return _normalize_pixels(rgba, has_alpha, fmt, list(notes or []), jpeg or {}, palette,
                                 counts, name, _Clock(name), frame)  # fmt: skip
    except ImageError:
        raise
    except (ArithmeticError, LookupError, MemoryError, OSError, ValueError, struct.error) as e:
        reason = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        raise ImageError(f"{name}: could not be read as a punk ({reason})") from e


def _normalize(source, palette, counts, name: str, exact=None,
               guess=None) -> tuple[np.ndarray, Normalized]:  # fmt: skip
    clock = _Clock(name)
    rgba, has_alpha, fmt, notes, jpeg = open_image(source, name)
    if exact is not None and not notes:
        found = exact(rgba, has_alpha, fmt, jpeg)
        if found is not None:
            return found
    return _normalize_pixels(rgba, has_alpha, fmt, notes, jpeg, palette, counts, name, clock,
                             guess=guess)  # fmt: skip


def _normalize_pixels(rgba, has_alpha, fmt, notes, jpeg, palette, counts, name, clock,
                      frame=None, guess=None):  # fmt: skip
    h, w = rgba.shape[:2]
    if min(w, h) < 24:
        raise ImageError(f"{name}: {w}x{h} is smaller than a 24x24 punk")
    if max(w, h) > 1.25 * min(w, h):
        raise ImageError(
            f"{name}: {w}x{h} is not square; a punk image is square (a border allowed)"
        )
    if _greyscale(rgba):
        raise ImageError(
            f"{name}: the image is greyscale, and punks are told apart by colour (skin tones, "
            "eye shadow, lipstick); give the colour image"
        )
    transparent = int(np.flatnonzero(palette[:, 3] == 0)[0])
    prior = np.log(counts.astype(np.float64) + 1.0) if counts is not None else None
    if fmt in ("PNG", "BMP", "GIF") and frame is None and min(h, w) >= 36 and (h % 24 or w % 24):
        cells = _uneven_cells(rgba)
        if cells is not None:  # a nearest upscale, however its cells were cut: read each one
            # Pillow's nearest or box (an upscale without a straddled pixel) cuts it one way;
            # a browser's pixelated scaling, another
            filt = next((f for f in ("nearest", "box") if np.array_equal(
                np.asarray(Image.fromarray(cells).resize((w, h), FILTERS[f][0])), rgba)), None)  # fmt: skip
            if filt is None:
                notes = [*notes, "nearest-neighbour cells cut unevenly, as a browser's "
                         "pixelated scaling cuts them: read cell by cell"]  # fmt: skip
            punk, info = _normalize_pixels(cells, has_alpha, fmt, notes, jpeg, palette, counts,
                                           name, clock, guess=guess)  # fmt: skip
            return punk, replace(info, source_size=(w, h), fit=None, filter=filt or "nearest",
                                 scale=(round(w / 24, 4), round(h / 24, 4)))  # fmt: skip
    grids = _grids(rgba, has_alpha, phased=frame is None)
    if grids[0][0] > MAX_MISFIT**2:  # not even the lines fit a 24-cell drawing (noise, a photo)
        raise ImageError(f"{name}: no 24x24 pixel grid found (is it a single punk?)")
    lossless = fmt in ("PNG", "BMP")  # (GIF quantises colours; JPEG and WebP are lossy)
    clock.soft = _soft_seconds(fmt == "WEBP" and not has_alpha, h, w)
    clock.counted = fmt == "WEBP"
    answers = None
    if guess is not None and frame is None and (lossless or (_encoder_known(fmt, jpeg, has_alpha)
                                                              and min(h, w) >= 32)):  # fmt: skip
        answers = _Answers(guess, rgba, has_alpha, fmt, jpeg, grids, palette, clock)
    # Each likely drawing (filter, border, compositing order) gets a few rounds of descent; the
    # one that fits best is then fitted fully and searched exactly.
    likely = [g for k, g in enumerate(_likely(grids)) if k == 0 or g[0] <= 4 * grids[0][0] + 1.0]
    fits: dict = {}  # (filter, border y, border x) -> its axes, samples, least squares, background

    def fit(filt: str, by: int, bx: int):
        if (filt, by, bx) not in fits:
            clock.check("finding the grid")
            ay, ax = _axes(h, w, by, bx, filt, SAMPLES)
            y = rgba[np.asarray(ay.pos)][:, np.asarray(ax.pos)]
            y = _observe(y) if has_alpha else y[..., :3].astype(np.float64)
            est = _project(ay.pinv.T, y, ax.pinv.T)  # least squares (24, 24, C)
            bg = None
            if not has_alpha:
                # (a small lossy image blurs a corner cell with the outline next to it; a 24
                # px JPEG's corners carry the chroma of the 2x2 pixels they are coded with: up
                # to 30 levels off at q70 — re-encoding settles its background again, below)
                spread = 16.0 if fmt in ("PNG", "BMP") else 32.0 if min(h, w) >= 34 else 64.0
                bg = _background(est, y, ay, ax, name, spread)
            fits[filt, by, bx] = (ay, ax, y, est, bg)
        return fits[filt, by, bx]

    roughs: dict = {}  # (filter, border y, border x, kind) -> its drawing and rough reading

    def rough(filt: str, by: int, bx: int, kind: str):
        if (filt, by, bx, kind) not in roughs:
            ay, ax, y, est, bg = fit(filt, by, bx)
            d = _Drawing(y, ay, ax, palette, kind, bg, clock)
            idx = _distances(est.reshape(576, -1), d.s).argmin(1)
            if kind == "before":  # the background ring around the punk was clipped
                close = np.abs(d.s[idx] - d.bg).max(1) < 30
                idx = np.where(close, transparent, idx)
            roughs[filt, by, bx, kind] = (d, idx)
        return roughs[filt, by, bx, kind]

    def kinds_of(filt: str):  # (a browser resizes the punk with its transparency, then shows
        return ["alpha"] if has_alpha else _kinds(filt)  # it on the page)

    checked = []  # of `roughs`, those whose answer was tried already, in order
    if answers is not None and lossless:
        # drawn with ringing or by area, a lossless file is slow to read pixel for pixel (a
        # descent: 10-20 ms at 100 px), and the answer for a rough reading often gives it back,
        # but not always the reading of the drawing that fits the grid best (a lanczos render
        # fits bicubic's first): every such likely drawing's rough reading is tried before any
        # is descended (area's second kind is read from its first, descended: not here)
        for _, filt, by, bx in likely:
            if _slow(filt):
                for kind in kinds_of(filt)[: None if filt in RINGING else 1]:
                    d, idx = rough(filt, by, bx, kind)
                    checked.append((filt, by, bx, kind))
                    found = answers.check(idx, d, d.error(idx))
                    if found is not None:
                        return answers.reading(found, d, fit(filt, by, bx)[3], notes, w, h,
                                               fmt, name)  # fmt: skip
        if checked:  # none gave it back: each reading's answer may have part of it
            d = rough(*checked[0])[0]
            found = answers.union(d)
            if found is not None:
                return answers.reading(found, d, fit(*checked[0][:3])[3], notes, w, h, fmt,
                                       name)  # fmt: skip
    tried = []  # (error, punk, drawing, least-squares estimate)
    for _, filt, by, bx in likely:
        if tried and min(t[0] for t in tried) == 0:
            break  # drawn exactly (nothing can fit better)
        ay, ax, y, est, bg = fit(filt, by, bx)
        first = None
        for kind in kinds_of(filt):
            if tried and min(t[0] for t in tried) == 0:
                break
            if first is not None and filt not in RINGING:
                # nothing is clipped: the same punk; only the exact rounding differs
                d, idx = _Drawing(y, ay, ax, palette, kind, bg, clock), first
            else:
                d, idx = rough(filt, by, bx, kind)
                if (
                    answers is not None
                    and (not lossless or _slow(filt))
                    and ((filt, by, bx, kind) not in checked)
                ):  # the answer for the rough reading, drawn back: lossy or ringing, a file
                    # is slow to read pixel for pixel, and the answer may draw it exactly
                    found = answers.check(idx, d, d.error(idx))
                    if found is not None:
                        return answers.reading(found, d, est, notes, w, h, fmt, name)
                idx = d.descend(idx, iters=6)
            first = idx if first is None else first
            err = d.error(idx)
            if answers is not None:  # (a reading whose answer was drawn already is not again)
                found = answers.check(idx, d, err)
                if found is not None:
                    return answers.reading(found, d, est, notes, w, h, fmt, name)
            tried.append((err, idx, d, est))
    e, idx, d, est = min(tried, key=lambda t: t[0])
    if e > 0:
        idx = d.descend(idx)
        noise = max(d.error(idx) / d.y.size, 0.25)
        per_cell = d.y.shape[0] * d.y.shape[1] / 576  # lossy noise is not iid
        if prior is not None and not lossless:  # how common each colour is counts
            idx = d.descend(idx, 2 * noise * per_cell * prior)
        if fmt != "JPEG":
            weighed = None if lossless or prior is None else 2 * noise * per_cell * prior
            idx, _ = d.polish(idx, 2000 if weighed is None else 600, weighed)
        e = d.error(idx)
    rms = float(np.sqrt(e / d.y.size))
    if rms > MAX_MISFIT:
        raise ImageError(f"{name}: no 24x24 pixel grid found (is it a single punk?)")
    lossy = fmt == "JPEG" or (fmt == "WEBP" and e > 0)
    reencode = None
    if lossy and not has_alpha and w * h <= CODEC_PIXELS:
        ay, ax = _axis(h, d.ay.border, d.ay.filt, h), _axis(w, d.ax.border, d.ax.filt, w)
        y = rgba[..., :3].astype(np.float64)
        kinds = _kinds(d.filt, ("after", "before"))
        fulls = [_Drawing(y, ay, ax, palette, k, d.bg, clock) for k in kinds]
        webp = answers if answers is not None and isinstance(answers.codec, Webp) else None
        known = webp.codec if webp is not None and webp.codec.quality is not None else None
        codec = _jpeg(jpeg, frame) if fmt == "JPEG" else _webp(fulls[0], idx, known)
        if codec is not None and not clock.late():  # (the re-encoder below keeps its own time:
            # a late image is still weighed by whole answers re-encoded, #219 at 100 px WebP)
            # resized then composited, or the other way: rounding differs by one level, which
            # the encoder may turn into more; the way that re-encodes closer is the way it was
            full = min(fulls, key=lambda f: float(np.abs(codec[0](f.image(idx)) - y).sum()))
            idx, order, doubtful = _candidates(d, idx, est, prior)
            idx, fixed = _refine(full, idx, order, doubtful, codec[0])
            if fixed:
                notes.append(f"{codec[1]}: {fixed} pixels corrected by re-encoding")
        if w * h <= (reencode_pixels(fmt == "WEBP") if fmt == "JPEG" or known
                     else REENCODE_WEBP_PIXELS):  # fmt: skip
            # (a WebP whose reading does not re-encode closely: the quality an answer's drawing
            # confirmed first, and each guess where the image is small enough: settled on a
            # far reading, the file's own encoder alone chose a drawing that hid the truth, #9275)
            codecs = [codec[0]] if codec else [known] if known else []
            if fmt == "WEBP" and not codec and w * h <= REENCODE_WEBP_PIXELS:
                codecs += [_webp_at(q) for q in WEBP_QUALITIES]
            if codecs:
                reencode = _reencoder(rgba[..., :3], grids, d.bg, codecs, palette, name, idx,
                                      blockwise=fmt == "JPEG" and frame is None,
                                      answers=webp, seen=d, counted=clock.counted)  # fmt: skip
    if lossy and has_alpha and fmt == "WEBP" and "vp8" in jpeg and w * h <= reencode_pixels(True):
        codec = answers.codec if answers is not None else Webp(jpeg["vp8"], rgba)
        reencode = _clear_reencoder(rgba, grids, codec, palette, idx)
    if not has_alpha:
        if counts is not None:  # colours that show alike on this background: the commonest
            idx = _commonest_alike(d.shown.tobytes(), np.asarray(counts, np.int64).tobytes())[idx]
        idx = _lookalikes(idx, d.bg, palette.astype(np.int64), name, notes)
    if (idx == transparent).all():
        raise ImageError(f"{name}: no punk in it (the image is all one colour)")
    punk = palette[idx].reshape(24, 24, 4).astype(np.uint8)
    shown = d.s[idx].reshape(24, 24, -1)
    snapped = int((np.sqrt(((est - shown) ** 2).sum(-1)) > 0.5).sum())
    bg_name = "transparent" if has_alpha else "#{:02x}{:02x}{:02x}".format(*d.bg)
    scale = (round((w - 2 * d.ax.border) / 24, 4), round((h - 2 * d.ay.border) / 24, 4))
    offset = (float(d.ax.border), float(d.ay.border))
    notes = notes + _phase_note(d.filt)
    info = Normalized(
        (w, h), fmt, scale, offset, bg_name, snapped, notes, _family(d.filt), Fit.of(d, reencode)
    )
    return punk, info


def _uneven_cells(rgba: np.ndarray) -> np.ndarray | None:
    """The 24x24 cells (24, 24, 4) of a nearest-neighbour upscale whose cells are cut anywhere
    (each `floor` or `ceil` of the scale wide, as a browser's `image-rendering: pixelated` cuts
    them at a fractional scale, not where Pillow would), or None when the image is not one.
    On each axis, the cuts `ceil(i * scale + c)` of every phase c are tried (24 at most; of
    those that fit, the one nearest `i * scale`); then, for cuts that follow no one phase, those
    where the most rows (columns) change, by dynamic programming. Every cell must be one colour:
    an axis that changes at more than 23 places has none (a smoothed render: returned at once)."""
    px = np.where(rgba[..., 3:] == 0, 0, rgba)  # a transparent pixel's colour is no colour
    bounds = []
    for a in (px, px.transpose(1, 0, 2)):  # columns, then rows
        n = a.shape[1]
        change = np.zeros(n + 1)
        change[1:n] = (a[:, 1:] != a[:, :-1]).any(-1).sum(0)  # rows changing at each column
        if np.count_nonzero(change) > 23:
            return None  # more changes than cuts: a change inside a cell, whatever the cuts
        total = change.sum()
        edges = _pillow_cuts(n)  # first Pillow's own (its ties fall both ways: no one phase)
        if change[edges].sum() < total:
            edges = _phase_cuts(n, change, total)
        if edges is None:
            edges = _cuts(n, change, total)
        if edges is None:
            return None
        bounds.append(edges)
    (xs, ys) = [(b[:-1] + b[1:]) // 2 for b in bounds]  # each cell's middle pixel
    return np.ascontiguousarray(rgba[ys][:, xs])


@lru_cache(maxsize=64)
def _pillow_cuts(n: int) -> np.ndarray:
    """Where Pillow's nearest upscale of 24 pixels to n starts each (and ends the last)."""
    w = _weights(n, "nearest")[0]
    return np.append(w.argmax(0), n)


def _phase_cuts(n: int, change: np.ndarray, total: float) -> np.ndarray | None:
    """The cuts of one phase (a uniform nearest scaling) with every change on a cut, or None.
    Where several fit (a run of one colour can be cut more ways than one), Chromium's phase
    (11) first, then the one nearest i * n / 24."""
    # i * n / 24 is a multiple of 1/24: these 24 phases give every distinct set of cuts
    at = np.arange(25) * n
    found = []
    for k in range(24):
        edges = _phase_edges(n, k)
        if (np.diff(edges) > 0).all() and change[edges].sum() >= total:
            found.append((k != 11, float(np.abs(edges - at / 24).sum()), k, edges))
    return min(found, key=lambda t: t[:3])[3] if found else None


def _cuts(n: int, change: np.ndarray, total: float) -> np.ndarray | None:
    """24 cells, each floor or ceil of n / 24 wide, with every change on a cut, or None."""
    widths = sorted({n // 24, -(-n // 24)})
    if widths[0] < 1:
        return None
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    came = np.zeros((24, n + 1), np.int64)
    for k in range(24):
        nxt = np.full(n + 1, -np.inf)
        for wd in widths:
            take = best[: n + 1 - wd] > nxt[wd:]
            nxt[wd:] = np.where(take, best[: n + 1 - wd], nxt[wd:])
            came[k, wd:] = np.where(take, wd, came[k, wd:])
        best = nxt + change
    if not np.isfinite(best[n]) or best[n] < total:
        return None  # a change inside a cell: not a nearest upscale
    edges = [n]
    for k in range(23, -1, -1):
        edges.append(edges[-1] - came[k, edges[-1]])
    return np.array(edges[::-1])


LEVEL_STEPS = np.stack(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij"), -1).reshape(-1, 3)  # a
# colour's moves of at most a level in each channel (27, 3), the move 0 included
NEAREST_STEPS = LEVEL_STEPS[np.abs(LEVEL_STEPS).sum(1).argsort()]  # the same, the nearest first
TWO_LEVELS = np.stack(np.meshgrid(*[range(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3)
TWO_LEVELS = TWO_LEVELS[np.abs(TWO_LEVELS).any(1)]  # the moves of at most two levels in each
# channel (124, 3): where a WebP's flat background decodes alike over a few levels, the moves
# of `_webp_background` can stop two levels off (4 of 40 at 36 px bilinear q70); the level
# around again, as it may have been searched before any drawing had the file's header, at
# qualities that missed its own (#9763 at 36 px area q70: the truth's blue a level off)
TWO_LEVELS_OTHERS = 2  # the answers drawn nearest, besides the verifier's, searched so too
TWO_LEVELS_WAYS = 2  # of an answer's ways (filter, borders, compositing order), the nearest
# searched so (were: the nearest of each compositing order, whichever filter; 3 spent the share
# the truth's way needed: #6979 bilinear, #5136 box at 36 px q70, right with 2; see RESULTS)
TWO_LEVELS_PIXELS = 64 * 64  # in images at most this large (100 px WebP q80: nothing found,
# area 386 -> 532 ms: 98 encodings a way at ~1.5 ms)


SETTLE_STARTS = 3  # a JPEG's drawing, when the closest way's descent does not give the file
# back, is descended from the next closest ways too (filter, compositing order: #6099 at 36 px
# bilinear q70, settled on the truth, stopped a level off in the other compositing order)
SETTLE_REACH = 3  # ... and then searched this many levels around in each channel (by the
# corner blocks first: `corners_back`; #6003 there stopped three levels off in blue)
REACH_STEPS = np.stack(np.meshgrid(*[range(-SETTLE_REACH, SETTLE_REACH + 1)] * 3, indexing="ij"),
                       -1).reshape(-1, 3)  # fmt: skip
REACH_STEPS = REACH_STEPS[np.abs(REACH_STEPS).any(1)]
TIE_NEAR, TIE_AROUND = 0.3, 3  # when ties are told (`exact`), the TIE_AROUND drawings that come
# within TIE_NEAR mean levels of a small lossy file without giving it back are tried on the
# backgrounds a level around as well: the drawing that gave the file back settled the background,
# and the truth may give it back a level away (#3932 at 36 px bilinear WebP q70: a Mole more gave
# the file back on #648497, the truth, 0.017 levels off there, on the site blue #638596; proven,
# the Mole was reported verified; #1843 at 36 px area JPEG q70: a Silver Chain more, the same)


def _reencoder(pixels: np.ndarray, grids, bg, codecs: list, palette: np.ndarray, name: str,
               reading: np.ndarray, given: tuple | None = None, blockwise: bool = False,
               answers: _Answers | None = None, seen: _Drawing | None = None,
               counted: bool = False):  # fmt: skip
    """`Fit.reencode` for a small lossy image (`pixels` (h, w, 3) uint8): each punk drawn the
    way the image was drawn, every pixel, through its encoder (one of `codecs`: a WebP does not
    say its quality), compared with it. The encoder is deterministic, so the punk the file was
    made from gives it back exactly, if the drawing is the image's own: at a few dozen pixels a
    side, noise blurs which filter drew it and shifts the background's estimate, so the drawing
    is settled first: the likely filters, both compositing orders and each encoder, on the
    background fitted by least squares, then the background a level at a time in each channel
    while it comes closer. It is settled on the pixel `reading`, and again on a punk when asked
    (`again`: the caller's best answer). `given`: (drawing, codec) known to give the file back
    (`_Answers`), used until asked again. With `exact`, only whether each punk gives the file
    back matters (0 or not): with `blockwise` (the codecs are a whole file's JPEG encoder) and
    `like` (a punk (24, 24, 4) that gives it back), many are told in one encoding. `answers`
    (an opaque WebP's, with its frame header): a punk settled on again is first drawn back
    with the file's own encoder (`_Answers.draw_back`; `seen`: the reading's drawing, whose
    way is tried first), as the network's answers were: the least-squares descent below
    stops a level or two off, where WebP's encoding jumps."""
    h, w = pixels.shape[:2]
    pixels = np.ascontiguousarray(pixels)
    packed = _pack(palette)
    order = np.argsort(packed)
    settled: list[tuple[_Drawing, Callable]] = [given] if given else []

    def error(d: _Drawing, codec, cells: np.ndarray) -> float:
        return float(np.abs(codec(d.image(cells)).astype(np.int16) - pixels).mean())

    def drawing(filt, by, bx, kind, colour):
        ay, ax = _axes(h, w, by, bx, filt, max(h, w))
        return _Drawing(pixels, ay, ax, palette, kind, colour, clock)

    def recoloured(d: _Drawing, colour) -> _Drawing:
        """`d` on another background (what `image` needs of it; 1 ms less than a new one)."""
        out = copy.copy(d)
        out.bg = np.asarray(colour, np.int64)
        out.shown = _composite(out.bg, palette, np.float64)
        out.shown8 = out.shown.astype(np.uint8)
        return out

    clock = _Clock(name, _soft_seconds(answers is not None, h, w), counted)  # (restarted when
    # called: the image may wait in a batch; `answers`: an opaque WebP's)

    def settle(cells: np.ndarray, again: bool = False) -> tuple[_Drawing, Callable]:
        clock.restart()
        if again and answers is not None:
            found = answers.draw_back(cells, seen, clock)
            if found is not None:
                _, f, by, bx, kind, colour = found
                return drawing(f, by, bx, kind, colour), answers.codec
        filters = _filters(grids)
        tries = [(filt, by, bx, kind) for filt, by, bx in filters
                 for kind in _kinds(filt, ("after", "before"))]  # fmt: skip
        drawn = [drawing(*t, _fitted_background(pixels, t, palette[cells])) for t in tries]
        starts = sorted(
            (error(d, codec, cells), k, c)
            for k, d in enumerate(drawn)
            for c, codec in enumerate(codecs)
        )
        best, k, c = starts[0]
        centre = drawn[k].bg
        for n, (e, kk, cc) in enumerate(starts[: SETTLE_STARTS if blockwise else 1]):
            if best == 0 or (n and clock.late()):
                break
            e, at = descend(drawn[kk], codecs[cc], cells, e)
            if e < best or n == 0:
                best, k, c, centre = e, kk, cc, at
        if best > 0 and blockwise and not clock.late():
            # the descent stops at a local minimum (#6003: three levels off in blue): the
            # backgrounds within SETTLE_REACH levels whose corner blocks come back, each whole
            d = recoloured(drawn[k], centre)
            for colour in [np.clip(centre + s, 0, 255)
                           for s in corners_back(d, codecs[c], cells, REACH_STEPS)]:  # fmt: skip
                e = error(recoloured(d, colour), codecs[c], cells)
                if e < best:
                    best, centre = e, colour
                if e == 0 or clock.late():
                    break
        return recoloured(drawn[k], centre), codecs[c]

    def descend(d: _Drawing, codec, cells: np.ndarray, best: float) -> tuple[float, np.ndarray]:
        """From `d`'s background, a level at a time in each channel while the drawing comes
        closer: (its error, the background)."""
        centre = d.bg
        while best > 0 and not clock.late():  # and within a level of each channel
            around = [np.clip(centre + s, 0, 255) for s in LEVEL_STEPS if s.any()]
            e, j = min((error(recoloured(d, x), codec, cells), j) for j, x in enumerate(around))
            if e >= best:
                break
            best, centre = e, around[j]
        return best, centre

    def given_back(d: _Drawing, codec, cells: np.ndarray, like: np.ndarray) -> np.ndarray:
        """`error` of many punks (N, 576) where only 0 matters, told by one encoding
        (`_given_back`); `like` (576,): a punk whose drawing gives the file back."""

        def draw(c, rows, cols):
            part = d.pillow(c)[rows, cols] if d.by_pillow else d.exact(c, rows, cols)
            return part.astype(np.uint8)

        return _given_back(pixels, codec, cells, like, d.wy != 0, d.wx != 0, draw,
                           lambda c: error(d, codec, c))  # fmt: skip

    def reencode(punks: np.ndarray, again: bool = False, exact: bool = False,
                 like: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        cells = cells_of(punks)
        if not settled or again:  # (again: settled on this first punk instead)
            settled[:] = [settle(cells[0], True) if again else settle(reading)]
        d, codec = settled[0]
        if exact and blockwise and like is not None:
            errs = given_back(d, codec, cells, cells_of(like)[0])
            # a JPEG's ties a level around too (#1843): only a drawing within TIE_NEAR can be
            # one, and `given_back` says at most a drawing's error (one encoding for all, where
            # `around` alone encodes each: ~50 ms a proven 36 px file)
            near = np.flatnonzero((errs > 0) & (errs <= TIE_NEAR))
            errs[near] = around(d, codec, cells[near])
            return errs
        if exact and isinstance(codec, Webp):  # (at each quality a drawing gave the file back at)
            return around(d, codec.every, cells)
        return np.array([error(d, codec, c) for c in cells])

    def around(d: _Drawing, codec, cells: np.ndarray) -> np.ndarray:
        """`error` of each punk, 0 as well where the drawing of one that comes near gives the
        file back on a background a level around `d`'s (TIE_NEAR, TIE_AROUND; a JPEG's, only
        the backgrounds on which its corner blocks come back: `corners_back`)."""
        errs = np.array([error(d, codec, c) for c in cells])
        for k in [k for k in np.argsort(errs) if 0 < errs[k] <= TIE_NEAR][:TIE_AROUND]:
            steps = NEAREST_STEPS[1:]
            steps = corners_back(d, codec, cells[k], steps) if blockwise else steps
            for step in steps:
                if error(recoloured(d, np.clip(d.bg + step, 0, 255)), codec, cells[k]) == 0:
                    errs[k] = 0.0
                    break
        return errs

    def corners_back(d: _Drawing, codec, c: np.ndarray, steps: np.ndarray) -> list:
        """Of the background moves `steps`, those on which the drawing of punk `c` (576,) gives
        back the JPEG's four corner blocks (`_block_errors`: all in one encoding, a few whole
        encodings' time for 26 moves): only they can give the whole file back."""
        if h < 16 or w < 16 or not len(steps):
            return list(steps)
        ys, xs = (0, (h - 16) // 16 * 16), (0, (w - 16) // 16 * 16)  # (whole blocks)
        tiles = sorted({(y, x) for y in ys for x in xs})
        parts = []
        for step in steps:
            image = recoloured(d, np.clip(d.bg + step, 0, 255)).image(c)
            parts += [(image[y : y + 16, x : x + 16], (y, x)) for y, x in tiles]
        errs = _block_errors(codec, target, parts).reshape(len(steps), len(tiles)).sum(1)
        return [step for step, e in zip(steps, errs) if e == 0]

    def cells_of(punks: np.ndarray) -> np.ndarray:
        return _palette_cells(packed, order, punks)

    target = pixels.astype(np.int16)
    return reencode


def _filters(grids: list) -> list[tuple[str, int, int]]:
    """(filter, border y, border x) of the likely drawings (`_likely`), an area average as each
    of its sources."""
    return [(f, by, bx) for _, filt, by, bx in _likely(grids)
            for f in [filt, *(f"area{m}" for m in AREA_SOURCES if filt == "area")]]  # fmt: skip


def _palette_cells(packed: np.ndarray, order: np.ndarray, punks: np.ndarray) -> np.ndarray:
    """The palette indices (N, 576) of punks (N, 24, 24, 4) (`packed`: the palette `_pack`ed,
    `order` its argsort); a colour no punk has reads as a neighbour's."""
    at = np.searchsorted(packed[order], _pack(punks.reshape(-1, 576, 4)))
    return order[at.clip(0, len(packed) - 1)]


def _clear_reencoder(pixels: np.ndarray, grids, codec: Webp, palette: np.ndarray,
                     reading: np.ndarray, way: tuple | None = None):  # fmt: skip
    """`Fit.reencode` for a small transparent lossy WebP (`pixels` (h, w, 4) uint8): each punk
    drawn with its transparency (no background to settle) the likely way that explains the
    pixel `reading` (576,) best — or, `again`, the first punk — encoded as the file was
    (`webp.Webp`), compared with it in mean levels. `way` (filter, border y, border x): the way
    the `reading`, an answer drawn back, gave the file back (`_Answers.reading`), used until
    asked again."""
    h, w = pixels.shape[:2]
    target = pixels.astype(np.int16)
    packed = _pack(palette)
    order = np.argsort(packed)
    ways = list(dict.fromkeys(_filters(grids)))
    settled: list = [way] if way is not None else []

    def error(how, cells: np.ndarray) -> float:
        f, by, bx = how
        rgba = palette[cells].reshape(24, 24, 4).astype(np.int64)
        drawn = _drawer(*_axes(h, w, by, bx, f, max(h, w)), "alpha", rgba)
        return float(np.abs(codec(drawn(None)).astype(np.int16) - target).mean())

    def reencode(punks: np.ndarray, again: bool = False, exact: bool = False,
                 like: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        cells = _palette_cells(packed, order, punks)
        if not settled or again:
            first = cells[0] if again else reading
            settled[:] = [min(ways, key=lambda how: error(how, first))]
        return np.array([error(settled[0], c) for c in cells])

    return reencode


def _given_back(pixels: np.ndarray, codec, cands, like, sy: np.ndarray, sx: np.ndarray, draw,
                whole) -> np.ndarray:  # fmt: skip
    """Whether each of many candidate punks' drawings gives the JPEG `pixels` (h, w, 3) back
    through `codec`, told by one encoding: (N,) 0 where it does, > 0 where not, and then at
    most the drawing's mean error re-encoded whole (what its part's inside differs by, over all
    the file's values: the rest of the drawing encodes as `like`'s, which differs nowhere; its
    whole error where the part's inside came back). `like`: a
    candidate (cell indices (576,) or colours (576, 3), as `cands`) whose drawing gives it back;
    sy, sx (h, 24), (w, 24) bool: the pixels each cell draws; `draw(c, rows, cols)`: that part of
    c's drawing (uint8); `whole(c)`: c's whole drawing's error, encoded. JPEG codes each 16x16
    block alone and only the decoder's chroma upsampling reads one pixel across, so each
    candidate is encoded only where it differs from `like` (the blocks it touches and one block
    around, as the encoder pads an image: its last row and column repeated), these parts side by
    side in one picture; one whose part does not come back inside its one-pixel rim is not the
    file's, and one whose part does is encoded whole."""
    h, w = pixels.shape[:2]
    parts = []  # (candidate, top, left, its drawing there padded to whole blocks)
    out = np.ones(len(cands))
    for j, c in enumerate(cands):
        changed = (np.asarray(c) != like).reshape(24, 24, -1).any(-1)
        if not changed.any():
            out[j] = 0.0  # like's drawing
            continue
        ys = np.flatnonzero(sy[:, changed.any(1)].any(1))
        xs = np.flatnonzero(sx[:, changed.any(0)].any(1))
        y0, x0 = max(ys[0] // 16 - 1, 0) * 16, max(xs[0] // 16 - 1, 0) * 16
        y1, x1 = (ys[-1] // 16 + 2) * 16, (xs[-1] // 16 + 2) * 16
        drawn = draw(c, slice(y0, min(y1, h)), slice(x0, min(x1, w)))
        if drawn.shape[:2] != (y1 - y0, x1 - x0):
            pad = ((0, y1 - y0 - drawn.shape[0]), (0, x1 - x0 - drawn.shape[1]), (0, 0))
            drawn = np.pad(drawn, pad, "edge")
        parts.append((j, y0, x0, drawn))
    if not parts:
        return out
    width = max(512, max(p[3].shape[1] for p in parts))
    at, x, y, row = [], 0, 0, 0  # shelves of parts, left to right
    for _, _, _, part in parts:
        if x + part.shape[1] > width:
            x, y, row = 0, y + row, 0
        at.append((y, x))
        x, row = x + part.shape[1], max(row, part.shape[0])
    mosaic = np.zeros((y + row, width, 3), np.uint8)
    for (my, mx), (_, _, _, part) in zip(at, parts):
        mosaic[my : my + part.shape[0], mx : mx + part.shape[1]] = part
    back = codec(mosaic).astype(np.int16)
    for (my, mx), (j, y0, x0, part) in zip(at, parts):
        ph, pw = min(part.shape[0], h - y0), min(part.shape[1], w - x0)  # the file's pixels
        got = back[my + 1 : my + ph - 1, mx + 1 : mx + pw - 1]
        diff = np.abs(got - pixels[y0 + 1 : y0 + ph - 1, x0 + 1 : x0 + pw - 1])
        out[j] = diff.sum() / pixels.size
        if out[j] == 0:
            out[j] = whole(cands[j])
    return out


ANSWERS = (3, 2)  # different answers `_Answers` draws back (of the rough readings'), in a
# lossless file and in a JPEG (a 36 px JPEG's are seldom right, and each costs ~30 ms there;
# a third found 1 more of 20 at 310 px lanczos PNG, where the search takes ~300 ms)


NEARBY = 10  # edits walked from the network's answer at most (`_Answers.check`; the walk
# stops where no edit comes closer: 3 cut walks from a Zombie to a Female with her hair and
# lipstick short, #103 at 36 px nearest WebP q80)
WALKS = 2  # readings whose network answers are walked from (the rough one's and the descended
# one's: the second is often closer; 36 px bilinear JPEG q85 verified 97.5 -> 100%)


PLAUSIBLE = 3.0  # an answer drawn back is tried only when its drawing's squared error (the
# sampled way) is at most this times the rough reading's: the ones that gave the file back were
# at most 1.62 times (83 of them, 6 kinds of render); at 36 px most others were 6-120 times


class _Answers:
    """The answers a rough reading suggests (`guess`: the network's), drawn at the image's size
    the way a candidate drawing `d` draws (grid, filter, compositing, background) and, in a
    JPEG, re-encoded with the file's encoder. One that gives every pixel of the image back is
    what the image shows, as surely as a reading found pixel by pixel: Pillow's resize and
    encoder are deterministic. A JPEG's background is not seen exactly (the encoder moves a flat
    colour by a few levels, q70 maps up to 16 colours onto one): the colours whose flat blocks
    decode as its corners do and the least-squares one a level around are tried in one go on
    the blocks where the punk meets the background (`_block_errors`), and only those that pass
    are re-encoded whole."""

    def __init__(self, guess, rgba, has_alpha, fmt, jpeg, grids, palette, clock):
        self.guess, self.has_alpha, self.palette, self.clock = guess, has_alpha, palette, clock
        self.grids = grids
        self.pixels = np.ascontiguousarray(rgba if has_alpha else rgba[..., :3])
        self.packed = _pack(palette)
        self.order = np.argsort(self.packed)
        self.seen: set = set()
        self.calls = 0
        self.near: list = []  # an opaque WebP's drawings that came near the file, and how:
        # (mean levels off, cells, (filter, border y, border x, kind), background)
        self.drawing = None  # the cells `_drawn` draws
        self.now = 0  # of its ways, searched a level around at once (`_webp_background`)
        self.arounds = 0  # of `near`, searched a level around (`_around`)
        self.spent_from = 0  # the codec's encodings when this share began (`_spent`)
        self.drawn_back: set = set()  # answers the re-encoder asked to draw back (`draw_back`)
        self.closest: dict = {}  # (answer's cells as bytes, way) -> of its entries of `near`,
        # the nearest (`draw_back`, `_two_levels`)
        self.walks = 0  # readings whose answers were walked from (WALKS)
        self.two_levelled: set = set()  # (answer, way) searched two levels around (`_two_levels`)
        self.small = rgba.shape[0] * rgba.shape[1] <= TWO_LEVELS_PIXELS  # two levels searched
        self.near_enough = SMALL_NEAR if self.small else WEBP_NEAR  # (`_webp_background`)
        self.most_drawn_back = SMALL_DRAWN_BACK if self.small else DRAWN_BACK  # (`draw_back`)
        self.firsts: list = []  # the network's first answer for each reading, drawn (`union`)
        self.codec = None
        self.flat: list = []
        if fmt == "WEBP" and _encoder_known(fmt, jpeg, has_alpha):
            self.codec = Webp(jpeg["vp8"], self.pixels)
            self.target = self.codec.target
        elif fmt == "JPEG":
            h, w = self.pixels.shape[:2]
            self.codec = _jpeg(jpeg)[0]
            k = max(1, min(h, w) // 24)
            self.side, self.target = _tile_side(k), self.pixels.astype(np.int16)
            c = k // 2
            corners = self.pixels[[c, c, h - 1 - c, h - 1 - c], [c, w - 1 - c, c, w - 1 - c]]
            self.flat = [np.asarray(b, np.int64) for b in _flat_colours(corners, self.codec, jpeg)]

    def check(self, idx: np.ndarray, d: _Drawing, err: float):
        """`_check`; then, for an opaque WebP none of whose drawings gave it back, the nearest
        of them a level around (`_around`)."""
        found = self._check(idx, d, err)
        if found is None and self.near and not self.clock.late():
            found = self._around()
        return found

    def _check(self, idx: np.ndarray, d: _Drawing, err: float):
        """The answer for reading `idx` (`err`: its squared error drawn `d`'s way; 0: drawn
        exactly, nothing to check) and a way of drawing it that gives the image back:
        (cells (576,), filter, border y, border x, kind, background or None), or None. `d`'s
        way is tried first, then the other likely ones (the grids' filters, both compositing
        orders): the answer may be right where the reading's drawing was not. At most ANSWERS
        different answers are tried: when they do not give the image back, the search reads it
        (each costs ~5 ms a way at 36 px, ~8 ms in all at 310 px)."""
        if err == 0 or self.clock.late() or self.calls >= ANSWERS[self.codec is not None]:
            return None
        if isinstance(self.codec, Webp) and self._spent():
            return None  # (the search, which needs the time left, reads it)
        if idx.tobytes() in self.seen:
            return None  # this reading's answer was tried
        self.seen.add(idx.tobytes())
        h, w = self.pixels.shape[:2]
        ways = self._ways(d)
        start = None  # the network's first answer: (its drawing, cells, squared error)
        for punk in self.guess(self.palette[idx].reshape(24, 24, 4)):
            cells = self._cells(punk)
            if cells is None:
                continue  # a colour the collection does not have
            if ("answer", cells.tobytes()) in self.seen:
                continue  # drawn every way already
            e = d.error(cells)
            if start is None:
                self.firsts.append(punk)
            start = start or (punk, cells, e)
            if e > PLAUSIBLE * max(err, 1.0):
                continue  # explains the image far worse than the rough reading: not worth drawing
            found = self._drawn(cells, ways)
            if found is not None:
                return found
        if start is None or self.walks >= WALKS or self.codec is None or self.clock.late():
            return None  # (a lossless file's search is quick: 10-40 ms)
        if h * w > reencode_pixels(isinstance(self.codec, Webp)):
            return None  # (a large JPEG's search is quicker than the walk: 310 px 138 -> 173 ms)
        # None gave a JPEG back: the answers one edit away, the one whose drawing explains
        # the image best, while that comes closer (NEARBY times at most; the network's answer
        # for a rough reading of a small or smoothed render is often an accessory or the head
        # off), and that one drawn every way
        self.walks += 1
        punk, cells, e = start
        for _ in range(NEARBY):
            near = [
                (p, c) for p in self.guess(None, near=punk) if (c := self._cells(p)) is not None
            ]
            if not near or self.clock.late():
                break
            errs = d.errors_near(cells, [c for _, c in near])
            k = int(np.argmin(errs))
            if errs[k] >= e:
                break
            (punk, cells), e = near[k], errs[k]
        if cells is start[1] or ("answer", cells.tobytes()) in self.seen:
            return None
        if e > PLAUSIBLE * max(err, 1.0):
            return None
        return self._drawn(cells, ways)

    def union(self, d: _Drawing):
        """As `check`, for one more answer: the network's first answers for the readings
        tried, their accessories together (each reading of a smoothed render may show some of
        them and miss others: #4669 at 100 px lanczos, one without the Mole, another without
        the Small Shades), drawn every way (`d`'s first)."""
        firsts = list({p.tobytes(): p for p in self.firsts}.values())
        if len(firsts) < 2 or self.clock.late() or self.calls >= ANSWERS[self.codec is not None]:
            return None
        for punk in self.guess(None, union=firsts):
            cells = self._cells(punk)
            if cells is not None and ("answer", cells.tobytes()) not in self.seen:
                return self._drawn(cells, self._ways(d))
        return None

    def _ways(self, d: _Drawing) -> list:
        """The likely ways to draw an answer, `d`'s first: (filter, border y, border x, kind,
        background as seen)."""
        ways = [(d.filt, d.ay.border, d.ax.border, d.kind, d.bg)]
        for _, filt, by, bx in _likely(self.grids):
            kinds = ["alpha"] if self.has_alpha else _kinds(filt)
            ways += [(f, by, bx, k, d.bg) for k in kinds
                     for f in [filt, *(f"area{m}" for m in AREA_SOURCES if filt == "area")]]  # fmt: skip
        return list({w[:4]: w for w in ways}.values())

    def draw_back(self, cells: np.ndarray, d: _Drawing, clock: _Clock):
        """(cells, filter, border y, border x, kind, background) when the answer `cells`, drawn
        one of the likely ways (`d`'s first) and encoded as the opaque WebP was, gives it back
        (`_drawn`, then a level around the nearest ways: `_around`), or None. For the answer
        the search's reading led to, which the network did not give for a rough reading: on
        `clock`'s time and a share of encodings of its own (the image's may be spent). An
        answer drawn every way already (the network's, or walked to) is not drawn again; then,
        as for one drawn now, its nearest ways are searched two levels around (`_two_levels`),
        the answers an edit from it drawn back (`_edit_back`), and then the nearest ways of the
        answers drawn nearest besides it searched two levels around (`_nearest_others`)."""
        key = cells.tobytes()
        if key in self.drawn_back or len(self.drawn_back) >= self.most_drawn_back:
            return None  # (the verifier's next answers)
        self.drawn_back.add(key)
        self.clock, self.spent_from = clock, self.codec.encodes
        self.near, self.arounds = [], 0
        found, ways = None, self._ways(d)
        if ("answer", key) not in self.seen:
            found = self._drawn(cells, ways) or self._around()
        mine = [n for (c, _), n in self.closest.items() if c == key]
        if self.small:
            found = found or self._two_levels([key])
        nearest = min(mine, key=lambda n: n[0], default=None)
        found = found or self._edit_back(nearest, ways)
        if self.small:  # (after the edits: the answers drawn nearest may be the wrong ones)
            found = found or self._two_levels(self._nearest_others(key))
        return found

    def _nearest_others(self, own: bytes) -> list[bytes]:
        """The TWO_LEVELS_OTHERS answers other than `own` (cells as bytes) whose drawings came
        nearest the WebP (`closest`), the nearest first. The verifier may settle on an answer
        an accessory off (the noise's: #7628 Buck Teeth, #8016 Rosy Cheeks at 36 px nearest
        q70) that does not give the file back, while the truth, drawn by the network or the
        walk, came as near or nearer on a background two levels from its own: it is searched
        two levels around as well."""
        others = sorted((n[0], c) for (c, _), n in self.closest.items() if c != own)
        return list(dict.fromkeys(c for _, c in others))[:TWO_LEVELS_OTHERS]

    def _two_levels(self, answers: list[bytes]):
        """(cells, filter, border y, border x, kind, background) when one of `answers` (cells
        as bytes) drawn one of its TWO_LEVELS_WAYS nearest ways (`closest`) gives the WebP back
        on a background within two levels in each channel (`_webp_around`, the nearest first),
        or None; with its own share of encodings (124 a way and quality), each way once an image
        unless cut short."""
        ways, per = [], dict.fromkeys(answers, 0)
        for (c, how), n in sorted(self.closest.items(), key=lambda item: item[1][0]):
            if c in per and (c, how) not in self.two_levelled and per[c] < TWO_LEVELS_WAYS:
                ways.append(n)
                per[c] += 1
        for _, cells, how, bg in ways:
            self.spent_from = self.codec.encodes
            found = self._webp_around(how, self._rgba(cells), bg, TWO_LEVELS)
            if found is not None:
                return (cells, *how, found)
            if self.clock.late() or self._spent(AROUND_ENCODES):
                return None  # (cut short: searched again when the verifier asks for it)
            self.two_levelled.add((cells.tobytes(), how))
        return None

    def _edit_back(self, nearest: tuple | None, ways: list):
        """(cells, filter, border y, border x, kind, background) when one of the answers an
        edit away from the one drawn `nearest` (an entry of `near`: it came near the WebP, but
        no background gave it back) gives the WebP back, or None. Each is drawn once that way,
        on that background, and encoded at the quality the last drawing came closest at (the
        EDITS_RERANK closest again at each quality the file may have); the EDITS_BACK that come
        closest, and closer than it, are drawn back every likely way (`_drawn`, then a level
        around). The verifier settles on an answer an accessory off (a Mole the noise made,
        #2195 at 36 px bilinear q80) that the network never gave: the truth, drawn on the wrong
        one's background, comes closest of ~65. Its neighbours come from `guess` (`near`)."""
        if nearest is None or self.clock.late():
            return None
        off, cells, how, bg = nearest
        h, w = self.pixels.shape[:2]
        q = self.codec.last or self.codec.quality or self.codec.nearest
        codec = self.codec if q is None else self.codec.at(q)
        axes = _axes(h, w, *how[1:3], how[0], max(h, w))

        def off_by(codec, other: np.ndarray) -> float:
            rgba = self._rgba(other)
            back = codec(_drawer(*axes, how[3], rgba)(bg))
            return float(np.abs(back.astype(np.int16) - self.target).mean())

        ranked = []
        for punk in self.guess(None, near=self.palette[cells].reshape(24, 24, 4)):
            other = self._cells(punk)
            if other is None or ("answer", other.tobytes()) in self.seen:
                continue
            if self.clock.late():
                return None
            ranked.append((off_by(codec, other), other))
        ranked.sort(key=lambda r: r[0])
        if len(self.codec.qualities) > 1:  # (the quality came closest for another drawing: the
            # closest few again at each quality, #8674 q70 nearest: 2nd at q68, first at q70)
            ranked = sorted(((off_by(self.codec, o), o) for _, o in ranked[:EDITS_RERANK]),
                            key=lambda r: r[0])  # fmt: skip
        for e, other in ranked[:EDITS_BACK]:
            if e >= off:
                break
            self.spent_from, self.near, self.arounds = self.codec.encodes, [], 0
            found = self._drawn(other, [(*how, bg), *ways]) or self._around()
            if found is not None:
                return found
        return None

    def _rgba(self, cells: np.ndarray) -> np.ndarray:
        """The punk drawn by palette indices `cells` (576,), as `_drawer` takes it: (24, 24, 4)
        int64."""
        return self.palette[cells].reshape(24, 24, 4).astype(np.int64)

    def _cells(self, punk: np.ndarray) -> np.ndarray | None:
        """The palette indices (576,) of a drawing (24, 24, 4), or None for a colour the
        collection does not have."""
        cells = _palette_cells(self.packed, self.order, punk)[0]
        return cells if (self.palette[cells] == punk.reshape(576, 4)).all() else None

    def _drawn(self, cells: np.ndarray, ways: list):
        """(cells, filter, border y, border x, kind, background) for the first way (`check`) in
        which the answer `cells` gives the image back, or None."""
        self.seen.add(("answer", cells.tobytes()))
        self.calls += 1
        rgba = self._rgba(cells)
        self.drawing, self.now = cells, 0  # (`_webp_background` keeps its near ways)
        # a lossless file: every way on the background its border shows first, then every way
        # on the one fitted (~1.5 ms each at 100 px, and seldom the one: a wrong way no longer
        # pays for it before the right way is drawn)
        passes = ("seen", "fitted") if self.codec is None and not self.has_alpha else ("all",)
        names_of: dict = {}
        for which in passes:
            for way in ways:
                names = names_of.get(way[:4])
                if names is None:
                    names = [way[0]]
                    if way[0] == "skia":
                        names = _skia_choices(self.pixels, *way[1:3], rgba, way[4])
                        if self.codec is not None and names != ["skia"]:  # (a JPEG hides the
                            names.append(None)  # ties: then searched, when it has any)
                    names_of[way[:4]] = names
                for f in names:
                    if self.clock.late():
                        return None
                    if f is None:
                        f = self._tie_search(names[0], way, rgba)
                        if f in names:
                            continue  # (drawn already)
                    found = self._given_back(f, *way[1:], rgba, which)
                    if found is not None:
                        return (cells, *found)
        return None

    def _given_back(self, f: str, by: int, bx: int, kind: str, seen_bg, rgba: np.ndarray,
                    which: str = "all"):  # fmt: skip
        """(filter, border y, border x, kind, background) when `rgba` drawn so, on one of the
        likely backgrounds (and re-encoded, a JPEG), gives every pixel of the image back.
        `which` (a lossless file): "seen", the background as seen, or "fitted", the one the
        image fits, when another; "all": both."""
        h, w = self.pixels.shape[:2]
        draw = _drawer(*_axes(h, w, by, bx, f, max(h, w)), kind, rgba)
        if isinstance(self.codec, Webp) and self.has_alpha:
            given = np.array_equal(self.codec(draw(None)), self.pixels)
            return (f, by, bx, kind, None) if given else None
        if isinstance(self.codec, Webp):
            bg = self._webp_background((f, by, bx, kind), rgba, draw)
            return None if bg is None else (f, by, bx, kind, bg)
        for bg in self._backgrounds((f, by, bx, kind, seen_bg), rgba, draw, which):
            img = draw(bg)
            if self.codec is not None:
                img = self.codec(img)
            if np.array_equal(img, self.pixels):
                return f, by, bx, kind, bg
        return None

    def _webp_background(self, how: tuple, rgba: np.ndarray, draw) -> np.ndarray | None:
        """The background on which `rgba` drawn `how` (filter, borders, kind), encoded as the
        WebP was, gives every pixel of it back, or None. WebP moves a flat colour by a few
        levels (its colour conversion and quantisers): the least-squares background is moved by
        what the encoded drawing's bare background misses of the file's, until nothing. When
        that does not give the file back, the nearest background it reached is kept in
        `self.near` (within WEBP_NEAR mean levels, SMALL_NEAR in a small WebP: a drawing that
        stays far is not the image's) for `_webp_around`."""
        fitted = _fitted_background(self.pixels, how, rgba.reshape(576, 4))
        black, white = draw(np.zeros(3, np.int64)), draw(np.full(3, 255, np.int64))
        bare = ((black == 0) & (white == 255)).all(-1)  # the background's pixels alone
        bg, tried, best = fitted, set(), None
        codec = self.codec
        for _ in range(WEBP_SETTLE):
            back = codec(draw(bg))
            codec = self.codec.settled()  # (the quality that came closest, for this drawing)
            tried.add(tuple(bg.tolist()))
            if np.array_equal(back, self.pixels):
                return bg
            off = float(np.abs(back.astype(np.int16) - self.target).mean())
            if best is None or off < best[0]:
                best = (off, bg)
            if not bare.any() or self.clock.late():
                break
            move = np.rint((self.target[bare] - back[bare]).mean(0)).astype(np.int64)
            if not move.any() or tuple(np.clip(bg + move, 0, 255).tolist()) in tried:
                break
            bg = np.clip(bg + move, 0, 255)
        if best[0] <= self.near_enough:
            near = (best[0], self.drawing, how, best[1])
            self.near.append(near)
            key = (self.drawing.tobytes(), how)
            if key not in self.closest or near[0] < self.closest[key][0]:
                self.closest[key] = near
            if best[0] <= WEBP_CLOSE and self.now < AROUND_NOW:  # (now: later the image may
                self.now += 1  # be late, #6307 at 100 px bilinear q80)
                found = self._around(near)
                return None if found is None else found[-1]
        return None

    def _around(self, first: tuple | None = None):
        """(cells, filter, border y, border x, kind, background) of the nearest drawings no
        move gave the WebP back for (`near`, of every answer tried: the truth's is often the
        nearest, drawn after a wrong one; `first`: one of them, alone), each a level around
        (`_webp_around`): WEBP_AROUND of them an image at most; or None."""
        self.near.sort(key=lambda n: n[0])
        if first is not None:
            self.near = [first] + [n for n in self.near if n is not first]
        while self.near and self.arounds < WEBP_AROUND and not self._spent(AROUND_ENCODES):
            _, cells, how, bg = self.near.pop(0)
            self.arounds += 1
            rgba = self._rgba(cells)
            bg = self._webp_around(how, rgba, bg)
            if bg is not None:
                return (cells, *how, bg)
            if first is not None:
                break
        return None

    def _webp_around(self, how: tuple, rgba: np.ndarray, bg: np.ndarray,
                     steps: np.ndarray = LEVEL_STEPS) -> np.ndarray | None:  # fmt: skip
        """The background a level around `bg` (in each channel) on which `rgba` drawn `how`,
        encoded as the WebP was, gives it back, or None; the nearest first. Within a level of
        one channel at every quality left (the one closest on a background a level off may be
        a neighbour's: #275 at 36 px bilinear q83 came closest at q82 on its blue a level off),
        beyond it at the first and the closest (`_far_qualities`; one, mostly): 41 encodings,
        not 81. `steps`: the moves tried (TWO_LEVELS: all within two levels, 124
        encodings a quality)."""
        h, w = self.pixels.shape[:2]
        f, by, bx, kind = how
        draw = _drawer(*_axes(h, w, by, bx, f, max(h, w)), kind, rgba)
        far = None  # the quality the moves beyond a level of one channel are encoded at
        for step in steps[np.abs(steps).sum(1).argsort()]:
            b = np.clip(bg + step, 0, 255)
            qualities = self.codec.qualities or [None]  # (unknown: each encoding searches)
            if np.abs(step).sum() > 1:
                far = far or self._far_qualities(draw(bg))
                qualities = far
            for q in qualities:
                if self.clock.late() or self._spent(AROUND_ENCODES):
                    return None
                codec = self.codec if q is None else self.codec.at(q)
                if np.array_equal(codec(draw(b)), self.pixels):
                    return b
        return None

    def _far_qualities(self, img: np.ndarray) -> list:
        """The qualities the moves of more than a level are encoded at: the first the WebP may
        have (the lowest with its header, for the first drawing that had it: #8114 at 36 px
        nearest q70) and those at which `img` encoded comes closest to it (all of them, when
        several tie): the drawing on its background as found, a few levels off, is often
        closest at the file's own (#343: of q69, q68, q70, the truth gave the file back two
        levels off at q70 alone, and came closest at q69 and q70 alike on the background
        found; #7628: no quality known, q70 closest of the few around the guess q69). With no
        quality known yet, those within FAR_CLOSE of the closest too."""
        qualities = self.codec.candidates
        if len(qualities) < 2:
            return qualities[:1] or [None]
        offs = [int(np.abs(self.codec.at(q)(img).astype(np.int16) - self.target).sum())
                for q in qualities]  # fmt: skip
        near = FAR_CLOSE if not self.codec.qualities else 1.0  # (none confirmed yet: #9212)
        closest = [q for q, e in zip(qualities, offs) if e <= near * min(offs)]
        return list(dict.fromkeys(self.codec.qualities[:1] + closest))

    def _spent(self, encodes: int = WEBP_ANSWER_ENCODES) -> bool:
        """Whether a WebP's answers have had their share: `encodes` encodings (the searches a
        level around have their own, AROUND_ENCODES more), or half the soft time (the search
        after them re-encodes only while there is time left)."""
        return (self.codec.encodes - self.spent_from >= encodes
                or self.clock.spent() > self.clock.soft / 2)  # fmt: skip

    def _tie_search(self, name: str, way: tuple, rgba: np.ndarray) -> str:
        """A Skia render's ties in a JPEG, one at a time: each tied column, then row, falls the
        other way where the drawing, re-encoded, then comes closer to the file (the background
        as seen: close enough to tell)."""
        h, w = self.pixels.shape[:2]
        _, by, bx, kind, bg = way
        ties = [len(_skia_ties(h - 2 * by)), len(_skia_ties(w - 2 * bx))]
        masks = [int(m) for m in name.split("/")[1:]] if "/" in name else [0, 0]

        def error(ym: int, xm: int) -> float:
            draw = _drawer(*_axes(h, w, by, bx, f"skia/{ym}/{xm}", max(h, w)), kind, rgba)
            return float(np.abs(self.codec(draw(bg)).astype(np.int16) - self.target).sum())

        best = error(*masks)
        for axis in (1, 0):
            for j in range(ties[axis]):
                if self.clock.late():
                    break
                trial = list(masks)
                trial[axis] ^= 1 << j
                e = error(*trial)
                if e < best:
                    best, masks = e, trial
        return f"skia/{masks[0]}/{masks[1]}"

    def _backgrounds(self, way: tuple, rgba: np.ndarray, draw, which: str = "all"):
        """The backgrounds to draw the answer on, likeliest first (`which`: `_given_back`)."""
        if self.has_alpha:
            yield None
            return
        f, by, bx, kind, seen = way
        if self.codec is None:  # lossless: the border's colour, unless the fit says otherwise
            if which != "fitted":
                yield seen
            if which != "seen":
                fitted = _fitted_background(self.pixels, way[:4], rgba.reshape(576, 4))
                if (fitted != seen).any():
                    yield fitted
            return
        fitted = _fitted_background(self.pixels, way[:4], rgba.reshape(576, 4))
        near = [np.clip(fitted + s, 0, 255) for s in NEAREST_STEPS]
        cands = list({tuple(b.tolist()): b for b in self.flat + near}.values())
        cands.sort(key=lambda b: float(np.abs(b - fitted).sum()))
        places = self._places(by, bx, rgba[..., 3] > 0)
        s, bgs = self.side, np.stack(cands)
        many = getattr(draw, "many", lambda bgs, r, c: np.stack([draw(b, r, c) for b in bgs]))
        tiles = {(y, x): many(bgs, slice(y, y + s), slice(x, x + s)) for y, x in places}
        parts = [(tiles[y, x][j], (y, x)) for j in range(len(cands)) for y, x in places]
        errs = _block_errors(self.codec, self.target, parts).reshape(len(cands), len(places))
        yield from [b for b, e in zip(cands, errs.sum(1)) if e == 0][:4]

    def _places(self, by: int, bx: int, painted: np.ndarray, most: int = 4) -> list:
        """Up to `most` tiles (top-left pixels, on the 16-pixel block grid) where the punk
        (`painted`, (24, 24) bool) meets the background: where the backgrounds differ."""
        h, w = self.pixels.shape[:2]
        s = self.side
        near = np.pad(painted, 1)
        near = np.lib.stride_tricks.sliding_window_view(near, (3, 3)).any((2, 3)) & ~painted
        cy, cx = np.nonzero(near)
        py = by + (cy + 0.5) * (h - 2 * by) / 24
        px = bx + (cx + 0.5) * (w - 2 * bx) / 24
        ys = np.clip((py.astype(int) - s // 2 + 8) // 16 * 16, 0, (h - s) // 16 * 16)
        xs = np.clip((px.astype(int) - s // 2 + 8) // 16 * 16, 0, (w - s) // 16 * 16)
        places = sorted(set(zip(ys.tolist(), xs.tolist()))) or [(0, 0)]
        return places[:: max(1, len(places) // most)][:most]

    def reading(self, found, d: _Drawing, est: np.ndarray, notes: list[str], w: int, h: int,
                fmt: str, name: str) -> tuple[np.ndarray, Normalized]:  # fmt: skip
        """The answer `found` (`check`) as the normaliser's reading of the image."""
        cells, f, by, bx, kind, bg = found
        ay, ax = _axes(h, w, by, bx, f, SAMPLES)  # (the same samples as d's)
        d = _Drawing(d.y, ay, ax, self.palette, kind, bg, self.clock)  # what Fit weighs
        reencode = None
        if isinstance(self.codec, Webp) and self.has_alpha and w * h <= reencode_pixels(True):
            # (what `verify.prove` asks: the answers an edit away re-encoded, drawn this way)
            reencode = _clear_reencoder(self.pixels, self.grids, self.codec, self.palette, cells,
                                        way=(f, by, bx))  # fmt: skip
        elif (self.codec is not None and not self.has_alpha
              and w * h <= reencode_pixels(isinstance(self.codec, Webp))):  # fmt: skip
            full = _Drawing(self.pixels, *_axes(h, w, by, bx, f, max(h, w)), self.palette,
                            kind, d.bg, self.clock)  # fmt: skip
            reencode = _reencoder(self.pixels, self.grids, d.bg, [self.codec], self.palette,
                                  name, cells, given=(full, self.codec),
                                  blockwise=fmt == "JPEG", counted=self.clock.counted)  # fmt: skip
        notes = notes + ["read by drawing the answer back: it gives every pixel of the image"
                         + (" (re-encoded)" if self.codec is not None else "")]  # fmt: skip
        punk = self.palette[cells].reshape(24, 24, 4).astype(np.uint8)
        shown = d.s[cells].reshape(24, 24, -1)
        snapped = int((np.sqrt(((est - shown) ** 2).sum(-1)) > 0.5).sum())
        bg_name = "transparent" if bg is None else "#{:02x}{:02x}{:02x}".format(*d.bg)
        scale = (round((w - 2 * bx) / 24, 4), round((h - 2 * by) / 24, 4))
        info = Normalized((w, h), fmt, scale, (float(bx), float(by)), bg_name, snapped,
                          notes + _phase_note(f), _family(f), Fit.of(d, reencode))  # fmt: skip
        return punk, info


def _by_pillow(ay: _Axis, ax: _Axis) -> bool:
    """Whether Pillow itself can draw a punk on these axes: one of its filters, the punk inside
    the image, every pixel sampled."""
    return ay.filt in PILLOW_FILTERS and all(
        a.border >= 0 and a.pos == tuple(range(a.side)) for a in (ay, ax)
    )


def _resized(rgba: np.ndarray, ay: _Axis, ax: _Axis, numpy: bool = False) -> np.ndarray:
    """The punk `rgba` (24, 24, 4) int resized with its transparency as Pillow resizes RGBA
    (premultiplied, then back), in the image on axes ay, ax (transparent in the border): (h, w,
    4) int64. Pillow's own resize where it can (`_by_pillow`; ~10 times faster at 310 px),
    else (or `numpy`) its numpy twin."""
    if numpy or not _by_pillow(ay, ax):
        pm = _resample(_premultiply(rgba).astype(np.float64), ay.weights[1], ax.weights[1])
        return _unpremultiply(pm.astype(np.int64))
    nh, nw = ay.side - 2 * ay.border, ax.side - 2 * ax.border
    im = Image.fromarray(rgba.astype(np.uint8), "RGBA").resize((nw, nh), FILTERS[ay.filt][0])
    out = np.zeros((ay.side, ax.side, 4), np.int64)
    out[ay.border : ay.border + nh, ax.border : ax.border + nw] = np.asarray(im)
    return out


def _drawer(ay: _Axis, ax: _Axis, kind: str, rgba: np.ndarray):
    """(bg, rows, cols) -> the punk `rgba` (24, 24, 4) int64 drawn at full size (axes sampling
    every pixel) as Pillow draws it `kind`-wise, those rows and columns of it (slices; all by
    default): (h, w, 3) uint8, or RGBA (h, w, 4) for "alpha". `_Drawing.exact`'s three cases
    for one punk on many backgrounds: what does not depend on the background (a resize with
    the transparency) is done once."""
    every = slice(None)
    if _is_nearest(ay.filt):

        def nearest(bg, rows=every, cols=every):
            if kind == "alpha":
                return _lookup(rgba.astype(np.uint8), np.zeros(4, np.uint8), ay.cell[rows],
                               ax.cell[cols])  # fmt: skip
            shown = _composite(bg, rgba, np.uint8)
            return _lookup(shown, np.asarray(bg, np.uint8), ay.cell[rows], ax.cell[cols])

        return nearest
    fy, fx = ay.weights[1], ax.weights[1]
    if ay.filt.startswith("skia"):
        premult = _premultiply(rgba)

        def skia(bg, rows=every, cols=every):
            return _skia(premult, fy[rows], fx[cols], np.asarray(bg)).astype(np.uint8)

        skia.many = lambda bgs, rows=every, cols=every: skia(bgs[:, None, None], rows, cols)
        return skia
    if kind != "after":  # resized with its transparency (premultiplied), then shown on bg
        resized = _resized(rgba, ay, ax)

        def before(bg, rows=every, cols=every):
            if kind == "alpha":
                return resized[rows, cols].astype(np.uint8)
            return _composite(bg, resized[rows, cols], np.uint8)

        def many(bgs, rows=every, cols=every):  # (B, 3) backgrounds at once (small tiles:
            # one broadcast formula beats B lookups)
            return _composite(bgs[:, None, None], resized[rows, cols], np.uint8)

        before.many = many
        return before
    inside = (ay.inside[:, None] & ax.inside[None, :])[..., None]

    def after(bg, rows=every, cols=every):
        out = _resample(_composite(bg, rgba, np.float64), fy[rows], fx[cols])
        return np.where(inside[rows, cols], out, np.asarray(bg)).astype(np.uint8)

    def many(bgs, rows=every, cols=every):  # (B, 3) backgrounds: B drawings, one resize
        b = len(bgs)
        shown = _composite(bgs[:, None, None], rgba).transpose(1, 2, 0, 3).reshape(24, 24, -1)
        out = _resample(shown.astype(np.float64), fy[rows], fx[cols])
        out = out.reshape(*out.shape[:2], b, 3).transpose(2, 0, 1, 3)
        return np.where(inside[rows, cols], out, bgs[:, None, None]).astype(np.uint8)

    after.many = many
    return after


def _skia_choices(pixels: np.ndarray, by: int, bx: int, rgba: np.ndarray, bg) -> list[str]:
    """The filters "skia/ymask/xmask" likeliest for the image `pixels` (h, w, 3): which ties
    (`_skia_ties`) of each axis fall below their 16th, judged by drawing `rgba` (24, 24, 4) on
    `bg` each way and comparing, for each tied column (row), the image over the untied rows
    (columns) with both ways. First a tie falls below only where the image is closer to that way
    by more than half of what tells the two apart (most fall on their 16th: in a JPEG, noise
    alone must not move them), then wherever it is closer, then none falls."""
    h, w = pixels.shape[:2]
    ty, tx = _skia_ties(h - 2 * by), _skia_ties(w - 2 * bx)
    if not len(ty) and not len(tx):
        return ["skia"]
    full = max(h, w)
    ym, xm = (1 << len(ty)) - 1, (1 << len(tx)) - 1
    px = pixels.astype(np.int64)
    draws = {}
    for a in (0, ym):
        for b in (0, xm):
            draw = _drawer(*_axes(h, w, by, bx, f"skia/{a}/{b}", full), "before", rgba)
            draws[a, b] = draw(bg).astype(np.int64)
    rows = np.setdiff1d(np.arange(h), ty + by)  # untied rows and columns
    cols = np.setdiff1d(np.arange(w), tx + bx)
    ex = [np.abs(draws[0, b][rows] - px[rows]).sum((0, 2))[tx + bx] for b in (0, xm)]
    ey = [np.abs(draws[a, 0][:, cols] - px[:, cols]).sum((1, 2))[ty + by] for a in (0, ym)]
    dx = np.abs(draws[0, xm][rows] - draws[0, 0][rows]).sum((0, 2))[tx + bx]
    dy = np.abs(draws[ym, 0][:, cols] - draws[0, 0][:, cols]).sum((1, 2))[ty + by]
    out = []
    for margin in (0.5, 0.0):
        xbits = sum(1 << j for j, down in enumerate(ex[0] - ex[1] > margin * dx) if down)
        ybits = sum(1 << j for j, down in enumerate(ey[0] - ey[1] > margin * dy) if down)
        out.append(f"skia/{ybits}/{xbits}")
    return list(dict.fromkeys([*out, "skia/0/0"]))


def _fitted_background(pixels: np.ndarray, how, punk: np.ndarray) -> np.ndarray:
    """The background (int RGB) that best explains `pixels` (h, w, 3) as `punk` (576, 4) drawn
    `how` (filter, borders, kind) on it, by least squares: the image is linear in it (the punk
    premultiplied, plus the background times what the punk leaves uncovered), and the many
    background pixels average the noise out that shifts the corners' estimate."""
    filt, by, bx, _ = how
    h, w = pixels.shape[:2]
    ay, ax = _axes(h, w, by, bx, filt, max(h, w))
    wy, wx = ay.weights[0], ax.weights[0]
    p = punk.reshape(24, 24, 4).astype(np.float64)
    a = p[..., 3] / 255.0
    bare = wy @ (1.0 - a) @ wx.T  # (h, w): the background's share; a border is background
    bare[~ay.inside] = 1.0
    bare[:, ~ax.inside] = 1.0
    # sum((pixels - drawn) * bare) without drawing: the punk's part, zero in the border, is
    # sum(wy q wx' * wy (1 - a) wx') = sum(q * (wy'wy) (1 - a) (wx'wx)), in 24 x 24 (20x faster)
    seen = bare.ravel() @ pixels.reshape(-1, 3)
    drawn = np.einsum("klc,kl->c", p[..., :3] * a[..., None], wy.T @ wy @ (1.0 - a) @ (wx.T @ wx))
    bg = (seen - drawn) / max(float(bare.ravel() @ bare.ravel()), 1e-9)
    return np.clip(np.rint(bg), 0, 255).astype(np.int64)


def _pack(rgba: np.ndarray) -> np.ndarray:
    """RGBA uint8 (..., 4) as one uint32 each, ordered as the rows of the sorted palette."""
    v = rgba.astype(np.uint32)
    return (v[..., 0] << 24) | (v[..., 1] << 16) | (v[..., 2] << 8) | v[..., 3]


def _jpeg(tables: dict, frame=None):
    """The input's JPEG encoder (its quantisation tables and subsampling), then the decoder; for
    a part of a file, drawn into its `frame` (pixels around it, x, y) and encoded with them."""

    def codec(img: np.ndarray) -> np.ndarray:
        if frame is not None:
            around, x, y = frame
            around = around.copy()
            around[y : y + img.shape[0], x : x + img.shape[1]] = img
        buf = io.BytesIO()
        im = Image.fromarray(img if frame is None else around, "RGB")
        im.save(buf, format="JPEG", **tables)
        # decoded as Image.open does (its tile: the "jpeg" decoder, rawmode RGB), without
        # parsing the file's markers again: ~30% of a small image's round trip
        out = np.asarray(Image.frombytes("RGB", im.size, buf.getvalue(), "jpeg", "RGB", ""))
        return out if frame is None else out[y : y + img.shape[0], x : x + img.shape[1]]

    return (codec, "JPEG") if tables else None


def _tile_side(k: int) -> int:
    """The side of the 16x16 blocks (2x2 of them for cells up to 16 pixels) one cell of k
    pixels may touch, in a JPEG."""
    return 16 * (-(-(k - 1) // 16) + 1)


def _block_errors(codec, target: np.ndarray, parts: list[tuple[np.ndarray, tuple[int, int]]]
                  ) -> np.ndarray:  # fmt: skip
    """|decoded - target| (target: the file's pixels, int16) summed inside the one-pixel rim of
    each (part, (y, x)): square parts of drawings, on the file's 16x16 block grid at y, x, laid
    side by side in one picture and encoded with the file's `codec` once. The encoder codes each
    16x16 block (a luma and a chroma MCU, whatever the subsampling) on its own; only the
    decoder's chroma upsampling reads one pixel into the blocks around: inside its rim, a part
    comes back as it would in the whole drawing encoded."""
    s = parts[0][0].shape[0]
    cols = int(np.ceil(np.sqrt(len(parts))))
    rows = int(np.ceil(len(parts) / cols))
    mosaic = np.zeros((rows * s, cols * s, 3), np.uint8)
    for j, (part, _) in enumerate(parts):
        r, c = divmod(j, cols)
        mosaic[r * s : (r + 1) * s, c * s : (c + 1) * s] = part
    back = codec(mosaic).astype(np.int16)
    out = np.zeros(len(parts))
    for j, (_, (y, x)) in enumerate(parts):
        r, c = divmod(j, cols)
        got = back[r * s + 1 : (r + 1) * s - 1, c * s + 1 : (c + 1) * s - 1]
        out[j] = np.abs(got - target[y + 1 : y + s - 1, x + 1 : x + s - 1]).sum()
    return out


def _flat_colours(corners: np.ndarray, codec, tables: dict, reach: int = 4) -> list:
    """The colours (int RGB) a flat background may have had, given the centre pixels of the
    four corner cells (4, 3) as decoded: the encoder moves a flat colour by a few levels (its
    DC coefficients are quantised), so each colour within `reach` levels of what is seen is drawn
    as one 16x16 tile of a mosaic (a whole block of each channel: tiles do not mix), encoded
    once, and those that come back as what is seen are kept, nearest first (remembered per
    colour and `tables`, the encoder's settings: the files of a folder share both)."""
    values, count = np.unique(corners, axis=0, return_counts=True)
    seen = values[count.argmax()].astype(np.int64)
    if count.max() < 2:
        return []  # no two corners agree: not one flat background
    key = (tuple(seen.tolist()), repr(sorted(tables.items())))
    if key not in _FLAT:
        if len(_FLAT) > 256:
            _FLAT.clear()
        _FLAT[key] = _flat_near(seen, codec, reach)
    return list(_FLAT[key])


_FLAT: dict = {}  # (colour seen, encoder settings) -> colours


def _flat_near(seen: np.ndarray, codec, reach: int) -> list:
    """`_flat_colours`, worked out."""
    steps = np.arange(-reach, reach + 1)
    near = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    near = near[np.abs(near).sum(1).argsort(kind="stable")]
    colours = np.clip(seen + near, 0, 255)
    side = int(np.ceil(np.sqrt(len(colours))))
    tiles = np.zeros((side * side, 3), np.uint8)
    tiles[: len(colours)] = colours
    mosaic = np.repeat(np.repeat(tiles.reshape(side, side, 3), 16, 0), 16, 1)
    back = codec(mosaic)[8::16, 8::16].reshape(-1, 3)[: len(colours)]
    return list(colours[(back == seen).all(1)])


def _webp_at(q: int):
    """Pillow's WebP encoder at quality q, then the decoder."""

    def codec(img: np.ndarray) -> np.ndarray:
        return _decoded(_encoded(np.ascontiguousarray(img), q), "RGB")

    return codec


def _encoder_known(fmt: str, settings: dict, has_alpha: bool) -> bool:
    """Whether a file's own encoder can draw an answer again: an opaque JPEG's tables, or a
    lossy WebP's frame header (`webp.Webp`)."""
    return bool(settings) and (
        (fmt == "JPEG" and not has_alpha) or (fmt == "WEBP" and "vp8" in settings)
    )


def _webp(d: _Drawing, idx: np.ndarray, known: Webp | None = None):
    """Pillow's WebP encoder at the quality that best reproduces the input from punk `idx`
    (a WebP file does not say its quality; Pillow's default is 80), or None if none is close.
    `known`: the file's own encoder, its quality found by an answer drawn back (`webp.Webp`:
    the reading, not yet an answer, seldom encodes with the file's frame header)."""
    img = d.image(idx)
    if known is not None:
        err = float(np.abs(known(img).astype(np.int16) - d.y).mean())
        return (known, f"WebP q{known.quality}") if err < 1.0 else None
    errs = {}
    for q in WEBP_QUALITIES:
        errs[q] = float(np.abs(_webp_at(q)(img).astype(np.int16) - d.y).mean())
        if errs[q] < 0.05:
            break  # (near) exactly this quality: the others need not be tried
    q = min(errs, key=errs.get)
    return (_webp_at(q), f"WebP q{q}") if errs[q] < 1.0 else None


def _candidates(d: _Drawing, idx, est, prior, margin: float = 12.0):
    """Where to start re-encoding, each cell's colours to try (576, 3), and which cells to try.
    A nearest upscale: each cell's three likeliest colours by its core's mean colour (JPEG smears
    colour across the cell edges, which the fit of whole cells weighs), where the best two are
    within `margin` or the fit chose otherwise. A smoothed one: the fit, and the two colours the
    linear drawing likes next, for every cell near the punk."""
    if _is_nearest(d.filt):
        dist2 = _distances(est.reshape(576, -1), d.s)
        score = dist2 / 8.0 - (prior if prior is not None else 0.0)  # noise: sigma ~2
        ranked = np.argsort(score, 1)[:, :4]
        order = ranked[:, :3].copy()
        dist = np.sqrt(np.take_along_axis(dist2, order, 1))
        doubtful = (dist[:, 1] - dist[:, 0] < margin) | (idx != order[:, 0])
        other = (idx != order[:, 0]) & (idx != order[:, 1]) & (idx != order[:, 2])
        order[other, 2] = idx[other]
        # The colour nearest the core, prior aside: a rare colour (2 pixels of the collection)
        # next to a common one 5 levels away loses on the prior, yet re-encodes exactly.
        near = dist2.argmin(1)
        fourth = np.where((order == near[:, None]).any(1), ranked[:, 3], near)
        fourth = np.where((order == fourth[:, None]).any(1), order[:, 0], fourth)
        return order[:, 0].copy(), np.hstack([order, fourth[:, None]]), doubtful
    m, masks = d.linear(idx)
    de = d.gains(idx, m, masks)
    weight = 2 * float(((d.y - m) ** 2).mean()) * d.y.shape[0] * d.y.shape[1] / 576
    de[np.arange(576), idx] = np.inf
    fit = de.argmin(1)  # the colour the fit alone likes next
    # a cell whose next colour would cost the fit more than the noise explains is sure (the
    # prior aside: a rare colour a few levels from a common one, Rosy Cheeks on the skin, is
    # what the encoder tells apart)
    doubtful = de[np.arange(576), fit] < 3 * weight
    if prior is not None:
        de -= weight * (prior[None] - prior[idx][:, None])
    order = np.hstack([idx[:, None], np.argsort(de, 1)[:, :2]])
    other = (order[:, 1] != fit) & (order[:, 2] != fit)
    order[other, 2] = fit[other]
    return idx, order, doubtful


def _refine(d: _Drawing, idx, order, doubtful, codec, passes: int = 4):
    """Analysis by synthesis for JPEG and WebP. For each `doubtful` cell, draw the punk with
    each of the cell's candidate colours `order` (576, K) the way the input was made (drawing `d`
    at full size, through the input's encoder: `codec`), and keep the colour that reproduces the
    input best around that cell. Encoders are deterministic, so the true punk reproduces the
    input exactly. Cells whose blocks cannot touch are tried together: a pass costs a few dozen
    encodes; at most CODEC_ENCODE_PIXELS pixels are encoded in all."""
    idx = idx.copy()
    if not doubtful.any():
        return idx, 0
    h, w = d.y.shape[:2]
    budget = [min(CODEC_ENCODE_PIXELS // (h * w), MAX_ENCODES)]
    # A cell changes the pixels it draws and, through the 16x16 block (chroma is halved) they
    # are coded in and the decoder's smoothing of chroma, up to 9 pixels around: its
    # neighbourhood.
    sy = _dilate(d.wy != 0, 9)
    sx = _dilate(d.wx != 0, 9)
    share_y = (sy.T.astype(int) @ sy.astype(int)) > 0
    share_x = (sx.T.astype(int) @ sx.astype(int)) > 0
    gap_y = int(np.abs(np.subtract(*np.nonzero(share_y))).max()) + 1
    gap_x = int(np.abs(np.subtract(*np.nonzero(share_x))).max()) + 1
    ky, kx = np.divmod(np.arange(576), 24)
    klass = (ky % gap_y) * gap_x + (kx % gap_x)
    syf, sxf = sy.astype(np.float32), sx.astype(np.float32)
    target = d.y.astype(np.int16)

    def local_error(cells: np.ndarray) -> np.ndarray:
        """Per cell, |drawing - input| summed over its neighbourhood: (576,)."""
        if budget[0] <= 0 or d.clock.late():
            raise _Spent
        budget[0] -= 1
        drawn = codec(d.image(cells)).astype(np.int16)
        diff = np.abs(drawn - target).astype(np.float32) @ ONES3  # (h, w) summed over RGB
        return (syf.T @ diff @ sxf).ravel()

    changed = 0
    try:
        for _ in range(passes):
            moved = 0
            for c in np.unique(klass[doubtful]):
                members = np.flatnonzero(doubtful & (klass == c))
                errs = []
                for rank in range(order.shape[1]):
                    trial = idx.copy()
                    trial[members] = order[members, rank]
                    errs.append(local_error(trial)[members])
                best = order[members, np.argmin(np.stack(errs), 0)]
                moved += int((best != idx[members]).sum())
                idx[members] = best
            changed += moved
            if not moved:
                break
        # Neighbouring cells wrong together (a patch of skin snapped to its look-alike) can trap
        # the one-cell moves; where the drawing still differs, try changing such a patch at once.
        for _ in range(8):
            err = local_error(idx)
            bad = np.flatnonzero(doubtful & (err > max(1.0, 3 * float(np.median(err)))))
            improved = False
            for k in bad[np.argsort(-err[bad])]:
                near = (np.abs(ky - ky[k]) <= 1) & (np.abs(kx - kx[k]) <= 1)
                patch = np.flatnonzero(near & doubtful & (idx == idx[k]))
                for cells in ([k], patch) if len(patch) > 1 else ([k],):
                    for c in order[k]:
                        if c == idx[k]:
                            continue
                        trial = idx.copy()
                        trial[cells] = c
                        if local_error(trial)[cells].sum() < err[cells].sum() - 1e-6:
                            changed += len(cells)
                            idx, improved = trial, True
                            break
                    if improved:
                        break
                if improved:
                    break
            if not improved:
                break
    except _Spent:
        pass  # the encoding budget is spent: keep what was found
    return idx, changed


class _Spent(Exception):
    """The re-encoding budget of an image is spent."""


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """(n, 24) bool: each column's True rows widened by r rows either side."""
    out = mask.copy()
    for s in range(1, r + 1):
        out[s:] |= mask[:-s]
        out[:-s] |= mask[s:]
    return out


class _Clock:
    """The time one image may take; past it the image is refused rather than hogging a core.

    CPU time of this thread, not wall time: on a loaded machine (other processes, other
    requests) the same image gets the same answer. `counted` (a WebP's: its answers, drawn
    back, are re-encoded until `soft` is spent, and CPU time still varied with the load, as
    did what they found): the optional checks stop after `soft` seconds of work counted
    (`punktraits.work`), the same on any machine; after COUNTED_SLACK times as long by the
    CPU clock as well (work the count misses)."""

    def __init__(self, name: str, soft: float | None = None, counted: bool = False):
        self.name, self.counted = name, counted
        self.soft = SOFT_SECONDS if soft is None else soft  # (`_soft_seconds`)
        self.start, self.work_from = time.thread_time(), counted_work()
        self.before: tuple[float, float] | None = None  # (CPU, work) of the spells before
        # this one since the first restart (the image may wait in a batch between its reading
        # and its verifier's first restart: other images' time, not its own)

    def restart(self) -> None:
        """The soft time starts again (the verifier settles its drawing on another answer);
        MAX_SECONDS and SOFT_IN_ALL go on counting."""
        now, work = time.thread_time(), counted_work()
        if self.before is None:
            self.before = (0.0, 0.0)
        else:
            cpu, done = self.before
            self.before = (cpu + now - self.start, done + work - self.work_from)
        self.start, self.work_from = now, work

    def spent(self, in_all: bool = False) -> float:
        """Seconds spent since the last restart (`in_all`: and in the spells before it):
        counted work (`counted`), else CPU time."""
        cpu, done = self.before if in_all and self.before else (0.0, 0.0)
        if self.counted:
            return done + counted_work() - self.work_from
        return cpu + time.thread_time() - self.start

    def late(self) -> bool:
        """Past the time an image should take: optional checks stop here (after `soft` since
        the last restart, or SOFT_IN_ALL times `soft` in all)."""
        return (
            self.spent() > self.soft
            or self.spent(in_all=True) > SOFT_IN_ALL * self.soft
            or (self.counted and time.thread_time() - self.start > COUNTED_SLACK * self.soft)
        )

    def check(self, phase: str) -> None:
        """Refuses the image once it has taken MAX_SECONDS of CPU in all."""
        if time.thread_time() - self.start + (self.before or (0.0,))[0] > MAX_SECONDS:
            raise ImageError(
                f"{self.name}: gave up after {MAX_SECONDS:g} s ({phase}); "
                "try a smaller or cleaner image"
            )


def collection_palette(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct RGBA colours of (N, 24, 24, 4) uint8 images, (P, 4) uint8, sorted, and how
    many pixels have each."""
    return np.unique(images.reshape(-1, 4), axis=0, return_counts=True)
