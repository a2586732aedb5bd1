"""Fuzzing the registry loader (covbench issue 12): whatever a file holds, ``load_registry`` returns a
Registry or raises a ``RegistryError`` whose message is one printable line starting with the path. Any
other exception, or an example slower than the deadline (a hang), fails the test.

Four kinds of input: documents built from YAML-able values (model entries with random field values among
them) and dumped by PyYAML; raw text glued from YAML syntax fragments (anchors, aliases, merges, tags,
flow brackets, document markers, tabs); raw Unicode text; raw bytes. Example counts are kept small for
CI (about a second each); ``COVBENCH_FUZZ_EXAMPLES=N`` runs N per test.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covbench.registry import ModelSpec, Registry, RegistryError, load_registry
from covbench.yamlio import YamlError, parse_yaml

EXAMPLES = int(os.environ.get("COVBENCH_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=datetime.timedelta(seconds=10), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

FIELDS = list(ModelSpec.model_fields)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text(max_size=12) | st.dates() | st.sampled_from(["gpt2", "./assets", "pkg:pytest/pytest", "all",
                                                                "hf", "hf-fast", "float32", "cov@4", "kl", ""]))
keys = st.sampled_from([*FIELDS, "models", "cov@8", "kl", "temperature", "top_k"]) | st.text(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)
entries = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=8) | values, "pretrained": st.sampled_from(["gpt2", "org/m"]) | values},
    optional={field: values for field in FIELDS if field not in ("name", "pretrained")})
documents = (st.fixed_dictionaries({"models": st.lists(entries | values, max_size=4)},
                                   optional={"version": values}) | values)

FRAGMENTS = ["models:", "\n", "\n  - ", "  ", "\t", "name: a", "pretrained: gpt2", "&a ", "*a", "&b ", "*b",
             "<<: *a", "[", "]", "{", "}", ", ", ": ", "? ", "- ", "---\n", "...\n", "%YAML 1.1\n", "!!int ",
             "!!str ", "!!python/object:os.system ", "!function x.y", "!!binary ", "'", '"', "\\", "#", "|",
             ">", "0x1F", "1:30", ".nan", ".inf", "2024-02-30", "yes", "~", "null", "=", "\ufeff", "\x85",
             "\u2028", "\ud7ff", "é", "9" * 30, "[*a, *a, *a]", "&a [*a]", "tags: ", "floors: {t: {", "cov@"]
fragment_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=40).map("".join)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "models.yaml"


def _check(path: Path) -> None:
    try:
        registry = load_registry(path)
    except RegistryError as e:
        message = str(e)
        assert message.startswith(f"{path}: "), message
        assert "\n" not in message and message.isprintable(), repr(message)
    else:
        assert isinstance(registry, Registry)


@FUZZ
@given(doc=documents, flow=st.booleans(), unicode=st.booleans())
def test_dumped_documents(target: Path, doc: object, flow: bool, unicode: bool) -> None:
    target.write_text(yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=unicode), encoding="utf-8")
    _check(target)


@FUZZ
@given(text=fragment_text)
def test_yaml_fragments(target: Path, text: str) -> None:
    target.write_bytes(text.encode("utf-8", "surrogatepass"))
    _check(target)


@FUZZ
@given(text=st.text(max_size=200))
def test_raw_text(target: Path, text: str) -> None:
    target.write_text(text, encoding="utf-8")
    _check(target)


@FUZZ
@given(data=st.binary(max_size=200))
def test_raw_bytes(target: Path, data: bytes) -> None:
    target.write_bytes(data)
    _check(target)


@FUZZ
@given(text=fragment_text, string_keys=st.booleans(), function_tag=st.booleans())
def test_yamlio_raises_only_yaml_errors(text: str, string_keys: bool, function_tag: bool) -> None:
    try:
        parse_yaml(text, "f.yaml", string_keys=string_keys, function_tag=function_tag)
    except YamlError as e:
        assert str(e).startswith("f.yaml: ") and "\n" not in str(e) and str(e).isprintable()
