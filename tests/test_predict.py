"""Normalising any punk image, predict / explain / export, the Python API."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import encode
from PIL import Image

from punktraits import data as D
from punktraits import load_model
from punktraits.cli import cli
from punktraits.normalize import ImageError, collection_palette, normalize

BLUE = (0x63, 0x85, 0x96)


def render(punk, scale, bg=None, border=0, resample=Image.NEAREST, size=None):
    """The punk upscaled, optionally on a solid background with a border, as a PIL image."""
    side = size or 24 * scale
    im = Image.fromarray(punk, "RGBA").resize((side, side), resample)
    if bg is None:
        return im
    canvas = Image.new("RGBA", (side + 2 * border,) * 2, bg + (255,))
    canvas.alpha_composite(im, (border, border))
    return canvas.convert("RGB")


@pytest.fixture(scope="module")
def model():
    return load_model()


# --- normalising, on variants of the real crops ----------------------------------------------


def test_whole_number_nearest_pngs_skip_the_search_and_read_the_same(punks, palette, model,
                                                                    monkeypatch):  # fmt: skip
    # The same punk and the same account of it as the search gives...
    renders = [encode(render(punks.images[i], k, bg)) for i in range(3, 10_000, 997)
               for k, bg in ((1, None), (8, BLUE), (8, None), (3, (255, 200, 0)))]  # fmt: skip
    searched = [normalize(r, *palette, name="x.png") for r in renders]
    for r, (want, info) in zip(renders, searched):
        got, got_info = model.to_punk(r, "x.png")
        np.testing.assert_array_equal(got, want)
        # the same account, but `snapped`: every pixel is a collection colour exactly, while the
        # search, compositing in floats, counts a few half-transparent ones on a yellow as snapped
        assert {**got_info.to_dict(), "snapped": None} == {**info.to_dict(), "snapped": None}
        assert got_info.snapped == 0
    # ...without the search: with it broken, these still read, and a smoothed JPEG (searched)
    # does not.
    import punktraits.normalize as N

    def broken(*a, **k):
        raise AssertionError("searched")

    monkeypatch.setattr(N, "_normalize_pixels", broken)
    for r in renders:
        model.to_punk(r, "x.png")
    smooth = render(punks.images[3], 0, BLUE, resample=Image.BILINEAR, size=100)
    with pytest.raises(AssertionError, match="searched"):
        model.to_punk(encode(smooth, "JPEG", quality=90), "x.jpg")


def test_whole_number_nearest_jpegs_re_encode_exactly_without_the_search(punks, model,
                                                                        monkeypatch):  # fmt: skip
    # A nearest upscale saved as JPEG is read by re-encoding its likeliest punk with the file's
    # own tables (locate.exact_jpeg); the search runs only where that does not give the file back.
    import punktraits.normalize as N

    searched = []
    search = N._normalize_pixels
    monkeypatch.setattr(
        N, "_normalize_pixels", lambda *a, **kw: searched.append(1) or search(*a, **kw)
    )
    ids = list(range(11, 10_000, 1201))
    for k, q in ((8, 85), (8, 95), (12, 70), (16, 85)):
        before = len(searched)
        for i in ids:
            got = model.predict(
                encode(render(punks.images[i], k, BLUE), "JPEG", quality=q), "x.jpg"
            )
            assert got.error is None and got.verified, (i, k, q, got.check)
            assert got.original["id"] == i and got.original["agrees_visible"], (i, k, q)
            assert got.normalized["scale"] == [float(k), float(k)]
            bg = bytes.fromhex(got.normalized["background"][1:])  # (colours a few levels
            assert max(abs(a - b) for a, b in zip(bg, BLUE)) <= 3  # apart may encode alike)
        if q >= 85:  # (at q70 a cell may need the search)
            assert len(searched) == before, (k, q)


def test_the_fit_of_a_jpeg_read_by_re_encoding_is_the_drawings_squared_error(punks, model):
    # (the squares of a 384 px image summed overflow int32: a not-punk's wrong answer once
    # scored 0 and was accepted)
    from punktraits.locate import exact_jpeg
    from punktraits.normalize import open_image

    light = encode(render(punks.images[77], 16, (240, 240, 240)), "JPEG")  # far from the outline
    rgba, _, fmt, _, tables = open_image(light)
    punk, info = exact_jpeg(rgba, fmt, tables, model.palette, model.counts)
    bg = np.array(list(bytes.fromhex(info.background[1:])), np.int64)
    for p in (punk, punks.images[78], punks.images[79]):
        a = p[..., 3:].astype(np.int64)
        shown = (p[..., :3] * a + bg * (255 - a)) / 255.0
        drawn = np.repeat(np.repeat(shown, 16, 0), 16, 1)
        want = float(((drawn - rgba[..., :3]) ** 2).sum())
        assert info.fit.errors(p[None])[0] == pytest.approx(want, rel=1e-9)
    assert info.fit.reencode(punk[None])[0] == 0.0 < info.fit.reencode(punks.images[78][None])[0]


def test_a_jpeg_that_codes_two_colours_alike_is_answered_by_what_re_encodes(punks, model):
    # Ape #4464 at x8 q70: one cell of the ape's dark skin (53,36,16) and (59,33,15) are coded
    # alike (the same luma, chroma quantised away): the prior reads the wrong one; the answer's
    # drawing, re-encoded, gives the file back exactly, so it is verified.
    im = render(punks.images[4464], 8, BLUE)
    got = model.predict(encode(im, "JPEG", quality=70), "x.jpg")
    assert got.normalized["notes"] == ["JPEG: re-encoded, gives the file back exactly"]
    assert got.original["id"] == 4464 and got.verified
    assert got.check["differing_pixels"] == 1 and got.check["image_fit"]["reencoded"] == 0.0


@pytest.mark.parametrize("scale", range(1, 17))
def test_every_scale_transparent_and_on_blue(punks, palette, scale):
    for i in range(scale, 10_000, 701):
        for bg in (None, BLUE):
            out, info = normalize(encode(render(punks.images[i], scale, bg)), *palette)
            np.testing.assert_array_equal(out, punks.images[i], err_msg=f"punk {i} x{scale} {bg}")
            assert info.scale == (scale, scale)
            assert info.background == ("transparent" if bg is None else "#638596")


def _misread_at_scale_8(data_dir: Path, ids: range) -> list[int]:
    """The punks of `ids` that the search (not predict's shortcut) misreads at x8 on the blue."""
    punks = D.load(data_dir)
    palette = collection_palette(punks.images)
    return [
        i for i in ids
        if not (normalize(encode(render(punks.images[i], 8, BLUE)), *palette)[0] == punks.images[i]).all()
    ]  # fmt: skip


def test_all_10000_at_scale_8_on_a_background(data_dir):
    # (in two processes, one a core: the search takes ~20 ms a punk on CI's machine)
    halves = [range(0, 10_000, 2), range(1, 10_000, 2)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        wrong = sorted(sum(pool.map(_misread_at_scale_8, [data_dir] * 2, halves), []))
    assert wrong == []


def test_jpeg_quality_75_at_scale_8(punks, palette):
    # The full 10,000 are in docs/RESULTS.md (benchmarks/normalize.py); here a spread sample.
    ids = range(0, 10_000, 40)
    exact = sum(
        (normalize(encode(render(punks.images[i], 8, BLUE), "JPEG", quality=75), *palette)[0]
         == punks.images[i]).all()
        for i in ids
    )  # fmt: skip
    assert exact / len(ids) >= 0.999  # 250 punks: not one wrong


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda p: encode(render(p, 0, BLUE, size=1024)), "1024x1024 marketplace render"),
        (lambda p: encode(render(p, 0, BLUE, size=336), "JPEG", quality=75), "336 JPEG"),
        (lambda p: encode(render(p, 8, BLUE, border=7)), "border"),
        (lambda p: encode(render(p, 4), "WEBP", lossless=True), "WebP"),
        (lambda p: encode(render(p, 5, BLUE), "BMP"), "BMP"),
        (lambda p: encode(render(p, 4, BLUE).convert("P", palette=Image.ADAPTIVE), "GIF"), "GIF"),
    ],
)
def test_formats_and_renders(punks, palette, make, expect):
    for i in (0, 2890, 8348):
        out, _ = normalize(make(punks.images[i]), *palette)
        np.testing.assert_array_equal(out, punks.images[i], err_msg=f"{expect}, punk {i}")


def test_gif_uses_the_first_frame_and_says_so(punks, palette):
    frames = [render(punks.images[i], 4, BLUE).convert("P", palette=Image.ADAPTIVE) for i in (7, 8)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out, info = normalize(buf.getvalue(), *palette)
    np.testing.assert_array_equal(out, punks.images[7])
    assert info.notes == ["GIF: first of 2 frames used"]


def test_smoothed_upscales_keep_the_traits(punks, palette, model):
    # Interpolation blends neighbouring colours, so not every pixel comes back exactly; what
    # matters is that the traits read from it are those of the original.
    ids = range(11, 10_000, 500)
    same = sum(
        model.predict(encode(render(punks.images[i], 16, BLUE, resample=Image.BICUBIC))).accessories
        == model.predict(punks.images[i]).accessories
        for i in ids
    )
    assert same / len(ids) >= 0.95


def test_smoke_comes_back_half_transparent(punks, palette):
    i = int(np.flatnonzero((punks.images[..., 3] == 128).any((1, 2)))[0])
    out, _ = normalize(encode(render(punks.images[i], 8, BLUE)), *palette)
    assert (out[..., 3] == 128).sum() == (punks.images[i][..., 3] == 128).sum() > 0


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "the file is empty"),
        (b"hello, I am text", "not an image"),
        (encode(Image.new("RGB", (48, 24))), "48x24 is not square"),
        (encode(Image.new("RGB", (10, 10))), "smaller than a 24x24 punk"),
        (
            encode(Image.new("1", (5000, 5000))),
            "over the 4,194,304-pixel limit .2048x2048.; not decoded",
        ),
        (encode(Image.new("RGB", (96, 96), (9, 9, 9)))[:60], "truncated or corrupt"),
    ],
)
def test_bad_images_are_refused_in_one_line(palette, data, message):
    with pytest.raises(ImageError, match=message) as e:
        normalize(data, *palette, name="x.png")
    assert str(e.value).startswith("x.png: ") and "\n" not in str(e.value)


def test_photo_noise_has_no_grid(palette):
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), np.uint8)
    with pytest.raises(ImageError, match="no 24x24 pixel grid found"):
        normalize(encode(Image.fromarray(noise)), *palette)


# --- the API and the CLI ----------------------------------------------------------------------


def test_api_predicts_like_the_labels(punks, model):
    p = model.predict(encode(render(punks.images[8348], 8, BLUE), "JPEG", quality=75))
    assert p.type == "Male"
    assert set(p.accessories) == {"Buck Teeth", "Mole", "Big Beard", "Earring", "Top Hat",
                                  "Cigarette", "Classic Shades"}  # fmt: skip
    assert set(p.probabilities) == set(D.TRAITS) and p.probabilities["Male"] > 0.99
    assert p.normalized["format"] == "JPEG" and p.normalized["scale"] == [8.0, 8.0]
    batch = model.predict_batch([punks.images[0], b"not an image", punks.images[1]])
    assert [b.type for b in batch] == ["Female", None, "Male"]
    assert batch[1].error and batch[1].accessories == []


def test_cli_predict_folder_json_csv_and_exit_code(tmp_path, punks):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    render(punks.images[0], 8, BLUE).save(folder / "a.png")
    render(punks.images[1], 14, BLUE).save(folder / "sub" / "b.jpg", quality=75)
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (folder / "notes.txt").write_text("not an image and not listed")
    r = CliRunner().invoke(cli, ["predict", str(folder), "--format", "json"])
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert [o["file"].split("/")[-1] for o in out] == ["a.png", "b.jpg", "broken.png"]
    assert out[0]["type"] == "Female" and out[0]["error"] is None
    assert "Blonde Bob" in out[0]["accessories"] and "Earring" not in out[0]["accessories"]
    assert set(out[1]["accessories"]) == {"Smile", "Mohawk"} and out[1]["type"] == "Male"
    assert "broken.png: the image data is truncated or corrupt" in out[2]["error"]
    assert set(out[0]) == {"file", "type", "head", "accessories", "probabilities", "normalized",
                           "error", "verified", "check", "original", "nearest", "rarity",
                           "box", "mirrored"}  # fmt: skip
    r = CliRunner().invoke(cli, ["predict", str(folder / "a.png"), "--format", "csv"])
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 1 and len(rows[0]) == 7 + 92
    assert rows[0]["mirrored"] == "0" and rows[0]["box"] == ""  # the whole image is the punk
    assert rows[0]["Female"] == "1" and rows[0]["Blonde Bob"] == "1" and rows[0]["Male"] == "0"


def test_a_crashing_file_is_its_own_error_and_the_batch_goes_on(tmp_path, punks, monkeypatch):
    import punktraits.predict as P

    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(5):
        render(punks.images[k], 8, BLUE).save(folder / f"{k}.png")
    real = P.normalize

    def crashing(source, *a, name=None, **kw):  # any bug, not an ImageError
        if name and name.endswith("2.png"):
            raise ValueError("operands could not be broadcast together")
        return real(source, *a, name=name, **kw)

    monkeypatch.setattr(P, "normalize", crashing)
    r = CliRunner().invoke(cli, ["predict", str(folder), "--format", "jsonl"])
    assert r.exit_code == 1
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["file"].split("/")[-1] for o in out] == [f"{k}.png" for k in range(5)]
    assert [o["error"] is None for o in out] == [True, True, False, True, True]
    assert out[2]["error"].endswith(
        "2.png: could not be read as a punk (ValueError: operands could not be broadcast together)"
    )
    assert out[4]["type"] == D.TYPES[int(punks.labels[4, :5].argmax())]


def test_worker_processes_give_the_same_answers_in_the_same_order(tmp_path, punks):
    """`--workers 2` (spawned processes, chunks of files) streams exactly what one process
    writes, a bad file included, and exits 1 for it."""
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(40):
        render(punks.images[k], 1 + k % 3, BLUE if k % 2 else None).save(folder / f"{k:03d}.png")
    (folder / "020b.png").write_bytes(b"not an image")
    one = CliRunner().invoke(cli, ["predict", str(folder), "--format", "jsonl"])
    two = CliRunner().invoke(cli, ["predict", str(folder), "--format", "jsonl", "--workers", "2"])
    assert one.exit_code == two.exit_code == 1
    assert two.stdout == one.stdout
    out = [json.loads(line) for line in two.stdout.splitlines()]
    assert len(out) == 41 and sum(o["error"] is not None for o in out) == 1
    assert out[21]["file"].endswith("020b.png") and "not an image" in out[21]["error"]
    # a bad model: one line from the main process, nothing from the workers (which also fail)
    bad = subprocess.run([sys.executable, "-m", "punktraits", "predict", str(folder),
                          "--workers", "2", "--model", str(tmp_path / "nothing")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nothing'} is not a folder; pass a run folder written by "
        "`punktraits train`"
    ]


def test_a_worker_process_that_dies_is_one_error_after_the_answers_before_it(tmp_path, punks):
    """A worker killed (out of memory, say) was a BrokenProcessPool traceback; now one line
    that says what to do, after the answers that came before it."""
    from punktraits.errors import PunktraitsError
    from punktraits.folder import iter_find_parallel

    files = []
    for k in range(300):
        files.append(tmp_path / f"{k:03d}.png")
        render(punks.images[k], 2, BLUE).save(files[-1])
    answers = iter_find_parallel(None, files, 2, chunk=2)
    it = iter(answers)
    got = [next(it)]  # (the workers are up)
    for proc in list(answers.pool._processes.values()):
        proc.kill()
    with pytest.raises(PunktraitsError, match=r"^a worker process stopped before it answered "
                       r"\(killed, or out of memory\?\); .* fewer --workers$"):  # fmt: skip
        for found in it:
            got.append(found)
    assert 1 <= len(got) < 300 and got[0][0].type == D.TYPES[int(punks.labels[0, :5].argmax())]


def test_a_folder_of_lossy_files_streams_its_answers_every_few_files(tmp_path, punks, model,
                                                                   monkeypatch):  # fmt: skip
    """A batch was 256 files read before any was answered: minutes for JPEGs, all lost to an
    interruption. Exact PNGs still go in whole batches; lossy files are answered once
    STREAM_FITS of them are read (the same answers as one at a time), and a folder's worker
    processes get them in chunks of LOSSY_CHUNK."""
    from punktraits import predict as P
    from punktraits.folder import LOSSY_CHUNK, _parts

    files = []
    for k in range(20):
        files.append(tmp_path / f"{k:02d}.png")
        render(punks.images[k], 4, BLUE).save(files[-1])
    for k in range(20, 60):
        files.append(tmp_path / f"{k:02d}.jpg")
        render(punks.images[k], 4, BLUE).save(files[-1], quality=85)
    read = []
    to_punk = model.to_punk
    monkeypatch.setattr(
        model, "to_punk", lambda image, name: read.append(name) or to_punk(image, name)
    )
    answers = model.iter_find(files)
    first = next(answers)
    assert len(read) == 20 + P.STREAM_FITS == 36  # the PNGs, then 16 JPEGs: not all 60
    got = [first, *answers]
    assert len(read) == 60 and [a[0].file for a in got] == [str(f) for f in files]
    one = [model.find(f)[0] for f in files[18:23]]  # (around the first batch's end)
    assert [(a[0].head, a[0].accessories, a[0].verified) for a in got[18:23]] == [
        (p.head, p.accessories, p.verified) for p in one
    ]
    assert all(a[0].error is None and a[0].verified for a in got)
    names = [f"{k}.png" for k in range(20)] + [f"{k}.JPG" for k in range(40)] + ["x.webp"]
    assert [len(part) for part in _parts(names, 128)] == [20 + LOSSY_CHUNK, LOSSY_CHUNK, 9]
    assert [len(part) for part in _parts(names[:20] * 10, 128)] == [128, 72]


def _processes():
    """benchmarks/interrupt.py's `children` and `running` (Linux: /proc)."""
    import importlib.util

    path = Path(__file__).parent.parent / "benchmarks" / "interrupt.py"
    spec = importlib.util.spec_from_file_location("interrupt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.children, module.running


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_sigterm_stops_predict_and_its_worker_processes_at_once(tmp_path, punks):
    """`kill` (SIGTERM) of `predict --workers 2` ended the main process alone: its workers went
    on through the slow files already handed to them (minutes of a core, answered to no one).
    Now the run says "interrupted" (exit 130) and no process of it is left a few seconds later,
    while the files would have kept the workers busy for many more."""
    import os
    import signal
    import time

    children_of, running = _processes()
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(120):  # 36 px JPEGs: re-encoded, ~0.1-0.5 s each, a minute or more in all
        im = render(punks.images[k], 1, BLUE, resample=Image.BOX, size=36)
        im.save(folder / f"{k:03d}.jpg", quality=70)
    proc = subprocess.Popen([sys.executable, "-m", "punktraits", "predict", str(folder),
                             "--format", "jsonl", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(6)  # (the workers are up, their models loaded, at work on chunks of 16 files)
    children = children_of(proc.pid)  # (the workers, and multiprocessing's resource tracker)
    workers = {p for p in children if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}
    assert proc.poll() is None and len(running(workers)) == 2
    os.kill(proc.pid, signal.SIGTERM)
    try:  # (workers left running would hold its output open: this waited for them)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
        assert "Traceback" not in err
        assert all(json.loads(line)["file"].endswith(".jpg") for line in out.splitlines())
        deadline = time.monotonic() + 5
        while running(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running(children) == set()
    finally:  # (a failure leaves nothing running)
        for p in running(children | {proc.pid}):
            os.kill(p, signal.SIGKILL)


def test_table_output_keeps_a_file_name_with_a_newline_on_one_line(tmp_path, punks):
    path = tmp_path / "two\nlines.png"
    render(punks.images[0], 8, BLUE).save(path)
    r = CliRunner().invoke(cli, ["predict", str(path)])
    assert r.exit_code == 0
    assert r.stdout.count("\n") == 1 and "two\\nlines.png: Female; " in r.stdout


# --- explain ----------------------------------------------------------------------------------


def test_explain_finds_a_planted_pixel(tmp_path):
    from punktraits.predict import Predictor
    from punktraits.run import TrainConfig, train

    punks = D.synthetic(1000, seed=2, planted=("Mole",))
    train(punks, TrainConfig(n_test=200, epochs=20, seed=0), tmp_path / "run", progress=False)
    model = Predictor(tmp_path / "run")
    moles = np.flatnonzero(punks.labels[:, D.TRAIT_INDEX["Mole"]])[:10]
    # The planted pixel: where Mole punks differ from a same-type punk without it.
    for i in moles:
        twin = next(j for j in range(len(punks)) if not punks.labels[j, D.TRAIT_INDEX["Mole"]]
                    and (punks.labels[j, :5] == punks.labels[i, :5]).all())  # fmt: skip
        planted = np.argwhere((punks.images[i] != punks.images[twin]).any(-1))
        heat = model.occlusion(punks.images[i], ["Mole"])["Mole"]
        assert list(np.unravel_index(heat.argmax(), heat.shape)) == planted[0].tolist()


def test_explain_points_at_real_moles(punks, model):
    # A visible Mole is one pixel at row 16, column 8 (male heads) or 9 (female), drawn darker
    # than the skin; take the punks where that pixel shows the mole colour of its skin tone.
    j = D.TRAIT_INDEX["Mole"]
    skins = np.array(punks.skins)
    spot = {"Female": (16, 9)}
    cases = []
    for i in np.flatnonzero(punks.visible[:, j]):
        y, x = spot.get(skins[i].split(" ")[0], (16, 8))
        same = (skins == skins[i]) & (punks.labels[:, j] == 0)
        usual = punks.images[same][:, y, x]  # that pixel on punks of this skin without a Mole
        if not (usual == punks.images[i, y, x]).all(-1).any():  # it differs: the mole shows there
            cases.append((i, y, x))
    assert len(cases) == 600  # every visible Mole (benchmarks/explain_moles.py)
    hits = 0
    for i, y, x in cases[::4]:
        heat = model.occlusion(punks.images[i], ["Mole"])["Mole"]
        hits += np.unravel_index(heat.argmax(), heat.shape) == (y, x)
    assert hits / len(cases[::4]) >= 0.95


def test_cli_explain_writes_a_png(tmp_path, punks):
    src = tmp_path / "p.png"
    render(punks.images[8348], 8, BLUE).save(src)
    r = CliRunner().invoke(cli, ["explain", str(src), "--trait", "Mole"])
    assert r.exit_code == 0, r.output
    assert "Mole: hottest pixel row 16, column 8" in r.output
    im = Image.open(tmp_path / "p.png.explain.png")
    assert im.size[0] > 2 * 24 * 12 and im.size[1] > 24 * 12


# --- export -----------------------------------------------------------------------------------


def test_onnx_matches_torch(tmp_path, punks, model):
    import onnxruntime as ort

    from punktraits.recipes.ours import rgba

    path = tmp_path / "m.onnx"
    r = CliRunner().invoke(cli, ["export", "--onnx", str(path)])
    assert r.exit_code == 0, r.output
    x = rgba(punks.images[np.arange(0, 10_000, 100)])  # 100 real punks
    got = ort.InferenceSession(str(path)).run(None, {"rgba": x.numpy()})[0]
    want = model.probabilities(punks.images[np.arange(0, 10_000, 100)])
    assert got.shape == (100, 92)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_tampered_model_folder_is_refused(tmp_path):
    import shutil

    from punktraits.errors import RunError
    from punktraits.run import DEFAULT_MODEL

    run = tmp_path / "m"
    shutil.copytree(DEFAULT_MODEL, run)
    (run / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="config.json is not valid JSON"):
        load_model(run)
    r = CliRunner().invoke(cli, ["predict", "--model", str(tmp_path / "nothing"), str(run)])
    assert r.exit_code != 0


def test_prediction_to_dict_is_a_plain_copy():
    """`to_dict` is JSON's types, nested containers copied (tuples as lists), the drawing left
    out: changing the dict leaves the prediction as it was."""
    from punktraits.predict import Prediction

    p = Prediction("a.png", "Male", ["Earring"], {"Male": 0.9, "Earring": 0.75}, {"scale": 8},
                   check={"ties": [{"head": "Male 1", "accessories": ("Mole", "Earring")}]},
                   rarity={"of": 10000, "rank": {"open": 12}})  # fmt: skip
    d = p.to_dict()
    assert "drawn" not in d
    assert d["check"] == {"ties": [{"head": "Male 1", "accessories": ["Mole", "Earring"]}]}
    assert json.loads(json.dumps(d)) == d
    d["accessories"].append("Mole")
    d["probabilities"]["Male"] = 0.0
    d["check"]["ties"][0]["accessories"].append("Smile")
    d["rarity"]["rank"]["open"] = 1
    d["normalized"]["scale"] = 1
    assert p.accessories == ["Earring"] and p.probabilities["Male"] == 0.9
    assert p.check["ties"][0]["accessories"] == ("Mole", "Earring")
    assert p.rarity["rank"]["open"] == 12 and p.normalized["scale"] == 8
    assert p.to_json() == json.dumps(p.to_dict())  # (what predict writes: the same text)
