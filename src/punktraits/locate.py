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

import itertools
from dataclasses import dataclass

import numpy as np

from .normalize import (
    Fit,
    Normalized,
    _block_errors,
    _composite,
    _flat_colours,
    _given_back,
    _jpeg,
    _tile_side,
)

MIN_SIDE = 24  # a punk's square has at least one pixel per punk pixel
LOSSLESS = ("PNG", "BMP", "GIF")
MAX_COLOURS = 16  # background colours tried, commonest first
MAX_RECTANGLES = 2000  # rectangles tried per colour at most (the largest first)
MAX_WRONG = 128  # exact_jpeg repairs a reading with at most this many cells not re-encoding


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
    # bleeds the page's colour into a square's edge (`inset`: the pixels it blurs there)
    inset = 0 if fmt in LOSSLESS else 2
    found: dict[tuple[int, int, int, int], Square] = {}
    gridded = 0  # pixels inside grids of squares found
    for colour in _colours(rgba, has_alpha, fmt, tol):
        if gridded > 0.9 * h * w:
            break  # a sheet of punks: the grid of the commonest colour is the picture
        mask = _mask(rgba, colour, tol, has_alpha)
        hrun, vrun = _runs(mask), _runs(mask, 0)
        left = np.ones_like(mask)
        left[:, 1:] = ~mask[:, :-1]
        above = np.ones_like(mask)
        above[1:] = ~mask[:-1]
        if inset:  # JPEG blurs the page into a square's edge pixels, a few of which pass for
            # its colour: a corner is where the square's long runs start, whatever is beside
            # it within the blur (#1349, 76 px lanczos: its edge column 70% the colour, its
            # corner pixel alone)
            left[:, 1:] |= _blurred_edge(mask, vrun, inset)[:, :-1]
            above[1:] |= _blurred_edge(mask.T, hrun.T, inset).T[:-1]
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
            side = max(rw, rh)
            tries = sorted({(x, y, rw, rh), (x, y, side, side)}, key=lambda t: -t[2] * t[3])
            if inset:  # JPEG blurs the square's edges into the page: as much is cut off both
                tries.append((x - (side - rw + 1) // 2, y - (side - rh + 1) // 2, side, side))
            for sx, sy, sw, sh in tries:
                if sx < 0 or sy < 0 or sx + sw > w or sy + sh > h:
                    continue
                cells = _grid(cols, rows, int(sx), int(sy), sw, sh, inset)
                if cells is None:
                    continue
                for cx, cy, cw, ch in cells:
                    if inset and len(cells) == 1:  # (a grid's cells are cut from its sides)
                        cx, cy, cw, ch = _snapped(rgba, colour, cx, cy, cw, 3 * inset)
                    part = mask[cy : cy + ch, cx : cx + cw]
                    pixels = rgba[cy : cy + ch, cx : cx + cw]
                    if _plausible(part) and _punk_shaped(part, pixels, colour, tol, has_alpha,
                                                         inset > 0, silhouette):  # fmt: skip
                        key = (cx, cy, cw, ch)
                        found.setdefault(key, Square(cx, cy, cw, ch, tuple(int(v) for v in colour)))
                if len(cells) > 1:
                    covered[sy : sy + sh, sx : sx + sw] = True
                    kept = sum(
                        _plausible(mask[cy : cy + ch, cx : cx + cw]) for cx, cy, cw, ch in cells
                    )
                    gridded += sw * sh if kept == len(cells) else 0
                break
    return sorted(found.values(), key=lambda s: (s.y, s.x))


def _colours(rgba: np.ndarray, has_alpha: bool, fmt: str, tol: int) -> list[np.ndarray]:
    """The commonest colours (RGBA int), enough of each to be a punk's background at x1, each
    more than `tol` from the others. A lossy picture's: counted on its steady pixels only, in
    bins of 8 levels each counted with its neighbours (JPEG noise spreads one colour over
    several, a photo's over many), up to twice as many, each more than `tol` / 2 from the
    others (a colour beside another a little more than `tol` away must not be lost)."""
    h, w = rgba.shape[:2]
    step = max(1, min(h, w) // 512)
    px = rgba[::step, ::step].reshape(-1, 4).astype(np.int64)
    lossy = fmt not in LOSSLESS
    if lossy:
        px = px[_steady(rgba, step).ravel()]
    if has_alpha:
        px = np.where(px[:, 3:] == 0, 0, px)  # every transparent pixel is one colour
    q = px >> (3 if lossy else 0)
    key = ((q[:, 0] * 256 + q[:, 1]) * 256 + q[:, 2]) * 256 + q[:, 3]
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    if lossy:  # a bin that holds more than its 26 neighbours, counted with them (a colour on
        own, counts = counts, counts.copy()  # a bin's edge is split in two)
        peak = np.ones(len(uniq), bool)
        for dr, dg, db in itertools.product((-1, 0, 1), repeat=3):
            near = uniq + ((dr * 256 + dg) * 256 + db) * 256
            at = np.minimum(np.searchsorted(uniq, near), len(uniq) - 1)
            hit = (uniq[at] == near) & (near != uniq)
            counts[hit] += own[at[hit]]
            peak[hit] &= own[hit] >= own[at[hit]]
        counts[~peak] = 0
    enough = (100 if lossy else 200) / step**2  # a x1 punk's square has 244 to 428 background
    # pixels (a lossy one's steady ones, at x2 on a JPEG q90 page: a median of ~500, under 100
    # for 1.4% of punks; its colour may still be counted from another square)
    most, apart = (2 * MAX_COLOURS, tol // 2) if lossy else (MAX_COLOURS, tol)
    out = []
    for k in np.argsort(-counts):
        if counts[k] < enough or len(out) == most:
            break
        colour = np.rint(np.median(px[inverse == k], 0)).astype(np.int64)
        if all(np.abs(colour - c).max() > apart for c in out):
            out.append(colour)
    return out


def _steady(rgba: np.ndarray, step: int, most: int = 12) -> np.ndarray:
    """(H/step, W/step) bool, as `rgba[::step, ::step]`: the pixels that start a run of 16
    pixels one way and of 4 the other within `most` levels of each other: inside a flat colour
    (a square's background is flat to a JPEG's few levels that far; a photo's noise or gradient
    is not, nor the blend along a smoothed edge, a pixel or three wide). (Runs of 24 and 8 left
    a fifth of 48 px squares on JPEG pages under 100 such pixels, many with none: a hat or hair
    leaves no wider flat patch at x2.)"""

    def spread(a: np.ndarray) -> list[np.ndarray]:  # within `most` over the 4, then the 16
        hi, lo, wide, out = a.copy(), a.copy(), 1, []  # pixels from each, along axis 1
        for k in (1, 2, 4, 8):  # windows 2, 4, 8, 16 wide
            hi[:, :-k] = np.maximum(hi[:, :-k], hi[:, k:])
            lo[:, :-k] = np.minimum(lo[:, :-k], lo[:, k:])
            wide += k
            if wide in (4, 16):
                out.append((hi - lo).max(-1) <= most)
        return out

    px = rgba[..., :3].astype(np.int16)
    a_short, a_long = (v[:, ::step] for v in spread(px[::step]))
    d_short, d_long = (v.T[::step] for v in spread(px[:, ::step].transpose(1, 0, 2)))
    return (a_long & d_short) | (d_long & a_short)


def _mask(rgba: np.ndarray, colour: np.ndarray, tol: int, has_alpha: bool) -> np.ndarray:
    """(H, W) bool: the pixels of that colour (transparent: any fully transparent pixel)."""
    if has_alpha and colour[3] == 0:
        return rgba[..., 3] <= tol
    # every channel within tol: a table of the 256 values per channel (the same pixels as the
    # largest difference over the channels, several times faster on a page)
    levels = np.arange(256)
    mask = None
    for c in range(rgba.shape[-1]):
        near = (np.abs(levels - int(colour[c])) <= tol)[rgba[..., c]]
        mask = near if mask is None else mask & near
    return mask


def _blurred_edge(mask: np.ndarray, runs: np.ndarray, inset: int) -> np.ndarray:
    """(H, W) bool: the pixels a rectangle of the colour cannot start beyond, along axis 1: not
    of the colour, or of it with a short run across (`runs`, the other axis's) and, within
    `inset` pixels to their left through such pixels, one not of it (a JPEG's blurred edge,
    not a region's inside)."""
    weak = ~mask | (runs < MIN_SIDE)
    out = ~mask
    for j in range(1, inset + 1):  # j weak pixels, then one not of the colour (or the edge)
        chain = weak.copy()
        for i in range(1, j):
            chain[:, i:] &= weak[:, :-i]
        outside = np.ones_like(mask)
        outside[:, j:] = ~mask[:, :-j]
        out |= chain & outside
    return out


def _runs(mask: np.ndarray, axis: int = 1) -> np.ndarray:
    """(H, W) int32: how many pixels of the colour start at each pixel and go right (`axis`
    1) or down (0)."""
    n = mask.shape[axis]
    pos = np.arange(n, dtype=np.int32)
    pos = pos[None] if axis == 1 else pos[:, None]
    stop = np.where(mask, np.int32(n), pos)  # the first pixel not of the colour, from there on
    flip = (slice(None), slice(None, None, -1)) if axis == 1 else (slice(None, None, -1),)
    stop = np.minimum.accumulate(stop[flip], axis)[flip]
    return stop - pos


def _grid(cols, rows, x: int, y: int, w: int, h: int, inset: int = 0):
    """The rectangle cut into the most equal squares (n across, m down) whose left and right
    columns are nine tenths the colour down the rectangle and whose top rows are mostly of it
    along it (those `inset` pixels inside: a JPEG blurs the edges): [(x, y, w, h)] per square,
    or None."""
    for n in range(w // MIN_SIDE, 0, -1):
        side = w / n
        m = int(round(h / side))
        if m < 1 or abs(m * side - h) > max(2.0, 0.02 * side) or side < MIN_SIDE:
            continue
        edges_x = np.round(x + np.arange(n + 1) * side).astype(int)
        edges_y = np.round(y + np.arange(m + 1) * side).astype(int)
        edges_y[-1] = min(edges_y[-1], cols.shape[0] - 1)
        y1 = int(edges_y[-1])
        down = np.zeros(2 * n)
        along = np.zeros(m)
        for o in range(inset + 1):  # (each edge at its best of the pixels blurred)
            sides = np.concatenate([edges_x[:-1] + o, edges_x[1:] - 1 - o])
            down = np.maximum(down, (cols[y1, sides] - cols[y, sides]) / (y1 - y))
            tops = edges_y[:-1] + o
            along = np.maximum(along, (rows[tops, x + w] - rows[tops, x]) / w)
        if down.min() < 0.9:
            continue
        if along.min() < 0.85:
            continue
        return [(int(edges_x[i]), int(edges_y[j]), int(edges_x[i + 1] - edges_x[i]),
                 int(edges_y[j + 1] - edges_y[j])) for j in range(m) for i in range(n)]  # fmt: skip
    return None


def _snapped(rgba: np.ndarray, colour: np.ndarray, x: int, y: int, side: int, reach: int):
    """A square of a JPEG moved onto its edges: the page's colour blurs a few pixels into it
    and its into the page, so the runs that found it may start or stop a pixel or three off.
    Its left and right columns and its top row are its colour all along (a punk's are
    background); across each edge the pixels go from the page's colour to the square's, and
    the edge is where they are halfway (an edge with nothing else beside it stays). `reach`:
    how far it may move (the top up to an eighth of the side)."""
    h, w = rgba.shape[:2]
    c = colour[:3].astype(np.int16)

    def far(lines: np.ndarray) -> np.ndarray:  # each line's mean distance from the colour
        return np.abs(lines[..., :3].astype(np.int16) - c).max(-1).mean(-1)

    def edge(d: np.ndarray, at: int) -> int | None:  # d: outside first; the first pixel in
        if len(d) < 2 or d[0] - d.min() < 24:
            return None
        inside = np.flatnonzero(d <= (d[0] + d.min()) / 2)
        return at + int(inside[0]) if len(inside) else None

    y1 = min(y + side, h)
    lo, hi = max(x - reach - 1, 0), min(x + reach + 1, w)
    left = edge(far(rgba[y:y1, lo:hi].transpose(1, 0, 2)), lo)
    lo, hi = max(x + side - 2 - reach, 0), min(x + side + reach, w)
    right = edge(far(rgba[y:y1, lo:hi].transpose(1, 0, 2))[::-1], 0)
    right = None if right is None else hi - 1 - right
    lo, hi = max(y - max(reach, side // 8) - 1, 0), min(y + reach + 1, h)  # (a blurred
    top = edge(far(rgba[lo:hi, x : x + side]), lo)  # corner may start the square's run lower)
    x0 = x if left is None else left
    x1 = x + side - 1 if right is None else right
    y0 = y if top is None else top
    s = x1 - x0 + 1
    if y0 + s > h or s < MIN_SIDE:
        return x, y, side, side
    return x0, y0, s, s


def _plausible(mask: np.ndarray) -> bool:
    """A punk on this background: 15% to 80% of the square is not background, and its bottom
    row is not all background (a punk's neck touches it)."""
    h = mask.shape[0]
    content = 1.0 - float(mask.mean())
    bottom = mask[h - max(1, h // 48) :]
    return 0.15 <= content <= 0.8 and not bool(bottom.all())


def _punk_shaped(part, pixels, colour, tol: int, has_alpha: bool, lossy: bool,
                 silhouette) -> bool:  # fmt: skip
    """`_shaped` on the square's mask `part`; for a JPEG, also on a mask half as tolerant of its
    `pixels`: within the JPEG tolerance a Zombie's skin is the site green, closer to the colour
    the punk's cells are not background (a small square's noise needs the full tolerance)."""
    if silhouette is None or _shaped(part, *silhouette):
        return True
    return lossy and _shaped(_mask(pixels, colour, tol // 2, has_alpha), *silhouette)


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
    if k > 1:  # every block one colour (compared as one uint32 a pixel: half the time)
        px = np.ascontiguousarray(cell).view(np.uint32)[..., 0]  # (h, w)
        if not (px.reshape(24, k, 24, k) == px[k // 2 :: k, None, k // 2 :: k, None]).all():
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


def exact_jpeg(image: np.ndarray, fmt: str, tables: dict, palette: np.ndarray,
               counts: np.ndarray | None) -> tuple[np.ndarray, Normalized] | None:  # fmt: skip
    """The punk an opaque JPEG shows when it is a whole-number nearest upscale (x4 to x40 with no
    border) that its own encoder gives back exactly. Encoders are deterministic, so a punk that
    re-encodes to every pixel of the file is the one it was made from.

    Each cell's likeliest colour by the mean of its block's core; the background among the
    colours that encode as its corners do, by which re-draws the punk's edges best; then, where
    the drawing does not re-encode exactly, each such cell's next likeliest colours, and each
    block's doubtful cells (`_blockwise`). Candidates are tried many at once: a JPEG codes each
    16x16 block of pixels alone, so the blocks of many drawings, put side by side in one
    picture, are encoded in one go (`_Tiles`). ~5 ms at x8 instead of the search's ~60 ms. None
    when it does not re-encode exactly, or more than MAX_WRONG cells are off at first (the
    normaliser then reads it)."""
    h, w = image.shape[:2]
    if fmt != "JPEG" or not tables or h != w or h % 24 or not 4 <= h // 24 <= 40:
        return None
    k = h // 24
    rgb = np.ascontiguousarray(image[..., :3])
    core = slice(k // 4, k - k // 4)  # (the block edges carry the neighbours' ringing)
    cells = rgb.reshape(24, k, 24, k, 3)[:, core, :, core].mean((1, 3)).reshape(576, 3)
    tiles = _Tiles(rgb, _jpeg(tables)[0], k)
    prior = np.log(np.asarray(counts, np.float64) + 1.0) if counts is not None else 0.0
    pal = palette.astype(np.int64)
    corners = rgb[k // 2 :: h - k, k // 2 :: h - k].reshape(4, 3)
    bgs = [bg for bg in _flat_colours(corners, tiles.codec, tables)
           if _table(palette, counts, tuple(int(v) for v in bg)) is not None]  # fmt: skip
    # (None: an opaque punk colour looks like that background; the normaliser decides)
    if not bgs:
        return None

    def likeliest(bg):
        shown = _composite(bg, pal).astype(np.float64)  # (P, 3)
        dist2 = (cells * cells).sum(1)[:, None] - 2 * cells @ shown.T + (shown * shown).sum(1)
        score = dist2 / 8.0 - prior  # (576, P); JPEG noise: sigma ~2 levels
        return shown.astype(np.uint8), score, score.argmin(1)

    shown, score, idx = likeliest(bgs[0])
    if len(bgs) > 1:  # those that encode flat as the corners do differ where the punk begins
        edge = tiles.edges(palette[idx, 3].reshape(24, 24) > 0)
        drawn = [tiles.draw(_composite(bg, pal)[idx]) for bg in bgs]
        errs = tiles.errors([(d, p) for d in drawn for p in edge]).reshape(len(bgs), -1)
        best = int(np.argmin(errs.sum(1)))
        if best:
            shown, score, idx = likeliest(bgs[best])
    bg = bgs[best] if len(bgs) > 1 else bgs[0]
    err = tiles.cell_errors(tiles.draw(shown[idx]))  # (all 0: it gives the file back)
    if np.count_nonzero(err) > MAX_WRONG:
        return None  # too noisy to repair a cell at a time: the search reads it
    for _ in range(3):
        wrong = np.flatnonzero(err > 0)
        if not len(wrong):
            break
        # each wrong cell with its next likeliest colours, all drawn and encoded at once
        ranked = np.argsort(score[wrong], 1)[:, :3]
        trials, where = [], []
        for c, alts in zip(wrong, ranked):
            for alt in alts:
                if alt != idx[c]:
                    t = idx.copy()
                    t[c] = alt
                    trials.append((tiles.draw(shown[t]), tiles.around(c)))
                    where.append((c, alt))
        got = tiles.errors(trials)
        chosen: dict[int, tuple[float, int]] = {}
        for (c, alt), e in zip(where, got):
            if e < err[c] and e < chosen.get(c, (np.inf, 0))[0]:
                chosen[c] = (e, alt)
        if not chosen:
            break
        for c, (_, alt) in chosen.items():
            idx[c] = alt
        err = tiles.cell_errors(tiles.draw(shown[idx]))
    if err.any() and 16 % k == 0:  # cells within one block each: a block's doubtful cells
        idx, err = _blockwise(tiles, shown, score, idx, err)
    if err.any():
        return None
    out = palette[idx].reshape(24, 24, 4)
    if not out[..., 3].any() or out[[0, 0, 23, 23], [0, 23, 0, 23], 3].any():
        return None  # empty, or its corners are not background
    snapped = int((np.sqrt(((cells - shown[idx]) ** 2).sum(-1)) > 0.5).sum())
    bg_name = "#{:02x}{:02x}{:02x}".format(*bg)
    return out, Normalized((w, h), fmt, (float(k), float(k)), (0.0, 0.0), bg_name, snapped,
                           ["JPEG: re-encoded, gives the file back exactly"], "nearest",
                           tiles.fit(bg))  # fmt: skip


def _blockwise(tiles: _Tiles, shown, score, idx, err, margin: float = 20.0, rounds: int = 8):
    """Where the drawing of `idx` still does not re-encode (`err`: its cell errors): per 16x16
    block, each doubtful cell (its two likeliest colours within `margin`) changed to its next
    likeliest colours one at a time, every block's trials in one encode, and the one change
    that brings each block closest kept; again while it helps. A block is coded alone, so its
    error is its cells' together (a cell of a block with other wrong cells may not improve its
    own pixels). Returns the cells and their errors."""
    k = tiles.k
    per = 16 // k  # cells per block side
    ranked = np.argsort(score, 1)[:, :3]
    top = np.take_along_axis(score, ranked, 1)
    doubtful = top[:, 1] - top[:, 0] < margin
    idx = idx.copy()
    for _ in range(rounds):
        now = tiles.draw(shown[idx])
        blocks = err.reshape(24 // per, per, 24 // per, per).sum((1, 3))
        trials, where = [], []
        for by, bx in zip(*np.nonzero(blocks)):
            place = (min(by * 16, tiles.last), min(bx * 16, tiles.last))
            trials.append((now, place))
            where.append(((by, bx), None, None))
            for i in range(per):
                for j in range(per):
                    c = (by * per + i) * 24 + bx * per + j
                    for alt in ranked[c] if doubtful[c] else ():
                        if alt != idx[c]:
                            t = idx.copy()
                            t[c] = alt
                            trials.append((tiles.draw(shown[t]), place))
                            where.append(((by, bx), c, alt))
        if len(trials) == len(set(w[0] for w in where)):
            break  # nothing to try
        got = tiles.errors(trials)
        best: dict = {}
        for (block, c, alt), e in zip(where, got):  # (the block as it is comes first)
            if block not in best or e < best[block][0]:
                best[block] = (e, c, alt)
        moves = [(c, alt) for _, c, alt in best.values() if c is not None]
        if not moves:
            break
        for c, alt in moves:
            idx[c] = alt
        err = tiles.cell_errors(tiles.draw(shown[idx]))
    return idx, err


class _Tiles:
    """Many candidate drawings of one JPEG through its encoder at once. The encoder codes each
    16x16 block (a luma and a chroma MCU, whatever the subsampling) on its own; only the
    decoder's chroma upsampling reads one pixel into the blocks around. So the parts of many
    drawings that matter, each as the blocks around a place (2x2 of them for cells up to 16
    pixels: all a cell touches), are laid side by side in one picture, encoded and decoded
    once, and compared with the file inside their one-pixel rim."""

    def __init__(self, rgb: np.ndarray, codec, k: int):
        self.rgb, self.codec, self.k = rgb, codec, k
        self.target = rgb.astype(np.int16)
        self.side = _tile_side(k)
        self.last = (rgb.shape[0] - self.side) // 16 * 16  # (h >= 96 >= side)

    def draw(self, colours: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8: the 576 cell colours (576, 3), each a k x k block."""
        img = colours.reshape(24, 24, 3).astype(np.uint8)
        return np.repeat(np.repeat(img, self.k, 0), self.k, 1)

    def around(self, cell: int) -> tuple[int, int]:
        """The top-left pixel of the 2x2 blocks that hold `cell`'s pixels."""
        cy, cx = divmod(int(cell), 24)
        y = min(cy * self.k // 16 * 16, self.last)
        x = min(cx * self.k // 16 * 16, self.last)
        return y, x

    def edges(self, painted: np.ndarray, most: int = 8) -> list[tuple[int, int]]:
        """Up to `most` places where the punk (`painted`, (24, 24) bool) meets the background."""
        near = np.pad(painted, 1)
        near = np.lib.stride_tricks.sliding_window_view(near, (3, 3)).any((2, 3))
        places = sorted({self.around(c) for c in np.flatnonzero(near & ~painted)})
        step = max(1, len(places) // most)
        return places[::step][:most] or [(0, 0)]

    def errors(self, pairs: list[tuple[np.ndarray, tuple[int, int]]]) -> np.ndarray:
        """|decoded - file| summed inside the rim of each (drawing, place): (len(pairs),)."""
        s = self.side
        parts = [(drawing[y : y + s, x : x + s], (y, x)) for drawing, (y, x) in pairs]
        return _block_errors(self.codec, self.target, parts)

    def fit(self, bg: np.ndarray) -> Fit:
        """How well whole punks explain the file: the squared error of each drawn on `bg` (the
        normaliser's `Fit` of a nearest upscale: every pixel of a cell weighs alike), and
        re-encoded exactly as the file was (`Fit.reencode`). Another answer than the reading
        (JPEG may code two colours a few levels apart alike) is weighed with them."""
        k, h = self.k, self.rgb.shape[0]
        r = self.rgb.astype(np.int64) - bg  # (int64: its squares summed overflow int32)
        eye = k * np.eye(24)
        cells = np.arange(h)[:, None] // k == np.arange(24)  # (h, 24): the pixels of each cell

        def whole(shown: np.ndarray) -> float:
            return float(np.abs(self.codec(self.draw(shown)).astype(np.int16) - self.target).mean())

        def part(shown: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
            (y0, y1), (x0, x1) = (rows.start, rows.stop), (cols.start, cols.stop)
            cells = shown.reshape(24, 24, 3)[y0 // k : -(-y1 // k), x0 // k : -(-x1 // k)]
            big = np.repeat(np.repeat(cells.astype(np.uint8), k, 0), k, 1)
            return big[y0 % k : y0 % k + y1 - y0, x0 % k : x0 % k + x1 - x0]

        def reencode(punks: np.ndarray, again: bool = False, exact: bool = False,
                     like: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
            shown = _composite(bg, punks.reshape(len(punks), 576, 4).astype(np.int64))
            if exact and like is not None:  # only 0 matters: many told by one encoding
                mine = _composite(bg, like.reshape(576, 4).astype(np.int64))
                return _given_back(self.rgb, self.codec, shown, mine, cells, cells, part, whole)
            return np.array([whole(s) for s in shown])

        b = r.reshape(24, k, 24, k, 3).sum((1, 3)).astype(np.float64)
        return Fit(eye, eye, b, float(np.einsum("ijc,ijc->", r, r)), bg.astype(np.float64),
                   h * h * 3, reencode)  # fmt: skip

    def cell_errors(self, drawing: np.ndarray) -> np.ndarray:
        """(576,): |decoded - file| over each cell's pixels, the whole drawing encoded once."""
        diff = np.abs(self.codec(drawing).astype(np.int16) - self.target).sum(-1)
        k = self.k
        return diff.reshape(24, k, 24, k).sum((1, 3)).ravel().astype(np.float64)


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
