"""Bad command-line arguments (covbench issue 12): ``covbench`` commands exit 2 with one line on stderr;
the suite's pytest options stop the run as a usage error (pytest's exit code 4, ``ERROR: ...``) with the
reason on one line and no traceback, a malformed ``--models-file`` included (it was an INTERNALERROR)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_bad_input_registry import BAD

from covbench import select_cli
from covbench.cli import main as cli_main

MALFORMED = Path(__file__).parent / "data" / "registries" / "malformed"
REGISTRY = "models:\n  - {name: run-1, pretrained: gpt2, family: run, step: 1}\n"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(REGISTRY)
    return path


def _stderr_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == "" and err.endswith("\n") and err.count("\n") == 1, repr(err)
    return err[:-1]


def test_validate_with_two_paths(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["validate", "a.yaml", "b.yaml"]) == 2
    assert _stderr_line(capsys) == ("covbench validate: expected at most one PATH, got 2 arguments "
                                    "(usage: covbench validate [PATH])")


def test_validate_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["validate", str(tmp_path)]) == 2
    assert _stderr_line(capsys) == f"{tmp_path}: is a directory, not a file"


@pytest.mark.parametrize("args, message", [
    (["--family", "nope", "--task", "graph_fig1"], "covbench select: no family 'nope' in {registry}"),
    (["--family", "run", "--task", "graph_fig1", "--n", "0"], "covbench select: --n must be a real number ≥ 1, got 0.0"),
    (["--family", "run", "--task", "graph_fig1", "--n", "nan"], "covbench select: --n must be a real number ≥ 1, got nan"),
    (["--family", "run", "--task", "graph_fig1", "--models-file", str(MALFORMED / "deep_nesting.yaml")],
     f"covbench select: {MALFORMED / 'deep_nesting.yaml'}: line 4: nested deeper than 64 levels (covbench's limit)"),
    (["--family", "run", "--task", "graph_fig1", "--models-file", str(MALFORMED / "utf16.yaml")],
     (f"covbench select: {MALFORMED / 'utf16.yaml'}: encoded as UTF-16 (it starts with a byte-order mark); "
      "covbench reads UTF-8: save the file as UTF-8")),
])
def test_select_bad_arguments(args: list[str], message: str, registry: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    if "--models-file" not in args:
        args = [*args, "--models-file", str(registry)]
    assert select_cli.main(args) == 2
    assert _stderr_line(capsys) == message.format(registry=registry)


def test_select_unknown_task(registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = select_cli.main(["--family", "run", "--task", "graph_fig11", "--models-file", str(registry),
                            "--results-dir", str(tmp_path / "results")])
    assert code == 2
    line = _stderr_line(capsys)
    assert line.startswith("covbench select: task 'graph_fig11' is not in ")
    assert "did you mean 'graph_fig1'?" in line


def _usage_error(pytester: pytest.Pytester, *args: str) -> str:
    """Run pytest with the plugin; it must stop as a usage error with one ``ERROR:`` line, no traceback."""
    pytester.makepyfile(test_spec="def test_model(covbench_spec):\n    pass\n")
    result = pytester.runpytest("-p", "covbench.plugin", *args)
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    errors = [line for line in result.errlines if line.startswith("ERROR: ")]
    assert len(errors) == 1, text
    return errors[0].removeprefix("ERROR: ")


@pytest.fixture
def plugin_registry(pytester: pytest.Pytester) -> Path:
    path = pytester.path / "models.yaml"
    path.write_text(REGISTRY)
    return path


def test_suite_unknown_model(pytester: pytest.Pytester, plugin_registry: Path) -> None:
    assert _usage_error(pytester, "--model", "runn") == (
        f"--model: {plugin_registry}: unknown model or family 'runn'; did you mean 'run' or 'run-1'? (known: 1 models)")


def test_suite_unknown_task(pytester: pytest.Pytester, plugin_registry: Path) -> None:
    message = _usage_error(pytester, "--model", "run", "--tasks", "graph_fig11")
    assert message.startswith("--tasks: unknown task 'graph_fig11'; did you mean 'graph_fig1'? (suite tasks: ")


def test_suite_samples_n_zero(pytester: pytest.Pytester) -> None:
    # An argparse type error: pytest prints its usage line and then "pytest: error: ..." (not one line).
    pytester.makepyfile(test_spec="def test_a():\n    pass\n")
    result = pytester.runpytest("-p", "covbench.plugin", "--samples-n", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(line.endswith(": error: argument --samples-n: expected a positive integer, got 0")
               for line in result.errlines), result.errlines
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("stem", ["deep_nesting", "alias_bomb", "binary", "duplicate_key_top", "name_newline"])
def test_suite_malformed_models_file(stem: str, pytester: pytest.Pytester) -> None:
    path = MALFORMED / f"{stem}.yaml"
    assert _usage_error(pytester, "--models-file", str(path), "--model", "a") == f"{path}: {BAD[stem]}"


def test_suite_missing_models_file(pytester: pytest.Pytester) -> None:
    path = pytester.path / "nope.yaml"
    assert _usage_error(pytester, "--models-file", str(path)) == f"{path}: cannot read: No such file or directory"
