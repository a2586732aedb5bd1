"""Benign programs through ``run_program`` / ``run_many``: verdicts, output, environment, isolation."""

from __future__ import annotations

import os
import socket

import pytest
from sandbox_guard import needs_root_namespaces

from covbench.sandbox import Limits, SandboxError, resolve_isolation, run_many, run_program

pytestmark = needs_root_namespaces
QUICK = Limits(wall_s=5.0, cpu_s=5.0)


def test_auto_picks_root_namespaces_here() -> None:
    assert resolve_isolation() == "namespaces"
    verdict = run_program("pass", QUICK)
    assert verdict.isolation == "namespaces" and verdict.network_isolated and verdict.cgroup


@pytest.mark.parametrize(("source", "status", "reason"), [
    ("assert 1 + 1 == 2", "passed", "ran to its end"),
    ("assert 1 + 1 == 3, 'arithmetic'", "failed", "AssertionError: arithmetic"),
    ("assert False", "failed", "AssertionError"),
    ("def f(:\n    pass", "failed", "SyntaxError: invalid syntax (<string>, line 1)"),
    ("raise ValueError('bad\\n  value')", "failed", "ValueError: bad value"),
    ("[][1]", "failed", "IndexError: list index out of range"),
    ("import sys\nsys.exit(3)", "crashed", "SystemExit with status 3"),
    ("import sys\nsys.exit('message')", "crashed", "status 1: message"),
    ("import os\nos.abort()", "crashed", "SIGABRT"),
])
def test_verdicts(source: str, status: str, reason: str) -> None:
    verdict = run_program(source, QUICK)
    assert verdict.status == status, verdict.reason
    assert reason in verdict.reason


def test_output_is_captured_and_capped() -> None:
    verdict = run_program("import sys\nprint('out')\nprint('err', file=sys.stderr)", QUICK)
    assert verdict.passed and sorted(verdict.output.splitlines()) == ["err", "out"]   # stdout is buffered
    assert verdict.output_bytes == 8
    big = run_program("import os\nos.write(1, b'x' * (3 << 20))", Limits(wall_s=5, output_kb=4))
    assert big.passed
    assert big.output == "x" * 4096 and big.output_bytes == 3 << 20


def test_environment_is_fresh_and_minimal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVBENCH_TEST_SECRET", "parent-secret-123")
    source = ("import os, sys, socket\n"
              "print(sorted(os.environ.items()))\n"
              "print(os.getcwd(), os.getuid(), os.getgid(), os.getgroups(), socket.gethostname())\n"
              "print(sorted(os.listdir('/')), sorted(os.listdir('/dev')), os.listdir('.'))\n"
              "print(sys.stdin.read() == '')\n")
    verdict = run_program(source, QUICK)
    assert verdict.passed, verdict.reason
    env, ids, tree, stdin = verdict.output.splitlines()
    assert "parent-secret-123" not in verdict.output
    assert eval(env) == [("HOME", "/tmp"), ("LANG", "C.UTF-8"), ("PATH", "/usr/local/bin:/usr/bin:/bin"),
                         ("TMPDIR", "/tmp")]
    cwd, uid, gid, groups, host = ids.split(" ", 4)
    assert cwd == "/tmp" and 1_640_000 <= int(uid) < 1_640_064 and gid == uid and groups == "[]"
    assert host == "sandbox"
    top, dev, work = (eval(part + "]") for part in tree.rstrip("]").split("] "))
    assert "proc" not in top and "sys" not in top and "home" not in top and "work" not in top
    assert dev == ["full", "null", "random", "shm", "urandom", "zero"]
    assert work == [] and stdin == "True"


def test_working_directory_is_private_and_fresh() -> None:
    first = run_program("open('left.txt', 'w').write('x')\nimport os\nprint(os.listdir('.'))", QUICK)
    second = run_program("import os\nprint(os.listdir('.'))", QUICK)
    assert first.output == "['left.txt']\n" and second.output == "[]\n"


def test_no_network_here() -> None:
    source = ("import socket\n"
              "s = socket.socket()\n"
              "s.settimeout(1)\n"
              "try:\n"
              "    s.connect(('127.0.0.1', 9))\n"
              "except OSError as exc:\n"
              "    print(type(exc).__name__, exc.errno)\n"
              "print(socket.if_nameindex())\n")
    verdict = run_program(source, QUICK)
    assert verdict.passed and verdict.network_isolated
    first, interfaces = verdict.output.splitlines()
    assert first.startswith("OSError 101")       # ENETUNREACH: the loopback device is down
    assert eval(interfaces) == [(1, "lo")]


def test_standard_library_imports_work() -> None:
    source = ("import hashlib, json, csv, sqlite3, decimal, fractions, statistics, random, re, itertools\n"
              "import multiprocessing, unittest, textwrap, zlib, bz2\n"
              "assert hashlib.md5(b'a').hexdigest() == '0cc175b9c0f1b6a831c399e269772661'\n"
              "assert json.loads('[1]') == [1]\n")
    verdict = run_program(source, QUICK)
    assert verdict.passed, verdict.reason


def test_random_state_differs_between_runs() -> None:
    draws = {run_program("import random\nprint(random.random())", QUICK).output for _ in range(3)}
    assert len(draws) == 3


def test_subprocesses_run_inside() -> None:
    source = ("import subprocess, sys\n"
              "out = subprocess.run([sys.executable, '-c', 'import os; print(os.getuid())'],\n"
              "                     capture_output=True, text=True, check=True).stdout\n"
              "import os\n"
              "assert int(out) == os.getuid(), out\n")
    verdict = run_program(source, QUICK)
    assert verdict.passed, verdict.reason


def test_run_many_keeps_order_and_runs_in_parallel() -> None:
    sources = [f"import time\ntime.sleep(0.5)\nassert {i} % 3 != 0" for i in range(8)]
    verdicts = run_many(sources, QUICK, workers=4)
    assert [v.status for v in verdicts] == ["failed" if i % 3 == 0 else "passed" for i in range(8)]
    assert all(v.wall_s >= 0.5 for v in verdicts)


def test_large_program_comes_through_the_control_pipe() -> None:
    blob = "a" * 400_000
    verdict = run_program(f"x = {blob!r}\nassert len(x) == 400_000", QUICK)
    assert verdict.passed, verdict.reason


def test_prefix_must_parse_on_its_own() -> None:
    source = "def f():\n    return 1\n@lambda g: (lambda c: None)\ndef check(c):\n    assert c() == 2\ncheck(f)"
    head = len("def f():\n    return 1\n@lambda g: (lambda c: None)\n")
    assert run_program(source, QUICK).passed            # the decorator swallowed the real check
    blocked = run_program(source, QUICK, prefix=head)
    assert blocked.status == "failed" and "does not parse on its own" in blocked.reason


def test_guard_off_still_needs_evidence() -> None:
    assert run_program("assert True", QUICK, guard=False).passed
    assert run_program("import os\nos._exit(0)", QUICK, guard=False).status == "no_evidence"
    assert run_program("import ctypes\nprint(ctypes.sizeof(ctypes.c_int))", QUICK, guard=False).passed


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: run_program(b"pass"), TypeError, "must be str"),
    (lambda: run_program("pass", prefix=10), ValueError, "prefix"),
    (lambda: run_program("pass", isolation="docker"), ValueError, "isolation"),
    (lambda: run_program("pass", isolation="userns"), SandboxError, "not available"),
    (lambda: run_many(["pass"], workers=0), ValueError, "workers"),
    (lambda: run_many(["pass", "pass"], prefixes=[None]), ValueError, "prefixes"),
])
def test_bad_calls_get_one_line_errors(call, error: type, match: str) -> None:
    with pytest.raises(error, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_the_callers_process_is_untouched() -> None:
    before = (os.getcwd(), dict(os.environ), socket.gethostname())
    run_many(["import os\nos.chdir('/')\nos.environ['X'] = '1'"] * 3, QUICK)
    assert (os.getcwd(), dict(os.environ), socket.gethostname()) == before
