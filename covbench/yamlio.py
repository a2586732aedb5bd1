"""A bounded, strict YAML reader for every YAML file covbench reads from users (registry, task files).

PyYAML's ``safe_load`` refuses Python tags, but it still lets some inputs through. Aliases are
shared, not copied, so a "billion laughs" file only grows when a consumer such as pydantic, ``repr``
or ``json`` walks it. A recursive alias (``&a [*a]``) builds a cyclic object. Deep nesting
overflows Python's stack, and any file size is read. It also silently keeps the last of two
duplicate keys, and an explicit tag on a bad scalar (``!!int zz``) raises a plain ``ValueError``.
:func:`read_yaml` turns each of these into one :class:`YamlError` that names the file and, where
known, the line (docs/errors.md):

    PATH: line L: duplicate key 'name' (first on line 2)

The limits (:class:`YamlLimits`, docs/errors.md "Limits") are checked before anything is expanded:
the file size before it is parsed, the nesting depth while it is composed, and the number of values
the document holds once every alias is counted as a copy of what it names, on the node graph, before
any Python object is built.

>>> parse_yaml("a: 1\\nb: [x, y]\\n", "f.yaml")
{'a': 1, 'b': ['x', 'y']}
>>> parse_yaml("a: 1\\na: 2\\n", "f.yaml")
Traceback (most recent call last):
...
covbench.yamlio.YamlError: f.yaml: line 2: duplicate key 'a' (first on line 1)
>>> parse_yaml("a: &x [*x]\\n", "f.yaml")
Traceback (most recent call last):
...
covbench.yamlio.YamlError: f.yaml: line 1: recursive alias: the value contains itself
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_INT64 = 2**63
# Characters YAML 1.1 forbids in a stream (the same set as PyYAML's Reader.NON_PRINTABLE).
_NOT_ALLOWED = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


@dataclass(frozen=True)
class YamlLimits:
    """What :func:`read_yaml` accepts: bytes on disk, nesting depth, values after alias expansion."""

    max_bytes: int = 1 << 20  # 1 MiB: ~2,600 models like the shipped models.yaml (5.6 KB)
    max_depth: int = 64  # collections inside collections (the registry needs 5, task files 5)
    max_values: int = 1_000_000  # scalars + collections, each alias counted as a copy of its target


DEFAULT_LIMITS = YamlLimits()


class YamlError(ValueError):
    """A YAML file covbench cannot use; ``str()`` is one line: ``PATH: [line L: ]problem``."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path, self.problem, self.line = str(path), problem, line
        where = f"line {line}: " if line is not None else ""
        super().__init__(one_line(f"{self.path}: {where}{problem}"))


def one_line(text: str) -> str:
    r"""``text`` on one printable line: line breaks become one space, other control characters escapes.

    >>> one_line("a\n  b\x1b[31m\u2028c")
    'a b\\x1b[31m\\u2028c'
    """
    return printable(re.sub(r"\s*[\r\n]+\s*", " ", text).strip())


def printable(text: str) -> str:
    r"""``text`` with every unprintable character (line breaks included) written as its escape.

    >>> printable("a\nb\u00e9\ufeff")
    'a\\nbé\\ufeff'
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def read_yaml(path: str | Path, *, limits: YamlLimits = DEFAULT_LIMITS, string_keys: bool = False,
              function_tag: bool = False) -> Any:
    """Read one YAML document from ``path`` (UTF-8, a BOM allowed), within ``limits``.

    ``string_keys``: every mapping key must be a string (``1:``, ``null:``, ``yes:``, ``? [a]`` are
    errors). ``function_tag``: accept lm-eval's ``!function mod.fn`` tag, read as the plain string
    ``"mod.fn"`` (nothing is imported). An empty file (or only comments) reads as None.
    """
    data = _read_bytes(Path(path), limits.max_bytes)
    return parse_yaml(_decode(path, data), path, limits=limits, string_keys=string_keys,
                      function_tag=function_tag)


def parse_yaml(text: str, path: str | Path, *, limits: YamlLimits = DEFAULT_LIMITS,
               string_keys: bool = False, function_tag: bool = False) -> Any:
    """:func:`read_yaml` for text already in memory; ``path`` only names it in errors."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise YamlError(path, _too_big(f"{size:,}", limits.max_bytes))
    bad = _NOT_ALLOWED.search(text)
    if bad is not None:
        line, column = _line_column(text, bad.start())
        raise YamlError(path, f"character U+{ord(bad.group()):04X} (column {column}) is not allowed in "
                              "YAML text; escape it inside a double-quoted string", line)
    loader = None
    try:
        loader = _Loader(text, limits, string_keys, function_tag)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, limits.max_values)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        raise _marked_error(path, e) from None
    except yaml.YAMLError as e:  # a ReaderError: none is left after the character check above
        raise YamlError(path, f"YAML syntax error: {e}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes: a regular file (after symlinks) of at most ``max_bytes`` bytes."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise YamlError(path, "is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block, /dev/zero never ends
            raise YamlError(path, "not a regular file (a pipe, device or socket)")
        if info.st_size > max_bytes:
            raise YamlError(path, _too_big(f"{info.st_size:,}", max_bytes))
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # files under /proc report size 0
    except YamlError:
        raise
    except OSError as e:
        raise YamlError(path, f"cannot read: {e.strerror or e}") from None
    except ValueError as e:  # an embedded NUL byte in the path
        raise YamlError(path, f"cannot read: {e}") from None
    if len(data) > max_bytes:
        raise YamlError(path, _too_big(f"more than {max_bytes:,}", max_bytes))
    return data


def _too_big(size: str, max_bytes: int) -> str:
    return f"file too large ({size} bytes); covbench reads YAML files of at most {max_bytes:,} bytes"


def _decode(path: str | Path, data: bytes) -> str:
    """UTF-8 text (a UTF-8 BOM is dropped); UTF-16/32 and binary data are one-line errors."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise YamlError(path, f"encoded as {name} (it starts with a byte-order mark); covbench reads "
                                  "UTF-8: save the file as UTF-8")
    data = data.removeprefix(codecs.BOM_UTF8)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise YamlError(path, "NUL byte: binary data, or UTF-16/32 text without a byte-order mark; covbench "
                              "reads UTF-8 YAML", data.count(b"\n", 0, nul) + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        raise YamlError(path, f"not UTF-8: byte 0x{data[e.start]:02X} at column {e.start - line_start + 1}; "
                              "save the file as UTF-8", data.count(b"\n", 0, e.start) + 1) from None


def _line_column(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _marked_error(path: str | Path, e: yaml.MarkedYAMLError) -> YamlError:
    mark = e.problem_mark or e.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = e.problem or e.context or "YAML error"
    own = isinstance(e, _OwnError)
    return YamlError(path, problem if own else f"YAML syntax error: {problem}", line)


class _OwnError(yaml.MarkedYAMLError):
    """A limit or strictness rule of this module (its message carries no "syntax error" prefix)."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _Composer(Composer):
    """PyYAML's composer with a nesting limit and a one-document rule."""

    max_depth: int
    _depth: int = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.ScalarEvent, yaml.AliasEvent):  # depth counts collections only
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise _OwnError(f"nested deeper than {self.max_depth} levels (covbench's limit)",
                                self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Node | None:
        self.get_event()  # STREAM-START
        document = None if self.check_event(yaml.StreamEndEvent) else self.compose_document()
        if not self.check_event(yaml.StreamEndEvent):
            raise _OwnError("a second YAML document ('---'): the file must hold exactly one",
                            self.get_event().start_mark)
        self.get_event()  # STREAM-END
        return document


class _Constructor(SafeConstructor):
    """SafeConstructor that rejects duplicate keys, optionally non-string keys, and wraps value errors."""

    string_keys: bool = False

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as e:  # noqa: BLE001 - "!!int zz", "!!int ''", "!!bool maybe", "2024-13-45"
            detail = f": {e}" if type(e) is ValueError else ""
            raise _OwnError(f"cannot read {_key_text(node)} as {_TAG_WORDS.get(node.tag, _short_tag(node.tag))}"
                            f"{detail}", node.start_mark) from None

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            self._check_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _check_keys(self, node: MappingNode) -> None:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # "<<: *defaults": keys written next to it override it
                continue
            key = self.construct_object(key_node, deep=True)
            if self.string_keys and not isinstance(key, str):
                problem = (f"key {_key_text(key_node)} is read by YAML as {_kind(key)}, not a string; quote it"
                           if isinstance(key_node, ScalarNode) else f"{_kind(key)} as a key: keys must be strings")
                raise _OwnError(problem, key_node.start_mark)
            try:
                if key in first_line:
                    raise _OwnError(f"duplicate key {_key_text(key_node)} (first on line {first_line[key]})",
                                    key_node.start_mark)
                first_line[key] = key_node.start_mark.line + 1
            except TypeError:  # unhashable: SafeConstructor reports it
                continue

    def construct_yaml_int(self, node: ScalarNode) -> int:
        # Checked on the text first: "1:2:3:..." (base 60) and long digit strings cost quadratic time.
        digits = str(node.value).replace("_", "").lstrip("+-")
        value = super().construct_yaml_int(node) if len(digits) <= 70 else None
        if value is None or not -_INT64 <= value < _INT64:
            raise _OwnError("integer out of range: covbench reads 64-bit integers", node.start_mark)
        return value

    def construct_yaml_str(self, node: ScalarNode) -> str:
        value = super().construct_yaml_str(node)
        if _SURROGATE.search(value):
            raise _OwnError("a lone surrogate escape (\\uD800-\\uDFFF) is not a character", node.start_mark)
        return value

    def construct_undefined(self, node: Node) -> Any:
        raise _OwnError(f"tag {_short_tag(node.tag)} is not allowed (covbench reads plain YAML data)",
                        node.start_mark)

    def construct_function(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise _OwnError("!function needs a 'module.function' string", node.start_mark)
        return str(self.construct_scalar(node))


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)
_Constructor.add_constructor("tag:yaml.org,2002:str", _Constructor.construct_yaml_str)
_Constructor.add_constructor(_VALUE_TAG, _Constructor.construct_yaml_str)  # a bare "=" is text
_Constructor.add_constructor(None, _Constructor.construct_undefined)


class _Loader(Reader, Scanner, Parser, _Composer, _Constructor, Resolver):
    def __init__(self, text: str, limits: YamlLimits, string_keys: bool, function_tag: bool) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Composer.__init__(self)
        _Constructor.__init__(self)
        Resolver.__init__(self)
        self.max_depth, self.string_keys = limits.max_depth, string_keys
        if function_tag:  # per instance: the class-level table stays without it
            self.yaml_constructors = {**self.yaml_constructors, "!function": _Constructor.construct_function}


def _check_expansion(root: Node, max_values: int) -> None:
    """Reject a node graph with a cycle, or that expands to more than ``max_values`` values.

    size(node) = 1 + Σ size(child), each alias a full copy of its target; computed once per node
    (memoised on identity), so an alias bomb is measured in time linear in the file, not in its size.
    """
    size: dict[int, int] = {}
    open_: set[int] = set()  # nodes whose children are being measured
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done:
            open_.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            if size[id(node)] > max_values:
                raise _OwnError(f"more than {max_values:,} values once aliases are expanded (covbench's "
                                "limit; an alias bomb?)", node.start_mark)
            continue
        if id(node) in size:
            continue
        open_.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_:
                raise _OwnError("recursive alias: the value contains itself", node.start_mark)
            if id(child) not in size:
                stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _key_text(node: Node) -> str:
    if isinstance(node, ScalarNode):
        text = str(node.value)
        return repr(text if len(text) <= 40 else text[:37] + "...")
    return "a list" if isinstance(node, SequenceNode) else "a mapping"


_TAG_WORDS = {"tag:yaml.org,2002:int": "an integer", "tag:yaml.org,2002:float": "a number",
              "tag:yaml.org,2002:timestamp": "a date", "tag:yaml.org,2002:bool": "a boolean",
              "tag:yaml.org,2002:binary": "base64 data"}


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", type(None): "null", list: "a list",
             dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")
