"""What ``covbench wrap`` writes for one origin task: the task configs as data, checked (docs/wrap.md).

Every wrapped task YAML ``include:`` s the origin's file (nothing of it is copied) and overrides only:

- the data, when ``--data SPLIT=FILE`` is given: lm-eval's packaged ``json``/``csv``/``parquet`` builder over
  the local files (offline), and every split field of the origin that names a split not given set to
  null, so lm-eval never asks for it;
- for a ``generate_until`` origin, the sampling task ``<name>_wrap``: n samples per prompt (``repeats``)
  drawn from the full distribution at temperature T (``do_sample``, ``top_k: 0``), the origin's stop
  strings kept; one filter pipeline per origin filter, each judging every sample with the origin's
  pipeline of that name and its metric (:class:`covbench.wrap.glue.Binding`; the chosen one first: it
  is the stored verdict); sampled Pass@k per doc;
- for every origin, the scoring task ``<name>_wrap_ll``: log π̂ of the gold target (a one-choice
  ``multiple_choice`` task over the origin's own gold, or the origin's ``loglikelihood`` request as it
  is), CE, Cov_N and predicted Pass@N of it (``covbench.arith.lmeval.process_ll``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from covbench.arith.lmeval import ll_metric_names
from covbench.metrics import DEFAULT_PASS_NS
from covbench.records import metric_key
from covbench.taskglue import higher_is_better
from covbench.wrap.glue import WrapError
from covbench.wrap.origin import Origin

SPLIT_FIELDS = ("training_split", "validation_split", "test_split", "fewshot_split")
FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
SAMPLING_KEYS = ("do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p", "num_beams")
STUB = "covbench_wrap"  # the by-path module next to the YAMLs: covbench_wrap.py


class Function(str):
    """A ``!function module.name`` reference in a task YAML."""


@dataclass(frozen=True)
class WrapRequest:
    """The user's choices for one wrap (``covbench wrap`` arguments)."""

    origin: str
    data: dict[str, Path] = field(default_factory=dict)  # split -> local file; empty: the origin's own data
    n: int = 16
    temperature: float = 1.0
    top_p: float | None = None
    max_gen_toks: int | None = None  # default: the origin's, else 256
    verdict_filter: str | None = None  # default: the origin's first filter pipeline
    metric: str | None = None  # default: the origin's first metric
    threshold: float = 1.0
    num_fewshot: int | None = None  # default: the origin's
    name: str | None = None  # default: the origin's task name


@dataclass(frozen=True)
class Plan:
    """The configs to write: ``tasks`` maps task name → YAML mapping (``include`` first)."""

    name: str
    origin: Origin
    tasks: dict[str, dict[str, Any]]
    sample_task: str | None
    scoring_task: str


def plan(request: WrapRequest, origin: Origin) -> Plan:
    """The wrapped tasks' configs for ``request``; a one-line :class:`WrapError` for anything that cannot work."""
    _check_request(request, origin)
    name = request.name or origin.name
    common = {"include": str(origin.path), "tag": None, "task_alias": None, **_data_overrides(request, origin)}
    if request.num_fewshot is not None:
        common["num_fewshot"] = request.num_fewshot
    scoring, sample = f"{name}_wrap_ll", f"{name}_wrap"
    tasks: dict[str, dict[str, Any]] = {}
    if origin.output_type == "generate_until":
        tasks[sample] = _sample_task(request, origin, sample, scoring, common)
    tasks[scoring] = _scoring_task(origin, scoring, common)
    return Plan(name, origin, tasks, sample if sample in tasks else None, scoring)


def _check_request(request: WrapRequest, origin: Origin) -> None:
    where = f"covbench wrap {origin.name}"
    if not isinstance(request.n, int) or request.n < 1:
        raise WrapError(f"{where}: --n must be a whole number >= 1, got {request.n!r}")
    if not (math.isfinite(request.temperature) and request.temperature > 0):
        raise WrapError(f"{where}: --temperature must be > 0, got {request.temperature!r}")
    if request.top_p is not None and not 0 < request.top_p <= 1:
        raise WrapError(f"{where}: --top-p must be in (0, 1], got {request.top_p!r}")
    if request.max_gen_toks is not None and request.max_gen_toks < 1:
        raise WrapError(f"{where}: --max-gen-toks must be >= 1, got {request.max_gen_toks!r}")
    if request.num_fewshot is not None and request.num_fewshot < 0:
        raise WrapError(f"{where}: --num-fewshot must be >= 0, got {request.num_fewshot!r}")
    if request.name is not None and not request.name.replace("_", "").replace("-", "").isalnum():
        raise WrapError(f"{where}: --name must be letters, digits, '_' or '-', got {request.name!r}")
    if origin.output_type != "generate_until":
        return
    if request.verdict_filter is not None and request.verdict_filter not in origin.filters:
        raise WrapError(f"{origin.path}: field 'filter_list': no filter named {request.verdict_filter!r} "
                        f"(the task has {origin.filters})")
    if request.metric is not None and origin.metrics and request.metric not in origin.metrics:
        raise WrapError(f"{origin.path}: field 'metric_list': no metric named {request.metric!r} "
                        f"(the task has {origin.metrics})")


def _data_overrides(request: WrapRequest, origin: Origin) -> dict[str, Any]:
    """Local data files in place of the origin's dataset, and the split fields that name absent splits nulled."""
    if not request.data:
        return {}
    formats = set()
    files: dict[str, str] = {}
    for split, path in request.data.items():
        fmt = FORMATS.get(Path(path).suffix.lower())
        if fmt is None:
            raise WrapError(f"--data {split}={path}: unknown file type (use {', '.join(sorted(FORMATS))})")
        if not Path(path).is_file():
            raise WrapError(f"--data {split}={path}: no such file")
        formats.add(fmt)
        files[split] = str(Path(path).resolve())
    if len(formats) > 1:
        raise WrapError(f"--data: all files must be of one type, got {sorted(formats)}")
    cfg = origin.config
    out: dict[str, Any] = {"dataset_path": formats.pop(), "dataset_name": None, "custom_dataset": None,
                           "dataset_kwargs": {"data_files": files}}
    for key in SPLIT_FIELDS:
        if cfg.get(key) is not None and cfg[key] not in files:
            out[key] = None
    fewshot_cfg = cfg.get("fewshot_config")
    if isinstance(fewshot_cfg, dict) and fewshot_cfg.get("split") not in (None, *files):
        out["fewshot_config"] = {**fewshot_cfg, "split": None}
    _check_splits(origin, files, request.num_fewshot)
    return out


def _check_splits(origin: Origin, files: dict[str, str], num_fewshot: int | None) -> None:
    """lm-eval evaluates on the test split, else the validation split, and takes few-shot examples from the
    few-shot split, else the training split, else the validation split: each must be a given file."""
    cfg = origin.config
    evals = [(k, cfg[k]) for k in ("test_split", "validation_split") if cfg.get(k) is not None]
    if evals and not any(split in files for _, split in evals):
        key, split = evals[0]
        raise WrapError(f"{origin.path}: field '{key}': task {origin.name!r} evaluates on split {split!r}: give "
                        f"--data {split}=FILE")
    shots = origin.num_fewshot if num_fewshot is None else num_fewshot
    fewshot_cfg = cfg.get("fewshot_config") if isinstance(cfg.get("fewshot_config"), dict) else {}
    if shots <= 0 or fewshot_cfg.get("samples"):
        return
    sources = [(k, cfg[k]) for k in ("fewshot_split", "training_split", "validation_split") if cfg.get(k)]
    if fewshot_cfg.get("split"):
        sources.insert(0, ("fewshot_config.split", fewshot_cfg["split"]))
    if sources and sources[0][1] not in files:
        key, split = sources[0]
        raise WrapError(f"{origin.path}: field '{key}': task {origin.name!r} takes {shots} few-shot examples from "
                        f"split {split!r}: give --data {split}=FILE, or --num-fewshot 0")


def _sample_task(request: WrapRequest, origin: Origin, name: str, scoring: str,
                 common: dict[str, Any]) -> dict[str, Any]:
    gen = {k: v for k, v in (origin.config.get("generation_kwargs") or {}).items() if k not in SAMPLING_KEYS}
    gen["max_gen_toks"] = request.max_gen_toks or gen.get("max_gen_toks") or 256
    gen.update(do_sample=True, temperature=float(request.temperature), top_k=0)
    if request.top_p is not None:
        gen["top_p"] = float(request.top_p)
    chosen = request.verdict_filter or origin.filters[0]
    order = [chosen] + [f for f in origin.filters if f != chosen]
    metric = request.metric or (origin.metrics[0] if origin.metrics else None)
    judge = {"function": Function(f"{STUB}.Judge"), "metric": metric, "threshold": float(request.threshold)}
    return {**common, "task": name, "output_type": "generate_until", "repeats": request.n,
            "generation_kwargs": gen,
            "filter_list": [{"name": f, "filter": [{**judge, "origin_filter": f}]} for f in order],
            "process_results": Function("covbench.taskglue.process_judged"),
            "metric_list": [{"metric": metric_key("pass_sampled", k), "aggregation": "mean",
                             "higher_is_better": True} for k in DEFAULT_PASS_NS],
            "metadata": {"version": origin.version, "covbench": {
                "title": f"{origin.name} (lm-eval), n samples at T = {request.temperature:g}: sampled Pass@k, "
                         f"verdicts by its filter {chosen!r} and metric {metric!r}",
                "reference": "gold", "kind": "sample", "adapter": "covbench.taskglue:records",
                "pairs_with": scoring}}}


def _scoring_task(origin: Origin, name: str, common: dict[str, Any]) -> dict[str, Any]:
    request_form: dict[str, Any]
    if origin.output_type == "loglikelihood":
        request_form = {"output_type": "loglikelihood"}  # the origin's own (context, target) request
    else:
        request_form = {"output_type": "multiple_choice", "doc_to_choice": Function(f"{STUB}.gold_choices"),
                        "doc_to_target": 0, "generation_kwargs": None}
    return {**common, "task": name, **request_form, "repeats": 1,
            "filter_list": [{"name": "none", "filter": [{"function": "take_first"}]}],
            "process_results": Function("covbench.arith.lmeval.process_ll"),
            "metric_list": ll_metric_list(),
            "metadata": {"version": origin.version, "covbench": {
                "title": f"{origin.name} (lm-eval): CE and Cov_N of the gold target",
                "reference": "gold", "kind": "loglikelihood", "adapter": "covbench.taskglue:records"}}}


def ll_metric_list() -> list[dict[str, Any]]:
    """The metric_list of a gold-answer scoring task: every key ``process_ll`` returns, with its aggregation."""
    out = []
    for key in ll_metric_names():
        agg: Any = "mean"
        if key == "ce_per_token":
            agg = Function("covbench.taskglue.weighted_mean")
        elif key.startswith("pass_pred_lo@"):
            agg = Function("covbench.arith.lmeval.agg_bracket_lo")
        hib = True if key == "greedy_gold" else higher_is_better(key)
        out.append({"metric": key, "aggregation": agg, "higher_is_better": hib})
    return out
