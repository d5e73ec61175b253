"""Model contracts: shapes, a gradient for every parameter, no NaNs, the type softmax."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from punktraits import data as D
from punktraits.models import PaperNets, PunkNet, palette_of
from punktraits.recipes.ours import StructuredLoss, decide, pick_drawn, rgba
from punktraits.recipes.paper import grey, oversample


@pytest.mark.parametrize("variant", ["code", "text"])
def test_paper_nets_contract(variant):
    torch.manual_seed(0)
    model = PaperNets(3, variant)
    x = torch.rand(5, 3, 24, 24)
    out = model(x)
    assert out.shape == (5, 3, 2)
    torch.testing.assert_close(out.sum(-1), torch.ones(5, 3))
    out[..., model.positive_index].sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    if variant == "code":  # 160 + 8,256 + 32,896 + 262,656 + 1,026
        assert sum(p.numel() for p in PaperNets(1).parameters()) == 304_994


def test_paper_nets_are_independent_and_stack_round_trips():
    torch.manual_seed(0)
    singles = [PaperNets(1) for _ in range(3)]
    group = PaperNets.stack(singles)
    x = torch.rand(4, 3, 24, 24)
    out = group(x)
    for k, net in enumerate(singles):
        torch.testing.assert_close(out[:, k], net(x[:, k : k + 1])[:, 0], rtol=1e-5, atol=1e-6)
    for a, b in zip(group.unstack(), singles):
        for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pa, pb, msg=na)


def test_punknet_contract_and_type_exclusivity():
    images = D.synthetic(8).images
    torch.manual_seed(0)
    model = PunkNet(len(palette_of(torch.from_numpy(images))))
    model.palette.copy_(palette_of(torch.from_numpy(images)))
    logits = model(rgba(images))
    assert logits.shape == (8, 92) and torch.isfinite(logits).all()
    logits.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    prob = model.probabilities(logits.detach())
    torch.testing.assert_close(prob[:, :5].sum(1), torch.ones(8))
    pred = decide(prob.numpy())
    assert (pred[:, :5].sum(1) == 1).all()


def test_palette_snaps_each_pixel_to_its_exact_colour():
    images = D.synthetic(20).images
    pal = palette_of(torch.from_numpy(images))
    model = PunkNet(len(pal))
    model.palette.copy_(pal)
    idx = model.colour_index(rgba(images))
    back = (pal[idx] * 255).round().byte().numpy()  # (N, 24, 24, 4)
    np.testing.assert_array_equal(back, images)


def test_palette_lookup_equals_the_nearest_colour_and_falls_back():
    """`predict` looks punks read pixel for pixel up in the palette (no distances): the same
    indices as `colour_index`, hence the same probabilities; a batch with a colour outside the
    palette goes to the model as RGBA, whose nearest colours decide."""
    from punktraits.recipes.ours import _Lookup, predict

    images = D.synthetic(20).images
    pal = palette_of(torch.from_numpy(images[:10]))  # (the last ten may have colours it lacks)
    torch.manual_seed(0)
    model = PunkNet(len(pal)).eval()
    model.palette.copy_(pal)
    lookup = _Lookup(model)
    inside = np.array([np.isin(im.reshape(-1, 4).view(np.uint32), images[:10].reshape(-1, 4).view(np.uint32)).all() for im in images])  # fmt: skip
    assert inside[:10].all() and not inside.all()
    idx = lookup(images[:10])
    assert idx.dtype == torch.long
    np.testing.assert_array_equal(idx.numpy(), model.colour_index(rgba(images[:10])).numpy())
    odd = images[~inside][:1]
    assert lookup(odd).dtype == torch.float32
    torch.testing.assert_close(lookup(odd), rgba(odd))
    with torch.no_grad():
        want = model.probabilities(model(rgba(images))).numpy()
    np.testing.assert_allclose(predict(model, images, batch=10), want, rtol=0, atol=1e-6)
    # the lookup is kept on the model between calls, and built again when its palette changes
    # (weights loaded after a first prediction)
    assert _Lookup.of(model) is _Lookup.of(model)
    first = _Lookup.of(model)
    other = palette_of(torch.from_numpy(images[10:]))
    model.load_state_dict({**model.state_dict(), "palette": other[: len(pal)]})
    assert _Lookup.of(model) is not first
    np.testing.assert_array_equal(_Lookup.of(model).packed, _Lookup(model).packed)
    assert not np.array_equal(_Lookup.of(model).packed, first.packed)


def test_grey_matches_opencv_on_known_pixels():
    px = np.array([[[[0, 0, 0, 0], [0, 0, 0, 255], [255, 246, 142, 255], [255, 255, 255, 255],
                     [113, 63, 29, 255]]]], np.uint8)  # fmt: skip
    # cv2.imread(..., IMREAD_GRAYSCALE) of these pixels saved as an RGBA PNG (opencv 5.0.0)
    assert np.rint(grey(px) * 255).astype(int).tolist() == [[[0, 0, 236, 255, 74]]]


def test_oversampler_balances_classes():
    positive = np.zeros(1000, np.uint8)
    positive[[3, 50, 700]] = 1
    idx = oversample(positive, 8000, np.random.default_rng(0))
    assert len(idx) == 16_000
    assert positive[idx].sum() == 8000
    assert set(idx[positive[idx] == 1].tolist()) == {3, 50, 700}
    assert positive[idx[:100]].sum() not in (0, 100)  # shuffled, not 8000 then 8000


def test_structured_loss_is_the_weighted_means_and_ranks_each_punk():
    # The loss is what F.cross_entropy / F.binary_cross_entropy_with_logits give with their mean
    # reductions; `last` is each punk's own loss, which `replay` uses to find the hardest.
    torch.manual_seed(0)
    t, n_heads = 92, 11
    logits = torch.randn(6, t + n_heads)
    y = torch.zeros(6, t + 1, dtype=torch.long)
    y[torch.arange(6), torch.tensor([0, 1, 2, 3, 4, 4])] = 1
    y[:, 5 + 7] = 1
    y[:, t] = torch.tensor([0, 3, 5, 8, 10, 10])
    tw, pw, hw = torch.rand(5) + 0.5, torch.rand(t - 5) + 0.5, torch.rand(n_heads) + 0.5
    loss, _, _ = StructuredLoss(tw, pw, t, hw)(logits, y)
    want = (
        torch.nn.functional.cross_entropy(logits[:, :5], y[:, :5].argmax(1), weight=tw)
        + 4 * torch.nn.functional.binary_cross_entropy_with_logits(
            logits[:, 5:t], y[:, 5:t].float(), pos_weight=pw)
        + torch.nn.functional.cross_entropy(logits[:, t:], y[:, t], weight=hw)
    )  # fmt: skip
    torch.testing.assert_close(loss, want)
    fn = StructuredLoss(tw, pw, t, hw)
    good = torch.full((6, t + n_heads), -8.0)
    good[:, :t][y[:, :t].bool()] = 8.0
    good[torch.arange(6), t + y[:, t]] = 8.0
    bad = good.clone()
    bad[2, 5 + 40] = 8.0  # punk 2: an accessory it does not wear, confidently
    fn(bad, y)
    assert int(fn.last.argmax()) == 2 and fn.last[2] > 10 * fn.last[[0, 1, 3, 4, 5]].max()


def test_replay_picks_the_hardest_then_others_at_random():
    hardness = torch.tensor([0.1, 5.0, float("inf"), 3.0, 0.2, float("inf"), 4.0, 0.0])
    pick = pick_drawn(hardness, 6, 2, torch.Generator().manual_seed(0))
    assert pick[:2].tolist() == [1, 6]  # the two highest losses; never-trained ones are not hard
    assert len(pick) == 6 and len(set(pick.tolist())) == 6
    plain = pick_drawn(hardness, 6, 0, torch.Generator().manual_seed(0))
    assert (
        plain.tolist() == torch.randperm(8, generator=torch.Generator().manual_seed(0))[:6].tolist()
    )
