"""How a punk is drawn, learned from the pixels of the training punks alone.

Larva Labs' `CryptopunksData` contract draws a punk as a head sprite (Male 1-4, Female 1-4, Zombie,
Ape, Alien) and then one sprite per accessory, in the order traits.csv lists the punk's
accessories. 35 accessory names have a female and a male sprite; Zombie, Ape and Alien wear the
male one. A sprite pixel is not drawn, drawn opaque (it replaces what is below) or drawn
half-transparent: the contract then looks the result up in a table keyed by (sprite colour,
colour below) (`composite()` in its verified source). Half-transparent pixels are the smoke of
Cigarette and Pipe, but also Spots, Rosy Cheeks, Shaved Head, beard shadows, lenses, hair
highlights...; only the smoke shows alpha 128 in an image, the rest lands on opaque pixels.

`learn` recovers this from images and labels (never from the contract's asset data), reading only
the punks it is given: each sprite pixel, the layer order of the accessories, the composite
table, the slots (runs of the layer order whose accessories never share a punk: mouth, face,
neck, beard, ear, hair/hat, mouth prop, eyes, nose) and the accessory pairs seen together.
`Sprites.render` draws any head with any accessories, and `Sprites.sample` proposes new valid
combinations to train on. Each sprite pixel is one of:

  CLEAR    not drawn;
  OPAQUE   drawn in `colour`;
  HALF     half-transparent: the result over a colour below is in the composite table, which
           holds what the training punks showed plus what `composite` (Java2D's SrcOver
           arithmetic, which reproduces every observation) predicts for every colour seen in a
           training image, wherever all sprite colours consistent with the observations agree;
  EITHER   every training punk is explained both by "not drawn" and by "drawn in `colour`" (the
           colour below was always `colour`): it draws `colour` over `colour`; over anything
           else the pixel is unknown, unless the caller asks to `assume_clear`;
  UNKNOWN  never seen: later layers covered it in every training punk that has the sprite.

A render says which of its pixels are known; an unknown pixel is never guessed. That includes
the order of two accessories no training punk settles (directly, through a chain of punks, or
through their slots): they are drawn both ways, and the pixels that differ are unknown.

Learning works pixel by pixel, since pixels do not interact. In each punk the topmost layer not
known to be clear shows through; what the image has there is evidence about that layer's pixel,
together with the composite of the layers below when those are known. Rules that follow from the
drawing model decide pixels until nothing changes: one colour over two colours below (or over the
transparent background) is opaque, a shown colour equal to a known colour below that varies is
clear, a colour that depends on the one below is half-transparent. When they stall, weaker rules
take over, in order: a pixel showing colours that vary, each also seen at that place on the same
head without the sprite, is clear; a colour seen over a single colour below stays a table entry;
a colour always equal to the one below is EITHER, and EITHER pixels showing their colour let the
layers below be seen; a head pixel every punk with that head shows in one colour is that colour.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .data import TILE, TRAITS, TYPES, Punks, default_cache_dir
from .errors import DataError, PunktraitsError
from .files import atomic_write

FORMAT = 1  # bump when the saved layout or the learning rules change (invalidates caches)
P = TILE * TILE  # pixels per punk
MAX_LAYERS = 8  # a head and at most 7 accessories (the contract stores 8 asset slots per punk)
SLOT_EVIDENCE = 3.0  # punks two accessories would share if independent, to call them exclusive
RETRIES = 50  # draws of accessories for one sampled head and count before both are drawn again

UNKNOWN, CLEAR, OPAQUE, HALF, EITHER = 0, 1, 2, 3, 4
KINDS = ("unknown", "clear", "opaque", "half", "either")
GENDERS = ("male", "female")
HEADS = tuple(f"{g} {k}" for g in ("Male", "Female") for k in range(1, 5)) + (
    "Zombie", "Ape", "Alien",
)  # fmt: skip

Combo = tuple[str, tuple[str, ...]]  # (head, accessories in layer order)


def gender(head: str) -> str:
    """The sprite version a head wears: 'female' for Female 1-4, 'male' for every other head."""
    return "female" if head.startswith("Female") else "male"


def pack(rgba: np.ndarray) -> np.ndarray:
    """(..., 4) uint8 RGBA -> (...) uint32 0xRRGGBBAA, so that one comparison compares a pixel."""
    c = rgba.astype(np.uint32)
    return (c[..., 0] << 24) | (c[..., 1] << 16) | (c[..., 2] << 8) | c[..., 3]


def unpack(key: np.ndarray) -> np.ndarray:
    """(...) uint32 0xRRGGBBAA -> (..., 4) uint8 RGBA."""
    key = np.asarray(key, np.uint32)
    return np.stack([(key >> s) & 0xFF for s in (24, 16, 8, 0)], -1).astype(np.uint8)


def combo_key(head: str, accessories: Iterable[str]) -> tuple[str, frozenset[str]]:
    """A punk's label combination as a set: what makes two punks the same punk."""
    return head, frozenset(accessories)


# ---------------------------------------------------------------------------------------------
# The learned drawing rules


@dataclass(frozen=True)
class Sprites:
    """The drawing rules of the collection, as learned by `learn` (see the module docstring)."""

    heads: tuple[str, ...]  # head names; sprite i < len(heads) is head i
    versions: tuple[tuple[str, str], ...]  # (accessory, gender) of sprite len(heads) + j
    kind: np.ndarray  # (S, 24, 24) uint8: UNKNOWN, CLEAR, OPAQUE, HALF or EITHER per pixel
    colour: np.ndarray  # (S, 24, 24, 4) uint8 RGBA of OPAQUE/HALF/EITHER pixels, else 0
    order: tuple[str, ...]  # accessories in layer (draw) order
    slots: tuple[tuple[str, ...], ...]  # mutually exclusive accessories, slots in layer order
    settled: frozenset[tuple[str, str]]  # (a, b): a is known to be drawn before b
    pairs: frozenset[tuple[str, str]]  # accessory pairs seen on one training punk (name-sorted)
    blend_keys: np.ndarray  # (K,) uint64 sorted: (sprite * 576 + pixel) << 32 | colour below
    blend_values: np.ndarray  # (K,) uint32: the result the contract drew
    head_counts: dict[str, int]  # training punks per head
    version_counts: np.ndarray  # (V,) int64: training punks wearing each version
    count_hist: np.ndarray  # (2, 8) int64: training punks by gender and number of accessories
    combos: frozenset[tuple[str, frozenset[str]]]  # the training punks' label combinations
    train_hash: str  # sha256 of the sorted training ids the rules were learned from
    stats: dict[str, int]  # how learning went: punks, rounds, composite-table counts

    # -- lookups --------------------------------------------------------------------------------

    # Lookups and flat arrays are computed once per Sprites (they are immutable): drawing 60,000
    # punks one at a time otherwise spends most of its time rebuilding them.
    @cached_property
    def _version_index(self) -> dict[tuple[str, str], int]:
        return {v: len(self.heads) + j for j, v in enumerate(self.versions)}

    @cached_property
    def _layer(self) -> dict[str, int]:
        return {a: k for k, a in enumerate(self.order)}

    @cached_property
    def _flat(self) -> tuple[np.ndarray, np.ndarray]:
        return _flat(self.kind, self.colour)

    def stack(self, head: str, accessories: Iterable[str]) -> list[int]:
        """Sprite ids drawn for a punk, bottom first; raises PunktraitsError if one is missing."""
        if head not in self.heads:
            raise PunktraitsError(f"unknown head {head!r}; expected one of {', '.join(self.heads)}")
        acc = list(accessories)
        layer, versions, g = self._layer, self._version_index, gender(head)
        for a in acc:
            if a not in layer:
                raise PunktraitsError(
                    f"unknown accessory {a!r}; expected one of the {len(layer)} accessory names "
                    "(e.g. 'Earring', 'Cap')"
                )
            if (a, g) not in versions:
                other = "female" if g == "male" else "male"
                raise PunktraitsError(
                    f"{a!r} has no {g} sprite (training punks wear only its {other} one), so it "
                    f"cannot be drawn on {head!r}"
                )
        if len(set(acc)) != len(acc):
            raise PunktraitsError(f"accessories {acc} name one twice; give each at most once")
        if len(acc) > MAX_LAYERS - 1:
            raise PunktraitsError(f"{len(acc)} accessories; a punk has at most {MAX_LAYERS - 1}")
        return [self.heads.index(head)] + [versions[a, g] for a in sorted(acc, key=layer.get)]

    # -- drawing --------------------------------------------------------------------------------

    def render_with_mask(
        self, head: str, accessories: Iterable[str], assume_clear: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The punk (24, 24, 4) uint8 RGBA and which of its pixels are known (24, 24) bool.

        Accessories may be given in any order; they are drawn in layer order. Unknown pixels
        are 0. `assume_clear` takes EITHER pixels as not drawn (the simplest sprites that
        explain the training punks) instead of unknown over other colours.
        """
        images, known = self.render_many([(head, tuple(accessories))], assume_clear)
        return images[0], known[0]

    def render(
        self, head: str, accessories: Iterable[str], assume_clear: bool = False
    ) -> np.ndarray:
        """The punk (24, 24, 4) uint8 RGBA; raises PunktraitsError if a pixel of it is unknown."""
        acc = list(accessories)
        img, known = self.render_with_mask(head, acc, assume_clear)
        if not known.all():
            ys, xs = np.nonzero(~known)
            raise PunktraitsError(
                f"cannot draw {head} with {acc or 'no accessories'}: {len(ys)} pixel(s), e.g. "
                f"x={xs[0]} y={ys[0]}, are not known from the training punks; draw the known "
                "ones with render_with_mask"
            )
        return img

    def render_many(
        self, combos: Sequence[tuple[str, Iterable[str]]], assume_clear: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Many punks at once: images (N, 24, 24, 4) uint8 and known masks (N, 24, 24) bool.

        Drawn in chunks of 4,096 punks: the per-pixel temporaries of 150,000 punks at once
        took gigabytes."""
        if len(combos) > CHUNK:
            parts = [self.render_many(combos[i : i + CHUNK], assume_clear)
                     for i in range(0, len(combos), CHUNK)]  # fmt: skip
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        sid = np.full((len(combos), MAX_LAYERS), -1, np.int64)  # (N, L) sprite ids, bottom first
        unsettled = []  # (punk, layer, layer) whose order no training punk shows
        names = [a for a, _ in self.versions]
        for i, (head, acc) in enumerate(combos):
            ids = self.stack(head, acc)
            sid[i, : len(ids)] = ids
            drawn = [names[s - len(self.heads)] for s in ids[1:]]
            unsettled += [
                (i, j + 1, k + 1)
                for j, a in enumerate(drawn)
                for k, b in enumerate(drawn[j + 1 :], j + 1)
                if (a, b) not in self.settled
            ]
        sid = sid[
            :, : max(1, int((sid >= 0).sum(1).max(initial=1)))
        ]  # the -1 padding draws nothing
        img, known = draw(self, sid, assume_clear)  # (N, P), (N, P)
        for i, j, k in unsettled:  # a pixel is known only if both orders draw it the same
            swapped = sid[i].copy()
            swapped[[j, k]] = swapped[[k, j]]
            other, other_known = draw(self, swapped[None], assume_clear)  # (1, P), (1, P)
            known[i] &= other_known[0] & (other[0] == img[i])
        n = len(combos)
        return unpack(img).reshape(n, TILE, TILE, 4), known.reshape(n, TILE, TILE)

    def blend(self, where: np.ndarray, below: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What half-transparent sprite pixels `where` (n,) (sprite * 576 + pixel) give over
        colours `below` (n,) uint32: results (n,) uint32 and whether each is known (n,) bool."""
        return lookup(self.blend_keys, self.blend_values, where, below)

    # -- combinations ---------------------------------------------------------------------------

    def compatible(self, head: str, accessories: Iterable[str]) -> bool:
        """Whether the collection's rules allow this punk: a known head, a sprite of the head's
        gender for each accessory, at most one accessory per slot and every pair of accessories
        seen together on a training punk."""
        acc = list(accessories)
        try:
            self.stack(head, acc)
        except PunktraitsError:
            return False
        slot = {a: k for k, group in enumerate(self.slots) for a in group}
        if len({slot[a] for a in acc}) != len(acc):
            return False
        return all(tuple(sorted((a, b))) in self.pairs for i, a in enumerate(acc) for b in acc[:i])

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        exclude: Iterable[tuple[str, Iterable[str]]] | None = None,
        known_only: bool = True,
        assume_clear: bool = False,
        max_tries: int = 100,
        temper: float = 1.0,
        any_pair: bool = False,
        head_temper: float = 1.0,
    ) -> list[Combo]:
        """`n` new valid combinations (head, accessories in layer order), all different.

        Heads follow the training frequencies raised to `head_temper` (0.5: the 7 training Aliens'
        head is drawn 11 times as often as in training), the number of accessories the training histogram
        of the head's gender, and accessories are added one at a time with weights equal to how
        often training punks of that gender wear them raised to `temper` (1: as in training;
        0.5 shows rare accessories more often; 0: all alike), among those `compatible` allows
        (with `any_pair`, also pairs no training punk wears together, one per slot: where their
        order is unsettled and it matters, the pixel is unknown, and `known_only` skips them).
        A combination in `exclude` (pairs (head, accessories); default: the training punks') is
        drawn again with the same head and count, and so, with `known_only`, is one with a pixel
        `render` cannot draw (with the same `assume_clear`). Gives up after `max_tries` draws
        per combination asked for.
        """
        banned = {combo_key(h, a) for h, a in (self.combos if exclude is None else exclude)}
        heads = list(self.head_counts)
        p_head = np.array([self.head_counts[h] for h in heads], float) ** head_temper
        p_head /= p_head.sum()
        slot = {a: k for k, group in enumerate(self.slots) for a in group}
        layer = self._layer
        by_gender = {
            g: [(a, int(c)) for (a, vg), c in zip(self.versions, self.version_counts) if vg == g]
            for g in GENDERS
        }
        out: list[Combo] = []
        seen: set[tuple[str, frozenset[str]]] = set()
        tries = 0
        while len(out) < n:
            head = heads[rng.choice(len(heads), p=p_head)]
            g = gender(head)
            hist = self.count_hist[GENDERS.index(g)].astype(float)
            k = int(rng.choice(len(hist), p=hist / hist.sum()))
            for _ in range(RETRIES):  # keep the head and the count, so that both follow training
                tries += 1
                if tries > max_tries * n:
                    raise PunktraitsError(
                        f"found only {len(out)} of {n} new combinations in {tries - 1} tries; "
                        "ask for fewer or exclude fewer"
                    )
                chosen: list[str] = []
                while len(chosen) < k:
                    used = {slot[b] for b in chosen}
                    cands = [
                        (a, c) for a, c in by_gender[g]
                        if slot[a] not in used
                        and (any_pair or all(tuple(sorted((a, b))) in self.pairs for b in chosen))
                    ]  # fmt: skip
                    if not cands:
                        break
                    w = np.array([c for _, c in cands], float) ** temper
                    chosen.append(cands[rng.choice(len(cands), p=w / w.sum())][0])
                key = combo_key(head, chosen)
                if len(chosen) < k or key in banned or key in seen:
                    continue
                acc = tuple(sorted(chosen, key=layer.get))
                if known_only and not self.render_with_mask(head, acc, assume_clear)[1].all():
                    continue
                seen.add(key)
                out.append((head, acc))
                break
        return out

    def visible(self, combos: Sequence[Combo], images: np.ndarray | None = None,
                assume_clear: bool = False) -> list[tuple]:  # fmt: skip
        """The accessories of each combination that can be seen: drawing the punk without one
        changes a pixel or leaves one that cannot be known (as hidden.csv defines it for the
        collection). `images`: the combinations already rendered (with the same
        `assume_clear`), to save drawing them again."""
        if images is None:
            images, _ = self.render_many(combos, assume_clear)
        without = [(h, tuple(x for x in acc if x != a)) for h, acc in combos for a in acc]
        if not without:
            return [() for _ in combos]
        others, known = self.render_many(without, assume_clear)
        rows = np.repeat(np.arange(len(combos)), [len(acc) for _, acc in combos])  # (k,)
        changed = ((others != images[rows]).any(-1) | ~known).any((1, 2))  # (k,)
        out: list[list[str]] = [[] for _ in combos]
        for r, a, c in zip(rows, [a for _, acc in combos for a in acc], changed):
            if c:
                out[r].append(a)
        return [tuple(v) for v in out]

    # -- summary and persistence ----------------------------------------------------------------

    def summary(self) -> dict:
        """Counts people can read: sprites, pixels of each kind, blend entries, slots."""
        sprite_px = self.kind != CLEAR  # (S, 24, 24)
        counts = np.bincount(self.kind.ravel(), minlength=len(KINDS))
        return {
            "heads": len(self.heads),
            "accessory_sprites": len(self.versions),
            "accessories": len(self.order),
            "pixels": {k: int(c) for k, c in zip(KINDS, counts)},
            "sprites_with_unknown_pixels": int((self.kind == UNKNOWN).any((1, 2)).sum()),
            "drawn_pixels": int((sprite_px & (self.kind != UNKNOWN)).sum()),
            "blend_entries": len(self.blend_keys),
            "slots": [list(s) for s in self.slots],
            "pairs": len(self.pairs),
            **self.stats,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the rules to one .npz (arrays plus a JSON header; nothing is pickled)."""
        meta = {
            "format": FORMAT,
            "heads": list(self.heads),
            "versions": [list(v) for v in self.versions],
            "order": list(self.order),
            "slots": [list(s) for s in self.slots],
            "settled": sorted(list(p) for p in self.settled),
            "pairs": sorted(list(p) for p in self.pairs),
            "head_counts": self.head_counts,
            "combos": sorted([h, sorted(a)] for h, a in self.combos),
            "train_hash": self.train_hash,
            "stats": self.stats,
        }
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            kind=self.kind,
            colour=self.colour,
            blend_keys=self.blend_keys,
            blend_values=self.blend_values,
            version_counts=self.version_counts,
            count_hist=self.count_hist,
        )
        atomic_write(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Sprites:
        """Read what `save` wrote; a missing, damaged or outdated file is a DataError."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(arrays.pop("meta").tobytes())
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{path} is not a readable sprites file ({e}); delete it") from None
        if meta.get("format") != FORMAT:
            raise DataError(f"{path} has format {meta.get('format')}, not {FORMAT}; delete it")
        return cls(
            heads=tuple(meta["heads"]),
            versions=tuple((a, g) for a, g in meta["versions"]),
            kind=arrays["kind"],
            colour=arrays["colour"],
            order=tuple(meta["order"]),
            slots=tuple(tuple(s) for s in meta["slots"]),
            settled=frozenset((a, b) for a, b in meta["settled"]),
            pairs=frozenset((a, b) for a, b in meta["pairs"]),
            blend_keys=arrays["blend_keys"],
            blend_values=arrays["blend_values"],
            head_counts=dict(meta["head_counts"]),
            version_counts=arrays["version_counts"],
            count_hist=arrays["count_hist"],
            combos=frozenset((h, frozenset(a)) for h, a in meta["combos"]),
            train_hash=meta["train_hash"],
            stats=dict(meta["stats"]),
        )


# ---------------------------------------------------------------------------------------------
# Drawing (shared by learning and rendering)


def lookup(
    keys: np.ndarray, values: np.ndarray, where: np.ndarray, below: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The composite table at sprite pixels `where` (n,) (sprite * 576 + pixel) over colours
    `below` (n,) uint32: results (n,) uint32 and whether each was seen (n,) bool."""
    q = (where.astype(np.uint64) << np.uint64(32)) | below.astype(np.uint64)
    if len(keys) == 0:
        return np.zeros(len(q), np.uint32), np.zeros(len(q), bool)
    at = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
    found = keys[at] == q
    return np.where(found, values[at], 0).astype(np.uint32), found


CHUNK = 4096  # punks drawn at once by render_many


def _flat(kind: np.ndarray, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, 24, 24) kinds and (S, 24, 24, 4) colours as (S + 1, P) arrays whose last row is a
    sprite that draws nothing (the padding id -1 indexes it)."""
    s = len(kind)
    k = np.full((s + 1, P), CLEAR, np.uint8)
    k[:s] = kind.reshape(s, P)
    c = np.zeros((s + 1, P), np.uint32)
    c[:s] = pack(colour.reshape(s, P, 4))
    return k, c


def _over(
    k: np.ndarray,
    c: np.ndarray,
    where: np.ndarray,
    cur: np.ndarray,
    known: np.ndarray,
    blend: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one layer: its kinds `k`, colours `c` and sprite pixels `where` (sprite * 576 +
    pixel), all shaped like `cur` (packed colours so far) and `known` (whether they are)."""
    opaque = k == OPAQUE
    cur = np.where(opaque, c, cur)
    known = (known | opaque) & ~((k == UNKNOWN) | ((k == EITHER) & (cur != c)))
    half = np.nonzero(k == HALF)
    if len(half[0]):
        res, found = blend(where[half], cur[half])
        cur[half] = res
        known[half] &= found
    return cur, known


def draw(
    sprites: Sprites, sid: np.ndarray, assume_clear: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Composite stacks of sprites: sid (N, L) int, bottom first, -1 = none.

    Returns the images (N, P) uint32 packed RGBA and which pixels are known (N, P) bool.
    """
    kind, colour = sprites._flat  # (S + 1, P) each, shared: never written to
    if assume_clear:
        kind = np.where(kind == EITHER, CLEAR, kind)
    n = len(sid)
    cur = np.zeros((n, P), np.uint32)  # the transparent background
    known = np.ones((n, P), bool)
    pixel = np.arange(P)
    for layer in sid.T:  # (N,)
        where = layer[:, None] * P + pixel  # (N, P)
        cur, known = _over(kind[layer], colour[layer], where, cur, known, sprites.blend)
    return cur, known


# ---------------------------------------------------------------------------------------------
# The composite rule


def mul8(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """round(a * b / 255) for 0 <= a, b <= 255, computed as Java2D's `mul8table` does."""
    return (a * b * 0x10101 + 0x800000) >> 24


def composite(over: np.ndarray, below: np.ndarray) -> np.ndarray:
    """RGBA `over` drawn over RGBA `below` (..., 4) int (not premultiplied) by Java2D's SrcOver
    arithmetic: alpha a + mul8(255 - a, below alpha), colour mul8(a, over) + mul8(that, below),
    divided by the alpha when it is below 255. `fit_blends` checks it against every
    half-transparent pixel the training punks show."""
    a, ba = over[..., 3], below[..., 3]
    fa = mul8(255 - a, ba)
    ra = a + fa
    rc = mul8(a[..., None], over[..., :3]) + mul8(fa[..., None], below[..., :3])
    part = (ra > 0) & (ra < 255)
    rc = np.where(
        part[..., None],
        np.minimum(255, (rc * 255 + ra[..., None] // 2) // np.maximum(ra, 1)[..., None]),
        rc,
    )
    return np.concatenate([rc, ra[..., None]], -1)


def fit_blends(
    keys: np.ndarray, values: np.ndarray, palette: np.ndarray
) -> tuple[dict[int, int], dict[int, int], dict[str, int]]:
    """Explain the composite table by `composite` and extend it.

    keys/values: the observed table ((sprite pixel << 32 | below) -> result); palette (C,) uint32:
    the colours a pixel can have below. For each half-transparent sprite pixel, finds every
    sprite colour (RGB, alpha 1-255) that `composite` turns into all its observed results; where
    all of them give the same result over a palette colour, that result joins the table.

    Returns the pixels whose colour is pinned down (sprite pixel -> packed RGBA), the derived
    entries, and counts: pixels, pixels the rule explains, pinned pixels, derived entries.
    """
    where = (keys >> np.uint64(32)).astype(np.int64)
    pal = unpack(palette).astype(np.int64)  # (C, 4)
    cache: dict[tuple, tuple[np.ndarray | None, np.ndarray, np.ndarray]] = {}
    pinned: dict[int, int] = {}
    derived: dict[int, int] = {}
    explained = 0
    for w in np.unique(where):
        mine = where == w
        seen = tuple(zip((keys[mine] & np.uint64(0xFFFFFFFF)).tolist(), values[mine].tolist()))
        if seen not in cache:
            cache[seen] = _fit_one(seen, pal)
        colour, same, result = cache[seen]
        if not same.size:
            continue
        explained += 1
        if colour is not None:
            pinned[int(w)] = int(pack(colour))
        for b, r in zip(palette[same].tolist(), result[same].tolist()):
            derived[int(w) << 32 | b] = r
    counts = {
        "pixels": len(np.unique(where)), "explained": explained, "pinned": len(pinned),
        "derived": len(derived),
    }  # fmt: skip
    return pinned, derived, counts


_ALPHA = np.arange(1, 256)  # (A,) the alphas a sprite colour may have
_MUL = mul8(_ALPHA[:, None], np.arange(256)[None, :])  # (A, 256): mul8(alpha, value)


def _extremes(key: np.ndarray, value: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per key in 0..size-1, the largest and smallest value (uint32); 0 and 2**32 - 1 if none."""
    high = np.zeros(size, np.uint32)
    low = np.full(size, 0xFFFFFFFF, np.uint32)
    np.maximum.at(high, key, value)
    np.minimum.at(low, key, value)
    return high, low


def _fit_one(
    seen: tuple[tuple[int, int], ...], pal: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """The sprite colours consistent with the (below, result) pairs `seen` of one pixel: its
    colour (4,) if only one is, which palette colours (C,) all of them agree over, and the
    packed results there (C,). `same` is empty when no colour explains `seen`."""
    ok = np.ones((len(_ALPHA), 256, 3), bool)  # (A, value, channel)
    for b, r in seen:
        b, r = unpack(np.uint32(b)).astype(np.int64), unpack(np.uint32(r)).astype(np.int64)
        if b[3] == 255:  # the common case: over an opaque colour the result is opaque
            add = mul8(255 - _ALPHA, b[:3, None])  # (3, A)
            ok &= ((_MUL[..., None] + add.T[:, None, :]) == r[:3]) & (r[3] == 255)
        else:
            cand = np.zeros((len(_ALPHA), 256, 3, 4), np.int64)
            cand[..., 3] = _ALPHA[:, None, None]
            for c in range(3):
                cand[:, :, c, c] = np.arange(256)
            out = composite(cand, np.broadcast_to(b, cand.shape))  # (A, 256, 3, 4)
            ok &= np.take_along_axis(out, np.arange(3)[None, None, :, None], 3)[..., 0] == r[:3]
            ok &= out[..., 3] == r[3]
    feasible = ok.any(1).all(1)  # (A,)
    if not feasible.any():
        return None, np.zeros(0, bool), np.zeros(0, np.uint32)
    ok &= feasible[:, None, None]
    colour = None
    if feasible.sum() == 1 and (ok.sum(1)[feasible] == 1).all():
        colour = np.array([*ok[feasible][0].argmax(0), _ALPHA[feasible][0]])
    same = np.ones(len(pal), bool)
    result = np.zeros((len(pal), 4), np.int64)
    for c in range(3):
        ai, xi = np.nonzero(ok[..., c])  # (m,) candidate (alpha, value) pairs of channel c
        cand = np.zeros((len(ai), len(pal), 4), np.int64)
        cand[..., c], cand[..., 3] = xi[:, None], _ALPHA[ai, None]
        out = composite(cand, np.broadcast_to(pal, cand.shape))  # (m, C, 4)
        same &= (out[..., [c, 3]] == out[:1, :, [c, 3]]).all((0, 2))
        result[:, c], result[:, 3] = out[0, :, c], out[0, :, 3]
    return colour, same, pack(result)


# ---------------------------------------------------------------------------------------------
# Learning


def layer_order(
    rows: Sequence[Sequence[str]], genders: Sequence[str] | None = None
) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...], frozenset[tuple[str, str]]]:
    """A total layer order consistent with every row, the slots, and the pairs (a, b) whose
    order the rows settle.

    Rows list accessories in draw order; genders[i] is the sprite version row i wears. The order
    is a topological sort of "drawn before" that, among the accessories free to come next,
    prefers one that never shares a punk with the slot being built, the one that would share the
    most punks with its members were they independent (counted per gender); slots are the runs
    this builds. A pair is settled when a row draws a before b, via a chain of rows, or when
    their slots are: slots are blocks of the order, for the members whose exclusion is backed by
    `SLOT_EVIDENCE` expected shared punks, unless the rows contradict it. Ties are broken by
    name, so the result does not depend on the order of the rows.
    """
    genders = genders or ["male"] * len(rows)
    names = sorted({a for r in rows for a in r})
    index = {a: i for i, a in enumerate(names)}
    succ: dict[str, set[str]] = {a: set() for a in names}
    together = np.zeros((len(names), len(names)), bool)  # (A, A): seen on one punk
    worn = np.zeros((len(GENDERS), len(names)))  # (2, A): punks wearing each, per gender
    for r, g in zip(rows, genders):
        for a, b in zip(r, r[1:]):
            succ[a].add(b)
        ix = [index[a] for a in r]
        together[np.ix_(ix, ix)] = True
        worn[GENDERS.index(g), ix] += 1
    per_gender = np.array([max(1, list(genders).count(g)) for g in GENDERS], float)
    expected = np.einsum("ga,gb->ab", worn, worn / per_gender[:, None])  # (A, A) if independent
    indeg = Counter(b for a in names for b in succ[a])
    free = sorted(a for a in names if indeg[a] == 0)
    order: list[str] = []
    slots: list[list[str]] = []
    while free:
        members = [index[b] for b in slots[-1]] if slots else []
        fits = [a for a in free if members and not together[index[a], members].any()]
        evidence = [expected[index[a], members].sum() for a in fits]
        a = fits[int(np.argmax(evidence))] if fits else free[0]
        if fits:
            slots[-1].append(a)
        else:
            slots.append([a])
        free.remove(a)
        order.append(a)
        for b in sorted(succ[a]):
            indeg[b] -= 1
            if indeg[b] == 0:
                free.append(b)
        free.sort()
    if len(order) != len(names):
        cyclic = sorted(set(names) - set(order))
        raise DataError(
            f"the accessory order of traits.csv has a cycle among {cyclic[:5]}; the draw order "
            "must be the same on every punk"
        )
    before = np.zeros((len(names), len(names)), bool)  # (A, A): a drawn before b
    for a in names:
        before[index[a], [index[b] for b in succ[a]]] = True
    for c in range(len(names)):  # transitive closure
        before |= before[:, c, None] & before[None, c, :]
    # slots are drawn as blocks: a settled pair between two slots settles their other members
    slot = np.zeros(len(names), np.int64)
    for k, group in enumerate(slots):
        slot[[index[a] for a in group]] = k
    same = slot[:, None] == slot[None, :]
    backed = (len(slots) == len(names)) | ((expected * same).sum(1) >= SLOT_EVIDENCE)
    backed |= same.sum(1) == 1  # alone in its slot
    blocks = np.zeros((len(slots), len(slots)), bool)  # (K, K): slot k drawn before slot l
    np.logical_or.at(blocks, (slot[:, None], slot[None, :]), before)
    if not (blocks & blocks.T).any():
        before |= blocks[slot][:, slot] & backed[:, None] & backed[None, :]
        for c in range(len(names)):
            before |= before[:, c, None] & before[None, c, :]
    settled = frozenset((names[i], names[j]) for i, j in zip(*np.nonzero(before)))
    return tuple(order), tuple(tuple(s) for s in slots), settled


def learn(
    images: np.ndarray,
    heads: Sequence[str],
    accessories: Sequence[Sequence[str]],
    ids: Sequence[int] | np.ndarray,
) -> Sprites:
    """Learn the drawing rules from the punks `ids` only.

    images (N, 24, 24, 4) uint8 RGBA; heads[i] the head label of punk i (traits.csv `skin`, or
    `type` for Alien/Ape/Zombie); accessories[i] its accessories in traits.csv (draw) order.
    Rows outside `ids` are never read.
    """
    ids = np.asarray(sorted(int(i) for i in ids), np.int64)
    if len(ids) == 0:
        raise PunktraitsError("learn needs at least one punk id")
    obs = pack(np.asarray(images[ids]).reshape(len(ids), P, 4))  # (N, P) uint32
    hs = [heads[i] for i in ids]
    rows = [tuple(accessories[i]) for i in ids]
    if any(len(r) > MAX_LAYERS - 1 for r in rows):
        raise PunktraitsError(f"a punk has more than {MAX_LAYERS - 1} accessories")

    order, slots, settled = layer_order(rows, [gender(h) for h in hs])
    layer = {a: k for k, a in enumerate(order)}
    head_names = tuple(sorted(set(hs), key=lambda h: (HEADS + (h,)).index(h)))
    vset = {(a, gender(h)) for h, r in zip(hs, rows) for a in r}
    versions = tuple(sorted(vset, key=lambda v: (layer[v[0]], v[1])))
    vindex = {v: len(head_names) + j for j, v in enumerate(versions)}
    sid = np.full((len(ids), MAX_LAYERS), -1, np.int64)  # (N, L) sprite ids, bottom first
    for i, (h, r) in enumerate(zip(hs, rows)):
        sid[i, 0] = head_names.index(h)
        sid[i, 1 : len(r) + 1] = [vindex[a, gender(h)] for a in r]

    n_sprites = len(head_names) + len(versions)
    solver = _Solver(sid, obs, n_sprites)
    solver.solve()
    keys, values = solver.table_arrays()
    pinned, derived, fit = fit_blends(keys, values, np.unique(obs))
    kind, colour = solver.kind[: n_sprites * P], solver.colour[: n_sprites * P]
    colour[list(pinned)] = list(pinned.values())
    kind[[w for w, c in pinned.items() if c & 0xFF == 255]] = OPAQUE  # only opaque explains it
    table = derived | solver.table  # what was seen wins (the rule agrees with all of it)
    keys = np.array(sorted(table), np.uint64)

    version_counts = np.zeros(len(versions), np.int64)
    count_hist = np.zeros((len(GENDERS), MAX_LAYERS), np.int64)
    for h, r in zip(hs, rows):
        count_hist[GENDERS.index(gender(h)), len(r)] += 1
        for a in r:
            version_counts[vindex[a, gender(h)] - len(head_names)] += 1
    stats = {
        "punks": len(ids), "rounds": solver.rounds, "conflicts": solver.conflicts,
        "blend_observed": len(solver.table), "blend_pixels": fit["pixels"],
        "blend_explained": fit["explained"], "blend_pinned": fit["pinned"],
        "blend_derived": fit["derived"],
    }  # fmt: skip
    sprites = Sprites(
        heads=head_names,
        versions=versions,
        kind=kind.reshape(n_sprites, TILE, TILE),
        colour=unpack(colour).reshape(n_sprites, TILE, TILE, 4),
        order=order,
        slots=slots,
        settled=settled,
        pairs=frozenset(tuple(sorted((a, b))) for r in rows for a in r for b in r if a < b),
        blend_keys=keys,
        blend_values=np.array([table[int(k)] for k in keys], np.uint32),
        head_counts=dict(sorted(Counter(hs).items(), key=lambda kv: head_names.index(kv[0]))),
        version_counts=version_counts,
        count_hist=count_hist,
        combos=frozenset(combo_key(h, r) for h, r in zip(hs, rows)),
        train_hash=ids_hash(ids),
        stats=stats,
    )
    # the check: every training punk drawn again from its labels
    img, known = draw(sprites, sid)  # (N, P), (N, P)
    stats["train_exact"] = int(((img == obs) & known).all(1).sum())
    return sprites


class _Solver:
    """Decides sprite pixels from the training punks (see the module docstring).

    Works on "entries", (punk, pixel) pairs whose top layer is still undecided; an entry whose
    top is decided only has to agree with its image, and then drops out.
    """

    def __init__(self, sid: np.ndarray, obs: np.ndarray, n_sprites: int):
        self.sid = np.where(sid < 0, n_sprites, sid).astype(np.int32)  # (N, L); n_sprites: none
        self.obs = obs  # (N, P) uint32
        self.kind = np.full((n_sprites + 1) * P, UNKNOWN, np.uint8)  # (S + 1) * P, flat
        self.kind[n_sprites * P :] = CLEAR
        self.colour = np.zeros((n_sprites + 1) * P, np.uint32)
        self.table: dict[int, int] = {}  # sprite pixel << 32 | colour below -> result
        self.conflicts = 0  # images that disagree with a decided pixel (0 when all went well)
        self._totals: tuple[np.ndarray, np.ndarray] | None = None
        self.see_through = False  # whether EITHER pixels let evidence through (see `solve`)
        self.rounds = 0

    def table_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        keys = np.array(sorted(self.table), np.uint64)
        return keys, np.array([self.table[int(k)] for k in keys], np.uint32)

    def blend(self, where: np.ndarray, below: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return lookup(*self.table_arrays(), where, below)

    def solve(self) -> None:
        """Rounds of `step` until nothing changes, weaker rules only when the sure ones stall."""
        # a transparent image pixel: no layer draws there (anything drawn leaves some alpha)
        bare_rows, bare_px = np.nonzero(self.obs == 0)
        for layer in self.sid.T:  # (N,)
            self.kind[layer[bare_rows] * P + bare_px] = CLEAR
        rows, px = np.nonzero(self.obs != 0)  # the entries left
        weak = 0  # 0: sure rules; 1: + "differs, and is seen without it"; 2: + "one below"
        while len(rows):  # and "repeats what is below", then see-through; 3: + heads by agreement
            decided, rows, px = self.step(rows, px, weak)
            self.rounds += 1
            if decided:
                weak = 0
            elif weak == 2 and not self.see_through:
                self.see_through, weak = True, 0
            elif weak < 3:
                weak += 1
            else:
                break
        self.settle()

    def step(
        self, rows: np.ndarray, px: np.ndarray, weak: int
    ) -> tuple[int, np.ndarray, np.ndarray]:
        """One round over the entries: returns how many sprite pixels it decided and the
        entries still undecided."""
        where = self.sid[rows] * P + px[:, None].astype(np.int32)  # (E, L) sprite pixels
        kinds = self.kind[where]  # (E, L)
        o = self.obs[rows, px]
        n_layers = where.shape[1]
        top = np.full(len(rows), -1, np.int64)  # (E,) the topmost layer not known to be clear
        for layer in range(n_layers):
            drawn = kinds[:, layer] != CLEAR
            if self.see_through:  # an EITHER pixel showing its colour lets lower layers be seen
                drawn &= (kinds[:, layer] != EITHER) | (self.colour[where[:, layer]] != o)
            top[drawn] = layer
        below = np.zeros(len(rows), np.uint32)
        bknown = np.ones(len(rows), bool)
        cur, known = below.copy(), bknown.copy()
        for k in range(max(int(top.max()), 0)):
            at = top == k + 1
            cur, known = _over(
                kinds[:, k], self.colour[where[:, k]], where[:, k], cur, known, self.blend
            )
            below[at], bknown[at] = cur[at], known[at]
        w = where[np.arange(len(rows)), np.maximum(top, 0)]  # (E,) the top's sprite pixel
        k = np.where(top >= 0, self.kind[w], CLEAR)
        # EITHER layers above the top were seen through: what that shows holds if they are clear
        seen_through = (kinds == EITHER) & (np.arange(n_layers) > top[:, None])  # (E, L)
        through = seen_through.any(1)
        half = (k == HALF) & bknown
        res, found = self.blend(w[half], below[half])
        wrong = ((top < 0) & (o != 0)) | ((k == OPAQUE) & (o != self.colour[w]))
        wrong[half] |= found & (res != o[half])
        # the image is not what the layers below give: the one EITHER layer above draws
        single = np.flatnonzero(wrong & (seen_through.sum(1) == 1))
        drawing = np.unique(where[single, np.argmax(seen_through[single], 1)])
        self.kind[drawing] = OPAQUE
        self.conflicts += int((wrong & ~through).sum())
        new = np.flatnonzero(half)[~found & ~through[half]]
        keys = w[new].astype(np.uint64) << np.uint64(32) | below[new]
        self.table.update(zip(keys.tolist(), o[new].tolist()))
        resolved = self.under_half(kinds, where, top, w, o, (k == HALF) & ~bknown)
        open_ = (k == UNKNOWN) | (k == EITHER)
        decided = self.decide(
            rows[open_], w[open_], o[open_], below[open_], bknown[open_], through[open_], weak
        )
        decided += resolved + len(drawing)
        keep = open_ | ((k == HALF) & ~bknown)
        return decided, rows[keep], px[keep]

    def under_half(
        self,
        kinds: np.ndarray,
        where: np.ndarray,
        top: np.ndarray,
        w: np.ndarray,
        o: np.ndarray,
        todo: np.ndarray,
    ) -> int:
        """Where a half-transparent top lies right over an EITHER pixel of colour c and the
        table says the top gives something else than `o` over c, the EITHER pixel is clear."""
        if not self.see_through or not todo.any():
            return 0
        e = np.flatnonzero(todo)
        n_layers = kinds.shape[1]
        under = (kinds[e] != CLEAR) & (np.arange(n_layers) < top[e, None])  # (e, L)
        e, under = e[under.any(1)], under[under.any(1)]
        we = where[e, n_layers - 1 - np.argmax(under[:, ::-1], 1)]  # the layer right below
        either = self.kind[we] == EITHER
        e, we = e[either], we[either]
        res, found = self.blend(w[e], self.colour[we])
        clear = np.unique(we[found & (res != o[e])])
        self.kind[clear], self.colour[clear] = CLEAR, 0
        return len(clear)

    def decide(
        self,
        rows: np.ndarray,
        w: np.ndarray,
        o: np.ndarray,
        b: np.ndarray,
        bk: np.ndarray,
        through: np.ndarray,
        weak: int,
    ) -> int:
        """Decide the sprite pixels `w` that the evidence settles: in punk `rows` each is the top
        layer and the image shows `o` there, over `b` when `bk`. Evidence seen `through` EITHER
        layers counts only for pixels that no punk shows directly."""
        size = len(self.kind)
        direct = np.bincount(w[~through], minlength=size) > 0
        use = ~through | ~direct[w]
        rows, w, o, b, bk = rows[use], w[use], o[use], b[use], bk[use]
        key = w.astype(np.int64)
        count = np.bincount(key, minlength=size)
        shown, low = _extremes(key, o, size)  # where they are equal: the one colour shown
        high_b, low_b = _extremes(key[bk], b[bk], size)
        n_diff = np.bincount(key, bk & (o != b), minlength=size)  # shown != known colour below
        n_same = np.bincount(key, bk & (o == b), minlength=size)  # shown == known colour below
        n_smoke = np.bincount(key, (o & 0xFF) == 128, minlength=size)
        n_bare = np.bincount(key, bk & (b & 0xFF == 0), minlength=size)  # over transparent
        alpha = shown & 0xFF
        seen = count > 0
        one = seen & (shown == low)
        n_known = np.bincount(key, bk, minlength=size)
        n_below = np.where(n_known == 0, 0, np.where(high_b != low_b, 2, 1))  # 0, 1 or 2+

        decide = np.full(size, 255, np.uint8)  # 255: no decision
        # opaque: one colour over two colours, or over the background (where a half-transparent
        # colour would stay half-transparent)
        sure = (n_below >= 2) | (n_bare > 0)
        decide[seen & one & (alpha == 255) & (n_diff > 0) & sure] = OPAQUE
        decide[seen & (n_diff > 0) & ~(one & (alpha == 255))] = HALF
        decide[seen & (n_diff == 0) & (((n_same > 0) & ~one) | (one & (alpha == 0)))] = CLEAR
        if weak >= 1:
            maybe = seen & ~one & (n_diff == 0) & (n_smoke == 0) & (decide == 255)
            ok = np.ones(size, bool)
            sel = maybe[key]
            ok[key[sel][~self.seen_without(rows[sel], key[sel], o[sel])]] = False
            decide[maybe & ok] = CLEAR
        if weak >= 2:
            decide[one & (alpha == 255) & (n_diff > 0) & (decide == 255)] = HALF  # one below
            decide[one & (alpha == 255) & (n_diff == 0) & (n_same > 0) & (decide == 255)] = EITHER
        decide[(self.kind == EITHER) & (decide == EITHER)] = 255
        # an EITHER pixel that also showed another colour, equal to a known colour below, is clear
        other = np.bincount(key, o != self.colour[w], minlength=size) > 0
        decide[(self.kind == EITHER) & other & (n_diff == 0) & (n_same > 0)] = CLEAR
        if weak >= 3:
            agreed, colour = self.heads_by_agreement()
            decide[agreed], shown[agreed] = OPAQUE, colour[agreed]
        todo = np.flatnonzero(decide != 255)
        self.kind[todo] = decide[todo]
        self.colour[todo] = np.where(np.isin(decide[todo], (OPAQUE, EITHER)), shown[todo], 0)
        return len(todo)

    def heads_by_agreement(self) -> tuple[np.ndarray, np.ndarray]:
        """Undecided head pixels settled by the simplest explanation: (S + 1) * P bool, colours.

        Take the punks with that head where no layer above is known to draw at the pixel. If
        those showing one opaque colour share no undecided accessory there, the colour is the
        head's: otherwise several accessories would each draw that colour at that very place.
        A pixel where two colours pass this test stays undecided."""
        out = np.zeros(len(self.kind), bool)
        colour = np.zeros(len(self.kind), np.uint32)
        heads = self.sid[:, 0]
        for h in np.unique(heads):
            mine = np.flatnonzero(heads == h)
            sids = self.sid[mine, 1:]  # (n, L - 1) the layers above the head
            for p in np.flatnonzero(self.kind[h * P : (h + 1) * P] == UNKNOWN):
                above = self.kind[sids * P + p]  # (n, L - 1)
                free = ~((above == OPAQUE) | (above == HALF)).any(1)  # (n,)
                undecided = np.where((above == UNKNOWN) | (above == EITHER), sids, -1)
                o = self.obs[mine, p]
                agreed = []
                for c in np.unique(o[free & ((o & 0xFF) == 255)]):
                    rows = free & (o == c)
                    shared = np.bincount(undecided[rows][undecided[rows] >= 0]) == rows.sum()
                    if rows.sum() >= 2 and not shared.any():
                        agreed.append(c)
                if len(agreed) == 1:
                    out[h * P + p], colour[h * P + p] = True, agreed[0]
        return out, colour

    def seen_without(self, rows: np.ndarray, w: np.ndarray, o: np.ndarray) -> np.ndarray:
        """(E,) bool: does a training punk with the same head that does not wear sprite w // 576
        show colour o at pixel w % 576? (Then o is the colour of something else there.)"""
        heads = self.sid[:, 0]  # (N,)
        if self._totals is None:
            k = (heads[:, None] * P + np.arange(P)).astype(np.uint64) << np.uint64(32)
            self._totals = np.unique(k | self.obs, return_counts=True)
        keys, counts = self._totals
        s, p = np.divmod(w, P)
        q = ((heads[rows] * P + p).astype(np.uint64) << np.uint64(32)) | o
        total = counts[np.searchsorted(keys, q)]
        worn = np.zeros(len(w), np.int64)
        for v in np.unique(s):
            mine = s == v
            wearers = np.flatnonzero((self.sid == v).any(1))
            pix = np.unique(p[mine])
            wk = (heads[wearers, None] * P + pix).astype(np.uint64) << np.uint64(32)
            wk = np.sort((wk | self.obs[wearers][:, pix]).ravel())
            worn[mine] = np.searchsorted(wk, q[mine], "right") - np.searchsorted(wk, q[mine])
        return total > worn

    def settle(self) -> None:
        """A half-transparent pixel that gave one opaque colour over two or more colours is
        opaque after all."""
        keys, values = self.table_arrays()
        where = (keys >> np.uint64(32)).astype(np.int64)
        for w in np.unique(where):
            res = values[where == w]
            if len(res) >= 2 and (res == res[0]).all() and res[0] & 0xFF == 255:
                self.kind[w], self.colour[w] = OPAQUE, res[0]
                for k in keys[where == w].tolist():
                    del self.table[k]


# ---------------------------------------------------------------------------------------------
# The collection's sprites, cached


def ids_hash(ids: Iterable[int]) -> str:
    return hashlib.sha256(",".join(str(int(i)) for i in sorted(ids)).encode()).hexdigest()


def heads_of(punks: Punks) -> list[str]:
    """Each punk's head label: its skin (Male 1 ... Female 4), or its type for Alien/Ape/Zombie."""
    types = punks.labels[:, : len(TYPES)].argmax(1)
    return [skin or TRAITS[t] for skin, t in zip(punks.skins, types)]


def cache_path(punks: Punks, train_ids: Iterable[int], cache_dir: Path | None = None) -> Path:
    key = hashlib.sha256(
        "|".join([punks.sha256.get("punks.png", ""), punks.sha256.get("traits.csv", ""),
                  ids_hash(train_ids), str(FORMAT)]).encode()
    ).hexdigest()[:16]  # fmt: skip
    return (cache_dir or default_cache_dir().parent / "sprites") / f"sprites-{key}.npz"


def sprites_for(punks: Punks, train_ids: Iterable[int], cache_dir: Path | None = None) -> Sprites:
    """The sprites learned from `train_ids`, from the per-user cache when they were learned
    before for the same data (sha256 of punks.png and traits.csv) and the same ids."""
    if punks.layers is None:
        raise DataError(
            "these punks have no draw order (the accessory order of traits.csv); load them with "
            "punktraits.data.load"
        )
    train_ids = np.asarray(train_ids)
    cacheable = bool(punks.sha256.get("punks.png"))
    path = cache_path(punks, train_ids, cache_dir)
    if cacheable and path.exists():
        try:
            return Sprites.load(path)
        except DataError:
            pass  # an outdated or damaged cache is learned again
    sprites = learn(punks.images, heads_of(punks), punks.layers, train_ids)
    if cacheable:
        try:
            sprites.save(path)
        except OSError:
            pass  # a read-only cache only costs learning next time
    return sprites
