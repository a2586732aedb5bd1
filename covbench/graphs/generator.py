"""Seeded generator of the paper's layered-DAG path-finding tasks (docs/coverage-principle.md#graph-task), with a known π_D.

Stable API (the zoo trains on it; do not change signatures without telling its owner):

    GraphConfig(family="fig1"|"fig2", n_layers=4, m=32, edge_order="layered", hidden_seed=...)
    fig1_config(n_layers=4, m=32, **kw) -> GraphConfig
    fig2_config(h, m=128, **kw) -> GraphConfig
    FIG1_PRETRAIN, FIG1_FINETUNE, FIG2_MIXTURE            # class -> probability
    sample_doc(cfg, cls, rng, doc_id=0, weight=1.0) -> GraphDoc
    sample_docs(cfg, mixture, n, seed) -> list[GraphDoc]              # classes drawn i.i.d.
    stratified_docs(cfg, mixture, n_per_class, seed) -> list[GraphDoc]  # weight = prior / class count
    hidden_subset(cfg) -> frozenset[int]                               # V′ of Fig. 1
    GraphDoc.prompt / .target / .logp_target / .cls / .support / .support_logp / .graph
    GraphDoc.to_row() -> dict ;  GraphDoc.from_row(dict) -> GraphDoc   # the JSONL schema

>>> docs = sample_docs(fig1_config(), FIG1_FINETUNE, n=2, seed=0)
>>> docs[0].prompt.endswith("="), len(docs[0].target.split()) == 4 + 2
(True, True)
>>> sample_docs(fig1_config(), FIG1_FINETUNE, n=2, seed=0) == docs
True

The instance (docs/coverage-principle.md#graph-task). A DAG with L + 2 layers: layer 1 = {s}, layers 2..L+1 hold 4 nodes each,
layer L+2 = {t}. Every graph samples its 4L + 2 node ids from [m] without replacement (m ≥ 4L + 2).
"Passable" nodes are connected to every node of the next layer; the other nodes have no out-edges. A
valid path is (s, v_2, ..., v_{L+1}, t) with every v_i passable. Prompt: ``"u1 v1 | u2 v2 | ... / s t ="``;
response (target): ``" s v_2 ... v_{L+1} t"`` with a leading space and no eos (L + 2 node tokens).

Layer index convention: "the parity of layer i" uses the 1-based position of the layer on the path
(s is layer 1), so the first intermediate layer is i = 2. The paper leaves the index origin open.

Branching layers (a layer with 2 passable nodes) always hold one even and one odd passable node; this is
what makes the parity rules pick exactly one node. A graph whose branching layer has 4 nodes of one
parity is rejected and resampled. Single-passable layers pick their passable node uniformly.

Fig. 1 (coordinator decisions, documented deviations from the paper's L = 8):
- defaults L = 4, m = 32; |I2| = 2 branching layers (uniform among the L), so 4 valid paths.
- G1: at branching layer i pick the passable node with parity p(i); G2: the opposite parity;
  G3: uniform over the 4 valid paths. G1/G2 are deterministic: S_x = {target}; G3: S_x = the 4 paths.
- Class feature (paper: XOR over a fixed hidden half-size subset V′): V′ = m // 2 ids drawn without
  replacement from [m] by ``random.Random(hidden_seed)``, fixed per (m, hidden_seed). The feature is the
  XOR of the parities of the graph's intermediate *passable* node ids that lie in V′. G1 graphs have
  feature 1, G2 graphs feature 0, enforced by rejection sampling; G3 graphs are unconstrained.
- Mixtures: pre-training FIG1_PRETRAIN (1/3 each), fine-tuning FIG1_FINETUNE (G1 0.9, G2 0.1).

Fig. 2 (docs/coverage-principle.md#fig2), H = n_layers intermediate layers, default m = 128 (≥ 4·24 + 2) for every H so
one tokenizer serves the family:
- G1 (0.94): one passable node per layer, one valid path.
- G2 (0.05): H/2 random branching layers; at branching layer i, pick v with
  p(v) = p(i) XOR (⊕_{u ∈ V*} p(u)), V* = all intermediate passable nodes. Deterministic: S_x = {target}
  (the other 2^{H/2} − 1 valid paths have π_D = 0 and are not in S_x).
- G3 (0.01): 4 random branching layers, π_D uniform over the 16 valid paths.

Edge order: ``"layered"`` (default) lists edges grouped by source layer, from s to the last intermediate
layer, in random order within a layer; ``"shuffled"`` permutes all edges. The paper's order is unknown;
"layered" is a documented deviation that makes the task learnable by a small CPU-trained model.

Randomness comes only from ``random.Random`` streams seeded by the caller, so the same seed gives the
same docs on every platform and Python ≥ 3.10.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Literal

FIG1_PRETRAIN: dict[str, float] = {"G1": 1 / 3, "G2": 1 / 3, "G3": 1 / 3}
FIG1_FINETUNE: dict[str, float] = {"G1": 0.9, "G2": 0.1}
FIG2_MIXTURE: dict[str, float] = {"G1": 0.94, "G2": 0.05, "G3": 0.01}
FIG2_HS: tuple[int, ...] = (8, 16, 24)

NODES_PER_LAYER = 4
DEFAULT_HIDDEN_SEED = 2510_15020  # fixes V′ (the paper's arXiv id)
EdgeOrder = Literal["layered", "shuffled"]


@dataclass(frozen=True)
class GraphConfig:
    """Sizes and conventions of one task family; ``n_layers`` is L (Fig. 1) or H (Fig. 2)."""

    family: Literal["fig1", "fig2"] = "fig1"
    n_layers: int = 4
    m: int = 32
    edge_order: EdgeOrder = "layered"
    hidden_seed: int = DEFAULT_HIDDEN_SEED
    fig1_branching: int = 2  # |I2|
    fig2_g3_branching: int = 4

    def __post_init__(self) -> None:
        if self.family not in ("fig1", "fig2"):
            raise ValueError(f"family must be 'fig1' or 'fig2', got {self.family!r}")
        if self.edge_order not in ("layered", "shuffled"):
            raise ValueError(f"edge_order must be 'layered' or 'shuffled', got {self.edge_order!r}")
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {self.n_layers}")
        if self.m < NODES_PER_LAYER * self.n_layers + 2:
            raise ValueError(f"m={self.m} < 4*n_layers+2={NODES_PER_LAYER * self.n_layers + 2}")
        if self.family == "fig1" and self.fig1_branching > self.n_layers:
            raise ValueError(f"fig1_branching={self.fig1_branching} > n_layers={self.n_layers}")
        if self.family == "fig2" and (self.n_layers % 2 or self.fig2_g3_branching > self.n_layers):
            raise ValueError(f"fig2 needs an even H >= fig2_g3_branching, got H={self.n_layers}")

    @property
    def response_len(self) -> int:
        """Tokens in a response: s, the L intermediate nodes, t."""
        return self.n_layers + 2

    def classes(self) -> tuple[str, ...]:
        return ("G1", "G2", "G3")

    def n_branching(self, cls: str) -> int:
        """Number of 2-passable layers of a class."""
        if cls not in self.classes():
            raise ValueError(f"unknown class {cls!r}; expected one of {self.classes()}")
        if self.family == "fig1":
            return self.fig1_branching
        return {"G1": 0, "G2": self.n_layers // 2, "G3": self.fig2_g3_branching}[cls]


def fig1_config(n_layers: int = 4, m: int = 32, **kw: object) -> GraphConfig:
    """The Fig. 1 family (defaults sized for a 2-core CPU: L = 4, m = 32)."""
    return GraphConfig(family="fig1", n_layers=n_layers, m=m, **kw)  # type: ignore[arg-type]


def fig2_config(h: int, m: int = 128, **kw: object) -> GraphConfig:
    """The Fig. 2 family for one H (the paper uses H in {8, 16, 24})."""
    return GraphConfig(family="fig2", n_layers=h, m=m, **kw)  # type: ignore[arg-type]


def hidden_subset(cfg: GraphConfig) -> frozenset[int]:
    """V′: a fixed half of [m], drawn once from ``cfg.hidden_seed`` (Fig. 1 class feature).

    >>> v = hidden_subset(fig1_config()); len(v), v == hidden_subset(fig1_config())
    (16, True)
    """
    return _hidden_subset(cfg.m, cfg.hidden_seed)


@functools.lru_cache(maxsize=64)
def _hidden_subset(m: int, seed: int) -> frozenset[int]:
    subset = frozenset(random.Random(seed).sample(range(m), m // 2))
    if not any(u % 2 for u in subset):
        raise ValueError(f"hidden subset of m={m} has no odd id; pick another hidden_seed")
    return subset


@dataclass(frozen=True)
class Graph:
    """One layered DAG: ``layers[j]`` are the 4 ids of intermediate layer j (path position i = j + 2)."""

    source: int
    target: int
    layers: tuple[tuple[int, ...], ...]
    passable: tuple[tuple[int, ...], ...]  # per intermediate layer, sorted ascending
    edges: tuple[tuple[int, int], ...]  # in prompt order

    def valid_paths(self) -> list[tuple[int, ...]]:
        """Every (s, v_2, ..., v_{L+1}, t) through passable nodes, in lexicographic order."""
        return [(self.source, *mid, self.target) for mid in itertools.product(*self.passable)]

    def is_valid_path(self, path: tuple[int, ...]) -> bool:
        edges = set(self.edges)
        return (len(path) == len(self.layers) + 2 and path[0] == self.source and path[-1] == self.target
                and all(pair in edges for pair in itertools.pairwise(path)))

    def prompt(self) -> str:
        edge_text = " | ".join(f"{u} {v}" for u, v in self.edges)
        return f"{edge_text} / {self.source} {self.target} ="


@dataclass(frozen=True)
class GraphDoc:
    """One prompt with its target y ∼ π_D(·|x) and the whole π_D support S_x (log π_D > −inf)."""

    doc_id: int
    family: str
    n_layers: int
    cls: str
    weight: float
    graph: Graph
    target: str  # " s v_2 ... t"
    logp_target: float  # log π_D(target | prompt)
    support: tuple[str, ...]  # responses with π_D > 0, same format as target
    support_logp: tuple[float, ...]
    n_valid: int = field(default=0)  # number of valid paths (≥ len(support))

    @property
    def prompt(self) -> str:
        return self.graph.prompt()

    def to_row(self) -> dict:
        """The JSONL row (the lm-eval task's doc)."""
        g = self.graph
        return {"doc_id": self.doc_id, "family": self.family, "n_layers": self.n_layers, "cls": self.cls,
                "weight": self.weight, "prompt": self.prompt, "target": self.target,
                "logp_target": self.logp_target, "support": list(self.support),
                "support_logp": list(self.support_logp), "n_valid": self.n_valid,
                "source": g.source, "sink": g.target, "layers": [list(x) for x in g.layers],
                "passable": [list(x) for x in g.passable], "edges": [list(e) for e in g.edges]}

    @classmethod
    def from_row(cls, row: dict) -> GraphDoc:
        graph = Graph(source=int(row["source"]), target=int(row["sink"]),
                      layers=tuple(tuple(x) for x in row["layers"]),
                      passable=tuple(tuple(x) for x in row["passable"]),
                      edges=tuple((int(u), int(v)) for u, v in row["edges"]))
        return cls(doc_id=int(row["doc_id"]), family=row["family"], n_layers=int(row["n_layers"]),
                   cls=row["cls"], weight=float(row["weight"]), graph=graph, target=row["target"],
                   logp_target=float(row["logp_target"]), support=tuple(row["support"]),
                   support_logp=tuple(float(x) for x in row["support_logp"]), n_valid=int(row["n_valid"]))


def path_text(path: tuple[int, ...]) -> str:
    """Response text of a path: ``(3, 7, 1) -> " 3 7 1"``."""
    return "".join(f" {v}" for v in path)


# --- graph sampling -----------------------------------------------------------------------------------

def _sample_graph(cfg: GraphConfig, n_branch: int, rng: random.Random) -> Graph:
    """Random node ids, branching layers with one even + one odd passable node (rejection), edges."""
    n_mid = cfg.n_layers
    while True:
        ids = rng.sample(range(cfg.m), NODES_PER_LAYER * n_mid + 2)
        source, target = ids[0], ids[1]
        layers = [tuple(ids[2 + NODES_PER_LAYER * j: 2 + NODES_PER_LAYER * (j + 1)]) for j in range(n_mid)]
        branching = set(rng.sample(range(n_mid), n_branch))
        passable = []
        for j, layer in enumerate(layers):
            if j in branching:
                evens = [u for u in layer if u % 2 == 0]
                odds = [u for u in layer if u % 2 == 1]
                if not evens or not odds:
                    break  # this layer cannot hold one even + one odd passable node: resample
                passable.append(tuple(sorted((rng.choice(evens), rng.choice(odds)))))
            else:
                passable.append((rng.choice(layer),))
        else:
            edges = _edges(source, target, layers, passable, cfg.edge_order, rng)
            return Graph(source, target, tuple(layers), tuple(passable), edges)


def _edges(source: int, target: int, layers: list[tuple[int, ...]], passable: list[tuple[int, ...]],
           order: EdgeOrder, rng: random.Random) -> tuple[tuple[int, int], ...]:
    # Source layers: {s} -> layer 0, passable(layer j) -> layer j+1, passable(last) -> {t}.
    heads = [(source,)] + passable
    tails = layers + [(target,)]
    groups = [[(u, v) for u in head for v in tail] for head, tail in zip(heads, tails)]
    for group in groups:
        rng.shuffle(group)
    edges = [e for group in groups for e in group]
    if order == "shuffled":
        rng.shuffle(edges)
    return tuple(edges)


def _parity_feature(nodes: list[int], subset: frozenset[int] | None) -> int:
    """⊕ p(u) over ``nodes`` (restricted to ``subset`` when given)."""
    return sum(u % 2 for u in nodes if subset is None or u in subset) % 2


def _rule_path(graph: Graph, flip: int) -> tuple[int, ...]:
    """Deterministic path: at a branching layer at position i pick the node with parity p(i) XOR flip."""
    mid = []
    for j, nodes in enumerate(graph.passable):
        i = j + 2  # 1-based position on the path: s is 1
        want = (i % 2) ^ flip
        mid.append(nodes[0] if len(nodes) == 1 else next(u for u in nodes if u % 2 == want))
    return (graph.source, *mid, graph.target)


def sample_doc(cfg: GraphConfig, cls: str, rng: random.Random, doc_id: int = 0,
               weight: float = 1.0) -> GraphDoc:
    """Sample one graph of class ``cls`` and a target y ∼ π_D(·|x); S_x lists every path with π_D > 0."""
    n_branch = cfg.n_branching(cls)
    subset = hidden_subset(cfg) if cfg.family == "fig1" else None
    while True:
        graph = _sample_graph(cfg, n_branch, rng)
        passable_nodes = [u for nodes in graph.passable for u in nodes]
        # docs/coverage-principle.md#fig1 (arXiv 2510.15020 App. C.2): G1 has hidden-XOR feature 1, G2 feature 0 (rejection sampling); G3 is unconstrained.
        if cfg.family == "fig2" or cls == "G3" or _parity_feature(passable_nodes, subset) == (cls == "G1"):
            break
    n_valid = math.prod(len(nodes) for nodes in graph.passable)
    valid = graph.valid_paths() if cls == "G3" or n_valid == 1 else []  # G2 of Fig. 2 has 2^{H/2}
    if cls == "G3":
        support = valid
        target = valid[rng.randrange(len(valid))]
    elif cfg.family == "fig1":
        target = _rule_path(graph, flip=0 if cls == "G1" else 1)
        support = [target]
    elif cls == "G2":
        # docs/coverage-principle.md#fig2 (arXiv 2510.15020 App. C.3): p(v) = p(i) XOR (⊕_{u∈V*} p(u)), V* = all intermediate passable nodes.
        target = _rule_path(graph, flip=_parity_feature(passable_nodes, None))
        support = [target]
    else:  # fig2 G1: the single valid path
        target = valid[0]
        support = valid
    logp = -math.log(len(support))  # π_D is uniform over its support in every class
    return GraphDoc(doc_id=doc_id, family=cfg.family, n_layers=cfg.n_layers, cls=cls, weight=weight,
                    graph=graph, target=path_text(target), logp_target=logp,
                    support=tuple(path_text(p) for p in support),
                    support_logp=tuple(logp for _ in support), n_valid=n_valid)


def _check_mixture(mixture: dict[str, float], cfg: GraphConfig) -> None:
    if not mixture:
        raise ValueError("mixture is empty")
    for cls, p in mixture.items():
        cfg.n_branching(cls)
        if not (p > 0 and math.isfinite(p)):
            raise ValueError(f"mixture probability of {cls} must be > 0, got {p}")
    if abs(sum(mixture.values()) - 1.0) > 1e-9:
        raise ValueError(f"mixture probabilities sum to {sum(mixture.values())}, not 1")


def sample_docs(cfg: GraphConfig, mixture: dict[str, float], n: int, seed: int) -> list[GraphDoc]:
    """``n`` docs whose classes are drawn i.i.d. from ``mixture`` (weight 1 each)."""
    _check_mixture(mixture, cfg)
    rng = random.Random(seed)
    classes, probs = list(mixture), list(mixture.values())
    return [sample_doc(cfg, rng.choices(classes, probs)[0], rng, doc_id=i) for i in range(n)]


def stratified_docs(cfg: GraphConfig, mixture: dict[str, float], n_per_class: int,
                    seed: int) -> list[GraphDoc]:
    """``n_per_class`` docs of each class, weight = prior / n_per_class, so Σ weight = 1 (docs/coverage-principle.md#estimators)."""
    _check_mixture(mixture, cfg)
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    rng = random.Random(seed)
    docs: list[GraphDoc] = []
    for cls, p in mixture.items():
        for _ in range(n_per_class):
            docs.append(sample_doc(cfg, cls, rng, doc_id=len(docs), weight=p / n_per_class))
    return docs
