"""The collection's language: on-chain strings, OpenSea metadata, rarity, originals by pixels."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter

import numpy as np
import pytest

from punktraits import data as D
from punktraits.collection import (
    LAYER_ORDER,
    LAYERS,
    Originals,
    Rarity,
    onchain,
    opensea,
    rarity,
    read_traits,
)
from punktraits.errors import ImageError, PunktraitsError

P8348 = ["Buck Teeth", "Mole", "Big Beard", "Earring", "Top Hat", "Cigarette", "Classic Shades"]


@pytest.fixture(scope="module")
def rows(data_dir):
    return read_traits(data_dir / "traits.csv")


@pytest.fixture(scope="module")
def table(data_dir) -> Rarity:
    return Rarity.load(data_dir)


# ---------------------------------------------------------------------------------------------
# Layer order and the on-chain string


def test_layer_order_is_the_87_accessories():
    assert sorted(LAYER_ORDER) == sorted(D.ACCESSORIES)
    assert len(set(LAYER_ORDER)) == 87


def test_layer_order_matches_every_row(rows):
    position = {a: i for i, a in enumerate(LAYER_ORDER)}
    slot = {a: s for s, names in LAYERS for a in names}
    assert len(rows) == 10_000
    for r in rows:
        idx = [position[a] for a in r["accessories"]]
        assert idx == sorted(idx), r
        # accessories of one slot never meet, so the order inside a slot never shows
        slots = [slot[a] for a in r["accessories"]]
        assert len(set(slots)) == len(slots), r


def test_onchain_examples():
    assert onchain("Male 2", reversed(P8348)) == (
        "Male 2, Buck Teeth, Mole, Big Beard, Earring, Top Hat, Cigarette, Classic Shades"
    )
    assert onchain("Female 2", ["Green Eye Shadow", "Blonde Bob", "Earring"]) == (
        "Female 2, Earring, Blonde Bob, Green Eye Shadow"
    )
    assert onchain("Alien", []) == "Alien"


def test_onchain_equals_traits_csv_for_all_punks(rows):
    rng = random.Random(0)
    for r in rows:
        acc = list(r["accessories"])
        rng.shuffle(acc)
        assert onchain(r["head"], acc) == ", ".join([r["head"], *r["accessories"]])


@pytest.mark.parametrize(
    "head, acc, words",
    [
        ("Male", [], "skin tone"),
        ("Robot", [], "unknown head"),
        ("Male 1", ["Earring", "Earring"], "twice"),
        ("Male 1", ["Monocle"], "unknown accessory"),
        ("Male 1", P8348 + ["Clown Nose"], "at most 7"),
    ],
)
def test_onchain_rejects_what_the_contract_cannot_say(head, acc, words):
    with pytest.raises(PunktraitsError, match=words):
        onchain(head, acc)


# ---------------------------------------------------------------------------------------------
# OpenSea metadata


def test_opensea_matches_the_cryptopunks_721_token_uri():
    meta = opensea("Male 2", reversed(P8348), id=8348, image="https://example.org/8348.png")
    assert meta["name"] == "CryptoPunk #8348"
    assert meta["external_url"] == "https://cryptopunks.app/cryptopunks/details/8348"
    assert meta["image"] == "https://example.org/8348.png"
    assert meta["description"].startswith("CryptoPunks launched as a fixed set of 10,000 items")
    assert meta["attributes"] == [
        {"trait_type": "Type", "value": "Male"},
        *({"trait_type": "Attribute", "value": a} for a in P8348),
        {"trait_type": "Attribute Count", "value": "7"},
        {"trait_type": "Skin Tone", "value": "2"},
    ]
    json.dumps(meta)  # plain JSON


def test_opensea_non_human_and_new_trait_sets():
    meta = opensea("Alien", ["Bandana"])
    assert meta["attributes"] == [
        {"trait_type": "Type", "value": "Alien"},
        {"trait_type": "Attribute", "value": "Bandana"},
        {"trait_type": "Attribute Count", "value": "1"},
    ]  # no Skin Tone for Alien, Ape, Zombie
    assert meta["name"] == "Alien, Bandana" and "not one of" in meta["description"]
    assert "image" not in meta and "external_url" not in meta
    punk = D.synthetic(1).images[0]
    assert opensea("Female 1", [], image=punk)["image"].startswith("data:image/png;base64,")
    with pytest.raises(PunktraitsError, match="skin tone"):
        opensea("Female", [])
    with pytest.raises(PunktraitsError, match="outside"):
        opensea("Female 1", [], id=10_000)


# ---------------------------------------------------------------------------------------------
# Rarity on a tiny collection, worked out by hand

TINY = [
    {"hat": "cap", "eyes": "blue"},  # A
    {"hat": "cap"},  # B
    {"hat": "top", "eyes": "blue"},  # C
    {"eyes": "red"},  # D
]
# Frequencies (N = 4): hat cap 2, top 1, Null 1; eyes blue 2, red 1, Null 1;
# trait count 2 (A, C) 2, trait count 1 (B, D) 2.


def test_rarity_tools_by_hand():
    t = Rarity(TINY)
    # score = sum of 1 / (count / 4) over hat, eyes, trait count
    assert t.tools.tolist() == [
        4 / 2 + 4 / 2 + 4 / 2,  # A: cap, blue, 2 traits = 6
        4 / 2 + 4 / 1 + 4 / 2,  # B: cap, Null, 1 trait = 8
        4 / 1 + 4 / 2 + 4 / 2,  # C: top, blue, 2 traits = 8
        4 / 1 + 4 / 1 + 4 / 2,  # D: Null, red, 1 trait = 10
    ]
    assert t.tools_rank.tolist() == [4, 2, 2, 1]  # competition ranking: B and C tie at 2
    assert t.tools_percentile.tolist() == [0.0, 25.0, 25.0, 75.0]  # % strictly commoner


def test_openrarity_by_hand():
    t = Rarity(TINY)
    # H = hat (1/2*1 + 1/4*2 + 1/4*2) + eyes (same) + trait count (1/2*1 + 1/2*1) = 1.5+1.5+1
    assert t.entropy == 4.0
    # IC = sum of log2(4 / count): A 1+1+1, B 1+2+1, C 2+1+1, D 2+2+1
    assert t.information.tolist() == [3.0, 4.0, 4.0, 5.0]
    assert t.openrarity.tolist() == [3 / 4, 4 / 4, 4 / 4, 5 / 4]
    # values only one item has: C's top, D's red; those items rank first (open-rarity's ranker)
    assert t.unique.tolist() == [0, 0, 1, 1]
    assert t.openrarity_rank.tolist() == [4, 3, 2, 1]


def test_new_trait_set_is_ranked_against_the_collection():
    t = Rarity(TINY)
    r = t.rank({"hat": "top", "eyes": "red"})  # not in TINY; 2 traits
    assert r["rarity_tools"] == {"score": 4 / 1 + 4 / 1 + 4 / 2, "rank": 1, "percentile": 75.0}
    assert r["openrarity"]["information_bits"] == 2 + 2 + 1
    assert r["openrarity"]["rank"] == 1 and r["openrarity"]["percentile"] == 100.0
    assert t.rank(TINY[1])["rarity_tools"]["rank"] == 2  # an original gets its own rank
    with pytest.raises(PunktraitsError, match="no item"):
        t.rank({"hat": "crown"})
    with pytest.raises(PunktraitsError, match="no item"):
        t.rank({"hat": "cap", "eyes": "blue", "mouth": "smile"})


# ---------------------------------------------------------------------------------------------
# Rarity of the 10,000


def independent_scores(rows):
    """Both scores straight from the definitions, with plain loops over traits.csv rows."""
    n = len(rows)
    types = Counter(r["type"] for r in rows)
    has = Counter(a for r in rows for a in r["accessories"])
    size = Counter(len(r["accessories"]) for r in rows)
    probs = [c / n for c in types.values()] + [c / n for c in size.values()]
    for a in D.ACCESSORIES:
        probs += [has[a] / n, (n - has[a]) / n]
    entropy = math.fsum(-p * math.log2(p) for p in probs)
    tools, ic = [], []
    for r in rows:
        counts = [types[r["type"]], size[len(r["accessories"])]]
        counts += [has[a] if a in r["accessories"] else n - has[a] for a in D.ACCESSORIES]
        tools.append(math.fsum(1 / (c / n) for c in counts))
        ic.append(math.fsum(-math.log2(c / n) for c in counts) / entropy)
    return tools, ic


def competition_ranks(keys):
    """1 + position in the descending sort, ties taking the rank of the first of them."""
    order = sorted(range(len(keys)), key=lambda i: keys[i], reverse=True)
    ranks = [0] * len(keys)
    for pos, i in enumerate(order):
        prev = order[pos - 1] if pos else None
        ranks[i] = ranks[prev] if prev is not None and keys[prev] == keys[i] else pos + 1
    return ranks


def test_rank_tables_equal_an_independent_computation(rows, table):
    tools, ic = independent_scores(rows)
    np.testing.assert_allclose(table.tools, tools, rtol=1e-12)
    np.testing.assert_allclose(table.openrarity, ic, rtol=1e-12)
    # only #8348 has a value no other punk has: its accessory count, 7
    assert np.flatnonzero(table.unique).tolist() == [8348]
    unique = [int(i == 8348) for i in range(len(rows))]
    assert table.tools_rank.tolist() == competition_ranks(tools)
    assert table.openrarity_rank.tolist() == competition_ranks(list(zip(unique, ic)))
    # ties exist and share a rank, e.g. Male 3 and Male 2 with Earring and Cigarette
    assert table.tools_rank[3462] == table.tools_rank[6948] == 9999
    assert table.openrarity_rank[3462] == table.openrarity_rank[6948] == 9999
    # exact float ties: no two different scores within open-rarity's isclose (rel 1e-9)
    for s in (table.tools, table.openrarity):
        u = np.unique(s)
        assert (np.diff(u) / u[1:] > 1e-9).all()


def test_openrarity_equals_the_open_rarity_package(table):
    # Pinned from open-rarity 0.7.5 (RarityRanker.rank_collection on the same 10,000 trait sets,
    # Type + one trait type per accessory); on all 10,000 the scores agreed to 4.4e-16 and the
    # ranks exactly when this module was written.
    pinned = {8348: (2.6173688331514446, 1), 7920: (2.2507107356854528, 2),
              2202: (2.1996543372322575, 3), 641: (0.8162496851624917, 8523),
              3462: (0.5780895720680508, 9999)}  # fmt: skip
    for i, (score, rank) in pinned.items():
        assert table.openrarity[i] == pytest.approx(score, rel=1e-14)
        assert table.openrarity_rank[i] == rank


def test_rarest_and_commonest(rows, table, capsys):
    for method, score in (("rarity_tools", table.tools), ("openrarity", table.openrarity)):
        ends = table.extremes(method)
        rank = table.tools_rank if method == "rarity_tools" else table.openrarity_rank
        with capsys.disabled():
            for side in ("rarest", "commonest"):
                print(f"\n{method} {side}:")
                for i in ends[side]:
                    r = rows[i]
                    print(f"  #{i} rank {rank[i]} score {score[i]:.4f}: "
                          f"{onchain(r['head'], r['accessories'])}")  # fmt: skip
        assert rank[ends["rarest"]].tolist() == sorted(rank[ends["rarest"]].tolist())
    assert table.extremes("rarity_tools")["rarest"][0] == 8348
    assert table.extremes("openrarity")["rarest"] == [8348, 7920, 2202]


def test_rarity_of_originals_and_new_trait_sets(data_dir, rows, table):
    r = rarity("Male 2", reversed(P8348), data_dir)
    assert r["accessories"] == P8348 and r["type"] == "Male" and r["of"] == 10_000
    assert r["rarity_tools"]["rank"] == r["openrarity"]["rank"] == 1
    assert r["rarity_tools"]["percentile"] == 99.99
    assert rarity("Male", P8348, data_dir) == r  # only the type counts
    for i in (0, 641, 3462, 9999):  # an original gets its own rank back
        got = rarity(rows[i]["head"], rows[i]["accessories"], data_dir)
        assert got["rarity_tools"]["rank"] == table.tools_rank[i]
        assert got["openrarity"]["rank"] == table.openrarity_rank[i]
        assert got["openrarity"]["score"] == table.openrarity[i]
    new = rarity("Alien", ["Choker", "Big Beard", "Pipe"], data_dir)  # not a punk
    s = new["openrarity"]["score"]
    assert new["openrarity"]["rank"] == 1 + int((table.openrarity > s).sum())
    assert new["rarity_tools"]["rank"] == 1 + int(
        (table.tools > new["rarity_tools"]["score"]).sum()
    )
    json.dumps(new)
    with pytest.raises(PunktraitsError, match="at most 7"):
        rarity("Ape", P8348 + ["Clown Nose"], data_dir)


# ---------------------------------------------------------------------------------------------
# Originals by their pixels


def test_originals_on_synthetic_punks():
    punks = D.synthetic(300, seed=3)
    originals = Originals(punks.images)
    distinct = {punks.images[i].tobytes(): i for i in range(len(punks))}
    for i in range(len(punks)):
        assert originals.lookup(punks.images[i])["id"] == distinct[punks.images[i].tobytes()]
    fake = punks.images[7].copy()
    fake[0, 0] = (1, 2, 3, 255)
    assert originals.lookup(fake) is None
    d = [int((p != fake).any(-1).sum()) for p in punks.images]
    assert originals.nearest(fake) == (int(np.argmin(d)), min(d))
    with pytest.raises(ImageError):
        originals.lookup(np.zeros((24, 24, 3), np.uint8))


def test_originals_finds_all_10000(punks):
    originals = Originals.from_punks(punks)
    t = time.perf_counter()
    for i in range(len(punks)):
        assert originals.lookup(punks.images[i])["id"] == i
    per_lookup = (time.perf_counter() - t) / len(punks)
    hit = originals.lookup(punks.images[8348].copy())
    assert hit["onchain"] == ", ".join(["Male 2", *P8348])
    assert hit["head"] == "Male 2" and hit["accessories"] == P8348
    assert originals.lookup(punks.images[635])["onchain"].startswith("Alien")

    fake = punks.images[1234].copy()
    fake[2, 3] = (1, 2, 3, 255)  # colours no punk has
    fake[20, 20] = (4, 5, 6, 255)
    fake[12, 0] = (7, 8, 9, 128)
    assert originals.lookup(fake) is None
    brute = (punks.images != fake).any(-1).sum((1, 2))  # independent: all pixels, all punks
    assert int(brute.argmin()) == 1234 and int(np.sort(brute)[1]) > 3
    originals.nearest(fake)  # warm up
    times = []
    for _ in range(50):
        t = time.perf_counter()
        got = originals.nearest(fake)
        times.append(time.perf_counter() - t)
    assert got == (1234, 3)
    for i in (0, 5000, 9999):  # an original is 0 pixels from itself
        assert originals.nearest(punks.images[i]) == (i, 0)
    print(f"\nlookup {per_lookup * 1e6:.1f} us, nearest median {np.median(times) * 1e3:.2f} ms")


def test_nearest_originals_from_two_threads_at_once(punks):
    # the server answers two requests at once with one Originals: a scratch array shared by
    # the threads gave one request the other's differing pixels (228 of 400 calls here)
    originals = Originals.from_punks(punks)
    fakes = []
    for i, xy in ((1, (5, 5)), (2, (6, 6))):
        fake = punks.images[i].copy()
        fake[xy] = (1, 2, 3, 255)
        fakes.append(fake)
    want = [(punks.images != f).any(-1).sum((1, 2)) for f in fakes]  # independent: brute force
    wrong = []

    def ask(fake, expect):
        wrong.extend(k for k in range(150) if not np.array_equal(originals.distances(fake), expect))

    threads = [threading.Thread(target=ask, args=fw) for fw in zip(fakes, want)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert [originals.nearest(f) for f in fakes] == [(1, 1), (2, 1)]


def test_rarity_needs_traits_csv(tmp_path):
    with pytest.raises(PunktraitsError, match="traits.csv"):
        rarity("Male 1", [], tmp_path)
