"""Malformed registry files (covbench issue 12): every one is a one-line ``RegistryError`` naming the file
and the line or the field, and ``covbench validate`` exits 2 with that line on stderr and nothing else.

The corpus is ``tests/data/registries/malformed/`` (YAML structure, aliases, keys, tags, encodings, wrong
types for every field); cases that need the file system (a FIFO, a symlink loop, a directory, a 2 MiB
file, a device) are built in ``tmp_path``. The messages are exact, so changed wording fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from covbench.cli import main as cli_main
from covbench.registry import ModelSpec, RegistryError, load_registry

ALLOWED = ", ".join(ModelSpec.model_fields)
from covbench.yamlio import DEFAULT_LIMITS

MALFORMED = Path(__file__).parent / "data" / "registries" / "malformed"
TYPES = "(YAML reads unquoted true/false/yes/no/on/off as booleans)"

# file stem -> the message after "<path>: "
BAD: dict[str, str] = {
    # YAML structure: aliases, nesting, documents
    "alias_bomb": "line 12: more than 1,000,000 values once aliases are expanded (covbench's limit; an alias bomb?)",
    "alias_recursive": "line 1: recursive alias: the value contains itself",
    "alias_recursive_entry": "line 2: recursive alias: the value contains itself",
    "deep_nesting": "line 4: nested deeper than 64 levels (covbench's limit)",
    "two_documents": "line 3: a second YAML document ('---'): the file must hold exactly one",
    "undefined_alias": "line 2: YAML syntax error: found undefined alias 'base'",
    "unclosed_quote": "line 3: YAML syntax error: found unexpected end of stream",
    "bad_indentation": "line 3: YAML syntax error: expected <block end>, but found '<block mapping start>'",
    "tab_indentation": "line 2: YAML syntax error: found character '\\t' that cannot start any token",
    "zero_bytes": "field 'models': missing (the file is empty)",
    # keys
    "duplicate_key_entry": "line 5: duplicate key 'batch_size' (first on line 4)",
    "duplicate_key_top": "line 2: duplicate key 'models' (first on line 1)",
    "key_int_top": "line 2: key '1' is read by YAML as an integer, not a string; quote it",
    "key_list": "line 2: a list as a key: keys must be strings",
    "key_null_entry": "line 2: key 'null' is read by YAML as null, not a string; quote it",
    "key_bool_entry": "line 4: key 'on' is read by YAML as a boolean, not a string; quote it",
    "key_with_newline": ("model 'a' (entry 0): field 'batch\\nsize': unknown key; did you mean 'batch_size'? "
                         f"(allowed: {ALLOWED})"),
    # tags and typed scalars
    "tag_python_object": "line 2: tag !!python/object/apply:os.system is not allowed (covbench reads plain YAML data)",
    "tag_function": "line 2: tag !function is not allowed (covbench reads plain YAML data)",
    "tag_int_not_int": "line 2: cannot read 'eight' as an integer: invalid literal for int() with base 10: 'eight'",
    "tag_timestamp_not_date": "line 2: cannot read 'soon' as a date",
    "date_invalid": "line 2: cannot read '2024-13-45' as a date: month must be in 1..12",
    "date_as_name": ("entry 0: field 'name': Input should be a valid string (got 2024-06-01: YAML reads an "
                     "unquoted date as a date; quote the value)"),
    "bool_as_name": ("entry 0: field 'name': Input should be a valid string (got True: YAML reads unquoted "
                     "true/false/yes/no/on/off as booleans; quote the value)"),
    "bool_as_step": f"model 'a' (entry 0): field 'step': Input should be a number, got a boolean {TYPES}",
    "bool_as_floor": f"model 'a' (entry 0): field 'floors.graph.cov@1.5': Input should be a number, got a boolean {TYPES}",
    "nan_floor": "model 'a' (entry 0): field 'floors.graph.kl': Input should be a finite number (got nan)",
    "inf_temperature": "model 'a' (entry 0): field 'generation.temperature': Input should be a finite number (got inf)",
    "huge_integer": "line 2: integer out of range: covbench reads 64-bit integers",
    "integer_over_64_bits": "line 2: integer out of range: covbench reads 64-bit integers",
    # the shape of `models:` and of its entries
    "null_as_models": "field 'models': must be a list of model entries, got NoneType",
    "string_as_models": "field 'models': must be a list of model entries, got str",
    "set_as_models": "field 'models': must be a list of model entries, got set",
    "entry_null": "entry 0: must be a mapping of fields, got NoneType",
    "entry_list": "entry 0: must be a mapping of fields, got list",
    # names that would break one-line messages, test ids or terminals
    "name_escape_sequence": ("model 'a\\x1b[31mred' (entry 0): field 'name': must not contain control characters "
                             "(got 'a\\x1b[31mred')"),
    "name_newline": "model 'a\\nb' (entry 0): field 'name': must not contain control characters (got 'a\\nb')",
    "name_line_separator": ("model 'a\\u2028b' (entry 0): field 'batch_size': Input should be greater than or "
                            "equal to 1 (got 0)"),
    "family_control_char": "model 'a' (entry 0): field 'family': must not contain control characters (got 'r\\tun')",
    # floors
    "floor_threshold_not_number": ("model 'a' (entry 0): field 'floors.graph.cov@x': the threshold after '@' "
                                   "must be a number, e.g. 'cov@8'"),
    "floor_threshold_below_one": ("model 'a' (entry 0): field 'floors.graph.pass_exact@0.5': the threshold "
                                  "after '@' must be a finite number >= 1, got 0.5"),
    # paths the OS refuses
    "pretrained_nul": "model 'a' (entry 0): field 'pretrained': must not contain a NUL character (got './ckpt\\x00')",
    "pretrained_name_too_long": ("model 'a' (entry 0): field 'pretrained': cannot use "
                                 "'./xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (302 characters): File name too long"),
    "pretrained_unknown_user": ("model 'a' (entry 0): field 'pretrained': cannot use '~no-such-user-covbench/ckpt': "
                                "Could not determine home directory."),
    "pretrained_device": "model 'a' (entry 0): field 'pretrained': '/dev/null' is neither a folder nor a GGUF file",
    # a wrong type in every field the older corpus (tests/test_registry.py) does not cover
    "pretrained_not_string": "model 'a' (entry 0): field 'pretrained': Input should be a valid string (got 124)",
    "revision_not_string": "model 'a' (entry 0): field 'revision': Input should be a valid string (got ['main'])",
    "gguf_file_not_string": "model 'a' (entry 0): field 'gguf_file': Input should be a valid string (got {'q': 4})",
    "backend_null": "model 'a' (entry 0): field 'backend': Input should be 'hf' or 'hf-fast' (got None)",
    "max_length_fraction": ("model 'a' (entry 0): field 'max_length': Input should be a valid integer, got a "
                            "number with a fractional part (got 1.5)"),
    "chat_template_string": ("model 'a' (entry 0): field 'chat_template': Input should be a valid boolean, "
                             "unable to interpret input (got 'sometimes')"),
    "generation_not_mapping": ("model 'a' (entry 0): field 'generation': Input should be a valid dictionary or "
                               "instance of GenerationDefaults (got 'hot')"),
    "generation_top_p_above_one": ("model 'a' (entry 0): field 'generation.top_p': Input should be less than or "
                                   "equal to 1 (got 1.5)"),
    "family_not_string": "model 'a' (entry 0): field 'family': Input should be a valid string (got ['run'])",
    "description_not_string": ("model 'a' (entry 0): field 'description': Input should be a valid string "
                               "(got {'text': 'hi'})"),
    "default_not_bool": ("model 'a' (entry 0): field 'default': Input should be a valid boolean, unable to "
                         "interpret input (got 'always')"),
    "tasks_not_list": "model 'a' (entry 0): field 'tasks': Input should be a valid list (got 'graph_fig1')",
    "floors_not_mapping": "model 'a' (entry 0): field 'floors': Input should be a valid dictionary (got ['kl'])",
    # encodings and bytes
    "utf16": "encoded as UTF-16 (it starts with a byte-order mark); covbench reads UTF-8: save the file as UTF-8",
    "utf32": "encoded as UTF-32 (it starts with a byte-order mark); covbench reads UTF-8: save the file as UTF-8",
    "latin1": "line 2: not UTF-8: byte 0xE9 at column 15; save the file as UTF-8",
    "nul_byte": ("line 2: NUL byte: binary data, or UTF-16/32 text without a byte-order mark; covbench reads "
                 "UTF-8 YAML"),
    "binary": ("line 2: NUL byte: binary data, or UTF-16/32 text without a byte-order mark; covbench reads "
               "UTF-8 YAML"),
    "control_char_raw": ("line 2: character U+0007 (column 13) is not allowed in YAML text; escape it inside a "
                         "double-quoted string"),
}


def _error(path: Path) -> str:
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert "\n" not in message and message.isprintable(), repr(message)
    return message


def test_the_corpus_is_the_folder() -> None:
    assert {p.stem for p in MALFORMED.glob("*.yaml")} == set(BAD)
    assert len(BAD) >= 60


@pytest.mark.parametrize("stem", sorted(BAD))
def test_malformed_file_gives_exact_one_line_error(stem: str) -> None:
    path = MALFORMED / f"{stem}.yaml"
    assert _error(path) == f"{path}: {BAD[stem]}"


@pytest.mark.parametrize("stem", sorted(BAD))
def test_validate_exits_2_with_the_line_on_stderr(stem: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = MALFORMED / f"{stem}.yaml"
    assert cli_main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{path}: {BAD[stem]}\n")


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "models.yaml")  # opening it for reading would block forever
    return tmp / "models.yaml"


def _symlink_loop(tmp: Path) -> Path:
    (tmp / "a.yaml").symlink_to(tmp / "b.yaml")
    (tmp / "b.yaml").symlink_to(tmp / "a.yaml")
    return tmp / "a.yaml"


def _dangling_symlink(tmp: Path) -> Path:
    (tmp / "models.yaml").symlink_to(tmp / "gone.yaml")
    return tmp / "models.yaml"


def _directory(tmp: Path) -> Path:
    (tmp / "models.yaml").mkdir()
    return tmp / "models.yaml"


def _huge(tmp: Path) -> Path:
    path = tmp / "models.yaml"
    with open(path, "wb") as f:  # sparse: 2 MiB on paper, nothing written
        f.truncate(2 * 1024 * 1024)
    return path


def _device(tmp: Path) -> Path:
    return Path("/dev/zero")  # a read would never end


FILE_SYSTEM: dict[str, tuple[Callable[[Path], Path], str]] = {
    "fifo": (_fifo, "not a regular file (a pipe, device or socket)"),
    "device": (_device, "not a regular file (a pipe, device or socket)"),
    "symlink_loop": (_symlink_loop, "cannot read: Too many levels of symbolic links"),
    "dangling_symlink": (_dangling_symlink, "cannot read: No such file or directory"),
    "directory": (_directory, "is a directory, not a file"),
    "huge": (_huge, (f"file too large (2,097,152 bytes); covbench reads YAML files of at most "
                     f"{DEFAULT_LIMITS.max_bytes:,} bytes")),
}


@pytest.mark.parametrize("case", sorted(FILE_SYSTEM))
def test_file_system_case_is_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, message = FILE_SYSTEM[case]
    path = build(tmp_path)
    assert _error(path) == f"{path}: {message}"
    assert cli_main(["validate", str(path)]) == 2
    assert capsys.readouterr() == ("", f"{path}: {message}\n")


def test_unreadable_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests run as root, which reads any file whatever its mode: EACCES is simulated at open().
    path = tmp_path / "models.yaml"
    path.write_text("models: []\n")

    def denied(file: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr("covbench.yamlio.open", denied, raising=False)
    assert _error(path) == f"{path}: cannot read: Permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode (simulated above)")
def test_unreadable_file_mode_000(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models: []\n")
    path.chmod(0)
    assert _error(path) == f"{path}: cannot read: Permission denied"


def test_control_characters_in_the_path_stay_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad\nname\x1b.yaml"
    assert _error(path) == f"{tmp_path}/bad name\\x1b.yaml: cannot read: No such file or directory"


@pytest.mark.parametrize("text", [
    "\ufeffmodels:\n  - {name: a, pretrained: gpt2}\n",  # a UTF-8 byte-order mark
    "models:\r\n  - {name: a, pretrained: gpt2}\r\n",  # Windows line endings
    "%YAML 1.1\n---\nmodels:\n  - {name: a, pretrained: gpt2}\n...\n",  # directive, explicit document
    "models:\n  - &d {name: a, pretrained: gpt2, batch_size: 4}\n  - {<<: *d, name: b, batch_size: 8}\n",  # merges
    "models:\n  - {name: 'yes', pretrained: gpt2, description: '2024-01-01', tags: ['on']}\n",  # quoted words
])
def test_valid_variants_still_load(text: str, tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_bytes(text.encode("utf-8"))
    registry = load_registry(path)
    assert registry.names[0] in ("a", "yes")
    if "<<" in text:
        assert [s.batch_size for s in registry.specs] == [4, 8] and registry.get("b").pretrained == "gpt2"


@pytest.mark.parametrize("stem", ["alias_bomb", "deep_nesting", "name_escape_sequence", "binary"])
def test_validate_in_a_real_process(stem: str) -> None:
    # What a user sees: exit code 2, one line on stderr, no traceback, nothing on stdout.
    path = MALFORMED / f"{stem}.yaml"
    proc = subprocess.run([sys.executable, "-m", "covbench.cli", "validate", str(path)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"{path}: {BAD[stem]}\n")
