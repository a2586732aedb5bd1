"""The `covbench` dispatcher: help, unknown commands, and that every command's handler imports."""

from __future__ import annotations

import importlib

import pytest

from covbench.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert main([]) == 2  # no command: usage, exit 2


def test_unknown_command_suggests(capsys):
    assert main(["selct"]) == 2
    assert "unknown command 'selct'; did you mean 'select'?" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_handler_exists(name):
    module, func = COMMANDS[name][0].split(":")
    assert callable(getattr(importlib.import_module(module), func))


def test_validate_through_the_dispatcher(tmp_path, capsys):
    good = tmp_path / "models.yaml"
    good.write_text("models:\n  - name: a\n    pretrained: org/a\n")
    assert main(["validate", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: a\n    pretrained: org/a\n    batch_size: 0\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr()
    line = (err.out + err.err).strip().splitlines()[-1]
    assert str(bad) in line and "model 'a'" in line and "batch_size" in line
