"""Malformed task files (covbench issue 12): ``load_task`` answers each with one ``TaskError`` line naming
the file and the line or the field, ``suite_tasks`` never crashes, and a suite run reports each broken
task as one failed job with that line.

The corpus is ``tests/data/tasks_malformed/``: ``t_*.yaml`` each include ``_base.yaml`` (a 4-doc
arithmetic task) and break one thing; ``ok_control.yaml`` is the unbroken control. Before this, lm-eval
skipped most of these files silently ("task 'x' is not in DIR") or raised a traceback while building.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from covbench import select_cli, taskfiles
from covbench.runner import TaskError, load_task, suite_tasks

CORPUS = (Path(__file__).parent / "data" / "tasks_malformed").resolve()
ROOT = Path(__file__).parent.parent
RAISING_ADAPTER = "covbench_test_raising_adapter"
LIMITS = "(covbench's limit"

# task name -> message; {DIR} is the corpus folder.
BAD_TASKS: dict[str, str] = {
    # YAML problems: lm-eval skipped these files without a word
    "bad_syntax": "{DIR}/t_syntax.yaml: line 4: YAML syntax error: expected ',' or ']', but got ':'",
    "bad_encoding": "{DIR}/t_encoding.yaml: line 3: not UTF-8: byte 0xE9 at column 18; save the file as UTF-8",
    "bad_nul_byte": ("{DIR}/t_nul_byte.yaml: line 3: NUL byte: binary data, or UTF-16/32 text without a "
                     "byte-order mark; covbench reads UTF-8 YAML"),
    "bad_duplicate_key": "{DIR}/t_duplicate_key.yaml: line 4: duplicate key 'test_split' (first on line 3)",
    "bad_alias_bomb": ("{DIR}/t_alias_bomb.yaml: line 13: more than 1,000,000 values once aliases are expanded "
                       f"{LIMITS}; an alias bomb?)"),
    "bad_recursive_alias": "{DIR}/t_recursive_alias.yaml: line 7: recursive alias: the value contains itself",
    "bad_deep_nesting": f"{{DIR}}/t_deep_nesting.yaml: line 7: nested deeper than 64 levels {LIMITS})",
    "bad_python_tag": ("{DIR}/t_python_tag.yaml: line 3: tag !!python/object/apply:os.system is not allowed "
                       "(covbench reads plain YAML data)"),
    "bad_two_documents": ("{DIR}/t_two_documents.yaml: line 8: a second YAML document ('---'): the file must "
                          "hold exactly one"),
    # the metadata.covbench block
    "bad_covbench_missing": "{DIR}/t_covbench_missing.yaml: field 'metadata.covbench': missing",
    "bad_covbench_not_mapping": "{DIR}/t_covbench_not_mapping.yaml: field 'metadata.covbench': must be a mapping, got str",
    "bad_unknown_key": ("{DIR}/t_unknown_key.yaml: field 'metadata.covbench.refrence': unknown key; did you mean "
                        "'reference'? (allowed: reference, kind, adapter, pairs_with, rank, classes, title, data)"),
    "bad_reference_missing": ("{DIR}/t_reference_missing.yaml: field 'metadata.covbench.reference': must be one "
                              "of ('known', 'gold'), got None"),
    "bad_reference_value": ("{DIR}/t_reference_value.yaml: field 'metadata.covbench.reference': must be one of "
                            "('known', 'gold'), got 'silver'"),
    "bad_kind_value": ("{DIR}/t_kind_value.yaml: field 'metadata.covbench.kind': must be one of ('loglikelihood', "
                       "'sample'), got 'generate'"),
    "bad_kind_list": ("{DIR}/t_kind_list.yaml: field 'metadata.covbench.kind': must be one of ('loglikelihood', "
                      "'sample'), got ['loglikelihood']"),
    "bad_adapter_missing": ("{DIR}/t_adapter_missing.yaml: field 'metadata.covbench.adapter': must be "
                            "'package.module:function', got None"),
    "bad_adapter_no_colon": ("{DIR}/t_adapter_no_colon.yaml: field 'metadata.covbench.adapter': must be "
                             "'package.module:function', got 'covbench.arith.lmeval.records'"),
    "bad_adapter_module_missing": ("{DIR}/t_adapter_module_missing.yaml: field 'metadata.covbench.adapter': cannot "
                                   "import 'covbench.no_such_module:records': ModuleNotFoundError: No module named "
                                   "'covbench.no_such_module'"),
    "bad_adapter_function_missing": ("{DIR}/t_adapter_function_missing.yaml: field 'metadata.covbench.adapter': "
                                     "cannot import 'covbench.arith.lmeval:no_such_function': AttributeError: "
                                     "module 'covbench.arith.lmeval' has no attribute 'no_such_function'"),
    "bad_adapter_not_callable": ("{DIR}/t_adapter_not_callable.yaml: field 'metadata.covbench.adapter': "
                                 "'covbench.arith.lmeval:KINDS' is not a function"),
    "bad_adapter_raises": ("{DIR}/t_adapter_raises.yaml: field 'metadata.covbench.adapter': cannot import "
                           f"'{RAISING_ADAPTER}:records': RuntimeError: adapter module exploded at import"),
    "bad_pairs_with_unknown": ("{DIR}/t_pairs_with_unknown.yaml: field 'metadata.covbench.pairs_with': task "
                               "'no_such_task' is not a task of this folder"),
    "bad_pairs_with_not_string": ("{DIR}/t_pairs_with_not_string.yaml: field 'metadata.covbench.pairs_with': "
                                  "must be a task name, got ['ok_control']"),
    # files lm-eval itself rejects
    "bad_include_missing": ("{DIR}/t_include_missing.yaml: lm-eval cannot index task 'bad_include_missing': "
                            "field 'include': {DIR}/_no_such_base.yaml: cannot read: No such file or directory"),
    "bad_output_type": ("{DIR}/t_output_type.yaml: lm-eval cannot build task 'bad_output_type': ValueError: Got "
                        "invalid output_type 'bogus', must be in 'loglikelihood,multiple_choice,"
                        "loglikelihood_rolling,generate_until'"),
    "bad_config_key": "{DIR}/t_config_key.yaml: field 'test_splitt': not a setting lm-eval's task config knows",
    "bad_function_missing": ("{DIR}/t_function_missing.yaml: lm-eval cannot build task 'bad_function_missing': "
                             "ImportError: Cannot import module 'covbench.no_such_module' for function 'process' "
                             "(from YAML in {DIR})"),
    "bad_duplicate_task": ("{DIR}/t_duplicate_task_b.yaml: field 'task': task 'bad_duplicate_task' is also "
                           "defined in {DIR}/t_duplicate_task_a.yaml"),
}


def _expected(name: str) -> str:
    return BAD_TASKS[name].replace("{DIR}", str(CORPUS))


@pytest.fixture
def raising_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An importable adapter module that raises while it is imported (the message spans two lines)."""
    (tmp_path / f"{RAISING_ADAPTER}.py").write_text("raise RuntimeError('adapter module exploded\\nat import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (a FIFO opened for reading blocks until a writer comes)."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_every_broken_file_is_a_case() -> None:
    named = {f.task for f in taskfiles.scan(CORPUS) if f.path.name.startswith("t_")}
    assert named == set(BAD_TASKS)
    assert len(BAD_TASKS) >= 25


@pytest.mark.parametrize("name", sorted(BAD_TASKS))
def test_load_task_gives_exact_one_line_error(name: str, raising_adapter: None) -> None:
    with pytest.raises(TaskError) as info:
        load_task(name, CORPUS)
    message = str(info.value)
    assert message == _expected(name)
    assert "\n" not in message and message.isprintable()


def test_the_control_task_loads() -> None:
    info = load_task("ok_control", CORPUS)
    assert (info.descriptor.reference, info.kind, info.adapter.__name__) == ("gold", "loglikelihood", "records")


def test_suite_tasks_lists_broken_files_that_name_a_suite_task() -> None:
    # Unreadable files count when their text has "task: NAME" and mentions covbench, so their jobs fail
    # with the file's error; a file without a metadata.covbench block is not a suite task.
    assert suite_tasks(CORPUS) == sorted(set(BAD_TASKS) - {"bad_covbench_missing"} | {"ok_control"})


def test_unknown_task_names_the_folder_and_the_unreadable_files() -> None:
    with pytest.raises(TaskError) as info:
        load_task("bad_nope", CORPUS)
    message = str(info.value)
    assert message.startswith(f"task 'bad_nope' is not in {CORPUS}; did you mean 'bad_unknown_key'? (known: ")
    assert message.endswith(f"; 9 file(s) there cannot be read, first: {_expected('bad_alias_bomb')}")
    assert "\n" not in message


@pytest.mark.parametrize("folder", ["no_such_folder", "a_file.yaml"])
def test_tasks_dir_that_is_not_a_folder(folder: str, tmp_path: Path) -> None:
    (tmp_path / "a_file.yaml").write_text("task: x\n")
    path = tmp_path / folder
    assert suite_tasks(path) == []
    with pytest.raises(TaskError) as info:
        load_task("x", path)
    assert str(info.value) == f"{path}: not a folder (looking for task 'x')"


def _one_task_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir()
    for name in ("_base.yaml", "ok_control.yaml"):
        (folder / name).write_bytes((CORPUS / name).read_bytes())
    return folder


def test_a_fifo_in_the_folder_is_reported_not_opened(tmp_path: Path) -> None:
    # lm-eval's indexer opens every *.yaml: on a FIFO it would wait for a writer forever.
    folder = _one_task_folder(tmp_path)
    os.mkfifo(folder / "pipe.yaml")
    with _deadline(120):
        assert suite_tasks(folder) == ["ok_control"]
        with pytest.raises(TaskError) as info:
            load_task("ok_control", folder)
    assert str(info.value) == f"{folder}/pipe.yaml: not a regular file (a pipe, device or socket)"


def test_a_huge_file_in_the_folder_is_reported_not_read(tmp_path: Path) -> None:
    folder = _one_task_folder(tmp_path)
    huge = folder / "huge.yaml"
    huge.write_text("task: huge\n# covbench\n")
    with open(huge, "ab") as f:
        f.truncate(3 * 1024 * 1024)
    assert suite_tasks(folder) == ["huge", "ok_control"]  # named by its first line, so its job fails
    with pytest.raises(TaskError) as info:
        load_task("huge", folder)
    assert str(info.value) == (f"{huge}: file too large (3,145,728 bytes); covbench reads YAML files of at most "
                               "1,048,576 bytes")


def test_covbench_select_reports_a_broken_task_in_one_line(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    registry = tmp_path / "models.yaml"
    registry.write_text("models:\n  - {name: run-1, pretrained: gpt2, family: run, step: 1}\n")
    code = select_cli.main(["--family", "run", "--task", "bad_kind_value", "--models-file", str(registry),
                            "--results-dir", str(tmp_path / "results"), "--tasks-dir", str(CORPUS)])
    assert code == 2
    assert capsys.readouterr() == ("", f"covbench select: {_expected('bad_kind_value')}\n")


SUITE_CASES = ["bad_syntax", "bad_encoding", "bad_alias_bomb", "bad_duplicate_key", "bad_kind_value",
               "bad_adapter_module_missing", "bad_include_missing", "bad_config_key", "bad_output_type"]


@pytest.mark.slow  # a pytest process that imports lm-eval: ~15 s
def test_suite_run_fails_each_broken_task_in_one_line(tmp_path: Path) -> None:
    # The real suite in a real pytest process: every broken task is a failed job whose reason is its
    # one line (no traceback); the model is never loaded, because the task fails first.
    registry = tmp_path / "models.yaml"
    registry.write_text("models:\n  - {name: m, pretrained: gpt2}\n")
    report = tmp_path / "report.xml"
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "suite"), "-p", "no:cacheprovider", "-q",
           "--models-file", str(registry), "--model", "m", "--tasks-dir", str(CORPUS),
           "--tasks", ",".join(SUITE_CASES), "--results-dir", str(tmp_path / "results"),
           f"--junitxml={report}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    failures = {case.get("name"): case.find("failure") for case in ET.parse(report).iter("testcase")}
    assert set(failures) == {f"test_job[m::{name}]" for name in SUITE_CASES}
    for name in SUITE_CASES:
        failure = failures[f"test_job[m::{name}]"]
        assert failure is not None and failure.get("message") == f"Failed: {_expected(name)}"
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))
