"""End to end on a graph task: exact Pass@N from *scoring* the correct set under a policy agrees with
Pass@N *sampled* from that policy (generate_until, verifier), for the identity and three other
policies, through ``covbench.runner.run_job`` and the suite's own agreement check. Before policy
scoring, exact Pass@N described the T = 1 model whatever the sampler did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from covbench import metrics
from covbench.backends import clear_cache, get_lm, get_lms
from covbench.checks import agreement_problems
from covbench.records import Run
from covbench.registry import ModelSpec
from covbench.runner import run_job

ROOT = Path(__file__).parent.parent
ZOO = ROOT / "covbench" / "zoo" / "checkpoints" / "graph-pt"
POLICIES = {"t1": {"temperature": 1.0}, "t07": {"temperature": 0.7}, "t13": {"temperature": 1.3},
            "p09": {"top_p": 0.9}}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """A 0.33M-parameter model on a shared 2-core machine: one thread."""


def _row(scored: Run, sampled: Run) -> str:
    """CE, Cov_8 and exact vs sampled Pass@N on the sampled prompts (the numbers in docs/policies.md)."""
    docs = scored.docs
    index = {d: i for i, d in enumerate(docs.doc_id.tolist())}
    rows = np.array([index[d] for d in sampled.samples.doc_id.tolist()])
    w = docs.weight[rows] if docs.weight is not None else np.ones(rows.size)
    metrics_of = scored.record.metrics
    cells = [f"CE {metrics_of['ce'].value:.3f}", f"Cov_8 {metrics_of['cov@8'].value:.3f}"]
    for n in (1, 8, 32):
        exact = np.average(metrics.pass_at_n_per_prompt(np.asarray(docs.logp_correct)[rows], [n])[0], weights=w)
        est = sampled.record.metrics[f"pass_sampled@{n}"]
        cells.append(f"Pass@{n} {exact:.3f} / {est.value:.3f} ± {est.stderr:.3f}")
    cells.append(f"S_x cut on {int(np.isneginf(docs.logp_correct).sum())}/{len(docs.doc_id)} prompts")
    return " | ".join(cells)


@pytest.mark.slow
def test_exact_and_sampled_pass_at_n_agree_under_each_policy(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    clear_cache()
    specs = [ModelSpec(name=f"graph-pt-{k}", backend="hf-fast", pretrained=str(ZOO), batch_size=64,
                       generation=gen) for k, gen in POLICIES.items()]
    lms = get_lms(specs)   # one model object, one policy family
    exact: dict[str, dict[str, float]] = {}
    for spec in specs:
        scored = run_job(spec, "graph_fig1", tmp_path).run
        sampled = run_job(spec, "graph_fig1_sample", tmp_path).run
        assert sampled.samples is not None and sampled.samples.n == 32
        assert agreement_problems(sampled, scored) == [], spec.name
        exact[spec.name] = {k: v.value for k, v in scored.record.metrics.items() if k.startswith("pass_exact@")}
        with capsys.disabled():
            print(f"\n{spec.name}: {_row(scored, sampled)}", end="")
        assert sampled.record.provenance.sampling["temperature"] == spec.generation.temperature
    assert lms[specs[0].name].family.passes == 1          # graph_fig1 scored for all four in one pass
    assert get_lm(specs[0]).last_stats.sampled_policies[-1].label == "T=1"
    # the check has teeth: the policies' exact Pass@N really differ, and a truncated policy can lose
    # mass on correct paths for good (top-p: -inf log-probs), which sampling then never finds
    values = np.array([[exact[s.name][f"pass_exact@{n}"] for n in (1, 8)] for s in specs])
    assert np.ptp(values[:, 0]) > 0.05
    assert exact["graph-pt-t07"]["pass_exact@1"] > exact["graph-pt-t1"]["pass_exact@1"] > \
        exact["graph-pt-t13"]["pass_exact@1"]
    clear_cache()
