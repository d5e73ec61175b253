"""Speak the collection's language: the on-chain attribute string, OpenSea metadata, rarity among
the 10,000, and lookup of the original punks by their pixels.

* `LAYERS` / `LAYER_ORDER`: the order in which Larva Labs' `CryptopunksData.punkAttributes(id)`
  lists accessories (the order they are drawn in), hard-coded and checked against all 10,000 rows
  of traits.csv by the tests.
* `onchain(head, accessories)`: exactly the `punkAttributes(id)` string.
* `opensea(head, accessories, id, image)`: metadata in the OpenSea standard, with the attributes of
  the on-chain "CryptoPunks 721" tokenURI.
* `Rarity`: rarity.tools and OpenRarity scores, ranks and percentiles of any trait set against the
  10,000; `rarity(head_or_type, accessories)` answers for one trait set.
* `Originals`: the original punk a 24x24 RGBA image is (exact, hashed), or the nearest one.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import math
import os
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import (
    ACCESSORIES,
    N_PUNKS,
    SKINS,
    TILE,
    TYPES,
    Punks,
    parse_traits,
    resolve_data_dir,
)
from .errors import DataError, ImageError, PunktraitsError
from .files import punk_uri

# ---------------------------------------------------------------------------------------------
# Layer order

# The slots an accessory is drawn in, bottom to top. Derived once from traits.csv: every pair of
# accessories that occurs together on a punk (2,135 of the 3,741 pairs) is listed in the same
# order on every punk, so the lists define a partial order; its longest-path layering gives these
# 9 slots. No two accessories of one slot occur together on any punk, so the order inside a slot
# (alphabetical here) never shows in the 10,000 strings. It only decides new trait sets that
# combine two accessories of one slot (say Mole and Rosy Cheeks), where the contract has no answer.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mouth", ("Black Lipstick", "Buck Teeth", "Frown", "Hot Lipstick", "Purple Lipstick",
               "Smile")),
    ("face", ("Mole", "Rosy Cheeks", "Spots")),
    ("neck", ("Choker", "Gold Chain", "Silver Chain")),
    ("beard", ("Big Beard", "Chinstrap", "Front Beard", "Front Beard Dark", "Goat", "Handlebars",
               "Luxurious Beard", "Mustache", "Muttonchops", "Normal Beard", "Normal Beard Black",
               "Shadow Beard")),
    ("ears", ("Earring",)),
    ("head", ("Bandana", "Beanie", "Blonde Bob", "Blonde Short", "Cap", "Cap Forward",
              "Clown Hair Green", "Cowboy Hat", "Crazy Hair", "Dark Hair", "Do-rag", "Fedora",
              "Frumpy Hair", "Half Shaved", "Headband", "Hoodie", "Knitted Cap", "Messy Hair",
              "Mohawk", "Mohawk Dark", "Mohawk Thin", "Orange Side", "Peak Spike", "Pigtails",
              "Pilot Helmet", "Pink With Hat", "Police Cap", "Purple Hair", "Red Mohawk",
              "Shaved Head", "Straight Hair", "Straight Hair Blonde", "Straight Hair Dark",
              "Stringy Hair", "Tassle Hat", "Tiara", "Top Hat", "Vampire Hair", "Wild Blonde",
              "Wild Hair", "Wild White Hair")),
    ("mouth prop", ("Cigarette", "Medical Mask", "Pipe", "Vape")),
    ("eyes", ("3D Glasses", "Big Shades", "Blue Eye Shadow", "Classic Shades", "Clown Eyes Blue",
              "Clown Eyes Green", "Eye Mask", "Eye Patch", "Green Eye Shadow",
              "Horned Rim Glasses", "Nerd Glasses", "Purple Eye Shadow", "Regular Shades",
              "Small Shades", "VR", "Welding Goggles")),
    ("nose", ("Clown Nose",)),
)  # fmt: skip
LAYER_ORDER: tuple[str, ...] = tuple(a for _, names in LAYERS for a in names)  # 87 accessories
LAYER_INDEX = {a: i for i, a in enumerate(LAYER_ORDER)}
SLOT = {a: slot for slot, names in LAYERS for a in names}
HEADS = SKINS + ("Zombie", "Ape", "Alien")  # the 11 on-chain head labels
MAX_ACCESSORIES = 7  # the contract stores 8 asset bytes per punk: the head and up to 7 more


def split_head(head: str) -> tuple[str, str | None]:
    """`Male 2` -> (`Male`, `2`); `Zombie` -> (`Zombie`, None). Also accepts a bare type."""
    if head in HEADS:
        kind, _, tone = head.partition(" ")
        return kind, tone or None
    if head in TYPES:
        return head, None
    raise PunktraitsError(
        f"unknown head {head!r}: expected one of {', '.join(HEADS)} (or a type: {', '.join(TYPES)})"
    )


def layered(accessories: Iterable[str]) -> list[str]:
    """The accessories in the order the contract lists (and draws) them; checks names, repeats
    and the 7-accessory limit."""
    acc = list(accessories)
    unknown = [a for a in acc if a not in LAYER_INDEX]
    if unknown:
        raise PunktraitsError(
            f"unknown accessor{'ies' if len(unknown) > 1 else 'y'} {', '.join(map(repr, unknown))}:"
            " use the official display names (punktraits.data.ACCESSORIES)"
        )
    if len(set(acc)) != len(acc):
        repeated = sorted(a for a, n in Counter(acc).items() if n > 1)
        raise PunktraitsError(f"accessory listed twice: {', '.join(repeated)}")
    if len(acc) > MAX_ACCESSORIES:
        raise PunktraitsError(
            f"{len(acc)} accessories: a punk has at most {MAX_ACCESSORIES} (the head and 7 "
            "accessories fill the contract's 8 asset slots)"
        )
    return sorted(acc, key=LAYER_INDEX.__getitem__)


# ---------------------------------------------------------------------------------------------
# The on-chain string and OpenSea metadata


def onchain(head: str, accessories: Iterable[str]) -> str:
    """Exactly what `CryptopunksData.punkAttributes(id)` returns for this trait set: the head
    label with its skin tone (`Male 1`..`Female 4`, `Zombie`, `Ape`, `Alien`), then the
    accessories in layer order, joined with ", ". For example punk 8348: `Male 2, Buck Teeth, Mole,
    Big Beard, Earring, Top Hat, Cigarette, Classic Shades`."""
    if head in TYPES[3:]:
        raise PunktraitsError(
            f"head {head!r} has no skin tone: the on-chain label is one of "
            f"{', '.join(s for s in SKINS if s.startswith(head))}"
        )
    split_head(head)
    return ", ".join([head, *layered(accessories)])


COLLECTION_DESCRIPTION = (
    "CryptoPunks launched as a fixed set of 10,000 items in mid-2017 and became one of the "
    "inspirations for the ERC-721 standard. They have been featured in places like The New York "
    "Times, Christie's of London, Art|Basel Miami, and The PBS NewsHour."
)


def opensea(
    head: str,
    accessories: Iterable[str],
    id: int | None = None,
    image: str | np.ndarray | None = None,
) -> dict[str, Any]:
    """Metadata in the OpenSea metadata standard for this trait set.

    `attributes` are exactly those of the on-chain tokenURI of "CryptoPunks 721" (Ͼ721, the 2024
    wrapper; source `CryptoPunks721Metadata.parseAttributesArray`, modified from emo.eth's
    wrapped-punks `PunksWrapperMetadata`), which splits the `punkAttributes` string:
    `{"trait_type": "Type", "value": "Male"}`, one `{"trait_type": "Attribute", "value": ...}` per
    accessory in layer order, `{"trait_type": "Attribute Count", "value": "3"}` (a string, as the
    contract writes it; the type is not counted), and for humans last
    `{"trait_type": "Skin Tone", "value": "2"}`. That tokenURI has only `image` and `attributes`;
    `name`, `description` and `external_url` follow the older on-chain CryptoPunksTokenUri by
    0xTycoon (2022): "CryptoPunk #<id>", its collection description, and the cryptopunks.app page.
    Those three describe an original only when `id` is given (the caller vouches that the traits
    are that punk's); otherwise `name` is the on-chain style string and the description says it
    is not one of the 10,000.

    `image` is put in as is when it is a URI, or as a PNG data URI when it is a (24, 24, 4) uint8
    array; it is left out when None.
    """
    acc = layered(accessories)
    kind, tone = split_head(head)
    if kind in ("Male", "Female") and tone is None:
        raise PunktraitsError(f"head {head!r} has no skin tone: use {kind} 1..{kind} 4")
    attributes = [{"trait_type": "Type", "value": kind}]
    attributes += [{"trait_type": "Attribute", "value": a} for a in acc]
    attributes.append({"trait_type": "Attribute Count", "value": str(len(acc))})
    if tone is not None:
        attributes.append({"trait_type": "Skin Tone", "value": tone})
    if id is not None:
        if not 0 <= int(id) < N_PUNKS:
            raise PunktraitsError(f"punk id {id} is outside 0..{N_PUNKS - 1}")
        meta: dict[str, Any] = {
            "name": f"CryptoPunk #{int(id)}",
            "description": COLLECTION_DESCRIPTION,
            "external_url": f"https://cryptopunks.app/cryptopunks/details/{int(id)}",
        }
    else:
        meta = {
            "name": onchain(head, acc),
            "description": "A trait set in the CryptoPunks' on-chain vocabulary; not one of the "
            "10,000 CryptoPunks.",
        }
    if isinstance(image, np.ndarray):
        image = punk_uri(check_punk(image))
    if image is not None:
        meta["image"] = image
    meta["attributes"] = attributes
    return meta


# ---------------------------------------------------------------------------------------------
# Rarity

Item = Mapping[str, str]  # trait type -> value; a trait type that is absent is the Null value


def punk_item(kind: str, accessories: Iterable[str]) -> dict[str, str]:
    """A punk as rarity trait types: `Type` (one of the 5 types) and one trait type per accessory
    whose value is the accessory's name when present (absent: the None/Null value)."""
    kind, _ = split_head(kind)
    return {"Type": kind, **{a: a for a in layered(accessories)}}


class Rarity:
    """Rarity scores of trait sets against a reference collection (the 10,000 punks).

    Each item is a mapping trait type -> value; a trait type missing from an item has the value
    None ("Null" in OpenRarity). As both methods do, the trait count (the number of trait types
    an item has, here 1 + its accessory count) is added as one more trait type. For the punks the
    trait types are `Type` (5 types; skin tone is not a trait type, as on rarity.tools and in the
    OpenSea metadata these methods were built on) and each of the 87 accessories as its own trait
    type (its name when present, None when absent). Because every punk has a Type, the trait
    count is the accessory count plus one; its frequencies are those of the accessory count.

    * rarity.tools score: sum over trait types of 1 / (items with that value / all items), None
      values and the trait count included ("Rarity Score for a Trait Value = 1 / (Number of Items
      with that Trait Value / Total Number of Items)", summed over all traits; no normalisation).
    * OpenRarity score (ProjectOpenSea/open-rarity at commit f2bc4d8: `Collection`,
      `scoring/utils.py`, `InformationContentScoringHandler`; on the 10,000 punks the open-rarity
      0.7.5 package gives the same scores to 4.4e-16 and the same ranks): information content IC = sum over trait types of
      -log2(p(value)), Null values and the trait count ("meta_trait:trait_count") included, divided
      by the collection entropy H = -sum over trait types of sum over values (Null included) of
      p log2 p. `information` keeps IC in bits.
    * Ranks are competition ranks ("1224": ties share the best rank; a trait set's rank is 1 + the
      number of items strictly rarer). The OpenRarity rank sorts first by the number of the item's
      unique attribute values (values that exactly one item of the collection has, trait count
      included) and then by score, as `RarityRanker.set_rarity_ranks` does; for the punks only
      #8348 (the one 7-accessory punk) has a unique value. Ties are exact: each score is the
      correctly rounded sum (math.fsum) of terms looked up per frequency, so items with the same
      multiset of frequencies get the same float. OpenRarity ties scores within rel. 1e-9; on the
      10,000 no two different scores are that close (a test checks it), so the ranks are equal.
    * Percentile: the percentage of the collection strictly more common (lower key) than the trait
      set, i.e. "rarer than p% of the 10,000".

    A trait set that is not in the collection is scored with the collection's frequencies and
    ranked as if it were added without changing them. A value no item has (frequency 0) has no
    score and raises PunktraitsError.
    """

    def __init__(self, items: Sequence[Item]):
        items = [{k: v for k, v in it.items() if v is not None} for it in items]
        n = len(items)
        if n == 0:
            raise PunktraitsError("a rarity table needs at least one item")
        self.n = n
        values: dict[str, Counter] = {}
        for it in items:
            for k, v in it.items():
                values.setdefault(k, Counter())[v] += 1
        self.trait_types: tuple[str, ...] = tuple(sorted(values))
        self.index = {k: j for j, k in enumerate(self.trait_types)}
        self.values = {k: dict(values[k]) for k in self.trait_types}
        self.nulls = np.array([n - sum(values[k].values()) for k in self.trait_types], np.int64)
        self.trait_counts = dict(Counter(len(it) for it in items))
        # Per-frequency terms, computed once in Python so that an item scored later gets the
        # bit-identical term an original with the same frequency got.
        self._tools = np.array([n / c if c else math.nan for c in range(n + 1)])
        self._bits = np.array([math.log2(n / c) if c else math.nan for c in range(n + 1)])
        probs = [
            c / n
            for k in self.trait_types
            for c in [*self.values[k].values(), int(self.nulls[self.index[k]])]
            if c
        ]
        probs += [c / n for c in self.trait_counts.values()]
        self.entropy = math.fsum(-p * math.log2(p) for p in probs)

        counts = np.empty((n, len(self.trait_types) + 1), np.int64)
        unique = np.zeros(n, np.int64)
        for i, it in enumerate(items):
            counts[i], unique[i] = self._counts(it)
        self.tools = self._sum(self._tools[counts])  # (n,) rarity.tools scores
        self.information = self._sum(self._bits[counts])  # (n,) IC in bits
        self.openrarity = self.information / (self.entropy or 1.0)  # (n,)
        self.unique = unique  # (n,) OpenRarity's unique attribute count
        self.tools_rank, self.tools_percentile = _competition(np.zeros(n, np.int64), self.tools)
        self.openrarity_rank, self.openrarity_percentile = _competition(unique, self.openrarity)

    @classmethod
    def from_traits(cls, types: Sequence[str], accessories: Sequence[Iterable[str]]) -> Rarity:
        """The punks' rarity table from per-punk types (or head labels) and accessory lists."""
        if len(types) != len(accessories):
            raise PunktraitsError(f"{len(types)} types but {len(accessories)} accessory lists")
        return cls([punk_item(t, a) for t, a in zip(types, accessories)])

    @classmethod
    def from_labels(cls, labels: np.ndarray) -> Rarity:
        """From (N, 92) 0/1 labels in TRAITS order (`Punks.labels`)."""
        k = len(TYPES)
        types = [TYPES[int(j)] for j in labels[:, :k].argmax(1)]
        acc = [[ACCESSORIES[j] for j in np.flatnonzero(row)] for row in labels[:, k:]]
        return cls.from_traits(types, acc)

    @classmethod
    def load(cls, data_dir: str | os.PathLike | None = None) -> Rarity:
        """The 10,000 punks' table from the data folder's traits.csv (cached per folder)."""
        path = resolve_data_dir(data_dir)[0] / "traits.csv"
        if not path.exists():
            raise DataError(f"{path} is missing; the rarity table needs the data's traits.csv")
        return _load_rarity(str(path.resolve()), path.stat().st_mtime_ns)

    def _counts(self, item: Item) -> tuple[np.ndarray, int]:
        """The frequency of each of the item's values (Null for absent trait types, then the
        trait count) and its number of unique values; a value no item has is an error."""
        c = self.nulls.copy()
        unique = 0
        for k, v in item.items():
            j = self.index.get(k)
            got = 0 if j is None else self.values[k].get(v, 0)
            if got == 0:
                raise PunktraitsError(
                    f"no item of the collection has {k} = {v!r}, so it has no rarity score"
                )
            c[j] = got
            unique += got == 1
        if (c == 0).any():
            missing = [self.trait_types[j] for j in np.flatnonzero(c == 0)]
            raise PunktraitsError(
                f"every item of the collection has {', '.join(missing)}; "
                "a trait set without it has no rarity score"
            )
        tc = self.trait_counts.get(len(item), 0)
        if tc == 0:
            raise PunktraitsError(f"no item of the collection has {len(item)} traits")
        unique += tc == 1
        return np.append(c, tc), unique

    @staticmethod
    def _sum(terms: np.ndarray) -> np.ndarray:
        """Row sums, each correctly rounded (so independent of the order of the terms)."""
        rows = np.atleast_2d(terms)
        return np.fromiter(map(math.fsum, rows), float, len(rows))

    def score(self, item: Item) -> dict[str, float | int]:
        """rarity.tools and OpenRarity scores of one trait set (not necessarily in the table)."""
        item = {k: v for k, v in item.items() if v is not None}
        counts, unique = self._counts(item)
        bits = float(self._sum(self._bits[counts])[0])
        return {
            "rarity_tools": float(self._sum(self._tools[counts])[0]),
            "openrarity": bits / (self.entropy or 1.0),
            "information": bits,
            "unique": int(unique),
        }

    def rank(self, item: Item) -> dict[str, dict[str, float | int]]:
        """Scores, competition ranks and percentiles of one trait set among the table's items."""
        s = self.score(item)
        t, o, u = s["rarity_tools"], s["openrarity"], s["unique"]
        tools_rank = 1 + int(np.count_nonzero(self.tools > t))
        rarer = (self.unique > u) | ((self.unique == u) & (self.openrarity > o))
        commoner = (self.unique < u) | ((self.unique == u) & (self.openrarity < o))
        return {
            "rarity_tools": {
                "score": t,
                "rank": tools_rank,
                "percentile": 100.0 * int(np.count_nonzero(self.tools < t)) / self.n,
            },
            "openrarity": {
                "score": o,
                "rank": 1 + int(np.count_nonzero(rarer)),
                "percentile": 100.0 * int(np.count_nonzero(commoner)) / self.n,
                "information_bits": s["information"],
            },
        }

    def extremes(self, method: str = "openrarity", k: int = 3) -> dict[str, list[int]]:
        """Ids (rows) of the k rarest and k commonest items by `method` ("openrarity" or
        "rarity_tools"); rarest first, and commonest with the most common last."""
        if method not in ("openrarity", "rarity_tools"):
            raise PunktraitsError(f"unknown rarity method {method!r}: openrarity or rarity_tools")
        rank = self.openrarity_rank if method == "openrarity" else self.tools_rank
        order = np.lexsort((np.arange(self.n), rank))
        return {"rarest": order[:k].tolist(), "commonest": order[-k:].tolist()}


def _competition(unique: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Competition ranks (1 = rarest) and percentiles (% strictly commoner) of keys (unique,
    score), larger = rarer."""
    n = len(score)
    order = np.lexsort((score, unique))  # ascending: commonest first
    u, s = unique[order], score[order]
    new = np.r_[True, (u[1:] != u[:-1]) | (s[1:] != s[:-1])]  # a new key starts here
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, n - 1]
    rank = np.empty(n, np.int64)
    pct = np.empty(n)
    rank[order] = n - last[group]  # 1 + number strictly rarer
    pct[order] = 100.0 * first[group] / n
    return rank, pct


@functools.lru_cache(maxsize=4)
def _load_rarity(csv_path: str, mtime_ns: int) -> Rarity:
    labels, _ = parse_traits(Path(csv_path), N_PUNKS)
    return Rarity.from_labels(labels)


def rarity(
    head_or_type: str,
    accessories: Iterable[str],
    data_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """rarity.tools and OpenRarity scores, ranks and percentiles of a trait set among the 10,000
    punks (see `Rarity`), for an original or a new trait set. `head_or_type` is a head label
    (`Male 2`) or a type (`Male`); only the type counts."""
    kind, _ = split_head(head_or_type)
    acc = layered(accessories)
    table = Rarity.load(data_dir)
    return {"type": kind, "accessories": acc, "of": table.n, **table.rank(punk_item(kind, acc))}


# ---------------------------------------------------------------------------------------------
# Originals by their pixels


def check_punk(punk: np.ndarray) -> np.ndarray:
    """The punk as a contiguous (24, 24, 4) uint8 RGBA array, or ImageError."""
    a = np.asarray(punk)
    if a.shape != (TILE, TILE, 4) or a.dtype != np.uint8:
        raise ImageError(
            f"a punk is a (24, 24, 4) uint8 RGBA array; got {a.shape} {a.dtype}", status=422
        )
    return np.ascontiguousarray(a)


def _digest(punk: np.ndarray) -> bytes:
    return hashlib.blake2b(punk.tobytes(), digest_size=16).digest()


class Originals:
    """The 10,000 original images, indexed by their exact RGBA bytes.

    `lookup` hashes the 2,304 bytes (BLAKE2b-128) and confirms the match byte for byte; `nearest`
    compares the pixels with all originals at once (each pixel is its index in the originals'
    palette of 222 RGBA colours, a colour not in it matching no original), ~1 ms for 10,000.
    `heads`/`accessories`, when given, are returned by `lookup` with the on-chain string.
    """

    def __init__(
        self,
        images: np.ndarray,
        heads: Sequence[str] | None = None,
        accessories: Sequence[Iterable[str]] | None = None,
    ):
        images = np.ascontiguousarray(images)
        if images.ndim != 4 or images.shape[1:] != (TILE, TILE, 4) or images.dtype != np.uint8:
            raise PunktraitsError(f"images must be (N, 24, 24, 4) uint8, got {images.shape}")
        self.images = images
        self.n = len(images)
        self.heads = list(heads) if heads is not None else None
        self.accessories = [layered(a) for a in accessories] if accessories is not None else None
        self._by_hash: dict[bytes, int] = {}
        for i in range(self.n):
            self._by_hash.setdefault(_digest(images[i]), i)
        self._buffers = threading.local()  # `distances`' scratch, one per thread

    @functools.cached_property
    def _indexed(self) -> tuple[np.ndarray | None, np.ndarray]:
        """The originals' palette (C,) uint32 and their pixels as indices into it (N, 576)
        uint8; (None, the packed pixels) when there are 255 colours or more. Built when first
        needed (~0.25 s for 10,000: a folder of originals never needs it)."""
        px = self.images.view(np.uint32).reshape(self.n, TILE * TILE)  # one uint32 a pixel
        palette = np.unique(px)
        if len(palette) < 255:
            return palette, np.searchsorted(palette, px).astype(np.uint8)
        return None, px  # too many colours for a byte: compare whole pixels

    @classmethod
    def from_punks(cls, punks: Punks) -> Originals:
        """From a loaded `Punks`: images, head labels (skin or type) and accessories."""
        k = len(TYPES)
        heads = [s or TYPES[int(row[:k].argmax())] for s, row in zip(punks.skins, punks.labels)]
        acc = [[ACCESSORIES[j] for j in np.flatnonzero(row[k:])] for row in punks.labels]
        return cls(punks.images, heads, acc)

    def lookup(self, punk: np.ndarray) -> dict[str, Any] | None:
        """{"id", and when known "head", "accessories", "onchain"} of the original with exactly
        these RGBA bytes, or None."""
        punk = check_punk(punk)
        i = self._by_hash.get(_digest(punk))
        if i is None or not np.array_equal(self.images[i], punk):
            return None
        out: dict[str, Any] = {"id": i}
        if self.heads is not None and self.accessories is not None:
            head, acc = self.heads[i], self.accessories[i]
            out.update(head=head, accessories=acc)
            if head in HEADS:
                out["onchain"] = onchain(head, acc)
        return out

    def distances(self, punk: np.ndarray) -> np.ndarray:
        """(N,) number of pixels (any of R, G, B, A) in which each original differs."""
        q = check_punk(punk).view(np.uint32).reshape(-1)  # (576,)
        palette, pixels = self._indexed
        if palette is not None:
            j = np.minimum(np.searchsorted(palette, q), len(palette) - 1)
            q = np.where(palette[j] == q, j, 255).astype(np.uint8)
        # (a scratch array per thread: the server answers two requests at once, and one shared
        # buffer gave each the other's counts)
        diff = getattr(self._buffers, "diff", None)
        if diff is None:
            diff = self._buffers.diff = np.empty(pixels.shape, bool)
        np.not_equal(pixels, q, out=diff)
        return diff.view(np.uint8).sum(1, dtype=np.uint16)

    def nearest(self, punk: np.ndarray) -> tuple[int, int]:
        """(id, differing pixels) of the original closest to `punk` (lowest id on a tie)."""
        d = self.distances(punk)
        i = int(d.argmin())
        return i, int(d[i])


def read_traits(path: str | os.PathLike) -> list[dict[str, Any]]:
    """traits.csv rows as {"id", "type", "head", "accessories" (in the file's order)}."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            acc = row["accessories"].split(" / ") if row["accessories"] else []
            rows.append(
                {
                    "id": int(row["id"]),
                    "type": row["type"],
                    "head": row["skin"] or row["type"],
                    "accessories": acc,
                }
            )
    return rows
