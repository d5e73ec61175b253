"""Training recipes on synthetic and real data, run folders, evaluate, compare, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import THREADS
from safetensors.torch import load_file

from punktraits import data as D
from punktraits.cli import cli
from punktraits.errors import PunktraitsError, RunError
from punktraits.run import Run, TrainConfig, train

THREE = ("Beanie", "Choker", "Pilot Helmet")


@pytest.fixture(scope="module")
def tiny():
    return D.synthetic(300, seed=1)


def paper_cfg(**kw):
    base = dict(recipe="paper", traits=THREE, epochs=2, per_class=100, n_test=60, seed=3)
    return TrainConfig(**{**base, **kw})


def test_batched_trainer_equals_one_net_loop(tiny, tmp_path):
    train(tiny, paper_cfg(group=3), tmp_path / "batched", progress=False)
    train(tiny, paper_cfg(group=1), tmp_path / "loop", progress=False)
    for f in sorted((tmp_path / "loop" / "nets").glob("*.safetensors")):
        a, b = load_file(str(f)), load_file(str(tmp_path / "batched" / "nets" / f.name))
        for k in a:
            # Grouped and single convolutions sum in different orders; Adagrad's first step
            # (g / sqrt(g^2)) turns float noise on near-zero gradients into up to ~1e-4.
            np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-3, err_msg=k)
        ha = json.loads(f.with_suffix(".json").read_text())
        hb = json.loads((tmp_path / "batched" / "nets" / f.with_suffix(".json").name).read_text())
        np.testing.assert_allclose(ha["loss"], hb["loss"], atol=1e-4)
        np.testing.assert_allclose(ha["test_loss"], hb["test_loss"], atol=1e-4)
    ma = json.loads((tmp_path / "batched" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "loop" / "metrics.json").read_text())
    assert ma["per_trait"] == mb["per_trait"]


def test_paper_run_folder_and_evaluate_reproduce_metrics(tiny, tmp_path):
    run = tmp_path / "run"
    metrics = train(tiny, paper_cfg(), run, progress=False)
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "metrics.csv", "metrics.json", "nets", "palette.json", "split.json"]  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    assert config["traits"] == list(THREE) and config["per_class"] == 100
    hist = json.loads((run / "nets" / "00-beanie.json").read_text())
    assert len(hist["loss"]) == 2 * 200 // 100 and len(hist["test_loss"]) == 2
    split = json.loads((run / "split.json").read_text())
    assert len(split["test"]) == 60 and not set(split["test"]) & set(split["train"])
    saved = json.loads((run / "metrics.json").read_text())
    assert Run.open(run).evaluate(tiny) == saved == json.loads(json.dumps(metrics))
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("trait,support,tp,fp")
    for key in ("recipe", "seed", "epochs", "train_seconds", "device", "threads", "n_test",
                "macro_f1", "exact_match"):  # fmt: skip
        assert key in saved
    row = saved["per_trait"]["Choker"]
    assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == 60


def test_paper_run_resumes_per_trait(tiny, tmp_path):
    run = tmp_path / "run"
    train(tiny, paper_cfg(), run, progress=False)
    done = run / "nets" / "00-beanie.safetensors"
    before = done.stat().st_mtime_ns
    reference = load_file(str(run / "nets" / "02-pilot-helmet.safetensors"))
    (run / "nets" / "02-pilot-helmet.safetensors").unlink()  # as if interrupted before it
    train(tiny, paper_cfg(), run, progress=False)
    assert done.stat().st_mtime_ns == before  # finished nets are not retrained
    again = load_file(str(run / "nets" / "02-pilot-helmet.safetensors"))
    for k in reference:
        np.testing.assert_array_equal(reference[k].numpy(), again[k].numpy())
    with pytest.raises(RunError, match="holds a run with other settings \\(epochs\\)"):
        train(tiny, paper_cfg(epochs=3), run, progress=False)


def test_ours_learns_planted_traits(tmp_path):
    # Each planted accessory is one pixel of its own colour at its own place; the others never
    # occur (their F1 is 0 by convention: no positive, no prediction).
    planted = ("Mole", "Earring", "Rosy Cheeks")
    punks = D.synthetic(1000, seed=2, planted=planted)
    cfg = TrainConfig(n_test=200, epochs=20, seed=0)
    metrics = train(punks, cfg, tmp_path / "run", progress=False)
    f1 = {t: r["f1"] for t, r in metrics["per_trait"].items()}
    assert all(f1[t] == 1.0 for t in D.TYPES + planted), {t: f1[t] for t in D.TYPES + planted}
    assert sum(r["fp"] for r in metrics["per_trait"].values()) == 0
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert 1 <= hist["best_epoch"] <= len(hist["epochs"]) <= 20


def test_tampered_run_folder_is_refused(tiny, tmp_path):
    run = tmp_path / "run"
    train(tiny, TrainConfig(n_test=60, epochs=1), run, progress=False)
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(RunError, match="not a readable safetensors file"):
        Run.open(run)
    weights.unlink()
    with pytest.raises(RunError, match="model.safetensors is missing"):
        Run.open(run)
    with pytest.raises(RunError, match="config.json is missing"):
        Run.open(tmp_path)


# --- the real data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ours_run(punks, tmp_path_factory):
    out = tmp_path_factory.mktemp("ours")
    return out, train(punks, TrainConfig(threads=THREADS), out, progress=False)


def test_real_ours_meets_floors(ours_run):
    # Floors set from measurements (docs/RESULTS.md §8, "Right alone on every seed": seeds 0-2 on
    # the 2 CPU cores give exact match visible 100%, official macro F1 equal to its ceiling).
    _, m = ours_run
    assert m["n_test"] == 2000
    assert m["macro_f1_visible"] >= 0.9995
    assert m["exact_match_visible"] >= 0.999
    assert m["macro_f1"] >= m["macro_f1_ceiling"] - 0.002
    assert m["head_accuracy"] >= 0.999
    assert all(m["per_trait"][t]["f1"] == 1.0 for t in D.TYPES[2:])  # Zombie, Female, Male
    for t in ("Rosy Cheeks", "Spots", "Blue Eye Shadow"):  # the paper's worst three
        assert m["per_trait"][t]["f1_visible"] >= 0.96, t


def test_real_paper_recipe_short_run(punks, tmp_path):
    cfg = TrainConfig(
        recipe="paper", traits=("3D Glasses", "Rosy Cheeks"), epochs=1, threads=THREADS
    )
    m = train(punks, cfg, tmp_path / "paper", progress=False)
    assert m["per_trait"]["3D Glasses"]["f1"] >= 0.9  # the paper: 1.0
    assert m["per_trait"]["Rosy Cheeks"]["f1"] <= 0.5  # the paper: 0.041; grey hides the tint
    assert m["per_trait"]["Rosy Cheeks"]["f1_ceiling"] == pytest.approx(1.0, abs=0.05)


def test_cli_evaluate_and_compare(ours_run, data_dir, tmp_path):
    run, m = ours_run
    r = CliRunner().invoke(cli, ["evaluate", str(run), "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    assert f"macro F1 {m['macro_f1']:.4f}" in r.output
    assert json.loads((run / "metrics.json").read_text())["per_trait"] == m["per_trait"]
    out = tmp_path / "cmp.csv"
    r = CliRunner().invoke(cli, ["compare", str(run), str(run), "--csv", str(out)])
    assert r.exit_code == 0, r.output
    rows = out.read_text().splitlines()
    assert rows[0].startswith("trait,support,f1_A,f1_B,delta") and len(rows) == 1 + 92 + 5
    assert rows[1].split(",")[4] == "0.000000"


def test_shipped_default_model_loads_and_matches_its_metrics(punks):
    from punktraits.files import read_json
    from punktraits.metrics import evaluate
    from punktraits.run import DEFAULT_MODEL

    r = Run.open()
    assert r.config["recipe"] == "ours" and r.config["traits"] == list(D.TRAITS)
    assert (DEFAULT_MODEL / "model.safetensors").stat().st_size < 8_000_000
    test = np.array(read_json(DEFAULT_MODEL / "split.json")["test"])
    np.testing.assert_array_equal(test, D.split(punks.labels, seed=0)[1])
    pred = r.decide(r.probabilities(punks.images[test]))
    m = evaluate(D.TRAITS, punks.labels[test], pred, punks.hidden[test])
    shipped = read_json(DEFAULT_MODEL / "metrics.json")
    assert m["per_trait"] == shipped["per_trait"]
    assert m["macro_f1_visible"] >= 0.995


def test_ours_is_deterministic_for_a_seed_on_cpu(tiny, tmp_path):
    cfg = TrainConfig(n_test=60, epochs=2, seed=5)
    a = train(tiny, cfg, tmp_path / "a", progress=False)
    b = train(tiny, cfg, tmp_path / "b", progress=False)
    assert a["per_trait"] == b["per_trait"]
    wa, wb = (
        load_file(str(tmp_path / "a" / "model.safetensors")),
        load_file(str(tmp_path / "b" / "model.safetensors")),
    )
    for k in wa:
        assert (wa[k] == wb[k]).all(), k


def test_paper_occlusion_uses_only_the_asked_nets_and_equals_the_full_model(tiny, tmp_path):
    from punktraits.predict import Predictor
    from punktraits.recipes.paper import grey, predict

    train(tiny, paper_cfg(epochs=8), tmp_path / "run", progress=False)
    model = Predictor(tmp_path / "run")
    punk = tiny.images[int(np.flatnonzero(tiny.labels[:, D.TRAIT_INDEX["Choker"]])[0])]
    heat = model.occlusion(punk, ["Choker"])["Choker"]
    # The same map from all three nets at once, the slow way.
    variants = np.repeat(punk[None], 577, 0)
    ys, xs = np.divmod(np.arange(576), 24)
    variants[np.arange(1, 577), ys, xs] = 0
    soft = predict(model.run.model, torch.from_numpy(grey(variants)))
    score = np.log(np.clip(soft[:, 1, model.run.model.positive_index].numpy(), 1e-9, 1.0))
    want = np.clip(score[0] - score[1:], 0, None).reshape(24, 24)
    np.testing.assert_allclose(heat, want, atol=1e-5)
    assert heat.shape == (24, 24) and want.max() > 1e-3  # a map with something in it


def test_evaluate_of_the_shipped_model_reproduces_its_metrics_byte_for_byte(data_dir, tmp_path):
    # metrics.json was written by the code before the recipes/ + Run restructuring (issue 7):
    # evaluating the same weights now must give the same file, byte for byte.
    import shutil

    from punktraits.run import DEFAULT_MODEL

    run = tmp_path / "shipped"
    shutil.copytree(DEFAULT_MODEL, run)
    r = CliRunner().invoke(cli, ["evaluate", str(run), "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    assert (run / "metrics.json").read_bytes() == (DEFAULT_MODEL / "metrics.json").read_bytes()


# --- recipe settings (--set) ------------------------------------------------------------------


def test_set_reaches_the_model_and_config(punks, tmp_path):
    # A dry run on the real data: the drawn punks follow temper / any_pair, val_drawn are held out.
    extra = {"hidden": 64, "temper": 0.5, "any_pair": 1, "val_drawn": 100}
    train(punks, TrainConfig(dry_run=True, threads=THREADS, extra=extra), tmp_path, progress=False)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["hidden"] == 64
    assert config["settings"] == {"lr": 4e-3, "embed": 16, "width": 32, "hidden": 64,
                                  "temper": 0.5, "head_temper": 0.5, "any_pair": 1,
                                  "val_drawn": 100, "stop_perfect": 0, "assume_clear": 1,
                                  "replay": 0.25}  # fmt: skip
    assert config["drawn"]["temper"] == 0.5 and config["drawn"]["pairs"] == "any one per slot"
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert weights["head.1.weight"].shape[0] == 64


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "bogus=1"], "--set bogus: not a setting of --recipe ours (its settings: lr, embed,"),
    (["--set", "width"], "--set 'width': write KEY=NUMBER, e.g. --set width=64"),
    (["--set", "width=wide"], "--set 'width=wide': write KEY=NUMBER"),
    (["--recipe", "paper", "--set", "lr=1"], "--set lr: not a setting of --recipe paper (it has none)"),
])  # fmt: skip
def test_set_errors_say_what_to_write(args, message, data_dir, tmp_path):
    r = CliRunner().invoke(cli, ["train", "--data-dir", str(data_dir), "--dry-run",
                                 "--out", str(tmp_path / "run"), *args])  # fmt: skip
    assert r.exit_code != 0
    assert message in r.output


def test_unknown_settings_are_refused_by_the_library(punks, tmp_path):
    with pytest.raises(
        PunktraitsError, match=r"unknown setting\(s\) for --recipe ours: \['wdith'\]"
    ):
        train(punks, TrainConfig(dry_run=True, extra={"wdith": 64}), tmp_path, progress=False)
