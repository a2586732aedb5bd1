"""A small suite environment for tests that run `pytest suite/` as a user does (tests/test_suite.py,
tests/test_ray_cluster.py): Fig. 1 task versions of 12 prompts (a scoring task and its n = 2 sampler) in a
task folder, and a registry of random tiny GPT-2s: a family of two with floors (one passing, one failing)
and one entry whose weights are missing."""

from __future__ import annotations

from pathlib import Path

from covbench.graphs.lmeval import DataSpec, TaskSpec, task_yaml


def write_suite_env(root: Path, tiny_model_dir: Path, *, tiny_a: str = "", tiny_b: str = "", more: str = "") -> Path:
    """``root`` with ``tasks/`` (``mini``, ``mini_sample``) and ``models.yaml``; ``tiny_a`` / ``tiny_b`` add
    fields to those entries (", key: value"), ``more`` adds registry lines."""
    tasks = root / "tasks"
    tasks.mkdir()
    data = DataSpec(family="fig1", n_layers=4, m=32, mixture="fig1_finetune", seed=11, n=12)
    for spec in (TaskSpec("mini", data, "loglikelihood"),
                 TaskSpec("mini_sample", data, "sample", repeats=2, pairs_with="mini")):
        (tasks / f"{spec.name}.yaml").write_text(task_yaml(spec))
    (root / "models.yaml").write_text(
        f"models:\n"
        f"  - {{name: tiny-a, pretrained: {tiny_model_dir}, family: fam, step: 1{tiny_a},\n"
        f"      floors: {{mini: {{pass_exact@8: 0.0, cov@4: 1.0}}}}}}\n"
        f"  - {{name: tiny-b, pretrained: {tiny_model_dir}, family: fam, step: 2, batch_size: 4{tiny_b},\n"
        f"      floors: {{mini: {{pass_exact@8: 0.999}}}}}}\n"
        f"  - {{name: no-weights, pretrained: {root}}}\n"
        f"{more}")
    return root
