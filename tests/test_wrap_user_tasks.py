"""User-written tasks: a metric_list that leaves out keys covbench's process_results returns works (the
former ``TypeError: unsupported operand type(s) for +: 'int' and 'tuple'``); a wrapped task whose metric
gives no score per sample fails in one line; a loglikelihood origin and an origin given as a file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager
from script_lm import ScriptLM

from covbench.arith.lmeval import agg_bracket_lo
from covbench.metrics import pass_bracket
from covbench.registry import load_registry
from covbench.runner import RunError, run_job
from covbench.taskglue import Pair, weighted_mean
from covbench.taskmeta import TASKS_DIR
from covbench.wrap.cli import main as wrap_main

ARITH_BASE = TASKS_DIR / "arith" / "_arith_base.yaml"


def evaluate(lm, tasks, folder: Path, bootstrap_iters: int = 0) -> dict:
    return simple_evaluate(model=lm, tasks=tasks, log_samples=True, bootstrap_iters=bootstrap_iters,
                           verbosity="ERROR", task_manager=TaskManager(include_path=str(folder), include_defaults=False))


def test_pair_makes_lm_evals_mean_compute_the_named_aggregation() -> None:
    rng = np.random.default_rng(0)
    values, weights = rng.random(7), rng.integers(1, 9, 7).astype(float)
    pairs = [Pair(v, w, weighted_mean) for v, w in zip(values, weights)]
    from lm_eval.api.metrics import mean, mean_stderr

    assert mean(pairs) == pytest.approx(float(np.sum(values * weights) / np.sum(weights)))
    assert weighted_mean(pairs) == pytest.approx(mean(pairs))
    assert math.isnan(mean_stderr(pairs))  # no closed-form stderr of a ratio of sums: NaN, not a number
    xs = -np.log(rng.random(7))
    lo = [Pair(x, 8.0, agg_bracket_lo) for x in xs]
    assert mean(lo) == pytest.approx(float(pass_bracket(xs, [8.0]).lo[0]))
    assert tuple(pairs[0]) == (values[0], weights[0]) and json.loads(json.dumps(pairs[0])) == [values[0], weights[0]]


@pytest.mark.parametrize("bootstrap_iters", [0, 100])
def test_user_task_whose_metric_list_omits_keys_works(tmp_path, bootstrap_iters) -> None:
    """A user's gold-answer task listing only two keys: the others (pairs among them) get their right values."""
    common = (f"include: {ARITH_BASE}\noutput_type: loglikelihood\n"
              "process_results: !function covbench.arith.lmeval.process_ll\n")
    (tmp_path / "mine.yaml").write_text(common + "task: mine\nmetric_list:\n"
                                        "  - {metric: ce, aggregation: mean, higher_is_better: false}\n"
                                        "  - {metric: cov@4, aggregation: mean, higher_is_better: false}\n"
                                        "metadata: {version: 1.0, n: 8, seed: 3}\n")
    (tmp_path / "full.yaml").write_text(common + "task: full\nmetric_list:\n"
                                        "  - {metric: ce_per_token, aggregation: !function covbench.taskglue.weighted_mean, "
                                        "higher_is_better: false}\n"
                                        "  - {metric: pass_pred_lo@8, aggregation: !function "
                                        "covbench.arith.lmeval.agg_bracket_lo, higher_is_better: true}\n"
                                        "metadata: {version: 1.0, n: 8, seed: 3}\n")
    lm = ScriptLM(logp_of=lambda ctx, cont: -0.3 * len(cont))
    out = evaluate(lm, ["mine", "full"], tmp_path, bootstrap_iters)
    mine, full = out["results"]["mine"], out["results"]["full"]
    x = np.array([0.3 * len(c) for _, c in lm.scored[:8]])
    assert mine["ce,none"] == pytest.approx(x.mean())
    assert mine["pass_pred_lo@8,none"] == pytest.approx(full["pass_pred_lo@8,none"])
    assert mine["pass_pred_lo@8,none"] == pytest.approx(float(pass_bracket(x, [8.0]).lo[0]))
    assert math.isnan(mine["ce_per_token,none"]) and math.isnan(full["ce_per_token,none"])  # no token counts


def test_loglikelihood_origin_given_as_lm_evals_lambada(tmp_path) -> None:
    texts = ["the cat sat on the mat", "she opened the door slowly"]
    data = tmp_path / "lambada.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    assert wrap_main(["lambada_openai", "--out", str(tmp_path / "w"), "--data", f"test={data}"]) == 0
    assert sorted(p.name for p in (tmp_path / "w" / "lambada_openai").glob("*.yaml")) == ["lambada_openai_wrap_ll.yaml"]
    lm = ScriptLM(logp_of=lambda ctx, cont: -1.5)
    res = evaluate(lm, ["lambada_openai_wrap_ll"], tmp_path / "w" / "lambada_openai")["results"]["lambada_openai_wrap_ll"]
    assert lm.scored == [("the cat sat on the", " mat"), ("she opened the door", " slowly")]
    assert res["ce,none"] == pytest.approx(1.5) and res["cov@4,none"] == 1.0 and res["cov@5.7,none"] == 0.0


def test_metric_without_a_per_sample_score_fails_in_one_line(tmp_path) -> None:
    """An origin given as a file, whose metric (bleu) hands lm-eval (reference, prediction) per sample."""
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps({"q": f"say {w}", "a": w}) + "\n" for w in ("yes", "no")))
    origin = tmp_path / "origin" / "echo.yaml"
    origin.parent.mkdir()
    origin.write_text("task: echo\ndataset_path: json\ntest_split: test\noutput_type: generate_until\n"
                      "doc_to_text: '{{q}}:'\ndoc_to_target: '{{a}}'\ngeneration_kwargs: {until: ['\\n']}\n"
                      "metric_list:\n  - {metric: bleu, aggregation: bleu, higher_is_better: true}\n")
    assert wrap_main([str(origin), "--out", str(tmp_path / "w"), "--n", "2", "--data", f"test={data}"]) == 0
    reg = tmp_path / "models.yaml"
    reg.write_text(f"models:\n  - name: m\n    pretrained: {tmp_path}\n")
    with pytest.raises(RunError) as err:
        run_job(load_registry(reg).get("m"), "echo_wrap", tmp_path / "store", tasks_dir=tmp_path / "w" / "echo",
                get_lm=lambda s: ScriptLM(sample_of=lambda ctx, j: " yes"))
    message = str(err.value)
    assert "\n" not in message and "metric 'bleu' gives list per sample, not a score; choose another with --metric" in message
    assert str(origin) in message
