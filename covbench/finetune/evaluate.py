"""Evaluate the LoRA family: the base (step 0) and every adapter on arith_ll and arith_sample, then pick.

For each checkpoint, :func:`evaluate_family`

1. builds the registry's ``smollm2-135m`` spec renamed to ``<family>-<step:07d>`` (family, step) and an
   lm-eval LM for it with the adapter applied by lm-eval's own ``peft=`` argument (:func:`build_lm`),
2. runs ``arith_ll`` (CE, Cov_N, predicted Pass@N) and ``arith_sample`` (n = 16 samples per prompt,
   measured Pass@N) through :func:`covbench.runner.run_job` into a results folder,
3. and, once all are scored, compares the min-CE pick with the coverage-tournament pick on the
   [checkpoints × prompts] matrix of log π̂(y*|x) (:func:`covbench.select_cli.compare`, paper Eq. 29,
   docs/finetune.md "Evaluation").

Measured Pass@N comes from arith_sample's 32 prompts, which are arith_ll's first 32; so next to the
64-prompt prediction the report gives the prediction on those same 32 prompts.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from covbench.finetune.trainer import ADAPTER_WEIGHTS, TRAIN_INFO, checkpoint_name
from covbench.metrics import predicted_pass_at_n
from covbench.records import Run, RunRecord, metric_key
from covbench.registry import ModelSpec, load_registry

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_MODEL = "smollm2-135m"  # the registry entry whose loading the adapters share
FAMILY = "smollm2-lora"
TASKS = ("arith_ll", "arith_sample")
REPORT_N = 8.0  # the Pass@N of the table (measured with n = 16 samples per prompt)


@dataclass(frozen=True)
class Checkpoint:
    name: str
    step: int
    adapter: Path | None  # None: the base model itself (step 0)
    adapter_sha256: str | None = None


@dataclass(frozen=True)
class Row:
    """One checkpoint's numbers (NaN when missing)."""

    name: str
    step: int
    ce: float
    cov: dict[str, float]  # "2", "4", ... -> Cov_N over arith_ll's 64 prompts
    pass_pred: dict[str, float]  # predicted Pass@N, 64 prompts
    pass_pred_32: dict[str, float]  # predicted Pass@N on arith_sample's 32 prompts
    pass_sampled: dict[str, float]  # measured, number verifier, 32 prompts x 16 samples
    pass_strict: dict[str, float]  # measured, exact string " <answer>" (the event arith_ll scores)
    wall_s: float  # load + both tasks in this call; NaN when both were reused from the store


@dataclass
class FamilyReport:
    rows: list[Row]
    min_ce_pick: str
    tournament_pick: str
    tournament_n: float
    tournament_scores: dict[str, float]
    wall_s: float
    results_dir: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def family_checkpoints(adapters_dir: Path, family: str = FAMILY) -> list[Checkpoint]:
    """The base model (step 0) and every ``<family>-NNNNNNN`` adapter folder in ``adapters_dir``, by step."""
    found = []
    for folder in sorted(Path(adapters_dir).glob(f"{family}-*")):
        info_path = folder / TRAIN_INFO
        if not (folder / ADAPTER_WEIGHTS).is_file() or not info_path.is_file():
            raise FileNotFoundError(f"{folder}: not an adapter checkpoint "
                                    f"(needs {ADAPTER_WEIGHTS} and {TRAIN_INFO})")
        try:
            step = int(json.loads(info_path.read_text())["step"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{info_path}: field 'step': {e}") from None
        digest = hashlib.sha256((folder / ADAPTER_WEIGHTS).read_bytes()).hexdigest()
        found.append(Checkpoint(folder.name, step, folder, digest))
    if not found:
        raise FileNotFoundError(f"{adapters_dir}: no {family}-NNNNNNN adapter folders")
    return [Checkpoint(checkpoint_name(family, 0), 0, None)] + sorted(found, key=lambda c: c.step)


def checkpoint_spec(ck: Checkpoint, base: ModelSpec, family: str = FAMILY) -> ModelSpec:
    """The base model's registry spec, renamed and placed in the family. The description names the
    adapter's sha256, so a stored result of other adapter weights under the same name is detected."""
    what = (f"LoRA adapter {ck.adapter.name} (sha256 {ck.adapter_sha256[:16]})" if ck.adapter
            else "the base model (step 0 of the LoRA family)")
    return base.model_copy(update={"name": ck.name, "family": family, "step": ck.step, "default": False,
                                   "floors": {}, "description": f"{base.name} + {what}"})


def build_lm(spec: ModelSpec, adapter: Path | None) -> Any:
    """lm-eval LM for ``spec`` with ``adapter`` applied through HFLM's ``peft=`` argument."""
    import torch

    from covbench.backends.factory import model_args

    torch.set_num_threads(int(os.environ.get("COVBENCH_THREADS") or 1))
    args = model_args(spec)
    if adapter is not None:
        args["peft"] = str(adapter)
    if spec.backend == "hf-fast":
        from covbench.backends.fast_hf import FastHFLM

        return FastHFLM(**args)
    from lm_eval.models.huggingface import HFLM

    return HFLM(**args)


def _check_store(results_dir: Path, spec: ModelSpec) -> None:
    """Refuse to reuse a stored result of the same name that was scored with other adapter weights."""
    from covbench.store import read_run, run_files

    for task in TASKS:
        files = run_files(results_dir, spec.name, task)
        if files and read_run(files[-1]).record.description != spec.description:
            raise ValueError(f"{files[-1]}: field 'description': stored for other weights "
                             f"({read_run(files[-1]).record.description!r}); use a fresh --results folder")


def _strict_pass(run: Run, docs_by_id: dict[int, dict], ns: list[float]) -> dict[str, float]:
    """Mean over prompts of arith's per-doc ``pass_strict@N`` (the exact string y* without the stop)."""
    from covbench.arith.lmeval import process_sample

    samples = run.samples
    if samples is None or samples.generations is None:
        return {f"{n:g}": math.nan for n in ns}
    per = [process_sample(docs_by_id[int(d)], [list(gens)])
           for d, gens in zip(samples.doc_id, samples.generations.rows())]
    return {f"{n:g}": float(np.mean([p[metric_key("pass_strict", n)] for p in per])) for n in ns}


def _value(record: RunRecord, key: str) -> float:
    est = record.metrics.get(key)
    return math.nan if est is None else float(est.value)


def evaluate_family(adapters_dir: Path, results_dir: Path, *, n_tournament: float = 4.0,
                    models_file: Path = REPO_ROOT / "models.yaml", base_model: str = BASE_MODEL,
                    progress: Callable[[str], None] = lambda _: None) -> FamilyReport:
    """Score every checkpoint on both tasks (reusing stored results) and compare the two picks."""
    from covbench.finetune.data import load_eval_task
    from covbench.runner import run_job
    from covbench.select_cli import compare

    base = load_registry(models_file).get(base_model)
    gold = {int(d["doc_id"]): d for d in load_eval_task("arith_sample").eval_docs}
    t_all = time.time()
    rows, ll_records = [], []
    for ck in family_checkpoints(adapters_dir):
        spec = checkpoint_spec(ck, base)
        _check_store(Path(results_dir), spec)
        t0 = time.time()
        lm: Any = None

        def get_lm(s: ModelSpec, ck: Checkpoint = ck) -> Any:
            nonlocal lm
            if lm is None:
                lm = build_lm(s, ck.adapter)
            return lm

        outs = {task: run_job(spec, task, Path(results_dir), get_lm=get_lm) for task in TASKS}
        for out in outs.values():
            progress(out.message)
        lm = None
        gc.collect()
        wall = math.nan if all(out.reused for out in outs.values()) else time.time() - t0
        rows.append(_row(ck, outs["arith_ll"].run, outs["arith_sample"].run, gold, wall))
        ll_records.append(outs["arith_ll"].run)
        progress(f"{ck.name}: {time.time() - t0:.0f} s")
    picks = compare(ll_records, n_tournament)
    return FamilyReport(rows, picks["min_ce_pick"], picks["tournament_pick"], n_tournament,
                        picks["tournament_scores"], time.time() - t_all, str(results_dir))


def _row(ck: Checkpoint, ll_run: Run, sample_run: Run, gold: dict[int, dict], wall: float) -> Row:
    cov_ns, pass_ns = [2.0, 4.0, 8.0, 16.0, 64.0], [1.0, 4.0, 8.0, 16.0]
    assert ll_run.docs is not None  # arith_ll is a scoring task
    by_id = dict(zip(ll_run.docs.doc_id.tolist(), ll_run.docs.logp_model.tolist()))
    sampled_ids = sample_run.samples.doc_id.tolist() if sample_run.samples is not None else []
    ll, sample = ll_run.record, sample_run.record
    pred_32 = predicted_pass_at_n([by_id[d] for d in sampled_ids], pass_ns) if sampled_ids else [math.nan] * 4
    return Row(
        name=ck.name, step=ck.step, ce=_value(ll, "ce"),
        cov={f"{n:g}": _value(ll, metric_key("cov", n)) for n in cov_ns},
        pass_pred={f"{n:g}": _value(ll, metric_key("pass_pred", n)) for n in pass_ns},
        pass_pred_32={f"{n:g}": float(v) for n, v in zip(pass_ns, pred_32)},
        pass_sampled={f"{n:g}": _value(sample, metric_key("pass_sampled", n)) for n in pass_ns},
        pass_strict=_strict_pass(sample_run, gold, pass_ns), wall_s=wall if math.isnan(wall) else round(wall, 1))


def _fmt(v: float | None) -> str:
    """Three decimals; a missing value is "—", never 0."""
    return "—" if v is None or math.isnan(v) else f"{v:.3f}"


def render_markdown(report: FamilyReport) -> str:
    """The evaluation table (docs/finetune.md) and the two picks with the Pass@N each gets."""
    lines = [("| step | CE (nats) | Cov_4 | Cov_16 | pred. Pass@8 (64) | pred. Pass@8 (32) | "
             "meas. Pass@8 (verifier) | meas. Pass@8 (strict) | wall s |"),
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report.rows:
        cells = [r.ce, r.cov["4"], r.cov["16"], r.pass_pred["8"], r.pass_pred_32["8"], r.pass_sampled["8"],
                 r.pass_strict["8"]]
        wall = "reused" if math.isnan(r.wall_s) else f"{r.wall_s:.0f}"
        lines.append(f"| {r.step} | " + " | ".join(_fmt(c) for c in cells) + f" | {wall} |")
    by_name = {r.name: r for r in report.rows}
    lines.append("")
    for label, name in (("min-CE pick", report.min_ce_pick),
                        (f"tournament pick (N = {report.tournament_n:g})", report.tournament_pick)):
        r = by_name[name]
        lines.append(f"- {label}: step {r.step} ({name}): measured Pass@1/4/8/16 = "
                     + "/".join(_fmt(r.pass_sampled[k]) for k in ("1", "4", "8", "16"))
                     + ", predicted Pass@8 = " + _fmt(r.pass_pred["8"]))
    lines.append("- tournament worst-case scores: "
                 + ", ".join(f"{by_name[n].step}: {s:.3f}" for n, s in report.tournament_scores.items()))
    lines.append(f"- total wall time: {report.wall_s:.0f} s")
    return "\n".join(lines) + "\n"
