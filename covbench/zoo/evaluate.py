"""Evaluate a zoo family on held-out fine-tuning-distribution prompts: the Fig. 1 table.

For each checkpoint (``graph-pt`` = fine-tuning step 0, then every ``graph-ft-*``), every valid path
of every held-out prompt is scored (``scoring.score_docs``), so all numbers are exact expectations
over π_D(·|x) per prompt, averaged over prompts (no sampling):

- CE = mean −log π̂(y|x) of the target y ∼ π_D (sequence nats; G1/G2 are deterministic, so CE = KL);
- KL = mean X with X = log π_D(y|x) − log π̂(y|x) (docs/coverage-principle.md#cov-vs-kl), Cov_N = P[X ≥ log N] (Eq. 4);
- valid mass = mean π̂(valid paths|x); exact Pass@N = E_x[1 − (1 − π̂(S_x|x))^N] (docs/coverage-principle.md#estimators);
- π̂ of the G1 rule path and of the G2 rule path, averaged over prompts (the Fig. 1 mechanism).

Selection uses a *separate* held-out set of π_D samples (another seed): the min-CE pick
(``covbench.selection.min_ce``) and the simple tournament (paper Eq. 29,
``covbench.selection.tournament``) at N = 4 and N = 8. The min-KL pick is the oracle argmin of KL on
the evaluation set. Metrics come from ``covbench.metrics``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from covbench import metrics, selection
from covbench.graphs.generator import FIG1_FINETUNE, GraphDoc, fig1_config, path_text, sample_docs
from covbench.graphs.tokenizer import PAD, vocabulary

from .model import load_checkpoint, read_train_info
from .scoring import DocScores, score_docs

COV_NS: tuple[float, ...] = (2.0, 4.0, 8.0)
PASS_NS: tuple[float, ...] = (4.0, 8.0, 12.0)
TOURNAMENT_NS: tuple[float, ...] = (4.0, 8.0)


@dataclass(frozen=True)
class CheckpointEval:
    name: str
    step: int  # fine-tuning step (0 = the pre-trained checkpoint)
    ce: float
    ce_per_token: float
    kl: float
    valid_mass: float
    cov: dict[str, float]  # "cov@N" -> value
    pass_exact: dict[str, float]  # "pass_exact@N" -> value
    p_g1_path: float  # mean π̂(G1 rule path | x)
    p_g2_path: float  # mean π̂(G2 rule path | x)


@dataclass(frozen=True)
class FamilyEval:
    n_prompts: int
    n_selection: int
    seed: int
    checkpoints: list[CheckpointEval]
    min_kl: int
    min_ce: int
    tournament: dict[str, int]  # "N" -> index of the pick
    tournament_scores: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _rule_paths(doc: GraphDoc) -> tuple[str, str]:
    """The G1 and G2 rule paths of a Fig. 1 graph (parity of layer position i = j + 2, and the opposite)."""
    out = []
    for flip in (0, 1):
        mid = [nodes[0] if len(nodes) == 1 else next(u for u in nodes if u % 2 == ((j + 2) % 2) ^ flip)
               for j, nodes in enumerate(doc.graph.passable)]
        out.append(path_text((doc.graph.source, *mid, doc.graph.target)))
    return out[0], out[1]


def _rule_mass(docs: list[GraphDoc], scores: DocScores) -> tuple[float, float]:
    g1, g2 = [], []
    for doc, lp in zip(docs, scores.path_logp):
        texts = [path_text(p) for p in doc.graph.valid_paths()]
        r1, r2 = _rule_paths(doc)
        g1.append(math.exp(lp[texts.index(r1)]))
        g2.append(math.exp(lp[texts.index(r2)]))
    return float(np.mean(g1)), float(np.mean(g2))


def checkpoint_metrics(name: str, step: int, docs: list[GraphDoc], scores: DocScores, n_tokens: int,
                       ) -> CheckpointEval:
    """The Fig. 1 numbers of one checkpoint from its exact path scores."""
    lp_target = scores.logp_target()
    x = np.asarray(scores.logp_ref_target) - lp_target  # X = log π_D − log π̂ (nats)
    cov = metrics.coverage_profile(x, list(COV_NS))
    pas = metrics.exact_pass_at_n(scores.logp_support(), list(PASS_NS))
    g1, g2 = _rule_mass(docs, scores)
    ce = float(np.mean(-lp_target))
    return CheckpointEval(name=name, step=step, ce=ce, ce_per_token=ce / n_tokens, kl=metrics.kl(x),
                          valid_mass=float(scores.valid_mass().mean()),
                          cov={f"cov@{n:g}": float(v) for n, v in zip(COV_NS, cov)},
                          pass_exact={f"pass_exact@{n:g}": float(v) for n, v in zip(PASS_NS, pas)},
                          p_g1_path=g1, p_g2_path=g2)


def family_dirs(root: str | Path) -> list[tuple[str, int, Path]]:
    """(name, fine-tuning step, folder) of ``graph-pt`` and every ``graph-ft-*``, by step."""
    root = Path(root)
    found = [(p.name, int(read_train_info(p).get("finetune_step", 0)), p)
             for p in sorted(root.iterdir()) if p.is_dir() and (p / "covbench_train.json").exists()]
    if not found:
        raise FileNotFoundError(f"{root}: no checkpoint folders with covbench_train.json")
    return sorted(found, key=lambda t: t[1])


def evaluate_family(root: str | Path, n_prompts: int = 2048, seed: int = 20260,
                    n_selection: int = 1024) -> FamilyEval:
    """Score every checkpoint under ``root`` on ``n_prompts`` held-out 90/10 prompts; pick checkpoints."""
    dirs = family_dirs(root)
    g = read_train_info(dirs[0][2])["config"]["graph"]
    gcfg = fig1_config(n_layers=g["n_layers"], m=g["m"], edge_order=g["edge_order"])
    pad_id = vocabulary(gcfg.m)[PAD]
    docs = sample_docs(gcfg, FIG1_FINETUNE, n_prompts, seed=seed)
    sel_docs = sample_docs(gcfg, FIG1_FINETUNE, n_selection, seed=seed + 1)
    rows, sel_logp = [], []
    for name, step, path in dirs:
        model = load_checkpoint(path)
        rows.append(checkpoint_metrics(name, step, docs, score_docs(model, docs, gcfg.m, pad_id),
                                       gcfg.response_len))
        sel_logp.append(score_docs(model, sel_docs, gcfg.m, pad_id).logp_target())
    lp = np.stack(sel_logp)  # [K checkpoints, n selection samples]
    tours = {f"{n:g}": selection.tournament(lp, n) for n in TOURNAMENT_NS}
    return FamilyEval(n_prompts=n_prompts, n_selection=n_selection, seed=seed, checkpoints=rows,
                      min_kl=int(np.argmin([r.kl for r in rows])), min_ce=selection.min_ce(lp),
                      tournament={k: t.pick for k, t in tours.items()},
                      tournament_scores={k: t.scores.round(6).tolist() for k, t in tours.items()})


def render_markdown(rep: FamilyEval) -> str:
    """The per-checkpoint table and the picks, as Markdown (docs/zoo.md embeds it)."""
    cov_keys = [f"cov@{n:g}" for n in COV_NS]
    pass_keys = [f"pass_exact@{n:g}" for n in PASS_NS]
    head = ["checkpoint", "FT step", "CE", "KL", "valid mass", "π̂(G1 path)", "π̂(G2 path)",
            *[f"Cov_{n:g}" for n in COV_NS], *[f"Pass@{n:g}" for n in PASS_NS]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rep.checkpoints:
        cells = [r.name, str(r.step), f"{r.ce:.3f}", f"{r.kl:.3f}", f"{r.valid_mass:.4f}",
                 f"{r.p_g1_path:.3f}", f"{r.p_g2_path:.3f}", *[f"{r.cov[k]:.4f}" for k in cov_keys],
                 *[f"{r.pass_exact[k]:.4f}" for k in pass_keys]]
        lines.append("| " + " | ".join(cells) + " |")
    p8 = [r.pass_exact["pass_exact@8"] for r in rep.checkpoints]
    best = int(np.argmax(p8))

    def pick(label: str, i: int) -> str:
        r = rep.checkpoints[i]
        return f"- {label}: `{r.name}` (FT step {r.step}), Pass@8 = {p8[i]:.4f} (best − pick = {p8[best] - p8[i]:+.4f})"

    lines += ["", (f"Evaluation: {rep.n_prompts} held-out fine-tuning-distribution prompts (seed {rep.seed}); "
                   f"selection: {rep.n_selection} other held-out π_D samples (seed {rep.seed + 1})."), "",
              pick("best Pass@8", best), pick("min-KL pick (evaluation set)", rep.min_kl),
              pick("min-CE pick (selection set)", rep.min_ce)]
    lines += [pick(f"tournament pick, N = {n}", i) for n, i in rep.tournament.items()]
    return "\n".join(lines) + "\n"
