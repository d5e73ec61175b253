"""How often the occlusion map of Mole peaks on the mole's pixel, over the real punks.

    python benchmarks/explain_moles.py [--every 1]

A visible Mole is one pixel at row 16, column 8 (male heads) or 9 (female heads). The punks
counted are those with a visible Mole whose pixel there differs from that pixel on every punk of
the same skin without a Mole (so the mole shows there); the test suite checks every 4th of them.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from punktraits import data as D
from punktraits import load_model


def mole_cases(punks: D.Punks) -> list[tuple[int, int, int]]:
    j = D.TRAIT_INDEX["Mole"]
    skins = np.array(punks.skins)
    cases = []
    for i in np.flatnonzero(punks.visible[:, j]):
        y, x = (16, 9) if skins[i].startswith("Female") else (16, 8)
        usual = punks.images[(skins == skins[i]) & (punks.labels[:, j] == 0)][:, y, x]
        if not (usual == punks.images[i, y, x]).all(-1).any():
            cases.append((int(i), y, x))
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get(D.ENV_DATA))
    ap.add_argument("--every", type=int, default=1)
    args = ap.parse_args()
    punks = D.load(args.data_dir)
    model = load_model()
    cases = mole_cases(punks)[:: args.every]
    hits = sum(
        np.unravel_index(model.occlusion(punks.images[i], ["Mole"])["Mole"].argmax(), (24, 24))
        == (y, x)
        for i, y, x in cases
    )
    n_visible = int(punks.visible[:, D.TRAIT_INDEX["Mole"]].sum())
    print(
        f"visible Moles {n_visible}, with the mole pixel identifiable {len(cases)}; "
        f"hottest pixel = mole pixel in {hits} ({hits / len(cases):.1%})"
    )


if __name__ == "__main__":
    main()
