"""covbench.yamlio: each limit at its boundary, alias expansion measured without expanding, the strict rules
(duplicate keys, string keys, tags), and the behaviour a valid file keeps (merges, BOM, types)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
import yaml

from covbench import yamlio
from covbench.yamlio import YamlError, YamlLimits, parse_yaml, read_yaml


def _error(text: str, **kwargs: object) -> str:
    with pytest.raises(YamlError) as info:
        parse_yaml(text, "f.yaml", **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_plain_documents_read_as_safe_load_reads_them() -> None:
    text = ("a: 1\nb: [x, 2.5, null, true, 2024-01-02]\nc: {d: 'e', f: 0x10, g: 1:30}\n"
            "h: &x {k: v}\ni: {<<: *x, k: w, l: 1}\nj: =\n")
    assert parse_yaml(text, "f.yaml") == yaml.safe_load(text.replace("j: =", "j: '='"))
    assert parse_yaml(text, "f.yaml")["i"] == {"k": "w", "l": 1}
    assert parse_yaml(text, "f.yaml")["b"][4] == datetime.date(2024, 1, 2)


def test_empty_and_comment_only_documents_are_none(tmp_path: Path) -> None:
    assert parse_yaml("", "f.yaml") is None
    assert parse_yaml("# only a comment\n---\n", "f.yaml") is None
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert read_yaml(tmp_path / "bom.yaml") == {"a": 1}


def test_size_limit_at_its_boundary(tmp_path: Path) -> None:
    limits = YamlLimits(max_bytes=10)
    (tmp_path / "ten.yaml").write_text("a: 123456\n")  # exactly 10 bytes
    assert read_yaml(tmp_path / "ten.yaml", limits=limits) == {"a": 123456}
    (tmp_path / "eleven.yaml").write_text("a: 1234567\n")
    with pytest.raises(YamlError, match=r"eleven.yaml: file too large \(11 bytes\); covbench reads YAML files "
                                        r"of at most 10 bytes$"):
        read_yaml(tmp_path / "eleven.yaml", limits=limits)
    assert _error("a: 1234567\n", limits=limits).startswith("f.yaml: file too large (11 bytes)")


def test_a_file_longer_than_its_reported_size_is_cut_at_the_limit(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Files under /proc report size 0: the size check must also hold for what is actually read.
    path = tmp_path / "grows.yaml"
    path.write_text("a: " + "x" * 100 + "\n")
    real_stat = os.stat

    def stat_size_zero(p: object, *args: object, **kwargs: object) -> os.stat_result:
        info = real_stat(p, *args, **kwargs)  # type: ignore[arg-type]
        return os.stat_result((info.st_mode, *info[1:6], 0, *info[7:]))

    monkeypatch.setattr(yamlio.os, "stat", stat_size_zero)
    with pytest.raises(YamlError, match=r"file too large \(more than 50 bytes\)"):
        read_yaml(path, limits=YamlLimits(max_bytes=50))


def test_depth_limit_at_its_boundary() -> None:
    limits = YamlLimits(max_depth=4)
    assert parse_yaml("a: [[[1]]]\n", "f.yaml", limits=limits) == {"a": [[[1]]]}  # 4 collections deep
    assert _error("a: [[[[1]]]]\n", limits=limits) == "f.yaml: line 1: nested deeper than 4 levels (covbench's limit)"
    deep = "[" * 100_000 + "]" * 100_000  # PyYAML alone: RecursionError
    assert _error(deep) == "f.yaml: line 1: nested deeper than 64 levels (covbench's limit)"


def test_values_limit_counts_each_alias_as_a_copy() -> None:
    limits = YamlLimits(max_values=10)
    # root mapping 1 + key 'a' 1 + list 1 + 3 items = 6; then key 'b' 1 + alias copy 4 = 11 > 10
    assert parse_yaml("a: &x [1, 2, 3]\n", "f.yaml", limits=limits) == {"a": [1, 2, 3]}
    assert _error("a: &x [1, 2, 3]\nb: *x\n", limits=limits) == (
        "f.yaml: line 1: more than 10 values once aliases are expanded (covbench's limit; an alias bomb?)")


def test_an_alias_bomb_is_measured_not_expanded() -> None:
    # 2^62 values if expanded: only a count memoised per node finishes. size(l_i) = 2^(i+2) - 1 first
    # exceeds 10^6 at i = 18, on line 19.
    lines = ["l0: &l0 [x, x]"] + [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 61)]
    message = _error("\n".join(lines) + "\n")
    assert message.startswith("f.yaml: line 19: more than 1,000,000 values once aliases are expanded")


@pytest.mark.parametrize("text, line", [
    ("a: &x [*x]\n", 1),
    ("a: &x {b: *x}\n", 1),
    ("a: &x {<<: *x}\n", 1),  # a merge of itself (PyYAML: RecursionError)
    ("a:\n  - &x [[1, *x]]\n", 2),
    ("? &k [*k]\n: v\n", 1),  # through a key
])
def test_recursive_aliases_are_rejected(text: str, line: int) -> None:
    assert _error(text) == f"f.yaml: line {line}: recursive alias: the value contains itself"


def test_shared_aliases_are_not_recursion() -> None:
    assert parse_yaml("a: &x [1]\nb: [*x, *x]\nc: {d: *x}\n", "f.yaml") == {"a": [1], "b": [[1], [1]], "c": {"d": [1]}}


def test_duplicate_keys_but_merges_may_be_overridden() -> None:
    assert _error("a: 1\nb: 2\na: 3\n") == "f.yaml: line 3: duplicate key 'a' (first on line 1)"
    assert _error("x:\n  a: 1\n  'a': 2\n") == "f.yaml: line 3: duplicate key 'a' (first on line 2)"
    assert _error("{1: a, 01: b}\n") == "f.yaml: line 1: duplicate key '01' (first on line 1)"
    assert parse_yaml("d: &d {a: 1, b: 2}\ne: {<<: *d, a: 3}\n", "f.yaml")["e"] == {"a": 3, "b": 2}


def test_string_keys_only_when_asked() -> None:
    assert parse_yaml("2: a\nnull: b\non: c\n", "f.yaml") == {2: "a", None: "b", True: "c"}
    assert _error("1: a\non: c\n") == "f.yaml: line 2: duplicate key 'on' (first on line 1)"  # 1 == True
    assert _error("on: c\n", string_keys=True) == ("f.yaml: line 1: key 'on' is read by YAML as a boolean, not a "
                                                   "string; quote it")
    assert _error("2024-01-01: c\n", string_keys=True) == (
        "f.yaml: line 1: key '2024-01-01' is read by YAML as a date, not a string; quote it")
    assert _error("? {a: 1}\n: c\n", string_keys=True) == "f.yaml: line 1: a mapping as a key: keys must be strings"


def test_function_tag_only_when_asked() -> None:
    assert parse_yaml("f: !function mod.fn\n", "f.yaml", function_tag=True) == {"f": "mod.fn"}
    assert _error("f: !function mod.fn\n") == "f.yaml: line 1: tag !function is not allowed (covbench reads plain YAML data)"
    assert _error("f: !function [a]\n", function_tag=True) == "f.yaml: line 1: !function needs a 'module.function' string"
    assert _error("f: !!python/name:os.system ''\n") == (
        "f.yaml: line 1: tag !!python/name:os.system is not allowed (covbench reads plain YAML data)")


@pytest.mark.parametrize("text, message", [
    ("a: !!int zz\n", "line 1: cannot read 'zz' as an integer: invalid literal for int() with base 10: 'zz'"),
    ("a: !!float zz\n", "line 1: cannot read 'zz' as a number: could not convert string to float: 'zz'"),
    ("a: !!timestamp zz\n", "line 1: cannot read 'zz' as a date"),
    ("a: 2024-02-30\n", "line 1: cannot read '2024-02-30' as a date: day is out of range for month"),
    ("a: " + "1:" * 20_000 + "1\n", "line 1: integer out of range: covbench reads 64-bit integers"),  # base 60
    ("a: 9223372036854775808\n", "line 1: integer out of range: covbench reads 64-bit integers"),
    ('a: "\\ud800"\n', "line 1: a lone surrogate escape (\\uD800-\\uDFFF) is not a character"),
    ("a: 1\n---\nb: 2\n", "line 2: a second YAML document ('---'): the file must hold exactly one"),
    ("a: \x1b[31m\n", ("line 1: character U+001B (column 4) is not allowed in YAML text; escape it inside a "
                       "double-quoted string")),
])
def test_value_errors_are_one_line_with_the_line(text: str, message: str) -> None:
    assert _error(text) == f"f.yaml: {message}"


def test_64_bit_integers_are_read() -> None:
    assert parse_yaml("a: 9223372036854775807\nb: -9223372036854775808\n", "f.yaml") == {
        "a": 2**63 - 1, "b": -(2**63)}


@pytest.mark.parametrize("data, message", [
    (b"\xff\xfea\x00:\x00", ("encoded as UTF-16 (it starts with a byte-order mark); covbench reads UTF-8: save "
                             "the file as UTF-8")),
    (b"a: 1\nb: \xc3\x28\n", "line 2: not UTF-8: byte 0xC3 at column 4; save the file as UTF-8"),
    (b"a: 1\n\x00\x01", ("line 2: NUL byte: binary data, or UTF-16/32 text without a byte-order mark; "
                         "covbench reads UTF-8 YAML")),
    (b"a: \xed\xa0\x80\n", "line 1: not UTF-8: byte 0xED at column 4; save the file as UTF-8"),  # encoded surrogate
])
def test_encodings(data: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(data)
    with pytest.raises(YamlError) as info:
        read_yaml(path)
    assert str(info.value) == f"{path}: {message}"
    assert (info.value.path, info.value.problem) == (str(path), message.split(": ", 1)[-1] if "line" in message
                                                     else message)
