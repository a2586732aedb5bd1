"""The path verifier: whitespace and trailing text tolerated, anything else rejected."""

from __future__ import annotations

import pytest

from covbench.graphs import generator as gen
from covbench.graphs.verifier import is_correct, parse_path

SUPPORT = [" 3 17 9 4", " 3 16 9 4"]


@pytest.mark.parametrize("response", [" 3 17 9 4", "3 17 9 4", "\n 3\t17  9 4", " 3 17 9 4 <eos>", " 3 17 9 4\n5 6",
                                      " 3 16 9 4 = 1 2", " 3 17 9 4|", " 3 17 9 4 17 9"])
def test_accepts_paths_in_support_with_whitespace_and_trailing_text(response: str) -> None:
    assert is_correct(response, SUPPORT, length=4)


@pytest.mark.parametrize("response", ["", "   ", " 3 17 9", " 3 17 9 41", " 3 17 9 40", " 3 15 9 4", " 3 x 17 9 4",
                                      " 3 17 | 9 4", "<eos> 3 17 9 4", " 3 17 9 -4", " 4 17 9 4"])
def test_rejects_everything_else(response: str) -> None:
    assert not is_correct(response, SUPPORT, length=4)


def test_parse_path_reads_exactly_length_nodes() -> None:
    assert parse_path(" 1 2 3 4 5", 3) == (1, 2, 3)
    assert parse_path("12 3", 2) == (12, 3)
    assert parse_path("12 3", 3) is None
    assert parse_path("1 2", 0) == ()


def test_empty_support_rejects() -> None:
    assert not is_correct(" 3 17 9 4", [], length=4)


def test_every_generated_support_path_verifies_and_other_valid_paths_do_not() -> None:
    docs = gen.sample_docs(gen.fig1_config(), gen.FIG1_PRETRAIN, n=60, seed=2)
    for doc in docs:
        length = doc.n_layers + 2
        for path in doc.graph.valid_paths():
            text = gen.path_text(path)
            assert is_correct(text, doc.support, length) == (text in doc.support)
            assert is_correct(text.strip() + " 7 7 7", doc.support, length) == (text in doc.support)
