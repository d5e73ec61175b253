"""Issue 9: renders that do not give back every pixel (small JPEGs, smoothing filters) are
answered by the drawing that explains the image itself (normalize.Fit, verify.fit_check), and
what no drawing explains is still refused. Renders are made at run time from the data folder."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import cut, encode
from PIL import Image

import punktraits.normalize as N
from punktraits import data as D
from punktraits.normalize import FILTERS, Fit
from punktraits.predict import load_model
from punktraits.sprites import heads_of
from punktraits.verify import PLAIN, _plainest, _simplest

BLUE = (0x63, 0x85, 0x96)


@pytest.fixture(scope="module")
def model():
    return load_model()


def render(punk, size, filt, fmt="JPEG", **kw) -> bytes:
    """As a browser draws it: resized with its transparency, then on the site blue."""
    im = Image.fromarray(punk, "RGBA")
    if filt == "area":  # a large nearest render box-filtered down
        im = im.resize((1024, 1024), Image.NEAREST).resize((size, size), Image.BOX)
    else:
        im = im.resize((size, size), FILTERS[filt][0])
    canvas = Image.new("RGBA", im.size, BLUE + (255,))
    canvas.alpha_composite(im)
    return encode(canvas.convert("RGB"), fmt, **kw)


def answer(p) -> tuple:
    """What a batch must answer as each file alone does (the probabilities may differ in the
    7th digit with the batch's size)."""
    return p.error, p.head, p.accessories, p.verified, (p.check or {}).get("ties")


def visible(punks, i: int) -> tuple[str, set[str]]:
    return heads_of(punks)[i], {a for a in punks.layers[i] if not punks.hidden[i, D.TRAIT_INDEX[a]]}


def test_fit_errors_are_the_drawings_squared_error():
    """Fit.errors' 24x24 algebra equals drawing each punk through the weights and summing."""
    rng = np.random.default_rng(0)
    wy, wx = rng.random((40, 24)), rng.random((31, 24))
    bg = np.array([99.0, 133.0, 150.0])
    r = rng.normal(0, 20, (40, 31, 3))
    fit = Fit(wy.T @ wy, wx.T @ wx, np.einsum("yi,yxc,xj->ijc", wy, r, wx), float((r * r).sum()),
              bg, r.size)  # fmt: skip
    punks = rng.integers(0, 256, (5, 24, 24, 4)).astype(np.uint8)
    punks[..., 3] = rng.choice([0, 128, 255], (5, 24, 24))
    a = punks[..., 3:] / 255.0
    v = punks[..., :3] * a - bg * a  # as shown on the background, minus it
    brute = [((np.einsum("yi,ijc,xj->yxc", wy, v[n], wx) - r) ** 2).sum() for n in range(5)]
    np.testing.assert_allclose(fit.errors(punks), brute, rtol=1e-9)


DRAWN = "read by drawing the answer back"


@pytest.mark.parametrize("answer_first", [True, False])
@pytest.mark.parametrize("filt", [*FILTERS])
def test_small_jpegs_of_every_filter_are_read(model, punks, filt, answer_first, monkeypatch):
    """x1.5 and x2 JPEGs (q85, q70) lose whole pixels to chroma subsampling and ringing: the
    pixel reading does not draw back, yet the traits are all right, drawn back through the
    file's own encoder (the same encoder gives the file back: 0 levels; an area average, a
    1024 px nearest render box-filtered down, is settled as one: normalize.AREA_SOURCES).
    Either the network's answer for a rough reading gives the file back at once
    (`answer_first`, the normaliser's `guess`), or, without that, the whole drawings are
    weighed against the image and re-encoded (`verify.fit_check`)."""
    if not answer_first:
        monkeypatch.setattr(
            model, "_guess", lambda punk, near=None: np.zeros((0, 24, 24, 4), np.uint8)
        )
    for i, size, q in [(275, 36, 85), (2487, 48, 70), (8348, 36, 70)]:
        p = model.predict_batch([render(punks.images[i], size, filt, quality=q)])[0]
        assert p.error is None, (filt, i, p.error)
        assert (p.head, set(p.accessories)) == visible(punks, i), (filt, size, i)
        assert p.verified, (filt, i, p.check)  # given back exactly: proven
        assert p.original is not None and p.original["id"] == i
        if any(DRAWN in n for n in p.normalized["notes"]):
            assert answer_first and p.check["differing_pixels"] == 0
            continue
        fit = p.check["image_fit"]
        assert fit["reencoded"] == 0.0, (filt, i, fit)
        assert fit["rms"] <= fit["limit"] * fit["reading_rms"]


@pytest.mark.parametrize(("size", "quality"), [(36, 85), (100, 70), (100, 85), (310, 85)])
def test_a_browsers_pixelated_jpeg_is_read_and_proven(model, punks, size, quality):
    """A screenshot of a punk shown `image-rendering: pixelated` (Chromium cuts the nearest
    cells at phase 11: a tie goes to the cell before, where Pillow's goes to the one after),
    saved as JPEG: the cells at that phase, drawn and re-encoded with the file's tables, give
    the file back (Chromium's JPEG encoder is libjpeg's, as Pillow's: benchmarks/browser.py
    screenshots re-encode exactly). Before the phase was searched, 36 px ones were 81% right."""
    for i in (275, 2890, 5905, 8348):
        data = encode(cut(punks.images[i], size, 11), "JPEG", quality=quality)
        p = model.predict_batch([data])[0]
        assert p.error is None, (size, i, p.error)
        assert (p.head, set(p.accessories)) == visible(punks, i), (size, i)
        assert p.verified, (size, i, p.check)
        assert p.normalized["filter"] == "nearest"
        assert any("pixelated" in n for n in p.normalized["notes"]), p.normalized["notes"]


def test_each_likely_drawings_rough_answer_is_tried_before_any_is_descended(
    model, punks, monkeypatch
):
    """A lossless lanczos render fits bicubic's grid best, and the answers for bicubic's rough
    readings do not give it back (#1474 at 100 px: no Gold Chain); the answer for lanczos's
    rough reading does. It is drawn back before any reading is descended (10-20 ms each)."""
    data = render(punks.images[1474], 100, "lanczos", "PNG")
    rgba = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    assert [g[1] for g in N._likely(N._grids(rgba, False))][:2] == ["bicubic", "lanczos"]
    descents = []
    descend = N._Drawing.descend
    monkeypatch.setattr(N._Drawing, "descend",
                        lambda d, *a, **k: descents.append(d.filt) or descend(d, *a, **k))  # fmt: skip
    p = model.predict_batch([data])[0]
    assert (p.head, set(p.accessories)) == visible(punks, 1474)
    assert p.verified and any(DRAWN in n for n in p.normalized["notes"]), p.normalized
    assert p.normalized["filter"] == "lanczos"
    assert descents == []


def test_the_rough_readings_answers_together_can_give_a_render_back(model, punks, monkeypatch):
    """#4669 (five accessories) at 100 px lanczos: the network's answer for each likely
    drawing's rough reading misses one of them (the Mole, or the Small Shades); their
    accessories together are the punk, and drawn back they give the file back: nothing is
    descended (before: six descents and ~0.3 s of exact search, and no proof)."""
    descents, unions = [], []
    descend, union = N._Drawing.descend, N._Answers.union
    monkeypatch.setattr(N._Drawing, "descend",
                        lambda d, *a, **k: descents.append(d.filt) or descend(d, *a, **k))  # fmt: skip
    monkeypatch.setattr(N._Answers, "union",
                        lambda s, d: unions.append(union(s, d)) or unions[-1])  # fmt: skip
    p = model.predict_batch([render(punks.images[4669], 100, "lanczos", "PNG")])[0]
    assert (p.head, set(p.accessories)) == visible(punks, 4669)
    assert p.verified and any(DRAWN in n for n in p.normalized["notes"]), p.normalized
    assert len(unions) == 1 and unions[0] is not None
    assert descents == []


@pytest.mark.parametrize(
    "filt, size, quality",
    [("bicubic", 310, 85), ("hamming", 152, 70), ("bilinear", 100, 85), ("lanczos", 310, None),
     ("area", 100, None), ("bicubic", 77, None)],
)  # fmt: skip
def test_the_answer_drawn_back_is_the_reading(model, punks, filt, size, quality, monkeypatch):
    """A smoothed render, or one saved as JPEG (its background moved by the encoder: q70 maps
    up to 16 colours onto one), is read by drawing the network's answer for a rough reading
    the way the image was drawn: it gives every pixel back (re-encoded with the file's
    encoder), so the search is skipped. Only the answer itself does: with a Mole or an Earring
    more or less (a few pixels), the drawing does not give the file back and the search reads
    it as before."""
    fmt, kw = ("JPEG", {"quality": quality}) if quality else ("PNG", {})
    for i in (275, 3100, 8348):
        data = render(punks.images[i], size, filt, fmt, **kw)
        p = model.predict_batch([data])[0]
        assert (p.head, set(p.accessories)) == visible(punks, i), (filt, size, i)
        assert p.verified and any(DRAWN in n for n in p.normalized["notes"]), p.normalized
        assert p.normalized["filter"] == filt
        right = model.verifier.sprites.render(p.head, p.accessories)
        for small in ("Mole", "Earring", "Rosy Cheeks"):  # the first drawable and visible
            acc = sorted(set(p.accessories) ^ {small})
            wrong, known = model.verifier.sprites.render_with_mask(p.head, acc)
            if known.all() and (wrong != right).any():
                break
        assert known.all() and (wrong != right).any(-1).sum() <= 4
        with monkeypatch.context() as m:
            m.setattr(model, "_guess",  # (and nothing around it: see the next test)
                      lambda punk, near=None, wrong=wrong: wrong[None][: near is None])  # fmt: skip
            q = model.predict_batch([data])[0]
        assert not any(DRAWN in n for n in q.normalized["notes"]), q.normalized
        assert (q.head, set(q.accessories)) == visible(punks, i), (filt, size, i)


@pytest.mark.parametrize("filt, size, quality", [("bilinear", 100, 70), ("hamming", 72, 85)])
def test_a_jpegs_answer_an_edit_off_is_walked_to_the_right_one(model, punks, filt, size, quality,
                                                                monkeypatch):  # fmt: skip
    """When the network's answer for a rough reading of a JPEG is an accessory off (or its head),
    the answers one edit away are weighed by how well their drawing explains the image, and
    the best (again, while it comes closer) is drawn back: it gives the file back, so the
    search is skipped (at 100 px q70, 9 of 30 first answers were off, 7 by one edit). Only in a
    small JPEG (at most 112 x 112), where the search is slow."""
    real = model._guess
    for i in (0, 485, 1067):
        data = render(punks.images[i], size, filt, "JPEG", quality=quality)
        head, acc = visible(punks, i)
        for drop in sorted(acc):  # an accessory forgotten (one that can be drawn without it)
            off = (head, model.verifier._legal(head, tuple(sorted(acc - {drop}))))
            wrong, known = model.verifier.sprites.render_with_mask(*off)
            if known.all():
                break
        assert known.all(), i

        def guess(punk, near=None, wrong=wrong, off=off):
            if near is None:
                model._guessed[wrong.tobytes()] = off
                return wrong[None]
            return real(None, near=near)

        monkeypatch.setattr(model, "_guess", guess)
        p = model.predict_batch([data])[0]
        assert (p.head, set(p.accessories)) == (head, acc), (filt, size, i)
        assert p.verified and any(DRAWN in n for n in p.normalized["notes"]), p.normalized


@pytest.mark.parametrize("i, filt, fmt, quality", [(103, "bilinear", "JPEG", 85),
                                                   (111, "nearest", "WEBP", 80)])  # fmt: skip
def test_a_long_walk_and_the_second_readings_walk_reach_the_answer(model, punks, i, filt, fmt,
                                                                    quality):  # fmt: skip
    """36 px: the network's answer for a rough reading is far off (a Zombie for #103's Female
    with her lipstick, #111 a Zombie with a Mole and shades); the walk stopped after 3 edits
    and was walked from the first reading only, so the search read the file (~0.4 s). Walks
    of up to NEARBY edits from both readings' answers reach the truth, drawn back."""
    p = model.predict_batch([render(punks.images[i], 36, filt, fmt, quality=quality)])[0]
    assert (p.head, set(p.accessories)) == visible(punks, i)
    assert any(DRAWN in n for n in p.normalized["notes"]), p.normalized


def test_a_mirrored_small_jpeg_is_read_as_its_flip(model, punks):
    i = 3100
    flipped = np.ascontiguousarray(punks.images[i][:, ::-1])
    p = model.predict_batch([render(flipped, 48, "bilinear", quality=85)])[0]
    assert p.error is None and p.mirrored
    assert (p.head, set(p.accessories)) == visible(punks, i)


def test_a_small_jpeg_that_is_no_punk_is_refused(model, punks):
    """A punk with an 8x8 block of its face repainted, as a 48 px JPEG: the best drawing
    explains it far worse than the pixel reading does."""
    img = punks.images[1234].copy()
    img[8:16, 8:16] = (200, 30, 170, 255)
    p = model.predict_batch([render(img, 48, "bilinear", quality=85)])[0]
    assert p.error is not None and "not a CryptoPunk" in p.error, p.error
    assert "explains the image" in p.error


def test_explain_reads_a_small_jpeg_as_predict_does(model, punks):
    """explain answers what predict answers (it was refused: explain ignored the image's fit),
    with a heatmap per trait of the answer's drawing."""
    data = render(punks.images[275], 36, "nearest", quality=85)
    p = model.predict(data)
    picture, heat = model.explain(data)
    assert list(heat) == [p.type, *p.accessories]
    assert picture.size[1] > 24 * 12 and all(h.shape == (24, 24) for h in heat.values())


def test_a_rare_colour_a_few_levels_from_the_skin_is_told_apart_by_re_encoding(punks, model):
    # #219's Rosy Cheeks (118,59,26) on the Female 1 skin (113,63,29): the collection's prior
    # reads the cells as skin, and JPEG keeps only a trace of the difference; the cells are
    # still doubtful (the fit alone likes the cheeks), so re-encoding decides, and the answer
    # was verified without them before.
    got = model.predict(render(punks.images[219], 310, "nearest", quality=85), "x.jpg")
    assert got.head == "Female 1" and "Rosy Cheeks" in got.accessories and got.verified
    assert got.original["id"] == 219


def test_a_trait_the_noise_made_must_earn_its_place():
    """Where no drawing gives the file back, an answer with fewer accessories that comes within
    the margin is kept; one further off, or with another head, is not."""
    head, acc = "Female 2", ("Black Lipstick", "Pink With Hat")
    scored = [(0.93, (head, (*acc, "Mole"))), (1.00, (head, acc)), (1.01, ("Female 1", acc)),
              (1.02, (head, ("Pink With Hat",)))]  # fmt: skip
    assert _simplest(scored, 0.93, scored[0][1], 0.15) == (1.00, (head, acc))
    assert _simplest([scored[0], scored[2]], 0.93, scored[0][1], 0.15) == (0.93, scored[0][1])
    assert _simplest(scored, 0.93, scored[0][1], 0.05) == (0.93, scored[0][1])


def test_a_trait_must_explain_more_than_the_noise_where_nothing_is_re_encoded():
    """The best answer by squared error, unless one with the same head and a part of its
    accessories is within PLAIN times the best's error per value; the fewest accessories then,
    the lower error next."""
    head, acc = "Male 4", ("Luxurious Beard", "Mohawk Dark")
    ranked = [(head, (*acc, "Silver Chain")), (head, acc), ("Male 3", acc), (head, acc[:1])]
    samples, best = 1000, 50_000.0  # 50 a value: a margin of PLAIN * 50
    errs = np.array([best, best + PLAIN * 50 - 1, best + 1, best + PLAIN * 50 - 2])
    assert _plainest(ranked, errs, samples) == (head, acc[:1])  # fewest within the margin
    errs = np.array([best, best + PLAIN * 50 - 1, best + 1, best + PLAIN * 50 + 1])
    assert _plainest(ranked, errs, samples) == (head, acc)
    errs = np.array([best, best + PLAIN * 50 + 1, best + 1, best + PLAIN * 50 + 2])
    assert _plainest(ranked, errs, samples) == ranked[0]  # the trait explains more: kept
    assert _plainest(ranked[:1] + ranked[2:3], errs[[0, 2]], samples) == ranked[0]  # head differs


@pytest.mark.parametrize("i, verified", [(6099, True), (6003, False)])
def test_a_jpegs_drawing_is_settled_past_a_local_minimum(model, punks, i, verified):
    """36 px bilinear JPEG q70: settled on the truth, the drawing's background descent stopped a
    level or three off (#6099 in the other compositing order), and a drawing with a Mole came
    closer: both were read with a Mole the file does not have. The next closest ways are
    descended too (SETTLE_STARTS), and then the backgrounds SETTLE_REACH levels around, told by
    the corner blocks first: #6099 gives the file back, #6003 comes closest without the Mole."""
    p = model.predict_batch([render(punks.images[i], 36, "bilinear", quality=70)])[0]
    assert (p.head, set(p.accessories)) == visible(punks, i)
    assert p.verified is verified


@pytest.mark.parametrize(
    "i, filt, q, want_mole",
    [(2978, "hamming", 70, False), (1346, "box", 70, False), (9147, "bicubic", 70, True)],
)
def test_a_mole_is_added_only_when_the_file_shows_it(model, punks, i, filt, q, want_mole,
                                                    monkeypatch):  # fmt: skip
    # 36 px JPEGs no drawing was found to give back exactly: #2978 and #1346 were answered with
    # a Mole their re-encoding preferred by 0.08 and 0.04 levels; #9147's real Mole wins by
    # 0.17. (The longer walks, NEARBY and WALKS, now draw #1346 back exactly, and the wider
    # settling of the drawing, SETTLE_STARTS and SETTLE_REACH, #2978 and #9147: cut short here
    # as they were, so that the re-encoding weighs the Mole.)
    monkeypatch.setattr(N, "NEARBY", 3)
    monkeypatch.setattr(N, "WALKS", 1)
    monkeypatch.setattr(N, "SETTLE_STARTS", 1)
    monkeypatch.setattr(N, "REACH_STEPS", N.REACH_STEPS[:0])
    p = model.predict_batch([render(punks.images[i], 36, filt, quality=q)])[0]
    assert p.error is None and p.check["image_fit"]["reencoded"] > 0
    assert (p.head, set(p.accessories)) == visible(punks, i)
    assert ("Mole" in p.accessories) == want_mole


def test_two_drawings_that_give_the_file_back_are_a_tie_not_a_proof(model, punks):
    """#6307's Silver Chain (3 pixels) vanishes in a 36 px q70 JPEG: its drawing with the
    chain and without it re-encode to the very file. Both are named, neither is verified, and
    the one with fewer traits is answered (a punk is likelier without any one accessory)."""
    p = model.predict_batch([render(punks.images[6307], 36, "nearest", quality=70)])[0]
    head, acc = visible(punks, 6307)
    assert p.error is None and p.verified is False
    assert p.check["image_fit"]["reencoded"] == 0.0
    assert (p.head, set(p.accessories)) == (head, acc - {"Silver Chain"})
    assert [(t["head"], set(t["accessories"])) for t in p.check["ties"]] == [(head, acc)]


@pytest.mark.parametrize("i", [7967, 9338])
def test_a_walk_from_each_start(model, punks, i):
    """#7967 and #9338 at 36 px nearest q70 (Female 1, Straight Hair Dark) were refused as not
    punks: their noisy readings made the network say Zombie and the pixel search Ape, and the
    drawing search walked only from the better of the two, into a Male 1 with a Cap Forward
    (18x the truth's squared error; 20 levels re-encoded). A walk from each start finds the
    truth, which re-encodes to the file."""
    p = model.predict_batch([render(punks.images[i], 36, "nearest", quality=70)])[0]
    assert p.error is None, p.error
    assert (p.head, set(p.accessories)) == visible(punks, i), p.check
    assert p.verified, p.check


def test_a_jpeg_tie_on_a_background_a_level_away_is_no_proof(model, punks):
    """#1843 at 36 px area q70: his drawing with a Silver Chain more gave the file back on the
    background the search settled, and no drawing an edit from it did there, so the chain was
    reported verified; the truth comes within `normalize.TIE_NEAR` there and gives the file
    back a level away. As for a WebP, ties are now told on the backgrounds a level around: the
    file cannot tell the two, and the one with fewer accessories, the truth, is given."""
    p = model.predict_batch([render(punks.images[1843], 36, "area", quality=70)])[0]
    assert p.error is None, p.error
    assert (p.head, set(p.accessories)) == visible(punks, 1843), p.check
    if not p.verified:
        assert any("Silver Chain" in t["accessories"] for t in p.check["ties"]), p.check["ties"]


@pytest.mark.parametrize(
    "i, size, filt, q, others", [(6307, 36, "box", 85, 1), (3833, 100, "bilinear", 70, 3)]
)
def test_drawings_told_in_one_encoding_are_those_that_give_the_file_back(model, punks, i, size,
                                                                         filt, q, others):  # fmt: skip
    """Ties are told by encoding only the blocks each drawing changes, side by side in one JPEG
    (`Fit.reencode(..., exact=True, like=...)`): the same drawings give the file back as when
    each is re-encoded whole, among the truth's ~65 neighbours (`others` of them do here: the
    same drawing, or a trait the encoder erases)."""
    from punktraits.data import HEADS

    reencode = model.to_punk(render(punks.images[i], size, filt, quality=q))[1].fit.reencode
    v = model.verifier
    head, acc = visible(punks, i)
    truth = (head, v._legal(head, tuple(acc)))
    images, _ = v.sprites.render_many([truth, *v._neighbours(*truth, list(HEADS))])
    whole = reencode(images)
    assert whole[0] == 0.0 and len(images) > 50
    told = reencode(images[1:], exact=True, like=images[0])
    assert ((told == 0) == (whole[1:] == 0)).all()
    assert (whole[1:] == 0).sum() == others
    # and where not, at most the whole drawing's error (so only those it puts within TIE_NEAR
    # are encoded whole to look for ties a level around)
    assert (told <= whole[1:] + 1e-12).all()


@pytest.mark.parametrize("i, size, q", [(8348, 96, 70), (0, 192, 85)])
def test_a_whole_number_jpegs_ties_told_in_one_encoding_are_those_that_give_it_back(model, punks, i,
                                                                                  size, q):  # fmt: skip
    """The same for a whole-number nearest JPEG (`locate.exact_jpeg`'s fit): among 40 edits of
    one cell a level or two (some vanish in the encoder) or painted black, those told in one
    encoding are those whose whole drawing, re-encoded, gives the file back."""
    fit = model.to_punk(render(punks.images[i], size, "nearest", quality=q))[1].fit
    truth, rng, cands = punks.images[i], np.random.default_rng(0), []
    for _ in range(40):
        c = truth.astype(np.int64)
        y, x = rng.integers(0, 24, 2)
        if c[y, x, 3] == 0:
            c[y, x] = (0, 0, 0, 255)
        c[y, x, :3] = np.clip(c[y, x, :3] + rng.integers(-2, 3, 3), 0, 255)
        cands.append(c.astype(np.uint8))
    whole = fit.reencode(np.array(cands))
    told = fit.reencode(np.array(cands), exact=True, like=truth)
    assert ((told == 0) == (whole == 0)).all()
    assert 0 < (whole == 0).sum() < 40  # both kinds are among them
    assert (told <= whole + 1e-12).all()  # (at most the whole drawing's error)


def test_a_lossy_reading_drawn_pixel_for_pixel_must_also_give_the_file_back(model, punks,
                                                                              monkeypatch):  # fmt: skip
    """#6307 at 100 px q85: the reading has 2 pixels wrong where Buck Teeth's sprite is unknown,
    so 'Buck Teeth' drew the reading on every known pixel and was called verified; its drawing
    re-encoded does not give the file back (0.63 levels), the truth's does. (The network's
    answer for the rough reading, drawn back, now reads it first: the search is what is
    tested here, without it.)"""
    monkeypatch.setattr(model, "_guess", lambda punk, near=None: np.zeros((0, 24, 24, 4), np.uint8))
    p = model.predict_batch([render(punks.images[6307], 100, "nearest", quality=85)])[0]
    assert (p.head, set(p.accessories)) == visible(punks, 6307)
    assert p.verified and p.check["image_fit"]["reencoded"] == 0.0
    assert "ties" not in p.check


def test_a_24px_jpeg_is_read_by_re_encoding(model, punks):
    """A 24 px JPEG smears each colour over 2x2 pixels (4:2:0): its pixel reading is far off
    and there are too few samples to weigh drawings, so it was refused as not a punk. Drawn
    answers re-encoded are searched an edit at a time instead; a non-punk stays refused.
    (#6858 at q70: its corners are up to 30 levels off the background, and were refused as
    not one colour.)"""
    for i, q in [(839, 85), (6670, 85), (3049, 85), (7191, 85), (6858, 70)]:
        p = model.predict_batch([render(punks.images[i], 24, "nearest", quality=q)])[0]
        assert p.error is None, (i, p.error)
        assert (p.head, set(p.accessories)) == visible(punks, i), i
        assert p.check["image_fit"]["limit"] is None
        assert p.verified == (p.check["image_fit"]["reencoded"] == 0.0)
    img = punks.images[1234].copy()
    img[6:14, 6:14] = (200, 30, 30, 255)
    p = model.predict_batch([render(img, 24, "nearest", quality=85)])[0]
    assert p.error is not None and "re-encoded with the file's encoder" in p.error, p.error


@pytest.mark.parametrize("i", [7191, 5379])
def test_the_drawing_is_settled_on_more_than_the_closest_answer(model, punks, i):
    """36 px hamming WebPs: settled on the closest answer (#7191 an Ape with a Frown; #5379
    refused), the background and quality hid the truth, which gives the file back once the
    drawing is settled on it (verify.SETTLE)."""
    p = model.predict_batch([render(punks.images[i], 36, "hamming", "WEBP", quality=80)])[0]
    assert p.error is None, p.error
    assert (p.head, set(p.accessories)) == visible(punks, i)


def test_a_browsers_screenshots_are_drawn_back(model, punks, browser):
    """Headless Chromium shows punks as <img> on the site blue, smoothed (`image-rendering:
    auto`: Skia's bilinear, 4-bit weights, one rounding — `normalize._skia`) and `pixelated`
    (nearest cells cut at Chromium's phase), and screenshots each as PNG and JPEG q85: every
    screenshot is read right and verified, each drawn bit for bit as the browser drew it (with
    Pillow's filters alone, smoothed screenshots were read but never verified: a third of their
    pixels were a level or two off)."""
    import base64

    ids = (275, 2890, 8348)
    imgs = "".join(
        f'<img id="p{i}" width="{size}" height="{size}" style="image-rendering:{how}" '
        f'src="data:image/png;base64,{base64.b64encode(encode(Image.fromarray(punks.images[i]))).decode()}">'
        for how in ("auto", "pixelated") for size in (36, 100) for i in ids
    )  # fmt: skip
    page = browser.new_page(viewport={"width": 400, "height": 800}, device_scale_factor=1)
    page.set_content(f"<body style='margin:0;background:#638596'>{imgs}</body>")
    page.wait_for_function("[...document.images].every(i => i.complete)")
    shots = []
    for k, (how, size, i) in enumerate((h, s, i) for h in ("auto", "pixelated")
                                       for s in (36, 100) for i in ids):  # fmt: skip
        img = page.locator("img").nth(k)
        for kw in ({"type": "png"}, {"type": "jpeg", "quality": 85}):
            shots.append((how, size, i, kw["type"], img.screenshot(**kw)))
    page.close()
    preds = model.predict_batch([s[-1] for s in shots])
    for (how, size, i, fmt, _), p in zip(shots, preds):
        where = (how, size, i, fmt)
        assert p.error is None, (where, p.error)
        assert (p.head, set(p.accessories)) == visible(punks, i), where
        assert p.verified, (where, p.check)
        assert p.normalized["filter"] == ("skia" if how == "auto" else "nearest"), where
        assert p.normalized["source_size"] == [size, size], where


def test_small_jpegs_read_in_one_batch_get_the_answers_each_gets_alone(model, punks, monkeypatch):
    """As `test_webp`'s batch of WebPs: a batch is read whole before any of it is drawn back,
    and an image's time limits must not count the others' reading (a version that did cut the
    later files of a batch short). 24 small JPEGs in one batch get each one's own answer."""
    import punktraits.predict as P

    monkeypatch.setattr(P, "STREAM_FITS", 100)  # (one batch, the last file waiting for 23)
    ids = list(range(5, 10_000, 417))
    files = [render(punks.images[i], 36, "box", quality=70) for i in ids]
    together = model.predict_batch(files)
    alone = [model.predict_batch([f])[0] for f in files]

    assert len(ids) == 24 and [answer(p) for p in together] == [answer(p) for p in alone]
    assert all(p.error is None and (p.head, set(p.accessories)) == visible(punks, i)
               for p, i in zip(alone, ids))  # fmt: skip
