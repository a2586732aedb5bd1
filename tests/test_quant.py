"""Quantized variants (covbench/backends/quantize.py): the dequantized weights really differ from the base,
by an amount consistent with the bit width, checked group by group against formulas computed here:

- the integer codes lie in [−2^(b−1), 2^(b−1) − 1], so a group has at most 2^b distinct values;
- each group's scale is what the scheme prescribes from the base weights (sym: max|w| / ((2^b − 1)/2),
  asym: (max w − min w) / (2^b − 1)), and |w − ŵ| ≤ scale / 2 everywhere;
- the error shrinks as bits grow, and only the decoder Linear layers change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance

from covbench.backends import clear_cache, make_lm
from covbench.backends.quantize import quantizable_layers
from covbench.backends.weights import weights_for
from covbench.registry import ModelSpec

ROOT = Path(__file__).parent.parent
ZOO = ROOT / "covbench" / "zoo" / "checkpoints" / "graph-pt"


pytestmark = pytest.mark.slow   # loads the zoo checkpoint through lm-eval (seconds)

@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models on a shared 2-core machine: one thread."""


@pytest.fixture(scope="module", autouse=True)
def _fresh_cache() -> None:
    clear_cache()
    yield
    clear_cache()


def _spec(name: str, **fields: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": name, "pretrained": str(ZOO), "backend": "hf-fast",
                                     "batch_size": 16, **fields})


def check_group_quantization(base_w: torch.Tensor, q: torch.Tensor, bits: int, group: int, scheme: str) -> float:
    """Assert the per-group properties of one quantized weight; return its mean absolute error."""
    w = base_w.detach().double().reshape(base_w.shape[0], -1, group)             # [out, groups, g]
    deq = q.dequantize().double().reshape(w.shape)
    codes = q.qdata.reshape(w.shape)
    scale = q.scale.double().reshape(w.shape[0], -1, 1)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert int(codes.min()) >= lo and int(codes.max()) <= hi
    ordered = deq.reshape(-1, group).sort(dim=-1).values
    distinct = 1 + (ordered[:, 1:] != ordered[:, :-1]).sum(-1)            # distinct values per group
    assert int(distinct.max()) <= 2 ** bits
    if scheme == "sym":
        expected = w.abs().amax(-1, keepdim=True) / ((2 ** bits - 1) / 2)
    else:
        expected = (w.amax(-1, keepdim=True).clamp(min=0) - w.amin(-1, keepdim=True).clamp(max=0)) / (2 ** bits - 1)
    np.testing.assert_allclose(scale.numpy(), expected.numpy(), rtol=1e-5, atol=1e-12)
    err = (w - deq).abs()
    # rounding error at most half a step; ŵ = s·q is computed in float32, which adds up to a few ulps of
    # |q|·s (|q| ≤ 2^(b−1)), i.e. 2^(b−1) · 2e-7 steps
    assert bool((err <= scale * (0.5 + 2 ** (bits - 1) * 2e-7)).all())
    return float(err.mean())


@pytest.mark.parametrize("scheme", ["sym", "asym"])
def test_variants_change_the_weights_as_their_bit_width_allows(scheme: str) -> None:
    base = weights_for(_spec("base")).model
    errors = {}
    for bits in (8, 4, 3, 2):
        settings = {"bits": bits, "group_size": 32, "scheme": scheme}
        variant = weights_for(_spec(f"q{bits}", quantize=settings)).model
        base_layers, layers = quantizable_layers(base), quantizable_layers(variant)
        assert list(base_layers) == list(layers) and len(layers) == 6 * 7     # every decoder Linear
        errs = [check_group_quantization(base_layers[n].weight, layers[n].weight, bits, 32, scheme)
                for n in layers]
        errors[bits] = float(np.mean(errs))
        assert errors[bits] > 0                                               # the weights really changed
        for name, p in variant.named_parameters():                            # nothing else did
            if not any(name.startswith(layer + ".") for layer in layers):
                assert p is dict(base.named_parameters())[name]
    assert errors[8] < errors[4] < errors[3] < errors[2]
    # each bit removed roughly doubles the error (uniform rounding error ~ scale / 4 ~ 2^-b)
    assert 2 ** 4 / 2 < errors[4] / errors[8] < 2 ** 4 * 2


def test_group_size_sets_how_many_weights_share_a_scale() -> None:
    base = quantizable_layers(weights_for(_spec("base")).model)
    for group in (32, 64):
        layers = quantizable_layers(weights_for(_spec(f"g{group}", quantize={"bits": 4, "group_size": group})).model)
        for name, layer in layers.items():
            assert layer.weight.scale.shape == (layer.out_features, layer.in_features // group)
            check_group_quantization(base[name].weight, layer.weight, 4, group, "sym")


def test_quantized_variant_scores_differ_from_the_base_more_at_fewer_bits() -> None:
    docs = [("0 1 | 1 2 / 0 2 =", " 0 1 2"), ("3 4 | 4 5 / 3 5 =", " 3 4 5"), ("7 8 / 7 9 =", " 7 9")]
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(docs)]
    base = np.array([lp for lp, _ in make_lm(_spec("base")).loglikelihood(requests)])
    shift = {}
    for bits in (8, 2):
        scores = make_lm(_spec(f"q{bits}", quantize={"bits": bits, "group_size": 32})).loglikelihood(requests)
        lp = np.array([s for s, _ in scores])
        assert np.isfinite(lp).all()
        shift[bits] = float(np.abs(lp - base).max())
    assert 0 < shift[8] < 0.05 < shift[2]
