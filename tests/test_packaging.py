"""A non-editable ``pip install .`` in a fresh virtual environment runs a suite job and builds the site from
another working directory: the tasks, templates and checkpoints ship inside the package (issue 12)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


_EVERYWHERE = shutil.ignore_patterns(".venv*", ".git", "__pycache__", "*.egg-info", ".pytest_cache")
_TOP_LEVEL_OUTPUTS = {"build", "results", "site", "artifacts"}  # at the root only: covbench/site is source


def _skip_outputs(folder: str, names: list[str]) -> set[str]:
    skipped = set(_EVERYWHERE(folder, names))
    if Path(folder) == ROOT:
        skipped |= _TOP_LEVEL_OUTPUTS & set(names)
    return skipped


def test_non_editable_install_runs_a_job_and_builds_the_site(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # The fresh environment reuses this one's installed dependencies (torch, lm-eval, ... : minutes and GBs to
    # install again) through a path entry appended after its own site-packages; a path added this way runs
    # none of the .pth files there, so this checkout's editable install of covbench stays invisible.
    site = _run([str(py), "-c", "import site; print(site.getsitepackages()[0])"], tmp_path, dict(os.environ))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site.stdout.strip()) / "covbench-test-deps.pth").write_text("\n".join(deps) + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PYTHONPATH": ""}
    wheel_dir = tmp_path / "wheel"
    source = tmp_path / "source"  # a copy of the checkout: building writes build/ and *.egg-info into it
    shutil.copytree(ROOT, source, ignore=_skip_outputs)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheel_dir),
                  str(source)], tmp_path, env)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheel_dir.glob("covbench-*.whl"))
    installed = _run([str(py), "-m", "pip", "install", "--no-deps", "--force-reinstall", str(wheel)], tmp_path, env)
    assert installed.returncode == 0, installed.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([str(py), "-c", "import covbench, covbench.taskmeta as t; print(covbench.__file__); print(t.TASKS_DIR)"],
                 elsewhere, env)
    assert where.returncode == 0 and str(ROOT) not in where.stdout, where.stdout + where.stderr
    # A registry in this folder pointing at a zoo checkpoint inside the installed package.
    (elsewhere / "models.yaml").write_text(
        "models:\n  - {name: pt, pretrained: 'pkg:covbench/covbench/zoo/checkpoints/graph-pt', backend: hf-fast,"
        " batch_size: 64}\n")
    job = _run([str(py), "-c",
                "from covbench.registry import load_registry; from covbench.runner import run_job;"
                "spec = load_registry('models.yaml').get('pt');"
                "print(run_job(spec, 'graph_fig2_h8', 'results').message)"], elsewhere, env)
    assert job.returncode == 0 and "pt × graph_fig2_h8: scored" in job.stdout, job.stdout + job.stderr[-3000:]
    site = _run([str(env_dir / "bin" / "covbench"), "leaderboard", "build", "--results", "results", "--out", "site"],
                elsewhere, env)
    assert site.returncode == 0, site.stderr[-2000:]
    assert (elsewhere / "site" / "index.html").is_file() and (elsewhere / "site" / "static" / "style.css").is_file()
    assert "graph_fig2_h8" in (elsewhere / "site" / "index.html").read_text(encoding="utf-8")
