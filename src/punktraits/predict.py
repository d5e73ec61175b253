"""Predict the traits of any punk image, explain them, export the network.

    from punktraits import load_model
    model = load_model()                 # the shipped default model, or load_model("runs/x")
    p = model.predict("punk.jpg")        # a path, bytes, a PIL image or a (24, 24, 4) array
    p.type, p.accessories, p.probabilities["Earring"], p.normalized

How a prediction is decided: the image is normalised (normalize.py: any scale, background, JPEG
noise -> the exact 24x24 RGBA punk), the run's recipe gives P(trait) and its decision rule turns
them into traits (recipes/). Then the answer is drawn back with the drawing rules learned from
the run's training split (sprites.py, verify.py): `verified` when the drawing equals the image,
else a nearby answer that draws it is reported (`check.corrected_from` holds the network's), and
an image no answer draws close to is refused as "not a CryptoPunk"; one whose left-right flip
draws back exactly (derivative collections mirror punks) is answered as the flip, `mirrored`.
`find` also reads pictures that are not one punk (a marketplace page, a grid, punks.png, a punk
with a caption or a frame): locate.py proposes squares, each is read and drawn back, and every
punk found is one answer with its `box`. The drawing rules are learned
from the data folder (`punktraits data`); without it answers are given unverified
(`verified: null`). Explanations are occlusion maps: each pixel in turn is made transparent (the
background) and the drop of the trait's score is that pixel's heat.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from .answer import Prediction
from .collection import Originals, Rarity, layered, punk_item
from .data import HEADS, TRAIT_INDEX, TYPES
from .draw import render_explanation
from .errors import DataError, ImageError, PunktraitsError, RunError
from .locate import LOSSLESS, exact_jpeg, exact_punk, silhouette, squares
from .normalize import (
    MAX_PIXELS,
    Normalized,
    normalize,
    normalize_pixels,
    open_image,
    reencode_pixels,
)
from .run import Run
from .verify import REENCODED, Verifier, fit_check, likely_heads, prove

OFFICIAL = "https://cryptopunks.app/cryptopunks/details/{id}"  # Larva Labs' page of a punk


def punk_url(i: int) -> str:
    return OFFICIAL.format(id=i)


def _slow(info: Normalized | None) -> bool:
    """Whether an image read so is slow to answer: lossy (its drawing is re-encoded to prove
    it) or not read exactly (smoothed: whole drawings are weighed against it)."""
    return info is not None and (info.fit is not None or info.format in ("JPEG", "WEBP"))


SCREEN_PIXELS = 4096 * 4096  # a picture searched for punks may be this large (punks.png: 2400^2)
STREAM_FITS = 16  # images slow to answer (`_slow`) after which a batch is answered
MAX_SQUARES = 400  # squares read with the normaliser per picture at most (exact cells: no limit)
# A lossy file's square is found a pixel or two short on some sides (JPEG bleeds the page into
# its edge): when one does not draw back, these (left, top, side) growths are tried in turn.
GROW = ((0, 0, 0), (1, 1, 2), (1, 0, 1), (0, 1, 1), (1, 1, 1), (2, 2, 4))
NEAR_MISS = 60  # differing pixels of a square's reading within which it is tried again


_TABLES: dict[tuple, tuple[Originals, Rarity]] = {}


def _tables(punks) -> tuple[Originals, Rarity]:
    """The originals' lookup and the rarity tables of a collection, built once per process for
    each version of the data (0.5 s each time otherwise: every Predictor, every test)."""
    key = tuple(sorted(punks.sha256.items()))
    if key not in _TABLES:
        _TABLES.clear()  # one collection at a time is what anyone uses
        _TABLES[key] = (Originals.from_punks(punks), Rarity.from_labels(punks.labels))
    return _TABLES[key]


def _drawn_first(probabilities: dict[str, float], accessories: list[str],
                 head_prob: dict[str, float] | None) -> tuple[list[str], list[str]]:  # fmt: skip
    """The network's answer as it is drawn first: the 6 likeliest heads, likeliest first, and
    the accessories, at most the 7 likeliest (a punk wears at most 7)."""
    tp = {t: probabilities.get(t, 0.0) for t in TYPES}
    acc = sorted(accessories, key=lambda a: -probabilities.get(a, 0.0))[:7]
    return likely_heads(tp, head_prob)[:6], acc


class Predictor:
    """A trained run, ready for images."""

    def __init__(self, run: Run | str | os.PathLike | None = None,
                 data_dir: str | os.PathLike | None = None, verify: bool = True):  # fmt: skip
        self.run = run if isinstance(run, Run) else Run.open(run)
        self.traits: list[str] = self.run.traits
        self.palette, self.counts = self.run.palette  # the collection's colours, for normalising
        self.verifier: Verifier | None = None
        self.originals: Originals | None = None
        self.rarity: Rarity | None = None
        self.silhouette: tuple[np.ndarray, np.ndarray] | None = None
        self.unverified = "not checked (verify=False)"  # why answers are not drawn back
        if verify:
            self._collection(data_dir)

    def _collection(self, data_dir) -> None:
        """From the data folder: the drawing rules learned from the run's training split, the
        originals (an exact lookup, never used to change an answer) and the rarity tables."""
        from . import data as D
        from .sprites import sprites_for

        try:
            punks = D.load(data_dir, download=False, progress=False)
            self.run.check_data(punks)
            self.verifier = Verifier(sprites_for(punks, self.run.split.train))
        except (DataError, RunError) as e:
            self.unverified = (
                f"not checked: the drawing rules are learned from the data folder ({e})"
            )
            return
        self.unverified = None
        self.originals, self.rarity = _tables(punks)
        self.silhouette = silhouette(punks.images[self.run.split.train])  # for locate.squares
        self._hidden = punks.hidden
        self._guessed: dict[bytes, tuple] = {}  # drawings `_guess` gave -> their answers

    # -- images -> punks -------------------------------------------------------------------

    def to_punk(self, image, name: str | None = None) -> tuple[np.ndarray, Normalized | None]:
        """(24, 24, 4) uint8 punk of any supported input, and how it was found."""
        if isinstance(image, np.ndarray):
            if image.shape != (24, 24, 4) or image.dtype != np.uint8:
                raise ImageError(f"{name or 'array'}: expected a (24, 24, 4) uint8 RGBA array")
            return image, None
        if isinstance(image, Image.Image):
            image = self._png(image)
        guess = self._guess if self.verifier is not None else None
        return normalize(image, self.palette, self.counts, name=name, exact=self._exact,
                         guess=guess)  # fmt: skip

    def _guess(self, punk: np.ndarray | None, near: np.ndarray | None = None,
               union: list[np.ndarray] | None = None) -> np.ndarray:  # fmt: skip
        """The network's answer for a rough reading `punk` (24, 24, 4), drawn: (N, 24, 24, 4)
        uint8 (none when a pixel of it is unknown). The normaliser keeps it when, drawn the way
        the image was, it gives the image back. `near`: a drawing this gave before; then the
        answers one edit away from it, drawn (the normaliser walks to the one whose drawing
        explains the image best when the network's does not give it back; or one the verifier
        drew, whose answer is read from it: `_drawn_answer`). `union`: drawings this gave
        before; then one answer, the first one's head with every accessory any of them has
        (as many as can be drawn together, the first one's first), drawn."""
        if union is not None:
            given = [self._guessed.get(u.tobytes()) for u in union]
            answers = []
            if given and all(g is not None for g in given):
                acc = list(dict.fromkeys(a for _, accs in given for a in accs))
                answers = [self.verifier._start(given[0][0], acc)]
        elif near is not None:
            answer = self._guessed.get(near.tobytes()) or self._drawn_answer(near)
            answers = [] if answer is None else self.verifier._neighbours(*answer, list(HEADS))
        else:
            likely, acc = self._read(punk)
            answers = [self.verifier._start(likely[0], acc)]
        if not answers:
            return np.zeros((0, 24, 24, 4), np.uint8)
        images, known = self.verifier.sprites.render_many(answers)
        drawn = known.all((1, 2))
        if len(self._guessed) > 4096:  # (only the last image's walk matters)
            self._guessed.clear()
        for answer, image in zip(itertools.compress(answers, drawn), images[drawn]):
            self._guessed[image.tobytes()] = answer
        return images[drawn]

    def _drawn_answer(self, punk: np.ndarray) -> tuple[str, tuple[str, ...]] | None:
        """The answer whose drawing is exactly `punk` (24, 24, 4), a clean drawing (the network
        reads one right; the verifier proves it), or None."""
        likely, acc = self._read(punk)
        c = self.verifier.check(punk, likely[0], acc, likely)
        return (c.head, tuple(c.accessories)) if c.verified else None

    def _read(self, punk: np.ndarray) -> tuple[list[str], list[str]]:
        """The network's answer for one punk (24, 24, 4), as it is drawn first (`_drawn_first`):
        the likeliest heads and the accessories."""
        prob, head_prob = self.run.predict(punk[None])
        pred = self.run.decide(prob)[0]
        probs = {n: float(prob[0, j]) for j, n in enumerate(self.traits)}
        hp = None if head_prob is None else dict(zip(self.run.heads, head_prob[0]))
        acc = [n for j, n in enumerate(self.traits) if pred[j] and n not in TYPES]
        return _drawn_first(probs, acc, hp)

    def _exact(self, rgba: np.ndarray, has_alpha: bool, fmt: str, jpeg: dict):
        if fmt == "JPEG":
            return None if has_alpha else exact_jpeg(rgba, fmt, jpeg, self.palette, self.counts)
        return exact_punk(rgba, has_alpha, fmt, self.palette, self.counts)

    @staticmethod
    def _png(image: Image.Image) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()

    # -- prediction ------------------------------------------------------------------------

    def probabilities(self, punks: np.ndarray) -> np.ndarray:
        """P(trait) for (N, 24, 24, 4) uint8 punks: (N, T)."""
        return self.run.probabilities(punks)

    def predict_punks(self, punks: np.ndarray, infos: list | None = None,
                      names: list | None = None) -> list[Prediction]:  # fmt: skip
        """Predictions for already-normalised (N, 24, 24, 4) uint8 punks. One that does not draw
        back exactly but whose left-right flip does (or, refused as it is, whose flip is close
        enough to answer) is answered as the flip (`mirrored`): a punk that draws back as it is
        is never called mirrored."""
        infos = infos or [None] * len(punks)
        names = names or [None] * len(punks)
        out = self._answer(punks, infos, names)
        read = punks.copy()
        wrong = [i for i, p in enumerate(out) if p.verified is False and not _given_back(p)]
        if wrong:
            flipped = np.ascontiguousarray(punks[wrong][:, :, ::-1])
            again = self._answer(flipped, [infos[i] for i in wrong], [names[i] for i in wrong],
                                 flipped=True)  # fmt: skip
            for k, (i, p) in enumerate(zip(wrong, again)):
                # the flip draws back exactly, or is close where the image is refused as it is,
                # or (a lossy image) its drawing explains the image better
                if (
                    p.verified
                    or (out[i].error is not None and p.error is None)
                    or (p.error is None and _fit_rms(p) < _fit_rms(out[i]))
                ):
                    p.mirrored, out[i], read[i] = True, p, flipped[k]
        for i, p in enumerate(out):
            if p.drawn is not None and p.drawn.fit is not None and p.error is None:
                read[i] = p.drawn.drawn  # the pixels were not all read: the drawing stands for them
        if self.originals is not None:
            for punk, p in zip(read, out):
                self._about(punk, p)
        return out

    def _answer(self, punks: np.ndarray, infos: list, names: list,
                flipped: bool = False) -> list[Prediction]:  # fmt: skip
        """The network's answers, drawn back when the drawing rules are known (`flipped`: the
        punks are the images' readings flipped left-right)."""
        prob, head_prob = self.run.predict(punks)
        pred = self.run.decide(prob)
        types = [n for n in TYPES if n in self.traits]
        out = []
        rounded = np.round(prob.astype(np.float64), 6).tolist()  # (round()'s own values: 0 of
        for i in range(len(punks)):  # 920,000 differ over the collection, at a tenth the time)
            probs = dict(zip(self.traits, rounded[i]))
            kind = max(types, key=lambda n: prob[i, self.traits.index(n)]) if types else None
            acc = [n for j, n in enumerate(self.traits) if pred[i, j] and n not in TYPES]
            info = infos[i].to_dict() if infos[i] is not None else None
            head = None
            if head_prob is not None:
                head = self.run.heads[int(head_prob[i].argmax())]
            p = Prediction(names[i], kind, acc, probs, info, head=head)
            p.check = {"verified": None, "note": self.unverified} if self.unverified else None
            out.append(p)
        if self.verifier is not None:
            self._draw_back(punks, out, head_prob, infos, flipped)
        return out

    def _about(self, punk: np.ndarray, p: Prediction) -> None:
        """Which original it is (exact pixels), and how rare the answer is."""
        found = self.originals.lookup(punk)
        if found is None:
            i, d = self.originals.nearest(punk)
            p.nearest = {"id": i, "differing_pixels": d, "url": punk_url(i)}
        else:
            i = found["id"]
            hidden = []
            if self._hidden is not None:
                hidden = [t for t in found["accessories"] if self._hidden[i, TRAIT_INDEX[t]]]
            answer = (p.head, set(p.accessories))
            p.original = {
                "id": i, "url": punk_url(i),
                "labels": {"head": found["head"], "accessories": found["accessories"],
                           "onchain": found.get("onchain")},
                "hidden": hidden,  # official accessories no pixel shows
                "agrees": answer == (found["head"], set(found["accessories"])),
                "agrees_visible": answer == (found["head"], set(found["accessories"]) - set(hidden)),
            }  # fmt: skip
        if p.error is None and p.type is not None and self.rarity is not None:
            try:
                r = self.rarity.rank(punk_item(p.type, layered(p.accessories)))
                p.rarity = {"of": self.rarity.n, **r}
            except PunktraitsError:
                p.rarity = None  # a trait value no original has

    def _draw_back(self, punks: np.ndarray, preds: list[Prediction], head_prob, infos,
                   flipped: bool = False) -> None:  # fmt: skip
        """Draw each answer back; keep it when it draws the image, else report the nearby
        answer that does (or the nearest), and refuse what is not a punk. A lossy or smoothed
        image whose reading does not draw back is answered by the drawing that explains the
        image itself best (`verify.fit_check`)."""
        answers, heads = [], []
        for i, p in enumerate(preds):
            hp = None if head_prob is None else dict(zip(self.run.heads, head_prob[i]))
            likely, acc = _drawn_first(p.probabilities, p.accessories, hp)
            answers.append((p.head or likely[0], acc))
            heads.append(likely)
        checks = self.verifier.check_many(punks, answers, heads)
        for i, c in enumerate(checks):
            info = infos[i]
            if info is None or info.fit is None:
                continue
            every = heads[i] + [h for h in HEADS if h not in heads[i]]  # blurred: any head
            w, h = info.source_size
            if (c.verified and info.fit.reencode is not None
                    and w * h <= reencode_pixels(info.format == "WEBP")):  # fmt: skip
                # a small lossy file's reading is an estimate: its drawing must give the file
                # back, and no drawing an edit away may. (A larger one is read pixel for pixel:
                # a whole-number nearest JPEG, `locate.exact_jpeg`, re-encodes exactly by
                # construction; no tie among all 10,000 at x8 q85, at ~25 ms each: RESULTS §9)
                checks[i] = prove(self.verifier, info.fit, punks[i], answers[i], c, every, flipped)
            elif not c.verified and (info.format not in LOSSLESS or info.filter != "nearest"):
                checks[i] = fit_check(self.verifier, info.fit, punks[i], answers[i], c, every,
                                      flipped) or c  # fmt: skip
        for p, c in zip(preds, checks):
            if c.refused:
                p.type, p.head, p.accessories, p.probabilities = None, None, [], {}
                p.error = f"{p.file or 'image'}: {c.refused}"
            else:
                p.type, p.head = c.type, c.head
                p.accessories = sorted(c.accessories, key=self.traits.index)
            p.verified, p.check, p.drawn = c.verified, c.to_dict(), c

    def predict_punk(self, punk: np.ndarray, name: str | None = None,
                     info: Normalized | None = None) -> Prediction:  # fmt: skip
        """The prediction for one already-normalised (24, 24, 4) uint8 punk."""
        return self.predict_punks(punk[None], [info], [name])[0]

    def predict(self, image, name: str | None = None) -> Prediction:
        """The traits of one image; raises ImageError if it cannot be read as a punk."""
        if name is None and isinstance(image, (str, os.PathLike)):
            name = str(image)
        punk, info = self.to_punk(image, name)
        p = self.predict_punk(punk, name, info)
        if p.error:  # drawn back, it is not a punk
            raise ImageError(p.error, 422)
        return p

    def predict_batch(self, images: Iterable, batch_size: int = 256) -> list[Prediction]:
        """The traits of many images; one that cannot be read gets `error` set instead."""
        return list(self.iter_predict(images, batch_size))

    def iter_predict(self, images: Iterable, batch_size: int = 256) -> Iterator[Prediction]:
        """Stream predictions in input order, `batch_size` images in memory at a time."""
        for _, _, p in self._answered(images, None, batch_size):
            yield p

    def _answered(self, images: Iterable, names: list | None,
                  batch_size: int) -> Iterator[tuple[object, str | None, Prediction]]:  # fmt: skip
        """Each image with its name and answer, in order. Images are read (normalised) one at a
        time; the network and the drawing back answer those read so far when `batch_size` are,
        or when STREAM_FITS of them are lossy or were not read exactly (smoothed: `_slow`),
        each 0.02-1 s to draw back. So a folder of exact PNGs goes in whole batches, and one of
        JPEGs still streams its answers every few seconds (a batch of 256 was minutes)."""
        pending: list[tuple] = []  # (image, name, (punk, info) or the Prediction of an error)
        fits = 0
        for k, image in enumerate(images):
            name = str(image) if isinstance(image, (str, os.PathLike)) else None
            name = names[k] if names and names[k] is not None else name
            read = self._read_file(image, name)
            pending.append((image, name, read))
            fits += isinstance(read, tuple) and _slow(read[1])
            if len(pending) >= batch_size or fits >= STREAM_FITS:
                yield from self._answer_read(pending)
                pending, fits = [], 0
        yield from self._answer_read(pending)

    def _read_file(self, image, name: str | None) -> tuple | Prediction:
        """(punk, info) of one image, or the Prediction whose `error` says why it is not read:
        any exception in one file is that file's error only."""
        try:
            return self.to_punk(image, name)
        except ImageError as e:
            return Prediction(name, None, [], {}, None, str(e))
        except Exception as e:  # noqa: BLE001
            what = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            return Prediction(name, None, [], {}, None,
                              f"{name or 'image'}: could not be read as a punk ({what})")  # fmt: skip

    def _answer_read(self, pending: list[tuple]) -> list[tuple[object, str | None, Prediction]]:
        """The answers of images read by `_read_file` ((image, name, read) each), in one batch."""
        ok = [k for k, (_, _, read) in enumerate(pending) if isinstance(read, tuple)]
        answers = {}
        if ok:
            punks = np.stack([pending[k][2][0] for k in ok])
            infos = [pending[k][2][1] for k in ok]
            names = [pending[k][1] for k in ok]
            answers = dict(zip(ok, self.predict_punks(punks, infos, names)))
        return [(image, name, answers.get(k, read))
                for k, (image, name, read) in enumerate(pending)]  # fmt: skip

    # -- pictures with several punks -------------------------------------------------------

    def find(self, image, name: str | None = None) -> list[Prediction]:
        """Every punk in a picture. A punk image gives its one answer (`box` None), as `predict`
        does; a picture that is not one punk (a page, a grid, a sheet like punks.png, a punk with
        a caption or a frame) gives one answer per punk found in it, with its `box`, in reading
        order. When none is found: one answer whose `error` says why the image is not a punk."""
        if name is None and isinstance(image, (str, os.PathLike)):
            name = str(image)
        return next(self._found([image], [name]))

    def iter_find(self, images: Iterable, batch_size: int = 256) -> Iterator[list[Prediction]]:
        """`find` for many images, in input order: a list of answers per image."""
        return self._found(images, None, batch_size)

    def _found(self, images: Iterable, names: list | None = None,
               batch_size: int = 256) -> Iterator[list[Prediction]]:  # fmt: skip
        """Each image read as one punk (in batches: `_answered`); the ones that are not,
        searched."""
        for image, name, p in self._answered(images, names, batch_size):
            if p.error is None or isinstance(image, np.ndarray):
                yield [p]
                continue
            if isinstance(image, Image.Image):
                image = self._png(image)
            try:
                found = self.search(image, name)
            except ImageError:
                found = []  # unreadable as a picture too: the first error says why
            yield found or [p]

    def search(self, image, name: str | None = None) -> list[Prediction]:
        """The punks in the squares locate.py proposes in a picture (not the whole image: `find`
        tries that first), each with its box, in reading order; raises ImageError when the
        picture cannot be decoded.
        Exact cells are read in one batch; the others one by one with the normaliser, and a
        lossy file's square that does not draw back is tried a little larger (GROW)."""
        rgba, alpha, fmt, _, jpeg = open_image(image, name or "<bytes>", SCREEN_PIXELS)
        h, w = rgba.shape[:2]
        punks, infos, where = [], [], []
        found: list[Prediction] = []
        normalised = 0
        for sq in squares(rgba, alpha, fmt, self.silhouette):
            if (sq.w, sq.h) == (w, h) and w * h <= MAX_PIXELS:
                continue  # the whole image
            got = exact_punk(rgba[sq.y : sq.y + sq.h, sq.x : sq.x + sq.w], alpha, fmt,
                             self.palette, self.counts)  # fmt: skip
            if got is not None:
                punks.append(got[0])
                infos.append(got[1])
                where.append((sq.x, sq.y))
                continue
            best = None
            for a, b, c in GROW if fmt not in LOSSLESS else GROW[:1]:
                x, y, side = sq.x - a, sq.y - b, sq.w + c
                if normalised >= MAX_SQUARES:
                    break
                if x < 0 or y < 0 or x + side > w or y + side > h:
                    continue
                normalised += 1
                best = _better(best, self._read_square(rgba, x, y, side, alpha, fmt, jpeg, name,
                                                       retry=not (a or b or c)))  # fmt: skip
                if best is None or best.verified or _differing(best) > NEAR_MISS:
                    break  # no punk there (larger squares are tried only for a near miss)
            if best is not None and best.error is None:
                found.append(best)
        if punks:
            for p, (x, y), info in zip(
                self.predict_punks(np.stack(punks), infos, [name] * len(punks)), where, infos
            ):
                if p.error is None:
                    p.box = _box(x, y, info)
                    found.append(p)
        return _distinct(found, name)

    def _read_square(self, rgba, x, y, side, alpha, fmt, jpeg, name,
                     retry: bool = True) -> Prediction | None:  # fmt: skip
        """The answer for the square (x, y, side) of a picture (its `error` set when it is drawn
        back and refused), or None when the normaliser finds no punk in it. A
        JPEG's square that does not draw back as read is read again with its drawings
        re-encoded in the file's blocks around it (`_frame`; the answer not refused, then the
        one that draws back closer, is kept): when it draws back nearly, or (`retry`) when it
        was refused."""
        cell = rgba[y : y + side, x : x + side]
        best = None
        for tables in (None, jpeg) if jpeg and fmt == "JPEG" else (None,):
            frame = None
            if tables:
                frame = _frame(rgba, x, y, side)
            try:
                punk, info = normalize_pixels(cell, alpha, fmt, self.palette, self.counts,
                                              f"{name} [{x}, {y}, {side}, {side}]", jpeg=tables,
                                              frame=frame)  # fmt: skip
            except ImageError:
                break
            p = self.predict_punk(punk, name, info)
            p.box = _box(x, y, info)
            best = _better(best, p)
            if p.verified or (_differing(p) > NEAR_MISS and not (retry and p.error)):
                break  # right, or far: not worth re-encoding (but a refused square is: the
                # page blurs into a small one's edges, and its reading alone may be far off)
        return best

    # -- explanation -----------------------------------------------------------------------

    def occlusion(self, punk: np.ndarray, traits: list[str]) -> dict[str, np.ndarray]:
        """Per trait, a (24, 24) map: how much the trait's score falls when that pixel is made
        transparent (the background). Scores are the recipe's (logits for ours, log-probabilities
        for the paper's nets)."""
        variants = np.repeat(punk[None], 24 * 24 + 1, 0)  # [0] is the punk itself
        ys, xs = np.divmod(np.arange(24 * 24), 24)
        variants[np.arange(1, 24 * 24 + 1), ys, xs] = 0
        scores = self.run.recipe.scores(self.run.model, variants, traits, self.run.config)
        return {t: np.clip(scores[0, j] - scores[1:, j], 0, None).reshape(24, 24)
                for j, t in enumerate(traits)}  # fmt: skip

    def explain(self, image, trait: str | None = None, zoom: int = 12) -> tuple[Image.Image, dict]:
        """A picture of the punk and, for each predicted trait (or `trait`), its heatmap."""
        if trait is not None and trait not in self.traits:
            raise PunktraitsError(f"unknown trait {trait!r}; see `punktraits data` for the names")
        name = str(image) if isinstance(image, (str, os.PathLike)) else None
        punk, info = self.to_punk(image, name)
        pred = self.predict_punk(punk, name, info)
        if pred.error:
            raise ImageError(pred.error, 422)
        if pred.drawn is not None and pred.drawn.fit is not None:
            punk = pred.drawn.drawn  # not every pixel was read: the answer's drawing stands in
        elif pred.mirrored:  # the answer is the flipped punk's: so are its heatmaps
            punk = np.ascontiguousarray(punk[:, ::-1])
        traits = [trait] if trait else [pred.type] + pred.accessories
        heat = self.occlusion(punk, traits)
        c = pred.drawn
        picture = render_explanation(punk, heat, pred.probabilities, zoom,
                                     c.drawn if c else None, c.where if c else None)  # fmt: skip
        return picture, heat

    # -- export ----------------------------------------------------------------------------

    def export_onnx(self, path: str | os.PathLike) -> None:
        """Write the network as ONNX (our recipe): input `rgba` (N, 4, 24, 24) float in [0, 1],
        output `probabilities` (N, T) in config['traits'] order."""
        self.run.recipe.export_onnx(self.run.model, Path(path))


def load_model(run: str | os.PathLike | None = None) -> Predictor:
    """The shipped default model, or the run folder `run` (written by `punktraits train`)."""
    return Predictor(run)


def _frame(rgba: np.ndarray, x: int, y: int, side: int) -> tuple[np.ndarray, int, int]:
    """The JPEG blocks (16x16) around a square as the file's encoder saw them, as far as can be
    told: decoded pixels, the page around the square restored to its one colour where it is
    within JPEG noise of it (a page is mostly flat; its decoded ringing would mislead)."""
    x0, y0 = x // 16 * 16, y // 16 * 16
    x1, y1 = -(-(x + side) // 16) * 16, -(-(y + side) // 16) * 16
    around = rgba[y0:y1, x0:x1, :3].copy()
    outside = np.ones(around.shape[:2], bool)
    outside[y - y0 : y - y0 + side, x - x0 : x - x0 + side] = False
    if outside.any():
        page = np.median(around[outside], 0)
        flat = outside & (np.abs(around.astype(np.int16) - page).max(-1) <= 24)
        around[flat] = np.rint(page).astype(np.uint8)
    return around, x - x0, y - y0


def _box(x: int, y: int, info: Normalized) -> list[int]:
    """The punk's own square in the picture: where its 24 cells are, border left out."""
    return [x + round(info.offset[0]), y + round(info.offset[1]),
            round(24 * info.scale[0]), round(24 * info.scale[1])]  # fmt: skip


def _better(a: Prediction | None, b: Prediction | None) -> Prediction | None:
    """The answer not refused; then one whose drawing, re-encoded in the file's own blocks,
    comes within REENCODED levels of it (the closer), over one not so weighed: the reading
    pixel by pixel of a square re-encoded so is rougher, but its answer was weighed by the
    file's encoder (#8560 96 px lanczos on a JPEG page: +Spots by the linear fit, 32 pixels
    differing; re-encoded, right within 0.013 levels, 379 pixels); then the one that draws back
    closer (the first when equal)."""
    if a is None or b is None:
        return a or b

    def key(p: Prediction) -> tuple:
        r = (p.check or {}).get("image_fit", {}).get("reencoded")
        close = p.error is None and r is not None and r <= REENCODED
        return p.error is None, close, -r if close else 0.0, -_differing(p)

    return b if key(b) > key(a) else a


def _given_back(p: Prediction) -> bool:
    """A small lossy file that the answer's drawing, re-encoded, gives back exactly: no other
    answer (its flip included) can explain it better."""
    return p.error is None and (p.check or {}).get("image_fit", {}).get("reencoded") == 0


def _fit_rms(p: Prediction) -> float:
    """How well the answer's drawing explains a lossy or smoothed image (inf: not weighed)."""
    fit = (p.check or {}).get("image_fit")
    return fit["rms"] if fit else float("inf")


def _differing(p: Prediction) -> int:
    """Pixels where the answer's drawing differs from the image (0 when not drawn back)."""
    return int((p.check or {}).get("differing_pixels") or 0)


def _overlap(a: list[int], b: list[int]) -> float:
    """Intersection over union of two boxes [x, y, w, h]."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _distinct(found: list[Prediction], name: str | None) -> list[Prediction]:
    """One answer per place: squares that overlap by more than half are one punk (the best drawn
    kept); two different punks drawn as well as each other there make the place ambiguous, and
    its answer an error that says so. In reading order."""
    keep: list[Prediction] = []
    near: dict[tuple[int, int], list[Prediction]] = {}  # kept boxes by the 64 px tiles they touch

    def tiles(b):
        return [(i, j) for i in range(b[0] // 64, (b[0] + b[2]) // 64 + 1)
                for j in range(b[1] // 64, (b[1] + b[3]) // 64 + 1)]  # fmt: skip

    for p in sorted(found, key=lambda p: (not p.verified, _differing(p))):
        seen = {id(q): q for t in tiles(p.box) for q in near.get(t, [])}.values()
        other = next((q for q in seen if _overlap(p.box, q.box) > 0.5), None)
        if other is None:
            keep.append(p)
            for t in tiles(p.box):
                near.setdefault(t, []).append(p)
        elif other.error is None and other.verified == p.verified and _said(p) != _said(other):
            other.error = (
                f"{name or 'image'}: ambiguous: two different punks fit overlapping squares "
                f"({_said(other)} at {other.box}; {_said(p)} at {p.box}); crop the picture "
                "to the one meant"
            )
            other.type, other.head, other.accessories, other.probabilities = None, None, [], {}
    return sorted(keep, key=lambda p: (p.box[1], p.box[0]))


def _said(p: Prediction) -> str:
    acc = ", ".join(p.accessories) or "no accessories"
    return f"{p.head} ({acc}{', mirrored' if p.mirrored else ''})"
