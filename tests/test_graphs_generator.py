"""The layered-DAG generator: validity, exact π_D supports, mixture frequencies, determinism."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy.special import logsumexp

from covbench.graphs import generator as gen


def all_paths_by_dfs(doc: gen.GraphDoc) -> set[tuple[int, ...]]:
    """Every s->t path through the prompt's edge list (independent of Graph.valid_paths)."""
    g = doc.graph
    out: dict[int, list[int]] = {}
    for u, v in g.edges:
        out.setdefault(u, []).append(v)
    paths, stack = set(), [(g.source,)]
    while stack:
        path = stack.pop()
        if path[-1] == g.target:
            paths.add(path)
            continue
        stack.extend(path + (v,) for v in out.get(path[-1], []))
    return paths


def parse(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split())


def parse_prompt(prompt: str) -> tuple[list[tuple[int, int]], int, int]:
    edge_text, query = prompt.split(" / ")
    s, t, eq = query.split()
    assert eq == "="
    return [tuple(int(x) for x in e.split()) for e in edge_text.split(" | ")], int(s), int(t)


def rule_holds(path: tuple[int, ...], flip: int, branching: set[int]) -> bool:
    """At each branching position i (1-based, s = 1) the node has parity p(i) XOR flip."""
    return all(path[i - 1] % 2 == (i % 2) ^ flip for i in branching)


FIG1 = gen.fig1_config()
PRE = gen.sample_docs(FIG1, gen.FIG1_PRETRAIN, n=600, seed=7)
FIG2 = {h: gen.stratified_docs(gen.fig2_config(h), gen.FIG2_MIXTURE, n_per_class=20, seed=h) for h in gen.FIG2_HS}
GROUPS = {"fig1": PRE, **{f"fig2-H{h}": docs for h, docs in FIG2.items()}}


@pytest.mark.parametrize("group", GROUPS)
def test_every_target_is_a_valid_path_and_prompt_matches_graph(group: str) -> None:
    for doc in GROUPS[group]:
        check_target(doc)


def check_target(doc: gen.GraphDoc) -> None:
    edges, s, t = parse_prompt(doc.prompt)
    assert (s, t) == (doc.graph.source, doc.graph.target)
    assert edges == list(doc.graph.edges)
    target = parse(doc.target)
    assert doc.target.startswith(" ") and len(target) == doc.n_layers + 2
    assert target in all_paths_by_dfs(doc)
    ids = [doc.graph.source, doc.graph.target] + [u for layer in doc.graph.layers for u in layer]
    assert len(ids) == len(set(ids)) == 4 * doc.n_layers + 2  # sampled without replacement


@pytest.mark.parametrize("group", GROUPS)
def test_support_is_exactly_the_positive_pi_d_paths_and_logps_sum_to_one(group: str) -> None:
    for doc in GROUPS[group]:
        check_support(doc)


def check_support(doc: gen.GraphDoc) -> None:
    valid = all_paths_by_dfs(doc)
    support = [parse(y) for y in doc.support]
    assert len(set(support)) == len(support)
    assert set(support) <= valid
    assert doc.n_valid == len(valid)
    # log π_D sums to 0 over S_x: π_D(·|x) is a distribution on its support
    assert logsumexp(doc.support_logp) == pytest.approx(0.0, abs=1e-12)
    assert doc.logp_target == doc.support_logp[doc.support.index(doc.target)]
    branching = {j + 2 for j, nodes in enumerate(doc.graph.passable) if len(nodes) == 2}
    if doc.cls == "G3":  # uniform over every valid path
        assert set(support) == valid
        assert len(valid) == 2 ** len(branching)
        assert np.allclose(doc.support_logp, -math.log(len(valid)))
        return
    assert len(support) == 1 and doc.support_logp == (0.0,)
    (path,) = support
    passable = [u for nodes in doc.graph.passable for u in nodes]
    if doc.family == "fig1":
        assert len(valid) == 4
        feature = sum(u % 2 for u in passable if u in gen.hidden_subset(FIG1)) % 2
        assert feature == (1 if doc.cls == "G1" else 0)
        assert rule_holds(path, flip=0 if doc.cls == "G1" else 1, branching=branching)
    elif doc.cls == "G2":
        assert len(branching) == doc.n_layers // 2 and len(valid) == 2 ** (doc.n_layers // 2)
        assert rule_holds(path, flip=sum(u % 2 for u in passable) % 2, branching=branching)
    else:
        assert len(valid) == 1


@pytest.mark.parametrize(("mixture", "n"), [(gen.FIG1_PRETRAIN, 3000), (gen.FIG1_FINETUNE, 3000)])
def test_class_frequencies_match_the_mixture_within_3_standard_errors(mixture: dict, n: int) -> None:
    counts = Counter(d.cls for d in gen.sample_docs(FIG1, mixture, n=n, seed=123))
    assert set(counts) == set(mixture)
    for cls, p in mixture.items():
        se = math.sqrt(p * (1 - p) / n)
        assert abs(counts[cls] / n - p) < 3 * se, (cls, counts[cls] / n, p)


def test_stratified_docs_weights_are_prior_over_class_count() -> None:
    docs = FIG2[8]
    assert Counter(d.cls for d in docs) == {"G1": 20, "G2": 20, "G3": 20}
    assert math.fsum(d.weight for d in docs) == pytest.approx(1.0)
    assert {d.cls: d.weight for d in docs} == {c: p / 20 for c, p in gen.FIG2_MIXTURE.items()}


def test_same_seed_same_docs_and_rows_different_seed_different_docs() -> None:
    a = gen.sample_docs(FIG1, gen.FIG1_FINETUNE, n=50, seed=3)
    b = gen.sample_docs(FIG1, gen.FIG1_FINETUNE, n=50, seed=3)
    c = gen.sample_docs(FIG1, gen.FIG1_FINETUNE, n=50, seed=4)
    assert a == b and [d.to_row() for d in a] == [d.to_row() for d in b]
    assert [d.prompt for d in a] != [d.prompt for d in c]
    assert [gen.GraphDoc.from_row(d.to_row()) for d in a] == a


def test_edge_orders_layered_groups_by_source_layer_and_shuffled_permutes() -> None:
    layered = gen.sample_docs(FIG1, gen.FIG1_PRETRAIN, n=30, seed=5)
    shuffled = gen.sample_docs(gen.fig1_config(edge_order="shuffled"), gen.FIG1_PRETRAIN, n=30, seed=5)
    grouped = 0
    for lay, shu in zip(layered, shuffled):
        layer_of = {lay.graph.source: 0} | {u: j + 1 for j, nodes in enumerate(lay.graph.layers) for u in nodes}
        ranks = [layer_of[u] for u, _ in lay.graph.edges]
        assert ranks == sorted(ranks)  # grouped by source layer, s first
        heads = [(shu.graph.source,), *shu.graph.passable]
        tails = [*shu.graph.layers, (shu.graph.target,)]
        expected = {(u, v) for head, tail in zip(heads, tails) for u in head for v in tail}
        assert len(shu.graph.edges) == len(expected) and set(shu.graph.edges) == expected
        sl = {shu.graph.source: 0} | {u: j + 1 for j, nodes in enumerate(shu.graph.layers) for u in nodes}
        grouped += [sl[u] for u, _ in shu.graph.edges] == sorted(sl[u] for u, _ in shu.graph.edges)
    assert grouped < 3  # shuffled order is almost never layer-sorted


def test_fig1_default_prompt_length_and_fig2_lengths_fit_512_positions() -> None:
    lengths = {len(d.prompt.split()) for d in PRE}
    assert lengths <= {69, 78}  # 22 or 25 edges: 3 tokens per edge - 1 + "/ s t ="
    longest = max(len(d.prompt.split()) + d.n_layers + 2 for d in FIG2[24])
    assert longest < 512


def test_hidden_subset_is_fixed_half_of_ids() -> None:
    v = gen.hidden_subset(FIG1)
    assert len(v) == 16 and v <= set(range(32)) and v == gen.hidden_subset(gen.fig1_config())
    assert v != gen.hidden_subset(gen.fig1_config(hidden_seed=1))


@pytest.mark.parametrize("kwargs", [{"n_layers": 4, "m": 17}, {"n_layers": 0},
                                    {"edge_order": "random"}, {"family": "fig3"}])
def test_bad_config_raises_one_line_error(kwargs: dict) -> None:
    with pytest.raises(ValueError) as err:
        gen.GraphConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_mixture_raises() -> None:
    with pytest.raises(ValueError, match="unknown class"):
        gen.sample_docs(FIG1, {"G4": 1.0}, n=1, seed=0)
    with pytest.raises(ValueError, match="sum"):
        gen.sample_docs(FIG1, {"G1": 0.5}, n=1, seed=0)
    with pytest.raises(ValueError, match="empty"):
        gen.sample_docs(FIG1, {}, n=1, seed=0)
    assert gen.sample_docs(FIG1, gen.FIG1_FINETUNE, n=0, seed=0) == []


def test_small_sizes_work() -> None:
    cfg = gen.fig1_config(n_layers=2, m=10)
    docs = gen.sample_docs(cfg, gen.FIG1_PRETRAIN, n=30, seed=0)
    assert all(len(parse(d.target)) == 4 for d in docs)
    assert all(parse(d.target) in all_paths_by_dfs(d) for d in docs)
