"""lm-eval glue of the graph tasks: data loader, request shape, process_results, YAML text, store adapter.

The task YAMLs under ``tasks/graph/`` are generated from :data:`TASKS` by ``covbench data yaml`` (a test
checks they are current) and reference functions of this module directly
(``!function covbench.graphs.lmeval.X``: lm-eval imports the installed module when no file of that name
sits next to the YAML), so the glue does not depend on the working directory.

Data: ``custom_dataset: !function covbench.graphs.lmeval.load_dataset``. lm-eval 0.4.13 calls it with the
task's ``metadata`` as keyword arguments (api/task.py:865); it regenerates the docs in memory from the
seeded spec in ``metadata.covbench.data`` (about 0.1-0.7 s), so no data file and no path is involved
(docs/lm-eval-notes.md#trap-data-files). ``covbench data write`` exports the same docs as JSONL for inspection.

Requests. ``graph_fig1`` and ``graph_fig2_h*`` score every path of S_x (the π_D support: ≤ 4 paths in
Fig. 1, 1 or 16 in Fig. 2) with the stock ``output_type: multiple_choice`` (choices = S_x,
``target_delimiter: ""`` because each path text starts with a space): one loglikelihood request per
path, robust under the stock CLI, no custom Task class. Per doc, KL, CE and Cov_N are then exact
expectations over π_D(·|x) (docs/coverage-principle.md#est-exact) and log π̂(S_x|x) = logsumexp gives exact Pass@N.
``graph_fig1_sample`` uses ``generate_until`` with ``repeats`` samples of at most L + 3 tokens and the
verifier (``covbench.graphs.verifier``); a ``take_first_k`` filter keeps all repeats.

Fig. 1 evaluates i.i.d. fine-tuning-mixture prompts (uniform doc weights, ``aggregation: mean``);
``graph_fig1_sample`` uses the first 128 of those same docs, so its measured Pass@N is comparable doc by
doc with the exact Pass@N. Fig. 2 uses stratified docs (256 per class) with weights prior / count and
the weighted-mean aggregation of ``covbench.taskglue``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from covbench import taskglue
from covbench.graphs import generator as gen
from covbench.graphs.verifier import is_correct
from covbench.records import DocArrays, SampleArrays

MIXTURES: dict[str, dict[str, float]] = {
    "fig1_finetune": gen.FIG1_FINETUNE,
    "fig1_pretrain": gen.FIG1_PRETRAIN,
    "fig2": gen.FIG2_MIXTURE,
}
ADAPTER = "covbench.graphs.lmeval:records"
_FN = "covbench.graphs.lmeval"


@dataclass(frozen=True)
class DataSpec:
    """Seeded recipe of a task's docs: ``n`` i.i.d. docs, or ``n_per_class`` per class (stratified)."""

    family: str
    n_layers: int
    m: int
    mixture: str
    seed: int
    n: int | None = None
    n_per_class: int | None = None
    edge_order: str = "layered"
    hidden_seed: int = gen.DEFAULT_HIDDEN_SEED

    def config(self) -> gen.GraphConfig:
        return gen.GraphConfig(family=self.family, n_layers=self.n_layers, m=self.m,  # type: ignore[arg-type]
                               edge_order=self.edge_order, hidden_seed=self.hidden_seed)  # type: ignore[arg-type]

    def docs(self) -> list[gen.GraphDoc]:
        if self.mixture not in MIXTURES:
            raise ValueError(f"data spec: field 'mixture': unknown {self.mixture!r}; expected {sorted(MIXTURES)}")
        if (self.n is None) == (self.n_per_class is None):
            raise ValueError("data spec: give exactly one of the fields 'n' and 'n_per_class'")
        if self.n is not None:
            return gen.sample_docs(self.config(), MIXTURES[self.mixture], self.n, self.seed)
        return gen.stratified_docs(self.config(), MIXTURES[self.mixture], self.n_per_class, self.seed)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TaskSpec:
    """One lm-eval task: its data, kind (scoring or sampling) and, for sampling, repeats and doc limit."""

    name: str
    data: DataSpec
    kind: str  # "loglikelihood" | "sample"
    weighted: bool = False
    repeats: int = 1
    first_docs: int | None = None  # sampling task: evaluate the first docs of the data only
    description: str = ""
    extra: dict = field(default_factory=dict)
    pairs_with: str | None = None  # sampling task: the scoring task on the same docs (suite cross-checks)
    rank: tuple[float, float] = (8.0, 4.0)  # (pass_n, cov_n) the leaderboard ranks the task at
    classes: tuple[str, ...] = ()  # the docs' class labels, in display order


_FIG1_DATA = DataSpec(family="fig1", n_layers=4, m=32, mixture="fig1_finetune", seed=1, n=512)
TASKS: dict[str, TaskSpec] = {
    "graph_fig1": TaskSpec("graph_fig1", _FIG1_DATA, "loglikelihood", classes=("G1", "G2"),
                           description="Fig. 1 fine-tuning mixture (G1 0.9 / G2 0.1), exact CE/KL/Cov_N/Pass@N"),
    "graph_fig1_sample": TaskSpec("graph_fig1_sample", _FIG1_DATA, "sample", repeats=32, first_docs=128,
                                  pairs_with="graph_fig1", classes=("G1", "G2"),
                                  description="Fig. 1, measured Pass@N from 32 samples per prompt"),
    **{f"graph_fig2_h{h}": TaskSpec(
        f"graph_fig2_h{h}", DataSpec(family="fig2", n_layers=h, m=128, mixture="fig2", seed=2000 + h,
                                     n_per_class=256),
        "loglikelihood", weighted=True, rank=(32.0, 16.0), classes=("G1", "G2", "G3"),
        # Fig. 2 of the paper reads coverage at N = 16 (docs/coverage-principle.md#fig2): Pass@32 with Cov_16
        description=f"Fig. 2, H = {h}: classes 0.94/0.05/0.01, stratified, exact CE/KL/Cov_N")
       for h in gen.FIG2_HS},
}


# --- data ---------------------------------------------------------------------------------------------

def doc_row(doc: gen.GraphDoc) -> dict[str, Any]:
    """The lm-eval doc: the generator's row plus the request fields (target index, token/byte counts)."""
    row = doc.to_row()
    row["target_idx"] = doc.support.index(doc.target)
    row["n_tokens"] = doc.n_layers + 2  # one token per node under the graph tokenizer
    row["n_bytes"] = len(doc.target.encode("utf-8"))
    return row


def task_rows(spec: TaskSpec) -> list[dict[str, Any]]:
    rows = [doc_row(d) for d in spec.data.docs()]
    return rows[:spec.first_docs] if spec.first_docs is not None else rows


def load_dataset(**kwargs: Any):
    """lm-eval ``custom_dataset``: regenerate the task's docs from ``metadata.covbench.data``."""
    import datasets

    block = kwargs.get("covbench")
    if not isinstance(block, dict) or not isinstance(block.get("data"), dict):
        # a config error: one-line ValueError like every other bad-input error (not TypeError)
        raise ValueError("graph task YAML: field 'metadata.covbench.data' is missing")  # noqa: TRY004
    data = dict(block["data"])
    first = data.pop("first_docs", None)
    try:
        spec = DataSpec(**data)
    except TypeError as e:
        raise ValueError(f"graph task YAML: field 'metadata.covbench.data': {e}") from None
    rows = [doc_row(d) for d in spec.docs()]
    if first is not None:
        rows = rows[:int(first)]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


# --- process_results ----------------------------------------------------------------------------------

def _support_values(doc: dict, results: list) -> dict[str, float]:
    lls = [float(r[0]) for r in results]
    n_tok = int(doc["n_tokens"])
    return taskglue.support_metrics(doc["support_logp"], lls, n_tokens=[n_tok] * len(lls),
                                    n_bytes=[len(s.encode("utf-8")) for s in doc["support"]])


def process_results_ll(doc: dict, results: list) -> dict[str, object]:
    """Scoring task, uniform doc weights: results = [(log π̂(y|x), is_greedy) for y in S_x]."""
    return taskglue.lm_eval_values(_support_values(doc, results), n_tokens=doc["n_tokens"])


def process_results_ll_weighted(doc: dict, results: list) -> dict[str, object]:
    """Scoring task with stratified docs: every value is (value, doc weight) for the weighted mean."""
    return taskglue.lm_eval_values(_support_values(doc, results), n_tokens=doc["n_tokens"],
                                   doc_weight=float(doc["weight"]))


def process_results_sample(doc: dict, results: list) -> dict[str, float]:
    """Sampling task: results[0] = the n generations kept by the take_first_k filter."""
    generations = results[0] if isinstance(results[0], list) else list(results)
    correct = [is_correct(g, doc["support"], int(doc["n_layers"]) + 2) for g in generations]
    return taskglue.sampled_metrics(correct)


weighted_mean = taskglue.weighted_mean


# --- store adapter ------------------------------------------------------------------------------------

def records(samples: list[dict], kind: str) -> tuple[DocArrays | None, SampleArrays | None]:
    """lm-eval per-sample dicts (``simple_evaluate(..., log_samples=True)["samples"][task]``) -> arrays.

    Scoring tasks give ``DocArrays`` (target and whole-support log-probs, log π̂(S_x|x)); sampling tasks
    give ``SampleArrays`` (every generation and the verifier's verdict). Log-probs may arrive as tuples
    (Python) or strings (the CLI's samples JSONL).
    """
    if not samples:
        return None, None
    rows = sorted(samples, key=lambda s: int(s["doc_id"]))
    if kind == "sample":
        return None, _sample_arrays(rows)
    if kind == "loglikelihood":
        return _doc_arrays(rows), None
    raise ValueError(f"covbench.graphs.lmeval.records: kind must be 'loglikelihood' or 'sample', got {kind!r}")


def _doc_arrays(rows: list[dict]) -> DocArrays:
    docs = [s["doc"] for s in rows]
    support_model = [[float(r[0]) for r in s["filtered_resps"]] for s in rows]
    for d, lls in zip(docs, support_model):
        if len(lls) != len(d["support"]):
            raise ValueError(f"records: doc {d['doc_id']} has {len(d['support'])} paths but {len(lls)} scores")
    weights = [float(d["weight"]) for d in docs]
    return DocArrays(
        doc_id=[int(s["doc_id"]) for s in rows], cls=[d["cls"] for d in docs],
        weight=None if all(w == 1.0 for w in weights) else weights,
        logp_model=[lls[int(d["target_idx"])] for d, lls in zip(docs, support_model)],
        logp_ref=[float(d["logp_target"]) for d in docs],
        n_tokens=[int(d["n_tokens"]) for d in docs], n_bytes=[int(d["n_bytes"]) for d in docs],
        support_logp_ref=[[float(x) for x in d["support_logp"]] for d in docs],
        support_logp_model=support_model,
        logp_correct=[taskglue.log_sum_exp(lls) for lls in support_model])


def _sample_arrays(rows: list[dict]) -> SampleArrays:
    generations = [list(s["filtered_resps"][0]) if isinstance(s["filtered_resps"][0], list)
                   else [str(x) for x in s["filtered_resps"]] for s in rows]
    correct = [[is_correct(g, s["doc"]["support"], int(s["doc"]["n_layers"]) + 2) for g in gens]
               for s, gens in zip(rows, generations)]
    gen_kwargs = _gen_kwargs(rows[0])
    return SampleArrays(doc_id=[int(s["doc_id"]) for s in rows], generations=generations, correct=correct,
                        temperature=float(gen_kwargs.get("temperature", 1.0)),
                        max_gen_toks=int(gen_kwargs.get("max_gen_toks", int(rows[0]["doc"]["n_layers"]) + 3)))


def _gen_kwargs(sample: dict) -> dict:
    args = sample.get("arguments")
    # Python: {"gen_args_0": {"arg_0": ctx, "arg_1": gen_kwargs}}; older: [(ctx, gen_kwargs)].
    if isinstance(args, dict):
        first = next(iter(args.values()), {})
        kwargs = first.get("arg_1") if isinstance(first, dict) else None
    elif isinstance(args, (list, tuple)) and args and isinstance(args[0], (list, tuple)) and len(args[0]) > 1:
        kwargs = args[0][1]
    else:
        kwargs = None
    return kwargs if isinstance(kwargs, dict) else {}


# --- YAML ---------------------------------------------------------------------------------------------

def task_config(spec: TaskSpec) -> dict[str, Any]:
    """The task YAML as a dict (``!function`` values as plain ``"!function x"`` strings)."""
    data = asdict(spec.data)
    data = {k: v for k, v in data.items() if v is not None}
    if spec.first_docs is not None:
        data["first_docs"] = spec.first_docs
    response_len = spec.data.n_layers + 2
    cfg: dict[str, Any] = {
        "task": spec.name,
        "custom_dataset": f"!function {_FN}.load_dataset",
        "test_split": "test",
        "doc_to_text": "prompt",
    }
    if spec.kind == "loglikelihood":
        fn = "process_results_ll_weighted" if spec.weighted else "process_results_ll"
        cfg |= {"output_type": "multiple_choice", "doc_to_choice": "support", "doc_to_target": "target_idx",
                "target_delimiter": "", "process_results": f"!function {_FN}.{fn}"}
    else:
        cfg |= {"output_type": "generate_until", "doc_to_target": "target", "repeats": spec.repeats,
                # top_k 0: the full distribution (transformers 5 would add top_k = 50), the one scored
                "generation_kwargs": {"until": ["\n"], "max_gen_toks": response_len + 1, "do_sample": True,
                                      "temperature": 1.0, "top_k": 0},
                "filter_list": [{"name": "all", "filter": [
                    {"function": "custom", "filter_fn": "!function covbench.taskglue.keep_all"}]}],
                "process_results": f"!function {_FN}.process_results_sample"}
    keys = taskglue.metric_names(spec.kind)
    cfg["metric_list"] = taskglue.metric_list(keys, weighted=spec.weighted, aggregation_fn=f"{_FN}.weighted_mean")
    block: dict[str, Any] = {"reference": "known", "kind": spec.kind, "adapter": ADAPTER, "title": spec.description}
    if spec.rank != (8.0, 4.0):
        block["rank"] = {"pass_n": spec.rank[0], "cov_n": spec.rank[1]}
    if spec.classes:
        block["classes"] = list(spec.classes)
    cfg["metadata"] = {"version": 1.0, "covbench": {**block, "data": data}}
    if spec.pairs_with:
        cfg["metadata"]["covbench"]["pairs_with"] = spec.pairs_with
    return cfg


def task_yaml(spec: TaskSpec) -> str:
    """YAML text of one task; deterministic, so the shipped files can be checked for staleness."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        if value.startswith("!function "):
            return dumper.represent_scalar("!function", value.removeprefix("!function "))
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if "\n" in value else None)

    Dumper.add_representer(str, text)
    body = yaml.dump(task_config(spec), Dumper=Dumper, sort_keys=False, width=110, default_flow_style=None)
    body = re.sub(r"!function '([\w.]+)'", r"!function \1", body)  # the dumper quotes tagged scalars
    header = (f"# {spec.description}\n# Generated by `covbench data yaml` from covbench/graphs/lmeval.py "
              "(TASKS): edit there, then regenerate.\n")
    return header + body


__all__ = ["TASKS", "DataSpec", "TaskSpec", "load_dataset", "process_results_ll", "process_results_ll_weighted",
           "process_results_sample", "records", "task_yaml", "weighted_mean"]
