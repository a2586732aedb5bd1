"""``covbench finetune``: dispatch, one-line usage errors, and the tiny preset end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from covbench.cli import main as covbench


def test_finetune_is_a_covbench_command(capsys) -> None:
    assert covbench(["--help"]) == 0
    assert "finetune" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--preset", "nope"], "unknown finetune preset 'nope'; expected one of ['shipped', 'tiny']"),
    (["train", "--preset", "tiny", "--set", "train.lr=-1"],
     "field 'train.lr': Input should be greater than 0"),
    (["train", "--preset", "tiny", "--set", "train.nope=1"], "no config field 'train.nope'"),
    (["train", "--preset", "tiny", "--set", "lr"], "expected SECTION.FIELD=VALUE"),
    (["eval", "--adapters", "/nonexistent/adapters", "--results", "/tmp/x"],
     "no smollm2-lora-NNNNNNN adapter"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys) -> None:
    assert covbench(["finetune", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith(f"covbench finetune {argv[0]}: ")


@pytest.mark.slow
def test_train_tiny_preset_writes_adapters_and_a_json_log(tmp_path: Path, capsys) -> None:
    log = tmp_path / "train.jsonl"
    code = covbench(["finetune", "train", "--preset", "tiny", "--out", str(tmp_path / "out"),
                     "--log", str(log), "--work", str(tmp_path / "work"), "--set", "train.steps=2",
                     "--set", "train.n_checkpoints=1"])
    assert code == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["event"] for r in records][:2] == ["config", "start"] and records[-1]["event"] == "done"
    assert records[0]["config"]["train"]["steps"] == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["smollm2-lora-0000002"]
    assert (tmp_path / "work" / "tiny-base" / "config.json").is_file()
    assert capsys.readouterr().out.count("\n") == len(records)
