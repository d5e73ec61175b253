"""Answers that prove themselves: draw an answer back with the collection's drawing rules
(sprites.py, learned from the training split) and compare it with the normalised image.

    verifier = Verifier(sprites)
    check = verifier.check(punk, head="Male 2", accessories=["Earring"], confidence=...)
    check.verified, check.head, check.accessories, check.differing

- The drawing equals the image on every known pixel: `verified`.
- Otherwise nearby answers are drawn — the least confident traits first, one accessory per slot,
  the other heads of the same or the next likely type — and the one that draws the image is
  reported instead (`corrected_from` says what the network answered).
- If none draws it exactly, the nearest drawing is kept, `verified` is False, and `differing`
  counts the pixels where it and the image differ. An image that no trait set draws close to
  (more than `REFUSE` differing pixels) is not a CryptoPunk: `check.refused` says why.

Painted-over accessories never change a drawing: a verified answer keeps only the accessories its
drawing needs, so it claims the visible traits and nothing a later layer hides.

A lossy or smoothed image whose pixels cannot all be read back (a 36 px JPEG) is answered by
`fit_check` instead: the drawing that explains the image itself best (normalize.Fit), refused when
it explains it clearly worse than the pixel-by-pixel reading, verified when the file is small and
the drawing, re-encoded with the file's own encoder, gives it back exactly (`prove`: a pixel
reading of such a file is itself an estimate, so a drawing that equals it must pass this too) and
no other drawing one edit away does (`Check.ties`: the file cannot tell them apart).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .data import HEADS, TYPES
from .sprites import MAX_LAYERS, Sprites, gender

REFUSE = 12  # differing pixels beyond which an image is not a punk (real punks: 0; 1-2 px edits
#              of a punk are answered, unverified; non-punks differ in 100s, see RESULTS)
ROUNDS = 6  # greedy improvement rounds when the first drawing differs


@dataclass
class Check:
    """The answer drawn back and compared with the image."""

    verified: bool  # the drawing equals the image on every known pixel
    head: str  # the head drawn (type with skin tone)
    accessories: list[str]  # the accessories drawn, in layer order
    differing: int  # known pixels where the drawing and the image differ
    unknown: int  # pixels the learned sprites cannot know (never seen in training)
    tried: int  # answers drawn
    corrected_from: dict | None = None  # the network's answer, when another one is reported
    drawn: np.ndarray | None = field(default=None, repr=False)  # (24, 24, 4) the drawing
    where: np.ndarray | None = field(default=None, repr=False)  # (24, 24) bool: differing
    fit: dict | None = None  # a lossy or smoothed image: how the drawing explains the image
    #   itself (see `fit_check`): {"rms", "reading_rms", "limit" (None: a 24 px file, weighed
    #   by re-encoding alone), "reencoded" (a small lossy file)}
    ties: list[dict] = field(default_factory=list)  # other answers whose drawings give the
    #   file back exactly too: the file cannot tell them apart (never `verified` then)

    @property
    def refused(self) -> str | None:
        """None, or why this image is not a CryptoPunk."""
        acc = ", ".join(self.accessories) or "no accessories"
        if self.fit is not None:
            f = self.fit
            if f["limit"] is None:  # too few samples to weigh: re-encoding alone tells
                if f["reencoded"] <= REENCODED:
                    return None
                return (
                    f"not a CryptoPunk: the nearest drawing ({self.head}; {acc}), re-encoded "
                    f"with the file's encoder, differs from it by {f['reencoded']:.1f} levels "
                    f"a value on average (a punk's: at most {REENCODED})"
                )
            if f["rms"] <= f["limit"] * f["reading_rms"] or f.get("reencoded", 99) <= REENCODED:
                return None
            again = ""
            if "reencoded" in f:
                again = (f"; re-encoded with the file's encoder, {f['reencoded']:.1f} levels a "
                         f"value from it on average (a punk's: at most {REENCODED})")  # fmt: skip
            return (
                f"not a CryptoPunk: the nearest drawing ({self.head}; {acc}) explains the image "
                f"{f['rms'] / max(f['reading_rms'], 1e-9):.1f}x worse than the best reading pixel "
                f"by pixel (RMS {f['rms']:.1f} vs {f['reading_rms']:.1f}; a punk's is at most "
                f"{f['limit']:.2f}x){again}"
            )
        if self.differing <= REFUSE:
            return None
        return (
            f"not a CryptoPunk: the nearest drawing ({self.head}; {acc}) differs from it in "
            f"{self.differing} of {576 - self.unknown} pixels"
        )

    @property
    def type(self) -> str:
        return self.head.split()[0]

    def to_dict(self) -> dict:
        return {
            "verified": self.verified,
            "differing_pixels": self.differing,
            "unknown_pixels": self.unknown,
            "tried": self.tried,
            "corrected_from": self.corrected_from,
            **({"image_fit": self.fit} if self.fit is not None else {}),
            **({"ties": self.ties} if self.ties else {}),
        }


class Verifier:
    """Draws answers with `sprites` and searches nearby ones."""

    def __init__(self, sprites: Sprites):
        self.sprites = sprites
        self.slot = {a: k for k, group in enumerate(sprites.slots) for a in group}
        self.layer = {a: k for k, a in enumerate(sprites.order)}
        versions = set(sprites.versions)
        self.wearable = {g: [a for a in sprites.order if (a, g) in versions]
                         for g in ("male", "female")}  # fmt: skip

    def _draw(self, answers: list[tuple[str, tuple[str, ...]]], punk: np.ndarray):
        """Differing (N,), unknown (N,) pixel counts, the images and the differing masks."""
        images, known = self.sprites.render_many(answers)  # (N, 24, 24, 4), (N, 24, 24)
        differ = (images != punk).any(-1) & known  # (N, 24, 24)
        return differ.sum((1, 2)), (~known).sum((1, 2)), images, differ

    def _legal(self, head: str, acc: tuple[str, ...]) -> tuple[str, ...] | None:
        """The accessories in layer order, or None when `head` cannot wear them."""
        g = gender(head)
        if any((a, g) not in self.sprites.versions for a in acc) or len(acc) > 7:
            return None
        return tuple(sorted(acc, key=self.layer.get))

    def _neighbours(self, head: str, acc: tuple[str, ...], heads: list[str]):
        """Answers one edit away: another head, an accessory added (replacing the one in its
        slot) or removed."""
        out = [(h, acc) for h in heads if h != head]
        for a in self.wearable[gender(head)]:
            if a in acc:
                out.append((head, tuple(x for x in acc if x != a)))
            else:
                out.append((head, tuple(x for x in acc if self.slot[x] != self.slot[a]) + (a,)))
        return [(h, legal) for h, a in out if (legal := self._legal(h, a)) is not None]

    def check_many(
        self, punks: np.ndarray, answers: list[tuple[str, list[str]]], heads: list[list[str]]
    ) -> list[Check]:
        """`check` for many punks (N, 24, 24, 4): the answers are drawn in one go, and only the
        ones whose drawing differs are searched."""
        starts = [self._start(h, a) for h, a in answers]
        diff, unknown, images, where = self._draw(starts, punks)
        firsts = [(int(diff[i]), int(unknown[i]), *starts[i], images[i], where[i])
                  for i in range(len(answers))]  # fmt: skip
        exact = self._visible_only_many(punks, firsts)  # (most answers: drawn right at once)
        out = []
        for i, (h, a) in enumerate(answers):
            if i in exact:
                out.append(self._checked(h, a, *exact[i]))
            else:
                out.append(self._search(punks[i], h, a, heads[i], firsts[i]))
        return out

    def check(self, punk: np.ndarray, head: str, accessories: list[str],
              heads: list[str] | None = None) -> Check:  # fmt: skip
        """Draw `head` with `accessories` and compare with `punk` (24, 24, 4) uint8; search
        nearby answers if they differ. `heads`: the heads to try, most likely first (default:
        the heads of the same type)."""
        heads = heads or [h for h in HEADS if h.split()[0] == head.split()[0]]
        return self.check_many(punk[None], [(head, accessories)], [heads])[0]

    def _start(self, head: str, accessories: list[str]) -> tuple[str, tuple[str, ...]]:
        legal = self._legal(head, tuple(accessories))
        if legal is None:  # e.g. a female-only accessory on a male head: drop what cannot be
            # drawn, keep the first of each slot in the order given (the likeliest first) and at
            # most the 7 a punk can wear; the search then adds or removes from there
            g = gender(head)
            slot = {a: k for k, group in enumerate(self.sprites.slots) for a in group}
            kept: list[str] = []
            for a in accessories:
                if (a, g) in self.sprites.versions and slot.get(a) not in {slot[b] for b in kept}:
                    kept.append(a)
            legal = tuple(a for a in self.sprites.order if a in kept[: MAX_LAYERS - 1])
        return head, legal

    @staticmethod
    def _without_one(best) -> list[tuple[str, tuple[str, ...]]]:
        """The answers of drawing `best` with one of its accessories left out, in its order."""
        h, acc = best[2], best[3]
        return [(h, tuple(x for x in acc if x != a)) for a in acc]

    @staticmethod
    def _needless(diff: np.ndarray, unknown: np.ndarray, best) -> int | None:
        """The first of `_without_one(best)`'s drawings (their differing and unknown pixel
        counts) whose left-out accessory is not needed: the drawing stays equal and no pixel it
        explained becomes unknown (a hat over the Ape's crown, which no training punk shows
        bare, is needed); None when each is."""
        ok = np.flatnonzero((diff == 0) & (unknown <= best[1]))
        return int(ok[0]) if len(ok) else None

    def _visible_only(self, punk, best):
        """Drop accessories the drawing does not need (painted over by later layers): an answer
        claims only what its pixels show, as the visible labels do."""
        tried = 0
        while best[3]:
            cands = self._without_one(best)
            diff, unknown, images, where = self._draw(cands, punk)
            tried += len(cands)
            k = self._needless(diff, unknown, best)
            if k is None:
                break
            best = (0, int(unknown[k]), *cands[k], images[k], where[k])
        return best, tried

    def _visible_only_many(self, punks, bests) -> dict[int, tuple]:
        """`_visible_only` of every exact drawing among `bests` (one per punk), the first round
        of all drawn in one go: {punk: (best, answers drawn)}. Most drawings need every
        accessory, and one call per punk cost more than the network (0.4 ms a punk)."""
        exact = [i for i, b in enumerate(bests) if b[0] == 0]
        cands, owner = [], []
        for i in exact:
            mine = self._without_one(bests[i])
            cands += mine
            owner += [i] * len(mine)
        out = {i: (bests[i], 1) for i in exact}
        if not cands:
            return out
        diff, unknown, images, where = self._draw(cands, punks[owner])
        start = 0
        for i in exact:
            n = len(bests[i][3])
            k = self._needless(diff[start : start + n], unknown[start : start + n], bests[i])
            if k is None:
                out[i] = (bests[i], 1 + n)
            else:
                k += start
                best, more = self._visible_only(punks[i], (0, int(unknown[k]), *cands[k],
                                                           images[k], where[k]))  # fmt: skip
                out[i] = (best, 1 + n + more)
            start += n
        return out

    def _search(self, punk, head, accessories, heads, best) -> Check:
        tried = 1
        for _ in range(ROUNDS if best[0] else 0):
            cands = self._neighbours(best[2], best[3], heads)
            diff, unknown, images, where = self._draw(cands, punk)
            tried += len(cands)
            k = int(np.lexsort((unknown, diff))[0])  # fewest differing, then fewest unknown
            if (diff[k], unknown[k]) >= (best[0], best[1]):
                break
            best = (int(diff[k]), int(unknown[k]), *cands[k], images[k], where[k])
            if best[0] == 0:
                break
        if best[0] == 0:
            best, n = self._visible_only(punk, best)
            tried += n
        return self._checked(head, accessories, best, tried)

    def _checked(self, head, accessories, best, tried) -> Check:
        """The Check of the drawing `best` for the network's answer (`head`, `accessories`)."""
        d, u, h, acc, image, mask = best
        asked = (head, tuple(sorted(accessories, key=lambda a: self.layer.get(a, 99))))
        changed = (h, acc) != asked
        return Check(
            verified=d == 0, head=h, accessories=list(acc), differing=d, unknown=u, tried=tried,
            corrected_from={"head": head, "accessories": list(asked[1])} if changed else None,
            drawn=image, where=mask,
        )  # fmt: skip


def fit_search(verifier: Verifier, fit, starts: list[tuple[str, list[str]]], heads: list[str],
               flip: bool = False, rounds: int = 2 * ROUNDS) -> tuple[list, np.ndarray, int]:  # fmt: skip
    """The answers whose drawings explain an image best as the image was drawn (`fit`, a
    normalize.Fit: its resize, background and noise), by greedy edits from each of `starts`: a
    lossy or smoothed image that does not give back every pixel still tells whole drawings apart.
    `flip`: the image shows the punk mirrored. Returns the answers drawn, best first, their
    squared errors, and how many were drawn."""
    seen: dict[tuple, float] = {}

    def score(answers):
        images, _ = verifier.sprites.render_many(answers)
        errs = fit.errors(images[:, :, ::-1] if flip else images)
        seen.update(zip(answers, errs.tolist()))
        return errs

    legal = list(dict.fromkeys(verifier._start(h, acc) for h, acc in starts))
    score(legal)
    # A walk from each start, the best first: from the better start alone the walk can stop
    # in another punk's valley (#7967 at 36 px nearest JPEG q70: from the pixel search's Ape
    # to a Male 1 with a Cap Forward, 18x the truth's error, reached from the network's Zombie)
    for best in sorted(legal, key=seen.get):
        err = seen[best]
        for _ in range(rounds):
            near = verifier._neighbours(*best, heads)
            new = [c for c in near if c not in seen]
            if new:
                score(new)
            if not near:
                break
            k = min(near, key=seen.get)  # (those seen before: worse than where this walk is,
            if seen[k] >= err - 1e-6:  # on the first walk, as when only new ones were drawn)
                break
            best, err = k, seen[k]
    ranked = sorted(seen, key=seen.get)
    return ranked, np.array([seen[a] for a in ranked]), len(seen)


def _needed(verifier: Verifier, answer: tuple[str, tuple[str, ...]]) -> tuple[str, tuple[str, ...]]:
    """The answer without the accessories its drawing does not need (painted over by later
    layers): an answer claims only what its pixels show."""
    while answer[1]:
        head, acc = answer
        cands = [(head, tuple(x for x in acc if x != a)) for a in acc]
        images, known = verifier.sprites.render_many([answer, *cands])
        same = (images[1:] == images[0]).all((1, 2, 3)) & (known[1:] >= known[0]).all((1, 2))
        if not same.any():
            break
        answer = cands[int(np.flatnonzero(same)[0])]
    return answer


def _one_per_drawing(images: np.ndarray) -> np.ndarray:
    """Indices of the first of each distinct drawing among (N, 24, 24, 4) images, in order."""
    firsts: dict[bytes, int] = {}
    for j, image in enumerate(images):
        firsts.setdefault(image.tobytes(), j)
    return np.array(sorted(firsts.values()), np.int64)


def _reencoding(verifier: Verifier, fit, ranked: list, heads: list[str], flip: bool,
                settle: bool = False, rounds: int = ROUNDS) -> tuple[list[tuple[float, tuple]], int]:  # fmt: skip
    """How close the answers' drawings, re-encoded, give a small lossy file back (mean levels):
    the `ranked` ones (one per drawing, RERANK at most; with `settle`, the drawing is settled on
    the first), then one edit at a time from the best while that comes closer. Returns (score,
    answer) pairs, closest first, and how many answers were drawn."""
    images, _ = verifier.sprites.render_many(ranked)
    top = _one_per_drawing(images)[:RERANK]
    images = images[top]
    again = fit.reencode(images[:, :, ::-1] if flip else images, settle)
    scores = {ranked[j]: float(e) for j, e in zip(top, again)}
    best = min(scores, key=scores.get)
    seen = set(scores)
    for _ in range(rounds):
        if scores[best] == 0:
            break  # the file itself
        cands = [c for c in verifier._neighbours(*best, heads) if c not in seen]
        if not cands:
            break
        seen.update(cands)
        images, _ = verifier.sprites.render_many(cands)
        again = fit.reencode(images[:, :, ::-1] if flip else images)
        scores.update(zip(cands, again.tolist()))
        if again.min() >= scores[best]:
            break
        best = cands[int(again.argmin())]
    return sorted(((e, a) for a, e in scores.items()), key=lambda t: t[0]), len(scores)


def _simplest(scored: list[tuple[float, tuple]], score: float, best: tuple,
              margin: float) -> tuple[float, tuple]:  # fmt: skip
    """`best` (`score` mean levels re-encoded), or the closest of the answers re-encoded alike
    (`scored`: (mean levels, answer)) with a part of its accessories and the same head that
    comes within `margin` levels of it: where no drawing gives the file back, a trait the
    noise may have made (a Mole, Rosy Cheeks: a few cells a few levels off) must earn its place
    by more."""
    mine = set(best[1])
    fewer = [(e, len(a[1]), a) for e, a in scored
             if a[0] == best[0] and set(a[1]) < mine and e < score + margin]  # fmt: skip
    if not fewer:
        return score, best
    e, _, a = min(fewer, key=lambda t: t[:2])
    return e, a


def _plainest(ranked: list[tuple], errs: np.ndarray, samples: int) -> tuple:
    """The best of `ranked` (answers, best first, by squared errors `errs` over `samples`
    values), or the one with the fewest accessories, the same head and a part of its
    accessories, whose error is within PLAIN times the best's noise (its error per value) of
    it: a trait must explain more than the noise could (a Mole, a Silver Chain: a few cells)."""
    best, least = ranked[0], float(errs[0])
    margin = PLAIN * max(least, 0.0) / samples
    mine = set(best[1])
    fewer = [(len(a[1]), e, a) for a, e in zip(ranked, errs.tolist())
             if a[0] == best[0] and set(a[1]) < mine and e < least + margin]  # fmt: skip
    return min(fewer)[2] if fewer else best


def _ties(verifier: Verifier, fit, best: tuple, scored: list[tuple[float, tuple]],
          heads: list[str], flip: bool) -> tuple[tuple, list[tuple]]:  # fmt: skip
    """`best` gives a small lossy file back exactly, re-encoded: the other drawings that do too,
    among those re-encoded (`scored`) and one edit from it (a Silver Chain's three pixels at
    1.5 px a cell can vanish in the encoder's rounding; those that come near are tried on
    the backgrounds a level around too: `normalize.TIE_NEAR`). Returns the answer to give and
    the others. The file cannot tell them apart; a punk is likelier without any one accessory
    (the commonest, Earring, is worn by a quarter), so the one with the fewest accessories is
    given, then the one the linear fit (the decoded values) prefers."""
    done = {a for _, a in scored}
    cands = [a for a in verifier._neighbours(*best, heads) if a not in done]
    cands += [a for e, a in scored if e > 0]  # (told again: a WebP's may give it back nearby)
    exact = [a for e, a in scored if e == 0]
    if cands:
        images, _ = verifier.sprites.render_many([best, *cands])
        images = images[:, :, ::-1] if flip else images
        again = fit.reencode(images[1:], exact=True, like=images[0])
        exact += [a for a, e in zip(cands, again.tolist()) if e == 0]
    found = list(dict.fromkeys(_needed(verifier, a) for a in [best, *exact]))
    images, _ = verifier.sprites.render_many(found)
    one = _one_per_drawing(images)
    if len(one) == 1:
        return found[0], []
    found, images = [found[k] for k in one], images[one]
    errs = fit.errors(images[:, :, ::-1] if flip else images)
    order = sorted(range(len(found)), key=lambda k: (len(found[k][1]), errs[k]))
    return found[order[0]], [found[k] for k in order[1:]]


PARSIMONY = 0.225  # mean levels, over the pixels per cell side (x1.5: 0.15), by which a
#                   re-encoded drawing that does not give the file back must beat the same with
#                   fewer accessories (36 px JPEGs, seeds 0 and 1: the wrong extra traits won by
#                   0.03-0.17 levels, the right by 0.16-0.23; 100 px: the right Moles by 0.09-0.17)
REENCODED = 3.0  # mean levels within which a drawing re-encoded with a small lossy file's encoder
#                 comes to the file: it is that punk, however much the noise hid, and however
#                 badly the linear fit explains it (real punks: at most 2.0 at 24 px q85, 2.3 at
#                 36 px WebP q70, where area and hamming renders fit 1.6-2.1x worse than their
#                 readings; the not-punks of benchmarks/notpunks.py that re-encode: 15.3 up)
SETTLE = 4  # the answers the drawing is settled on again, in turn, when none gives the file
#            back: settled on a wrong answer, the background and (WebP) quality can hide the
#            right one, which gives the file back once settled on itself (36 px WebP: 7 of 13
#            misses; see RESULTS)
RERANK = 12  # the answers a small lossy image re-encodes, best by the linear fit first
PLAIN = 10.0  # times the best drawing's own error per value (its noise, squared) by which an
#              answer with more accessories must explain a lossy image not re-encoded (a square
#              cut from a JPEG page) better than the same head with fewer: noise alone lets a
#              wrong trait win by about z^2 of it at z sigmas (iid; JPEG's is not). Squares of
#              JPEG q90 pages (benchmarks/screenshots.py, seeds 0 and 1), 2026-11-28: a wrong
#              Silver Chain (#3282) won by 0.4-6.5, a wrong Mole (#1506) by ~1; 470 right
#              traits by 19.2 (a Mole, #6417 on seed 1) and up, 23.5 and 27.4 next
FIT_SLACK = 1.2  # a punk's drawing explains a lossy or smoothed image at most this much worse
#                 (RMS) than the pixel-by-pixel reading, beyond what that reading's freedom buys


def fit_check(verifier: Verifier, fit, reading: np.ndarray, network: tuple[str, list[str]],
              first: Check, heads: list[str], flip: bool = False) -> Check | None:  # fmt: skip
    """For a lossy or smoothed image whose pixel-by-pixel `reading` (24, 24, 4) did not draw
    back (`first`, the pixel search's result): the answer whose drawing explains the image
    itself best (`fit_search` from the network's answer and the pixel search's), as a Check
    whose `fit` says how well, next to how well the reading does.

    The reading is free per pixel, so it fits the noise too: the truth explains the image a
    little worse. With n values compared and k = 576 x channels free ones, noise alone makes
    the truth's RMS about sqrt(n / (n - k)) times the reading's; `limit` is that times
    FIT_SLACK. An image no drawing explains within it is not a punk (`Check.refused`).

    An image with too few samples to weigh drawings (under two per punk value: a 24 px JPEG,
    whose colours the encoder smears over 2x2 pixels) is searched by re-encoding alone, from
    the same two answers (an edit at a time: 20/20 punks found from no answer at all), and is
    a punk when a drawing re-encoded comes within REENCODED levels of it (`limit` None), as is
    any small lossy image.
    None when it cannot be re-encoded either."""
    k = 576 * fit.b.shape[-1]
    few = fit.samples < 2 * k
    if few and fit.reencode is None:
        return None
    extra = {}
    starts = [network, (first.head, first.accessories)]
    if few:
        ranked, tried = list(dict.fromkeys(verifier._start(h, a) for h, a in starts)), 0
    else:
        ranked, errs, tried = fit_search(verifier, fit, starts, heads, flip)
    best = ranked[0]
    if fit.reencode is None and not few:  # (re-encoding has its own rule: `_simplest`)
        best = _plainest(ranked, errs, fit.samples)
    if fit.reencode is not None:  # where noise blurs colours, the encoder tells them apart
        rounds = 2 * ROUNDS if few else ROUNDS  # (from a wrong start: a head and 7 accessories)
        scored, n = _reencoding(verifier, fit, ranked[: 2 * RERANK], heads, flip, rounds=rounds)
        tried += n
        score, best = scored[0]
        for _, answer in scored[:SETTLE] if score > 0 else []:
            # the drawing (background, filter) was settled on the reading, a level off: settle
            # it on the SETTLE closest answers in turn, and keep the one that comes closest
            again, n = _reencoding(verifier, fit, [answer, *ranked[: 2 * RERANK]], heads, flip,
                                   settle=True, rounds=rounds)  # fmt: skip
            tried += n
            if again[0][0] < score:
                score, best = again[0]
                scored = again
            if score == 0:
                break
        if score > 0:  # (the noise a trait must beat shrinks as its cells have more pixels)
            margin = PARSIMONY / float(np.sqrt(fit.samples / k))
            score, best = _simplest(scored, score, best, margin)
        extra = {"reencoded": round(score, 3)}
    best = _needed(verifier, best)
    ties = []
    if extra.get("reencoded") == 0.0:
        best, ties = _ties(verifier, fit, best, scored, heads, flip)
    return _fitted(verifier, fit, reading, network, best, ties, extra, first.tried + tried, flip)


def _fitted(verifier: Verifier, fit, reading: np.ndarray, network: tuple[str, list[str]],
            best: tuple, ties: list[tuple], extra: dict, tried: int, flip: bool) -> Check:  # fmt: skip
    """The Check of `best`, an answer weighed against a lossy or smoothed image itself."""
    k = 576 * fit.b.shape[-1]
    images, known = verifier.sprites.render_many([best])
    drawn = images[0]
    where = (drawn != reading).any(-1) & known[0]  # both as the punk is (`flip` aside)
    rms, reading_rms = fit.rms(np.stack([drawn, reading])[:, :, :: -1 if flip else 1]).tolist()
    few = fit.samples < 2 * k
    limit = None if few else FIT_SLACK * float(np.sqrt(fit.samples / (fit.samples - k)))
    head, acc = network
    asked = (head, tuple(sorted(acc, key=lambda a: verifier.layer.get(a, 99))))
    return Check(
        # a small lossy file given back exactly by the drawing re-encoded: proven as surely
        # as a pixel-for-pixel drawing (the encoder is deterministic), unless another does too
        verified=extra.get("reencoded") == 0.0 and not ties, head=best[0],
        accessories=list(best[1]),
        differing=int(where.sum()),
        unknown=int((~known[0]).sum()), tried=tried,
        corrected_from={"head": head, "accessories": list(asked[1])} if best != asked else None,
        drawn=drawn, where=where,
        fit={"rms": round(rms, 3), "reading_rms": round(reading_rms, 3),
             "limit": None if limit is None else round(limit, 3), **extra},
        ties=[{"head": h, "accessories": list(a)} for h, a in ties],
    )  # fmt: skip


def prove(verifier: Verifier, fit, reading: np.ndarray, network: tuple[str, list[str]],
          first: Check, heads: list[str], flip: bool = False) -> Check:  # fmt: skip
    """A small lossy file (`fit.reencode`) whose pixel-by-pixel `reading` the answer `first`
    draws exactly: the reading is itself an estimate, so the answer is proven only when its
    drawing, re-encoded, gives the file back and no other drawing one edit away does too
    (`_ties`). Otherwise it is answered as a reading that did not draw back (`fit_check`)."""
    answer = (first.head, tuple(first.accessories))
    images, _ = verifier.sprites.render_many([answer])
    image = images[:, :, ::-1] if flip else images
    score = float(fit.reencode(image)[0])
    if score > 0:  # (the drawing was settled on the reading)
        score = float(fit.reencode(image, True)[0])
    if score > 0:
        unproven = replace(first, verified=False)
        return fit_check(verifier, fit, reading, network, unproven, heads, flip) or unproven
    best, ties = _ties(verifier, fit, answer, [(0.0, answer)], heads, flip)
    if not ties:
        return first
    return _fitted(verifier, fit, reading, network, best, ties, {"reencoded": 0.0}, first.tried,
                   flip)  # fmt: skip


def likely_heads(type_prob: dict[str, float], head_prob: dict[str, float] | None) -> list[str]:
    """Heads to try, most likely first: by the network's head outputs when it has them, else
    the heads of each type in the order of the type probabilities."""
    if head_prob:
        return sorted(head_prob, key=head_prob.get, reverse=True)
    kinds = sorted(TYPES, key=lambda t: -type_prob.get(t, 0.0))
    return [h for t in kinds for h in HEADS if h.split()[0] == t]
