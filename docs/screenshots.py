"""Make the two screenshots of the README: the top of a report, and the web page.

    python docs/screenshots.py        # needs the data (PUNKTRAITS_DATA) and /usr/bin/chromium

The CryptoPunks artwork is not openly licensed, so no punk may appear in a committed picture:
the report is cut above its first punk (the summary of the shipped model's report), and the page
is shown with a made-up 24x24 figure drawn below (not a punk) and without the gallery.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from punktraits import data as D
from punktraits.report import build
from punktraits.run import DEFAULT_MODEL

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from notpunks import figure_pixels  # noqa: E402  (the not-a-punk set uses the same figure)

DOCS = Path(__file__).parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def figure() -> bytes:
    """An original 24x24 pixel figure (a round head with a cap and glasses), x10, as PNG."""
    buf = io.BytesIO()
    Image.fromarray(figure_pixels(), "RGBA").resize((240, 240), Image.NEAREST).save(
        buf, format="PNG"
    )
    return buf.getvalue()


def main() -> None:
    punks = D.load(progress=False)
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(DEFAULT_MODEL, tmp / "runs" / "ours-seed0")
    here = os.getcwd()
    os.chdir(tmp)  # the report shows the run folder as given: runs/ours-seed0
    try:
        report = build(Path("runs/ours-seed0"), punks, progress=False).resolve()
    finally:
        os.chdir(here)
    (tmp / "figure.png").write_bytes(figure())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "punktraits", "serve", "--no-gallery",
                               "--port", str(port)])  # fmt: skip
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(report.as_uri())
            assert page.evaluate("document.querySelector('#traits-table').offsetTop") > 700
            page.screenshot(path=str(DOCS / "report-top.png"))
            page = browser.new_page(viewport={"width": 1100, "height": 640})
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#file", str(tmp / "figure.png"))
            page.wait_for_selector("#result.shown")
            first = page.eval_on_selector("#traits li.yes", "li => li.dataset.trait")
            page.click(f"#traits li[data-trait='{first}']")
            page.screenshot(path=str(DOCS / "serve.png"))
            browser.close()
    finally:
        server.terminate()
        shutil.rmtree(tmp)
    print(f"wrote {DOCS / 'report-top.png'} and {DOCS / 'serve.png'}")


if __name__ == "__main__":
    main()
