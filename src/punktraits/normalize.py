"""Turn any image of a punk into the 24x24 RGBA punk it shows, and say how.

People have marketplace renders (336x336 or 1024x1024 on the blue #638596), screenshots saved as
JPEG, GIFs, 8x upscales, crops with a border. `normalize()` handles them in four steps:

1. open safely: the format is one of PNG, JPEG, GIF (first frame), WebP, BMP; the pixel count is
   checked from the header before anything is decoded (decompression bombs); empty, truncated
   and non-image files are refused with a one-line reason;
2. find the pixel grid: for each axis, every border b (0 to 1/8 of the side) with cell size
   (side - 2b) / 24 is tried, and the one whose cell-centre samples, upscaled again, reproduce the
   image best wins; integer and non-integer scales (1024 / 24 = 42.67) alike;
3. sample each cell: the mean of its central 75% for JPEG (the noise averages out), of its
   central 15% otherwise (a smoothed upscale is exact only near the centre);
4. snap each pixel to the collection's palette *as it appears on the background*: the background
   colour is the mode of the four corner cells (a punk's corners are always background), or the
   image's own transparency; a palette colour with alpha a shows as a*rgb + (1-a)*background. So
   the background returns to transparent (0,0,0,0) and the half-transparent smoke of Cigarette and
   Pipe returns to its RGBA colour. With JPEG noise the choice weighs how common each colour is,
   and where two colours stay close the punk is re-encoded with the input's own JPEG tables to
   see which one reproduces the input (analysis by synthesis, `_refine`).
"""

from __future__ import annotations

import io
import os
import stat
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from .errors import ImageError

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

    def to_dict(self) -> dict:
        """Plain JSON types (tuples become lists), as `predict --format json` prints it."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


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


def open_image(source, name: str | None = None) -> tuple[np.ndarray, bool, str, list[str], dict]:
    """Decode a path or bytes into (H, W, 4) uint8 RGBA, whether it has alpha, its format, notes
    and (for JPEG) its quantisation tables and subsampling."""
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
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{name}: {w}x{h} is over the {MAX_PIXELS:,}-pixel limit ({MAX_SIDE}x{MAX_SIDE}); "
            "not decoded",
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
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        raise ImageError(f"{name}: the image data is truncated or corrupt ({e})") from None
    return rgba, alpha, fmt, notes, jpeg


def _axis_grid(img: np.ndarray, axis: int) -> tuple[float, float, float]:
    """(border, cell size, error) of the best 24-cell grid along one axis of (H, W, 3) floats."""
    side = img.shape[axis]
    other = img.shape[1 - axis]
    lines = np.linspace(0, other - 1, min(other, 32)).astype(int)  # a sample keeps it cheap
    prof = img[lines, :, :] if axis == 1 else img[:, lines, :].transpose(1, 0, 2)  # (L, side, 3)
    pos = np.arange(side)
    errors = []
    for b in range(0, side // 8 + 1):
        cell = (side - 2 * b) / 24
        if cell < 1:
            break
        centres = np.minimum((b + (np.arange(24) + 0.5) * cell).astype(int), side - 1)
        # Each position maps to its cell's centre; the border to the nearest edge pixel.
        which = np.floor((pos - b) / cell).astype(int)
        idx = np.where(which < 0, 0, np.where(which > 23, side - 1, centres[np.clip(which, 0, 23)]))
        errors.append((float(np.abs(prof - prof[:, idx, :]).mean()), b, cell))
        if b == 0 and errors[0][0] == 0.0:
            break  # an exact upscale with no border: nothing can fit better
    err0 = errors[0][0]
    err, b, cell = min(errors)
    # A border region is uniform, so it always "fits"; on a smooth (interpolated) image every
    # border fits about as well. Take one only when it fits clearly better than none.
    if err > 0.5 * err0:
        err, b, cell = errors[0]
    return float(b), float(cell), err


def _sample(img: np.ndarray, bx: float, cx: float, by: float, cy: float, frac: float) -> np.ndarray:
    """Mean colour of a central window (`frac` of the side) of each of the 24 x 24 cells."""

    def windows(b: float, cell: float, side: int) -> np.ndarray:  # (24, w) pixel indices
        w = max(1, int(round(frac * cell)))
        start = np.floor(b + (np.arange(24) + 0.5) * cell - w / 2).astype(int)
        return np.clip(start[:, None] + np.arange(w), 0, side - 1)

    ys, xs = windows(by, cy, img.shape[0]), windows(bx, cx, img.shape[1])
    block = img[ys[:, None, :, None], xs[None, :, None, :]]  # (24, 24, wy, wx, C)
    return block.mean((2, 3))


def normalize(
    source, palette: np.ndarray, counts: np.ndarray | None = None, name: str | None = None
) -> tuple[np.ndarray, Normalized]:
    """The 24x24 RGBA uint8 punk that `source` (a path or bytes) shows, and how it was found.

    `palette` is the collection's RGBA colours (P, 4) uint8, transparent (0,0,0,0) included;
    `counts` how many pixels of the collection have each (a prior for noisy images).
    """
    name = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<bytes>")
    try:
        return _normalize(source, palette, counts, name)
    except ImageError:
        raise
    except (ArithmeticError, LookupError, MemoryError, OSError, ValueError, struct.error) as e:
        # numpy or Pillow choked on something about this input that the checks above missed:
        # the user gets one line about their file; the cause stays chained for a traceback.
        reason = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        raise ImageError(f"{name}: could not be read as a punk ({reason})") from e


def _normalize(source, palette, counts, name: str) -> tuple[np.ndarray, Normalized]:
    rgba, has_alpha, fmt, notes, jpeg = open_image(source, name)
    h, w = rgba.shape[:2]
    if min(w, h) < 24:
        raise ImageError(f"{name}: {w}x{h} is smaller than a 24x24 punk")
    if max(w, h) > 1.25 * min(w, h):
        raise ImageError(
            f"{name}: {w}x{h} is not square; a punk image is square (a border allowed)"
        )
    if has_alpha:
        a = rgba[..., 3:4].astype(float) / 255.0
        rgb = rgba[..., :3] * a + MATTE * (1 - a)
    else:
        rgb = rgba[..., :3].astype(float)
    bx, cx, ex = _axis_grid(rgb, 1)
    by, cy, ey = _axis_grid(rgb, 0)
    if max(ex, ey) > 40 or abs(cx - cy) > 0.1 * max(cx, cy):
        raise ImageError(f"{name}: no 24x24 pixel grid found (is it a single punk?)")
    # JPEG noise averages out over most of a cell; a smoothed (interpolated) upscale is exact only
    # near the cell's centre.
    cells = _sample(rgb, bx, cx, by, cy, 0.75 if fmt == "JPEG" else 0.15)  # (24, 24, 3)
    if has_alpha:
        bg, bg_name = MATTE, "transparent"
    else:
        corners = np.concatenate([cells[0, 0:1], cells[0, 23:24], cells[23, 0:1], cells[23, 23:24]])
        # The corner colour most other corners agree with (within noise), averaged over those.
        near = np.abs(corners[:, None] - corners[None]).max(-1) <= 8.0  # (4, 4)
        bg = corners[near[near.sum(1).argmax()]].mean(0)
        bg_name = "#{:02x}{:02x}{:02x}".format(*np.clip(np.rint(bg), 0, 255).astype(int))
    pal = palette.astype(float)
    a = pal[:, 3:4] / 255.0
    shown = pal[:, :3] * a + bg * (1 - a)  # (P, 3): each palette colour on this background
    c = cells.reshape(-1, 3)
    d = (c * c).sum(1)[:, None] - 2 * c @ shown.T + (shown * shown).sum(1)  # (576, P) squared
    d = np.maximum(d, 0.0)
    nearest = np.sqrt(d.min(1))
    snapped = int((nearest > 0.5).sum())
    # Close palette colours (skin 113,63,29 vs 118,59,26) are confused by JPEG noise; with the
    # noise level measured on this image, pick the most probable colour given how common each is
    # in the collection. A lossless image has noise ~0, and the nearest colour wins.
    lossy = fmt == "JPEG" or float(np.percentile(nearest, 90)) > 0.5
    sigma = 2.0 if lossy else 0.3
    prior = np.log(counts.astype(float) + 1.0) if counts is not None else 0.0
    score = d / (2 * sigma**2) - prior  # (576, P), lower is better
    idx = score.argmin(1)
    if jpeg and not has_alpha:
        grid = _pixel_cells(w, h, bx, cx, by, cy)
        colour_of = np.vstack([shown, bg[None]]).astype(np.float32)  # last row: the border
        render = _jpeg_render(grid, colour_of, jpeg)
        idx, fixed = _refine(rgb, idx, score, d, render, grid, reach=24 / cx)
        if fixed:
            notes.append(f"JPEG: {fixed} pixels corrected by re-encoding")
    punk = palette[idx].reshape(24, 24, 4).astype(np.uint8)
    if not punk[..., 3].any():
        raise ImageError(f"{name}: no punk in it (the image is all one colour)")
    info = Normalized((w, h), fmt, (round(cx, 4), round(cy, 4)), (bx, by), bg_name, snapped, notes)
    return punk, info


def _pixel_cells(w: int, h: int, bx: float, cx: float, by: float, cy: float) -> np.ndarray:
    """For every image pixel, the index (0..575) of its punk cell, or -1 in the border."""
    cols = np.floor((np.arange(w) - bx) / cx).astype(int)
    rows = np.floor((np.arange(h) - by) / cy).astype(int)
    inside = (rows[:, None] >= 0) & (rows[:, None] < 24) & (cols[None] >= 0) & (cols[None] < 24)
    return np.where(inside, rows[:, None] * 24 + cols[None], -1)


def _jpeg_render(grid: np.ndarray, colour_of: np.ndarray, jpeg: dict):
    """cells (576,) palette indices -> the image a nearest upscale, JPEG-encoded like the input,
    decodes to."""

    def render(cells: np.ndarray) -> np.ndarray:
        pix = np.where(grid >= 0, cells[np.maximum(grid, 0)], len(colour_of) - 1)
        img = np.clip(np.rint(colour_of[pix]), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img, "RGB").save(buf, format="JPEG", **jpeg)
        return np.asarray(Image.open(buf).convert("RGB"), np.float32)

    return render


def _refine(rgb, idx, score, d, render, grid, reach: float, margin: float = 12.0, passes: int = 4):
    """Analysis by synthesis. Where another palette colour is within `margin` of a cell's colour,
    render the punk with each of the cell's three best colours the way the input was made (a
    nearest upscale JPEG-encoded with the input's own tables and subsampling), and keep the
    colour that reproduces the input best around that cell. JPEG is deterministic, so the true
    punk reproduces the input exactly. Cells farther apart than `reach` cells (a 16-px JPEG block
    and its smoothing) are tried together: a pass costs a few dozen encodes."""
    idx = idx.copy()
    order = np.argsort(score, 1)[:, :3]  # three best colours per cell
    dist = np.sqrt(d[np.arange(576)[:, None], order])
    doubtful = dist[:, 1] - dist[:, 0] < margin
    if not doubtful.any():
        return idx, 0
    target = rgb.astype(np.float32)
    gap = int(np.ceil(reach)) + 1  # cells this far apart do not change each other's render
    ky, kx = np.divmod(np.arange(576), 24)
    klass = (ky % gap) * gap + (kx % gap)

    def local_error(cells: np.ndarray) -> np.ndarray:
        """Per cell, |render - input| summed over it and its 8 neighbours: (576,)."""
        diff = np.abs(render(cells) - target).sum(-1)
        per_cell = np.bincount(grid[grid >= 0], weights=diff[grid >= 0], minlength=576)
        m = np.pad(per_cell.reshape(24, 24), 1)
        return sum(
            m[1 + dy : 25 + dy, 1 + dx : 25 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        ).ravel()

    changed = 0
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
    # Neighbouring cells wrong together (a patch of skin snapped to its look-alike) can trap the
    # one-cell moves; where the render still differs, try changing such a patch at once.
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
    return idx, changed


def collection_palette(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct RGBA colours of (N, 24, 24, 4) uint8 images, (P, 4) uint8, sorted, and how
    many pixels have each."""
    return np.unique(images.reshape(-1, 4), axis=0, return_counts=True)
