"""``covbench wrap`` on lm-eval 0.4.13's own task YAMLs (gsm8k, arc_easy, mmlu_anatomy, triviaqa), offline,
over small local data files the tests write (docs/wrap.md).

Each sampled verdict is checked against lm-eval's own task: the origin YAML, pointed at the same file and
run greedily with the scripted LM answering that one response, must score the doc the same (its
``exact_match`` under the same filter). Each scored continuation is checked against the request lm-eval's
own task makes: the same context, and the gold text with the task's target delimiter.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager
from scipy.special import comb
from script_lm import ScriptLM
from wrap_data import ARC, GSM8K, MMLU, MMLU_DEV, TRIVIAQA, TRIVIAQA_TRAIN, rows, write_jsonl

from covbench.taskglue import records
from covbench.wrap import WrapRequest, plan, read_origin
from covbench.wrap.cli import main as wrap_main
from covbench.wrap.origin import lm_eval_tasks_dir

N = 4


def gsm8k_sample(gold: str, j: int) -> str:
    g = int(gold.split("####")[-1].strip().replace(",", ""))
    return [f" Let me think.\n#### {g}", f" The answer is {g}.", f" So it is {g + 1}.\n#### {g + 1}", " no idea"][j % 4]


def trivia_sample(aliases: list[str], j: int) -> str:
    return [f" {aliases[-1].lower()}", f" {aliases[0]}.", " Venus", f"  {aliases[0]}, surely"][j % 4]


def question_of(context: str, marker: str) -> str:
    return context.rsplit(marker, 1)[-1].split("\n", 1)[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, dict[str, Path]]:
    d = tmp_path_factory.mktemp("data")
    return {"gsm8k": {split: write_jsonl(d / "gsm8k" / f"{split}.jsonl", rows(GSM8K / f"{split}.jsonl"))
                      for split in ("test", "train")},
            "arc_easy": {"test": write_jsonl(d / "arc" / "test.jsonl", ARC)},
            "mmlu_anatomy": {"test": write_jsonl(d / "mmlu" / "test.jsonl", MMLU),
                             "dev": write_jsonl(d / "mmlu" / "dev.jsonl", MMLU_DEV)},
            "triviaqa": {"validation": write_jsonl(d / "tqa" / "validation.jsonl", TRIVIAQA),
                         "train": write_jsonl(d / "tqa" / "train.jsonl", TRIVIAQA_TRAIN)}}


@pytest.fixture(scope="module")
def wrapped(data, tmp_path_factory) -> Path:
    """All four origins wrapped into one folder by the command, as a user would."""
    out = tmp_path_factory.mktemp("wrapped")
    for task, files in data.items():
        args = [task, "--out", str(out), "--n", str(N)] + [a for s, f in files.items() for a in ("--data", f"{s}={f}")]
        if task == "mmlu_anatomy":
            args += ["--num-fewshot", "1"]
        assert wrap_main(args) == 0
    return out


def evaluate(lm, tasks: list[str], include: Path, **kw) -> dict:
    return simple_evaluate(model=lm, tasks=tasks, log_samples=True, bootstrap_iters=0, verbosity="ERROR",
                           task_manager=TaskManager(include_path=str(include), include_defaults=False), **kw)


def origin_yaml(folder: Path, task: str, name: str, files: dict[str, Path], extra: str = "") -> Path:
    """lm-eval's own task ``task``, renamed, reading the same local files (the reference for the checks)."""
    origin = read_origin(task)
    cfg = plan(WrapRequest(task, data=files), origin).tasks
    overrides = next(iter(cfg.values()))
    lines = [f"include: {origin.path}", f"task: {name}", "tag: null", "dataset_path: json", "dataset_name: null",
             "dataset_kwargs: {data_files: {" + ", ".join(f"{s}: '{p}'" for s, p in files.items()) + "}}"]
    lines += [f"{k}: null" for k in ("training_split", "validation_split", "test_split", "fewshot_split")
              if k in overrides and overrides[k] is None]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


# ---- gsm8k: a generation task with two regex filters and exact_match ----------------------------------

def test_written_files_include_the_origin_and_copy_nothing(wrapped) -> None:
    folder = wrapped / "gsm8k"
    assert sorted(p.name for p in folder.iterdir()) == ["covbench_wrap.py", "gsm8k_wrap.yaml", "gsm8k_wrap_ll.yaml"]
    text = (folder / "gsm8k_wrap.yaml").read_text()
    assert f"include: {lm_eval_tasks_dir() / 'gsm8k' / 'gsm8k.yaml'}" in text
    assert "doc_to_text" not in text and "Question:" in text  # the prompt is the origin's; only stop strings restated
    assert (wrapped / "arc_easy" / "arc_easy_wrap_ll.yaml").is_file()
    assert not (wrapped / "arc_easy" / "arc_easy_wrap.yaml").exists()  # multiple choice: scoring only


def test_gsm8k_verdicts_are_lm_evals_own_filters_and_metric(wrapped, tmp_path, data) -> None:
    table = {r["question"]: r["answer"] for r in rows(GSM8K / "test.jsonl") + rows(GSM8K / "train.jsonl")}
    lm = ScriptLM(sample_of=lambda ctx, j: gsm8k_sample(table[question_of(ctx, "Question: ")], j))
    out = evaluate(lm, ["gsm8k_wrap"], wrapped / "gsm8k")
    res, samples = out["results"]["gsm8k_wrap"], out["samples"]["gsm8k_wrap"]
    # lm-eval's own gsm8k on the same file, one scripted response per run, greedy as it ships
    reference = {}
    origin_yaml(tmp_path, "gsm8k", "gsm8k_ref", data["gsm8k"])
    for j in range(N):
        ref = evaluate(ScriptLM(sample_of=lambda ctx, _, j=j: gsm8k_sample(table[question_of(ctx, "Question: ")], j)),
                       ["gsm8k_ref"], tmp_path)["samples"]["gsm8k_ref"]
        for s in ref:
            reference[(s["filter"], int(s["doc_id"]), j)] = bool(s["exact_match"])
    for s in samples:
        got = [r["correct"] for r in s["filtered_resps"][0]]
        assert got == [reference[(s["filter"], int(s["doc_id"]), j)] for j in range(N)]
    assert {s["filter"] for s in samples} == {"strict-match", "flexible-extract"}
    # strict-match accepts only "#### g"; flexible-extract also "The answer is g."
    for name, c in (("strict-match", 1), ("flexible-extract", 2)):
        for k in (1, 2, 4):
            assert res[f"pass_sampled@{k},{name}"] == pytest.approx(1 - comb(N - c, k) / comb(N, k))
    _, stored = records(samples, "sample")  # the stored verdict: the first filter, strict-match
    assert [int(r.sum()) for r in stored.correct.rows()] == [1] * len(stored)
    assert lm.generated[0][1]["do_sample"] is True and lm.generated[0][1]["top_k"] == 0
    assert lm.generated[0][1]["until"] == ["Question:", "</s>", "<|im_end|>"]


def test_gsm8k_scoring_task_scores_the_gold_solution_with_the_origin_prompt(wrapped, tmp_path, data) -> None:
    lm = ScriptLM(logp_of=lambda ctx, cont: -len(cont) / 40.0)
    out = evaluate(lm, ["gsm8k_wrap_ll"], wrapped / "gsm8k")
    test = rows(GSM8K / "test.jsonl")
    assert [cont for _, cont in lm.scored] == [" " + r["answer"] for r in test]  # target_delimiter + y*
    # the context is exactly what lm-eval's own gsm8k sends (5-shot "Question: ...\nAnswer:")
    origin_yaml(tmp_path, "gsm8k", "gsm8k_ref", data["gsm8k"])
    ref = ScriptLM(sample_of=lambda ctx, j: "")
    evaluate(ref, ["gsm8k_ref"], tmp_path)
    assert [ctx for ctx, _ in lm.scored] == [ctx for ctx, _ in ref.generated]
    x = np.array([len(" " + r["answer"]) / 40.0 for r in test])
    res = out["results"]["gsm8k_wrap_ll"]
    assert res["ce,none"] == pytest.approx(x.mean())
    for n in (2, 8, 1024):
        assert res[f"cov@{n},none"] == pytest.approx(float(np.mean(x >= math.log(n))))
    docs, _ = records(out["samples"]["gsm8k_wrap_ll"], "loglikelihood")
    assert docs.logp_model.tolist() == pytest.approx((-x).tolist())


def test_chosen_filter_is_the_stored_verdict(data, tmp_path) -> None:
    files = data["gsm8k"]
    assert wrap_main(["gsm8k", "--out", str(tmp_path), "--n", "4", "--filter", "flexible-extract", "--name", "g2",
                      "--data", f"test={files['test']}", "--data", f"train={files['train']}"]) == 0
    table = {r["question"]: r["answer"] for r in rows(GSM8K / "test.jsonl") + rows(GSM8K / "train.jsonl")}
    lm = ScriptLM(sample_of=lambda ctx, j: gsm8k_sample(table[question_of(ctx, "Question: ")], j))
    samples = evaluate(lm, ["g2_wrap"], tmp_path / "g2")["samples"]["g2_wrap"]
    _, stored = records(samples, "sample")
    assert [int(r.sum()) for r in stored.correct.rows()] == [2] * len(stored)


# ---- multiple choice: arc_easy, mmlu_anatomy ---------------------------------------------------------

@pytest.mark.parametrize("task, marker, gold", [
    ("arc_easy", "Question: ", lambda r: " " + r["choices"]["text"][r["choices"]["label"].index(r["answerKey"])]),
    ("mmlu_anatomy", None, lambda r: " " + "ABCD"[r["answer"]]),
])
def test_multiple_choice_scores_the_gold_choice(wrapped, tmp_path, data, task, marker, gold) -> None:
    source = ARC if task == "arc_easy" else MMLU
    logp = {gold(r): -0.5 - i for i, r in enumerate(source)}  # a distinct log-prob per gold string
    lm = ScriptLM(logp_of=lambda ctx, cont: logp.get(cont, -99.0))
    out = evaluate(lm, [f"{task}_wrap_ll"], wrapped / task)
    assert [cont for _, cont in lm.scored] == [gold(r) for r in source]  # one request per doc: the gold
    # the same contexts as lm-eval's own task (which scores every choice after the same context)
    extra = "num_fewshot: 1\n" if task == "mmlu_anatomy" else ""
    origin_yaml(tmp_path, task, f"{task}_ref", data[task], extra)
    ref = ScriptLM()
    evaluate(ref, [f"{task}_ref"], tmp_path)
    assert [ctx for ctx, _ in lm.scored] == list(dict.fromkeys(ctx for ctx, _ in ref.scored))
    res = out["results"][f"{task}_wrap_ll"]
    assert res["ce,none"] == pytest.approx(float(np.mean([0.5 + i for i in range(len(source))])))
    if task == "mmlu_anatomy":  # --num-fewshot 1 from the dev file: its answer rendered as " B"
        assert lm.scored[0][0].count("Answer:") == 2 and "Answer: B\n\n" in lm.scored[0][0]


# ---- triviaqa: a generation task with several gold aliases --------------------------------------------

def test_triviaqa_verdicts_and_gold_alias(wrapped, tmp_path, data) -> None:
    aliases = {r["question"]: r["answer"]["aliases"] for r in TRIVIAQA + TRIVIAQA_TRAIN}
    lm = ScriptLM(sample_of=lambda ctx, j: trivia_sample(aliases[question_of(ctx, "Question: ")[:-1]], j),
                  logp_of=lambda ctx, cont: -2.0)
    out = evaluate(lm, ["triviaqa_wrap", "triviaqa_wrap_ll"], wrapped / "triviaqa")
    origin_yaml(tmp_path, "triviaqa", "tqa_ref", data["triviaqa"])
    reference = {}
    for j in range(N):
        ref = evaluate(ScriptLM(sample_of=lambda ctx, _, j=j: trivia_sample(
            aliases[question_of(ctx, "Question: ")[:-1]], j)), ["tqa_ref"], tmp_path)["samples"]["tqa_ref"]
        reference.update({(int(s["doc_id"]), j): bool(s["exact_match"]) for s in ref})
    samples = out["samples"]["triviaqa_wrap"]
    for s in samples:
        assert [r["correct"] for r in s["filtered_resps"][0]] == [reference[(int(s["doc_id"]), j)] for j in range(N)]
    # any alias, case and punctuation ignored: samples 0 and 1 pass; "  Mars, surely" does not (a model's
    # output would stop at ",", lm-eval's stop string; the filter only strips the leading space)
    assert [sum(r["correct"] for r in s["filtered_resps"][0]) for s in samples] == [2] * len(TRIVIAQA)
    assert [cont for _, cont in lm.scored] == [" " + r["answer"]["aliases"][0] for r in TRIVIAQA]


# ---- one-line errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    (["triviaqa", "--data", "test={tqa}"], r"evaluates on split 'validation': give --data validation=FILE"),
    (["gsm8k", "--data", "test={gsm}"], r"takes 5 few-shot examples from split 'train'.*--num-fewshot 0"),
    (["gsm8kk"], r"task 'gsm8kk' is not a task of lm-eval's task folder .*did you mean 'gsm8k'"),
    (["mmlu"], r"is not a task of lm-eval's task folder .*groups and tags cannot be wrapped"),
    (["humaneval"], r"field 'unsafe_code': task 'humaneval' executes model output"),
    (["gsm8k", "--filter", "nope"], (r"field 'filter_list': no filter named 'nope' \(the task has \['strict-match', "
                                     r"'flexible-extract'\]\)")),
    (["gsm8k", "--data", "test=/no/such.jsonl"], r"--data test=/no/such.jsonl: no such file"),
    (["gsm8k", "--data", "test"], r"--data must be SPLIT=FILE"),
    (["gsm8k", "--n", "0"], r"--n must be a whole number >= 1"),
    (["gsm8k", "--bogus"], r"covbench wrap: unrecognized arguments: --bogus"),
])
def test_bad_input_is_one_line(args, expected, data, tmp_path, capsys) -> None:
    args = [a.format(tqa=data["triviaqa"]["validation"], gsm=data["gsm8k"]["test"]) for a in args]
    assert wrap_main(args + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(expected, err), err
    assert not any(p for p in tmp_path.iterdir() if not p.name.startswith("."))  # nothing written


def test_a_folder_not_written_by_wrap_is_never_replaced(data, tmp_path, capsys) -> None:
    (tmp_path / "arc_easy").mkdir()
    (tmp_path / "arc_easy" / "mine.txt").write_text("keep")
    assert wrap_main(["arc_easy", "--out", str(tmp_path), "--data", f"test={data['arc_easy']['test']}"]) == 2
    assert "was not written by covbench wrap" in capsys.readouterr().err
    assert (tmp_path / "arc_easy" / "mine.txt").read_text() == "keep"
    assert wrap_main(["arc_easy", "--out", str(tmp_path), "--name", "arc2", "--data",
                      f"test={data['arc_easy']['test']}"]) == 0
    assert wrap_main(["arc_easy", "--out", str(tmp_path), "--name", "arc2", "--data",  # rewrite its own
                      f"test={data['arc_easy']['test']}"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arc2", "arc_easy"]
