"""`punktraits report`: the HTML of small real runs, checked by parsing and in headless Chromium."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import THREADS

from punktraits import data as D
from punktraits.cli import cli
from punktraits.errors import RunError
from punktraits.files import read_json
from punktraits.report import build
from punktraits.run import Run, TrainConfig, train

PAPER_TRAITS = ("Alien", "Ape", "Zombie", "Female", "Male", "Rosy Cheeks", "Earring")


@pytest.fixture(scope="module")
def real_runs(punks, tmp_path_factory):
    """A short run of each recipe on the real data: ours (2 epochs), paper (7 nets, 2 epochs)."""
    root = tmp_path_factory.mktemp("report")
    train(punks, TrainConfig(epochs=2, threads=THREADS, drawn=2000), root / "ours", progress=False)
    paper = TrainConfig(
        recipe="paper", traits=PAPER_TRAITS, epochs=2, per_class=500, threads=THREADS
    )
    train(punks, paper, root / "paper", progress=False)
    return root / "ours", root / "paper"


@pytest.fixture(scope="module")
def ours_report(real_runs, data_dir):
    ours, paper = real_runs
    r = CliRunner().invoke(
        cli, ["report", str(ours), "--compare", str(paper), "--data-dir", str(data_dir)]
    )
    assert r.exit_code == 0, r.output
    assert f"wrote {ours / 'report.html'}" in r.output
    return ours / "report.html"


class Cells(HTMLParser):
    """Collect, per table id, its rows of (data-col, data-value, text) cells, and every <img>."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list]] = {}
        self.images: list[dict] = []
        self._table = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = [a.get("data-col"), a.get("data-value"), ""]
        elif tag == "img":
            self.images.append(a)

    def handle_data(self, text):
        if self._cell is not None:
            self._cell[2] += text

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(tuple(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None


def parse(path) -> Cells:
    p = Cells()
    p.feed(path.read_text("utf-8"))
    return p


def test_report_table_equals_metrics_json(ours_report):
    metrics = json.loads((ours_report.parent / "metrics.json").read_text())
    rows = parse(ours_report).tables["traits"][1:]  # after the header row
    assert [r[0][2] for r in rows] == list(metrics["per_trait"])  # 92 traits, in order
    for row in rows:
        want = metrics["per_trait"][row[0][2]]
        cells = {col: (value, text) for col, value, text in row[1:]}
        for col, v in want.items():
            value, text = cells[col]
            assert float(value) == v, (row[0][2], col)  # the exact number, not a rounded one
            assert text == (f"{v:,}" if isinstance(v, int) else f"{v:.3f}"), (row[0][2], col)
        # the compared paper run: its F1 where it has the trait
        other = json.loads((ours_report.parent.parent / "paper" / "metrics.json").read_text())
        o = other["per_trait"].get(row[0][2])
        assert cells["other_f1"][0] == ("" if o is None else repr(o["f1"]))


def test_report_content_matches_the_runs_predictions(ours_report, punks):
    run = ours_report.parent
    html = ours_report.read_text("utf-8")
    r = Run.open(run)
    test = np.array(read_json(run / "split.json")["test"])
    pred = r.decide(r.probabilities(punks.images[test]))
    truth = punks.labels[test]
    n_wrong = int((pred != truth).any(1).sum())
    cells = parse(ours_report)
    assert len(cells.tables["wrong"]) - 1 == n_wrong > 0  # every misclassified test punk
    assert f"Every misclassified test punk ({n_wrong})" in html
    # The 5x5 type confusion: rows sum to the true type counts, the diagonal is each type's TP.
    metrics = read_json(run / "metrics.json")
    conf = np.array([[int(c[2]) for c in r[1:]] for r in cells.tables["confusion"][1:]])
    assert conf.shape == (5, 5) and conf.sum() == len(test)
    for k, t in enumerate(D.TYPES):
        assert conf[k].sum() == metrics["per_trait"][t]["support"]
        assert conf[k, k] == metrics["per_trait"][t]["tp"]
    # Both runs side by side in the summary.
    summary = cells.tables["summary-table"]
    assert [c[2] for c in summary[0]][1:] == ["ours (ours)", "paper (paper)"]
    macro = next(r for r in summary if r[0][2] == "macro F1 (official labels)")
    paper = read_json(run.parent / "paper" / "metrics.json")
    assert [c[2] for c in macro[1:]] == [f"{metrics['macro_f1']:.4f}", f"{paper['macro_f1']:.4f}"]
    # Figures beside the HTML, and the same bytes embedded in it.
    figs = sorted(p.name for p in (run / "report-figures").glob("*.png"))
    assert {"curves.png", "cdf.png", "types.png"} <= set(figs) and len(figs) == 3 + 6


def test_paper_report_has_per_trait_curves(real_runs, punks):
    _, paper = real_runs
    out = build(paper, punks, progress=False)
    figs = {p.name for p in (paper / "report-figures").glob("*.png")}
    assert "per_trait_curves.png" in figs
    html = out.read_text("utf-8")
    assert "Per trait (Figs. 13–14)" in html
    metrics = read_json(paper / "metrics.json")
    rows = parse(out).tables["traits"][1:]
    assert [r[0][2] for r in rows] == list(PAPER_TRAITS) == list(metrics["per_trait"])


def test_report_loads_in_chromium_offline_with_every_image_decoded(ours_report, page):
    url = ours_report.as_uri()
    page.goto(url)
    page.wait_for_load_state("load")
    assert page.log.errors == [] and page.log.failed == []
    assert [u for u in page.log.requests if u != url and not u.startswith("data:")] == []
    n_tags = len(parse(ours_report).images)
    state = page.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(state) == n_tags > 20
    assert all(ok and w > 0 and h > 0 for ok, w, h in state)
    # Sorting: click F1 once (ascending), the first row is the lowest F1 of metrics.json.
    metrics = json.loads((ours_report.parent / "metrics.json").read_text())
    page.click("#traits th:text-is('f1')")
    first = page.eval_on_selector("#traits tbody tr", "tr => tr.children[0].textContent")
    assert metrics["per_trait"][first]["f1"] == min(r["f1"] for r in metrics["per_trait"].values())
    page.click("#traits th:text-is('f1')")  # descending
    first = page.eval_on_selector("#traits tbody tr td[data-col=f1]", "td => td.dataset.value")
    assert float(first) == max(r["f1"] for r in metrics["per_trait"].values())


def test_report_refuses_stale_metrics(real_runs, punks, tmp_path):
    import shutil

    ours, _ = real_runs
    run = tmp_path / "ours"
    shutil.copytree(ours, run, ignore=shutil.ignore_patterns("report*"))
    metrics = read_json(run / "metrics.json")
    metrics["per_trait"]["Earring"]["f1"] = 0.5
    (run / "metrics.json").write_text(json.dumps(metrics))
    # The edited F1 disagrees with the trait's own counts (schema.py); a consistent edit would
    # disagree with the weights (tests/test_hostile.py).
    with pytest.raises(RunError, match="metrics.json: per_trait.Earring.f1 is 0.5 but its counts"):
        build(run, punks, progress=False)
    assert not (run / "report.html").exists()


def test_report_of_a_missing_folder_is_one_line(tmp_path, data_dir):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "punktraits", "report", str(tmp_path / "nope"),
         "--data-dir", str(data_dir)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'nope' / 'metrics.json'} is missing; "
        f"is {tmp_path / 'nope'} a punktraits run folder?"
    )


def test_report_without_hidden_labels_says_so(tmp_path):
    # Synthetic punks (no hidden.csv): the visible-label numbers are unavailable, not zero.
    punks = D.synthetic(300, seed=1)
    metrics = train(punks, TrainConfig(n_test=60, epochs=2, seed=5), tmp_path, progress=False)
    out = build(tmp_path, punks, progress=False)
    cells = parse(out)
    summary = {r[0][2]: r[1][2] for r in cells.tables["summary-table"][1:]}
    assert summary["macro F1 (visible labels)"] == "n/a (no hidden.csv)"
    assert summary["macro F1 (official labels)"] == f"{metrics['macro_f1']:.4f}"
    rows = cells.tables["traits"][1:]
    assert len(rows) == 92
    f1_visible = {r[0][2]: next(c for c in r if c[0] == "f1_visible") for r in rows}
    assert all(v == ("f1_visible", "", "–") for v in f1_visible.values())
