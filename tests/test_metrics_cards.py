"""The metrics facade: __all__ sorted and complete; one card per stored metric name."""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import math
import pkgutil

import pytest

from covbench import metrics
from covbench.metrics import METRICS, MetricCard, card_for

STORE_NAMES = {"ce", "ce_per_token", "bpb", "kl", "cov", "cov_set", "pass_exact", "pass_sampled",
               "pass_pred", "pass_pred_lo", "pass_pred_hi"}


def _isort_key(name: str) -> tuple[int, str]:
    """ruff RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_complete():
    assert metrics.__all__ == sorted(metrics.__all__, key=_isort_key)
    public = {n for n in vars(metrics) if not n.startswith("_") and n not in {"annotations"}}
    modules = {n for n, v in vars(metrics).items() if type(v) is type(metrics)}
    assert set(metrics.__all__) == public - modules
    for name in metrics.__all__:
        assert getattr(metrics, name) is not None


def test_every_store_metric_has_a_card():
    assert set(METRICS) == STORE_NAMES
    for name, card in METRICS.items():
        assert isinstance(card, MetricCard) and card.name == name
        assert card.title and card.formula and len(card.card) > 80 and card.citation
        assert card.range[0] < card.range[1]
    assert not METRICS["cov"].higher_is_better and METRICS["pass_exact"].higher_is_better
    assert METRICS["cov"].range == (0.0, 1.0) and METRICS["kl"].range[1] == math.inf
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["cov"].higher_is_better = True  # type: ignore[misc]


def test_card_for_keys():
    assert card_for("cov@5.7") is METRICS["cov"]
    assert card_for("bpb") is METRICS["bpb"]
    with pytest.raises(KeyError, match="did you mean 'kl'"):
        card_for("kll")


@pytest.mark.parametrize("module", sorted(
    ["covbench.metrics", "covbench.selection"]
    + [f"covbench.metrics.{m.name}" for m in pkgutil.iter_modules(metrics.__path__)]))
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_metrics_and_selection_import_no_torch_or_lm_eval():
    import subprocess
    import sys

    code = ("import sys, covbench.metrics, covbench.selection; "
            "print(sorted(m for m in ('torch', 'lm_eval', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
