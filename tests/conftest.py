"""Shared fixtures for the project's tests: offline HF, pytester, one tiny GPT-2 and one Ray cluster per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy.fft  # noqa: F401  (see below)
import pytest

# pytester's in-process runs drop every module first imported inside them when they end, and numpy.fft's
# C module cannot be loaded twice in one process: imported here, it is never dropped.

# Nothing may come from a model or dataset hub, in any test, including subprocesses they start.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"



@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny GPT-2 with a word-level tokenizer, saved in HF format (built once per session)."""
    from covbench.tiny import build_tiny_gpt2

    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one torch thread, restoring the previous count afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real two-node Ray cluster (``ray start`` head + one more node, 1 CPU each) in a private network
    namespace (tests/ray_cluster.py), started once for every test that asks for it and stopped at the end."""
    from ray_cluster import RayTestCluster

    cluster = RayTestCluster(tmp_path_factory.mktemp("ray-cluster"), Path(__file__).resolve().parent.parent)
    cluster.start()
    yield cluster
    cluster.stop()
