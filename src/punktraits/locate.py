"""Find the punks in a larger picture: a marketplace page (text, buttons, photos around them), a
grid of punks, a sheet like punks.png. Only proposes squares; predict.py reads each one with the
normaliser and draws its answer back, so a square that is not a punk is dropped there.

A punk is shown on a square of one colour (the site blue #638596, another colour, or
transparency), and three sides of that square are always background: the top row and the first
and last columns of every one of the 10,000 are empty, and the bottom row never is (the neck).
So, for each of the picture's commonest colours (`_colours`):

1. the runs of that colour along every row and down every column are counted (`_runs`); a pixel
   where a run along its row and a run down its column both start is the top-left corner of a
   rectangle of that colour: one punk's square, or a grid of them side by side;
2. the rectangle is cut into the most squares (at least 24 pixels each) whose top rows and side
   columns are all that colour (`_grid`): lines through punks are not;
3. a square is kept when it looks like a punk on that colour: between 15% and 80% of it not
   background, some of it in its bottom row (`_plausible`), and, given the collection's
   silhouette (the cells no punk ever paints, and those every punk paints), its cell centres
   background where no punk paints and not where every punk does, as it is or mirrored
   (`_shaped`): text, icons and photos seldom are, so few squares reach the normaliser.

A whole-number nearest upscale in a lossless file (punks.png at x1, a x8 grid) is read without
the normaliser: each cell is sliced and its colours looked up (`exact_punk`), so the 10,000 of
punks.png take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .normalize import Normalized, _composite

MIN_SIDE = 24  # a punk's square has at least one pixel per punk pixel
LOSSLESS = ("PNG", "BMP", "GIF")
MAX_COLOURS = 16  # background colours tried, commonest first
MAX_RECTANGLES = 2000  # rectangles tried per colour at most (the largest first)


@dataclass(frozen=True)
class Square:
    """Where a punk may be: x, y, width, height in pixels, on background `colour` (RGBA)."""

    x: int
    y: int
    w: int
    h: int
    colour: tuple[int, int, int, int]

    @property
    def box(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


def squares(rgba: np.ndarray, has_alpha: bool, fmt: str,
            silhouette: tuple[np.ndarray, np.ndarray] | None = None) -> list[Square]:  # fmt: skip
    """The squares of `rgba` (H, W, 4) uint8 that may show a punk, in reading order.
    `silhouette`: (24, 24) bool masks of the cells no punk paints and every punk paints."""
    h, w = rgba.shape[:2]
    if min(h, w) < MIN_SIDE:
        return []
    tol = 10 if fmt in LOSSLESS else 24  # a smoothed punk's outline leaks a few levels; JPEG
    # bleeds the page's colour into a square's edge
    found: dict[tuple[int, int, int, int], Square] = {}
    gridded = 0  # pixels inside grids of squares found
    for colour in _colours(rgba, has_alpha, fmt, tol):
        if gridded > 0.9 * h * w:
            break  # a sheet of punks: the grid of the commonest colour is the picture
        mask = _mask(rgba, colour, tol, has_alpha)
        hrun, vrun = _runs(mask), _runs(mask.T).T
        left = np.ones_like(mask)
        left[:, 1:] = ~mask[:, :-1]
        above = np.ones_like(mask)
        above[1:] = ~mask[:-1]
        corner = mask & left & above & (hrun >= MIN_SIDE) & (vrun >= MIN_SIDE)
        ys, xs = np.nonzero(corner)
        if not len(ys):
            continue
        area = hrun[ys, xs].astype(np.int64) * vrun[ys, xs]
        keep = np.argsort(-area)[:MAX_RECTANGLES]
        cols = np.zeros((h + 1, w), np.int32)  # cols[y, x]: pixels of the colour above y in x
        np.cumsum(mask, 0, out=cols[1:])
        rows = np.zeros((h, w + 1), np.int32)
        np.cumsum(mask, 1, out=rows[:, 1:])
        covered = np.zeros((h, w), bool)  # inside a grid of this colour: its cells are known
        for y, x in zip(ys[keep], xs[keep]):
            if covered[y, x]:
                continue
            rw, rh = int(hrun[y, x]), int(vrun[y, x])
            # an edge cut short (a hat or hair smoothed into it): the other edge's square
            sizes = {(rw, rh), (max(rw, rh), max(rw, rh))}
            for sw, sh in sorted(sizes, reverse=True):
                if x + sw > w or y + sh > h:
                    continue
                cells = _grid(cols, rows, int(x), int(y), sw, sh)
                if cells is None:
                    continue
                for cx, cy, cw, ch in cells:
                    part = mask[cy : cy + ch, cx : cx + cw]
                    if _plausible(part) and (silhouette is None or _shaped(part, *silhouette)):
                        key = (cx, cy, cw, ch)
                        found.setdefault(key, Square(cx, cy, cw, ch, tuple(int(v) for v in colour)))
                if len(cells) > 1:
                    covered[y : y + sh, x : x + sw] = True
                    kept = sum(
                        _plausible(mask[cy : cy + ch, cx : cx + cw]) for cx, cy, cw, ch in cells
                    )
                    gridded += sw * sh if kept == len(cells) else 0
                break
    return sorted(found.values(), key=lambda s: (s.y, s.x))


def _colours(rgba: np.ndarray, has_alpha: bool, fmt: str, tol: int) -> list[np.ndarray]:
    """The commonest colours (RGBA int), enough of each to be a punk's background at x1, each
    more than `tol` from the others (JPEG noise spreads one colour over several)."""
    h, w = rgba.shape[:2]
    step = max(1, min(h, w) // 512)
    px = rgba[::step, ::step].reshape(-1, 4).astype(np.int64)
    if has_alpha:
        px = np.where(px[:, 3:] == 0, 0, px)  # every transparent pixel is one colour
    shift = 0 if fmt in LOSSLESS else 3  # lossy: neighbouring values in one bin
    q = px >> shift
    key = ((q[:, 0] * 256 + q[:, 1]) * 256 + q[:, 2]) * 256 + q[:, 3]
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    enough = 200 / step**2  # a x1 punk's square has 244 to 428 background pixels
    out = []
    for k in np.argsort(-counts):
        if counts[k] < enough or len(out) == MAX_COLOURS:
            break
        colour = np.rint(np.median(px[inverse == k], 0)).astype(np.int64)
        if all(np.abs(colour - c).max() > tol for c in out):
            out.append(colour)
    return out


def _mask(rgba: np.ndarray, colour: np.ndarray, tol: int, has_alpha: bool) -> np.ndarray:
    """(H, W) bool: the pixels of that colour (transparent: any fully transparent pixel)."""
    if has_alpha and colour[3] == 0:
        return rgba[..., 3] <= tol
    diff = np.abs(rgba.astype(np.int16) - colour.astype(np.int16)).max(-1)
    return diff <= tol


def _runs(mask: np.ndarray) -> np.ndarray:
    """(H, W) int32: how many pixels of the colour start at each pixel and go right."""
    w = mask.shape[1]
    pos = np.arange(w, dtype=np.int32)
    stop = np.where(mask, np.int32(w), pos[None])  # the first pixel not of the colour, from x on
    stop = np.minimum.accumulate(stop[:, ::-1], 1)[:, ::-1]
    return stop - pos[None]


def _grid(cols, rows, x: int, y: int, w: int, h: int):
    """The rectangle cut into the most equal squares (n across, m down) whose left and right
    columns are nine tenths the colour down the rectangle and whose top rows are mostly of it
    along it: [(x, y, w, h)] per square, or None."""
    for n in range(w // MIN_SIDE, 0, -1):
        side = w / n
        m = int(round(h / side))
        if m < 1 or abs(m * side - h) > max(2.0, 0.02 * side) or side < MIN_SIDE:
            continue
        edges_x = np.round(x + np.arange(n + 1) * side).astype(int)
        edges_y = np.round(y + np.arange(m + 1) * side).astype(int)
        edges_y[-1] = min(edges_y[-1], cols.shape[0] - 1)
        y1 = int(edges_y[-1])
        sides = np.concatenate([edges_x[:-1], edges_x[1:] - 1])
        down = (cols[y1, sides] - cols[y, sides]) / (y1 - y)
        if down.min() < 0.9:
            continue
        along = (rows[edges_y[:-1], x + w] - rows[edges_y[:-1], x]) / w
        if along.min() < 0.85:
            continue
        return [(int(edges_x[i]), int(edges_y[j]), int(edges_x[i + 1] - edges_x[i]),
                 int(edges_y[j + 1] - edges_y[j])) for j in range(m) for i in range(n)]  # fmt: skip
    return None


def _plausible(mask: np.ndarray) -> bool:
    """A punk on this background: 15% to 80% of the square is not background, and its bottom
    row is not all background (a punk's neck touches it)."""
    h = mask.shape[0]
    content = 1.0 - float(mask.mean())
    bottom = mask[h - max(1, h // 48) :]
    return 0.15 <= content <= 0.8 and not bool(bottom.all())


def _shaped(mask: np.ndarray, never: np.ndarray, always: np.ndarray) -> bool:
    """Whether the square's 24x24 cell centres are background (`mask`) where no punk paints and
    painted where every punk does (nine tenths of each), as it is or mirrored."""
    h, w = mask.shape
    ys = ((np.arange(24) + 0.5) * h / 24).astype(int)
    xs = ((np.arange(24) + 0.5) * w / 24).astype(int)
    cells = mask[ys][:, xs]
    return any(c[never].mean() >= 0.9 and (~c[always]).mean() >= 0.9
               for c in (cells, cells[:, ::-1]))  # fmt: skip


def silhouette(punks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(24, 24) bool: the cells no punk of (N, 24, 24, 4) paints, and those every one paints."""
    painted = punks[..., 3] > 0
    return ~painted.any(0), painted.all(0)


def exact_punk(cell: np.ndarray, has_alpha: bool, fmt: str, palette: np.ndarray,
               counts: np.ndarray | None) -> tuple[np.ndarray, Normalized] | None:  # fmt: skip
    """The punk a square shows when it is a whole-number nearest upscale in a lossless file
    whose every pixel is a collection colour (RGBA with transparency, or as shown on the
    square's corner colour): (24, 24, 4) uint8 and how it was read; None when it is not (the
    normaliser then reads it)."""
    h, w = cell.shape[:2]
    if h != w or h % 24 or fmt not in LOSSLESS:
        return None
    k = h // 24
    punk = cell[k // 2 :: k, k // 2 :: k]  # (24, 24, 4) the centre of each block
    if k > 1 and not (np.repeat(np.repeat(punk, k, 0), k, 1) == cell).all():
        return None  # not a nearest upscale
    table = _table(palette, counts, None if has_alpha else tuple(int(v) for v in punk[0, 0, :3]))
    if table is None:
        return None
    keys, values = table
    px = punk.reshape(-1, 4).astype(np.int64)
    if has_alpha:
        px = np.where(px[:, 3:] == 0, 0, px)
    key = ((px[:, 0] * 256 + px[:, 1]) * 256 + px[:, 2]) * 256 + (px[:, 3] if has_alpha else 255)
    at = np.clip(np.searchsorted(keys, key), 0, len(keys) - 1)
    if not (keys[at] == key).all():
        return None  # a colour no punk has
    out = palette[values[at]].reshape(24, 24, 4)
    if not out[..., 3].any() or out[[0, 0, 23, 23], [0, 23, 0, 23], 3].any():
        return None  # empty, or its corners are not background
    bg = "transparent" if has_alpha else "#{:02x}{:02x}{:02x}".format(*punk[0, 0, :3])
    return out, Normalized((w, h), fmt, (float(k), float(k)), (0.0, 0.0), bg, 0, [], "nearest")


_TABLES: dict = {}


def _table(palette: np.ndarray, counts, bg: tuple | None):
    """Sorted colour keys and the palette index each one reads as: RGBA for transparency, else
    the colours as shown on `bg` (colours that show alike: the commonest; None when an opaque
    punk colour looks like the background itself)."""
    cache = (palette.tobytes(), bg)
    if cache in _TABLES:
        return _TABLES[cache]
    pal = palette.astype(np.int64)
    shown = pal
    if bg is not None:
        shown = np.hstack([_composite(np.asarray(bg, np.int64), pal), np.full((len(pal), 1), 255)])
    key = ((shown[:, 0] * 256 + shown[:, 1]) * 256 + shown[:, 2]) * 256 + shown[:, 3]
    transparent = int(np.flatnonzero(pal[:, 3] == 0)[0])
    table = None
    if bg is None or not ((key == key[transparent]) & (pal[:, 3] == 255)).any():
        rank = np.asarray(counts if counts is not None else np.zeros(len(pal)), np.float64)
        rank[transparent] = np.inf  # the background reads as the background
        keys = np.unique(key)
        values = np.array([np.flatnonzero(key == k)[np.argmax(rank[key == k])] for k in keys])
        table = (keys, values)
    _TABLES[cache] = table
    return table
