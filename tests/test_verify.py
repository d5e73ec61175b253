"""Answers that prove themselves (issue 8): drawn back with sprites learned from the training
split, corrected when a nearby answer draws the image, refused when nothing draws close."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from punktraits import data as D
from punktraits.cli import cli
from punktraits.errors import ImageError
from punktraits.predict import Predictor
from punktraits.sprites import heads_of, sprites_for
from punktraits.verify import REFUSE, Verifier


@pytest.fixture(scope="module")
def split(punks):
    return D.split(punks.labels, seed=0)


@pytest.fixture(scope="module")
def verifier(punks, split):
    return Verifier(sprites_for(punks, split[0]))


@pytest.fixture(scope="module")
def model(data_dir):
    return Predictor(data_dir=data_dir)


def visible(punks, i) -> set[str]:
    return {D.TRAITS[j] for j in np.flatnonzero(punks.visible[i]) if j >= len(D.TYPES)}


def test_the_official_answers_of_every_test_punk_draw_it(punks, split, verifier):
    test = split[1]
    heads = heads_of(punks)
    checks = verifier.check_many(
        punks.images[test], [(heads[i], list(punks.layers[i])) for i in test],
        [[heads[i]] for i in test],
    )  # fmt: skip
    assert sum(c.verified for c in checks) == len(test) == 2000
    assert all(c.differing == 0 for c in checks)
    # A verified answer keeps what its pixels show: the painted-over accessories are dropped.
    assert [set(c.accessories) for c in checks] == [visible(punks, i) for i in test]
    changed = [c.corrected_from is not None for c in checks]
    assert changed == punks.hidden[test].any(1).tolist()


def test_answers_checked_in_one_batch_are_those_checked_one_by_one(punks, split, verifier):
    # check_many drops the accessories no pixel needs for all exact drawings in one go; the
    # answers, what they were corrected from and the answers drawn equal `_search`'s, one by one
    test = split[1]
    hidden = [int(i) for i in test if punks.hidden[i].any()]
    ids = hidden[:40] + [int(i) for i in test[:200] if int(i) not in hidden]
    heads = heads_of(punks)
    wrong = {ids[0]: ["Earring"], ids[-1]: []}  # two that draw wrong at first: searched
    answers = [(heads[i], wrong.get(i, list(punks.layers[i]))) for i in ids]
    batch = verifier.check_many(punks.images[ids], answers, [[heads[i]] for i in ids])
    alone = []
    for i, (h, a) in zip(ids, answers):
        start = verifier._start(h, a)
        diff, unknown, images, where = verifier._draw([start], punks.images[i])
        first = (int(diff[0]), int(unknown[0]), *start, images[0], where[0])
        alone.append(verifier._search(punks.images[i], h, a, [heads[i]], first))
    said = [(c.head, c.accessories, c.verified, c.tried, c.corrected_from) for c in batch]
    assert said == [(c.head, c.accessories, c.verified, c.tried, c.corrected_from) for c in alone]
    assert all((c.drawn == d.drawn).all() for c, d in zip(batch, alone))
    assert len(hidden) >= 40 and sum(c.corrected_from is not None for c in batch) >= 40


def test_no_wrong_answer_is_verified_and_every_final_answer_is_right(punks, split, model):
    test = split[1]
    preds = model.predict_punks(punks.images[test])
    heads = heads_of(punks)
    wrong_verified = [
        int(i) for i, p in zip(test, preds)
        if p.verified and (p.head != heads[i] or set(p.accessories) - set(punks.layers[i])
                           or visible(punks, i) - set(p.accessories))
    ]  # fmt: skip
    assert wrong_verified == []
    assert sum(p.verified for p in preds) == 2000  # every test punk's pixels are explained
    assert all(p.error is None for p in preds)
    assert [p.check["differing_pixels"] for p in preds] == [0] * 2000


def test_a_wrong_answer_is_corrected_and_says_what_the_network_said(punks, split, verifier):
    i = next(int(i) for i in split[1] if "Mole" in visible(punks, i))
    head = heads_of(punks)[i]
    answer = [a for a in punks.layers[i] if a != "Mole"] + ["Earring"]
    c = verifier.check(punks.images[i], head, answer)
    assert c.verified and "Mole" in c.accessories
    assert set(c.corrected_from["accessories"]) == set(answer)
    assert c.tried > 1


def test_an_answer_a_punk_cannot_wear_is_searched_from_what_it_can(punks, split, verifier):
    # Nine accessories, two hats among them: no punk wears that (at most 7, one per slot). The
    # check starts from the first of each slot, at most 7, and finds the punk; before, drawing
    # all of them raised and stopped the whole predict run.
    i = next(int(i) for i in split[1] if len(punks.layers[i]) == 2 and "Earring" in punks.layers[i])
    head = heads_of(punks)[i]
    extra = ["Cap", "Top Hat", "Mole", "Smile", "Eye Patch", "Gold Chain", "Pipe", "Clown Nose"]
    answer = list(punks.layers[i]) + [a for a in extra if a not in punks.layers[i]]
    assert len(answer) >= 9
    c = verifier.check(punks.images[i], head, answer)
    assert c.verified, c
    assert set(c.accessories) == visible(punks, i)


def test_an_edited_punk_is_answered_unverified_with_the_pixels_that_differ(punks, split, model):
    i = int(split[1][0])
    punk = punks.images[i].copy()
    punk[0, 0] = (255, 0, 0, 255)  # one pixel of the background painted red
    p = model.predict_punk(punk, "edited")
    assert p.error is None and p.verified is False
    assert p.check["differing_pixels"] == 1
    assert p.head == heads_of(punks)[i]


def test_what_is_not_a_punk_is_refused_and_the_batch_goes_on(punks, split, tmp_path, model):
    rng = np.random.default_rng(0)
    palette = np.unique(punks.images.reshape(-1, 4), axis=0)
    noise = palette[rng.integers(0, len(palette), (24, 24))]  # collection colours, no punk
    blend = ((punks.images[0].astype(int) + punks.images[1]) // 2).astype(np.uint8)
    scramble = punks.images[2].reshape(-1, 4)[rng.permutation(576)].reshape(24, 24, 4)
    folder = tmp_path / "in"
    folder.mkdir()
    for name, img in (("a-noise", noise), ("b-blend", blend), ("c-scramble", scramble),
                      ("d-real", punks.images[int(split[1][1])])):  # fmt: skip
        Image.fromarray(img, "RGBA").resize((192, 192), Image.NEAREST).save(folder / f"{name}.png")
    r = CliRunner().invoke(cli, ["predict", str(folder), "--format", "jsonl"])
    assert r.exit_code == 1
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["error"] is None for o in out] == [False, False, False, True]
    for o in out[:3]:
        assert ": not a CryptoPunk: the nearest drawing (" in o["error"]
        assert o["check"]["differing_pixels"] > REFUSE and o["type"] is None
    assert out[3]["verified"] is True
    with pytest.raises(ImageError, match="not a CryptoPunk"):
        model.predict(str(folder / "a-noise.png"))


def test_render_draws_a_training_punk_exactly(punks, split, data_dir, tmp_path):
    i = int(split[0][3])
    head = heads_of(punks)[i]
    out = tmp_path / "p.png"
    r = CliRunner().invoke(cli, ["render", head, *reversed(punks.layers[i]), "-o", str(out),
                                 "--data-dir", str(data_dir)])  # fmt: skip
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.asarray(Image.open(out)), punks.images[i])
    r = CliRunner().invoke(cli, ["render", "Male 2", "Tiara", "-o", str(out),
                                 "--data-dir", str(data_dir)])  # fmt: skip
    assert r.exit_code != 0 and "'Tiara' has no male sprite" in str(r.exception)


def test_explain_shows_the_drawing(punks, split, tmp_path, data_dir):
    i = int(split[1][5])
    png = tmp_path / "p.png"
    Image.fromarray(punks.images[i]).resize((192, 192), Image.NEAREST).save(png)
    r = CliRunner().invoke(cli, ["explain", str(png)])
    assert r.exit_code == 0, r.output
    assert f"drawn back pixel for pixel: {heads_of(punks)[i]};" in r.output
    sheet = Image.open(str(png) + ".explain.png")
    assert sheet.width > 3 * 24 * 12  # input, drawn back, then the heatmaps
