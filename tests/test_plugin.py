"""The pytest plugin, driven through pytester: options, --model selection, usage errors, fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REGISTRY = """\
models:
  - {name: hub-model, pretrained: gpt2, default: true}
  - {name: other, pretrained: org/other}
  - {name: run-step-20, pretrained: gpt2, family: run, step: 20}
  - {name: run-step-10, pretrained: gpt2, family: run, step: 10, default: true}
"""

# One test per selected model: the ids show which models the options selected.
SPEC_TEST = """\
def test_model(covbench_spec):
    assert covbench_spec.pretrained
"""


@pytest.fixture
def registry(pytester: pytest.Pytester) -> Path:
    path = pytester.path / "models.yaml"
    path.write_text(REGISTRY)
    return path


def _selected(pytester: pytest.Pytester, *args: str) -> list[str]:
    pytester.makepyfile(test_spec=SPEC_TEST)
    result = pytester.runpytest("-p", "covbench.plugin", "--collect-only", "-q", *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    return [line.split("[", 1)[1].rstrip("]") for line in result.outlines if line.startswith("test_spec.py::")]


def test_help_lists_the_covbench_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "covbench.plugin", "--help")
    out = result.stdout.str()
    assert "covbench: coverage and Pass@N benchmarks" in out
    for option in ("--model=NAME", "--models-file=PATH", "--results-dir=PATH", "--tasks=A,B", "--samples-n=N"):
        assert option in out


def test_known_model(pytester: pytest.Pytester, registry: Path) -> None:
    assert _selected(pytester, "--model", "other") == ["other"]


def test_repeated_model_and_family_without_duplicates(pytester: pytest.Pytester, registry: Path) -> None:
    assert _selected(pytester, "--model", "other", "--model", "run", "--model", "run-step-10") == [
        "other", "run-step-10", "run-step-20"]


def test_family_selects_its_checkpoints_by_step(pytester: pytest.Pytester, registry: Path) -> None:
    assert _selected(pytester, "--model", "run") == ["run-step-10", "run-step-20"]


def test_all(pytester: pytest.Pytester, registry: Path) -> None:
    assert _selected(pytester, "--model", "all") == ["hub-model", "other", "run-step-20", "run-step-10"]


def test_no_model_option_selects_the_default_set(pytester: pytest.Pytester, registry: Path) -> None:
    assert _selected(pytester) == ["hub-model", "run-step-10"]


def test_models_file_option(pytester: pytest.Pytester) -> None:
    (pytester.path / "sub").mkdir()
    (pytester.path / "sub" / "reg.yaml").write_text("models:\n  - {name: only, pretrained: gpt2}\n")
    assert _selected(pytester, "--models-file", "sub/reg.yaml", "--model", "only") == ["only"]


def test_unknown_model_is_a_usage_error_with_did_you_mean(pytester: pytest.Pytester, registry: Path) -> None:
    pytester.makepyfile(test_spec=SPEC_TEST)
    result = pytester.runpytest("-p", "covbench.plugin", "--model", "hub-modle")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"--model: {registry}: unknown model or family 'hub-modle'; did you mean 'hub-model'?" in err
    assert "Traceback" not in err and "test_spec.py" not in result.stdout.str()  # stopped before collection


def test_unknown_family_suggests_the_family(pytester: pytest.Pytester, registry: Path) -> None:
    result = pytester.runpytest("-p", "covbench.plugin", "--model", "rnu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "did you mean 'run'?" in result.stderr.str()


def test_bad_registry_is_a_usage_error_naming_file_model_field(pytester: pytest.Pytester) -> None:
    path = pytester.path / "models.yaml"
    path.write_text("models:\n  - {name: a, pretrained: gpt2, batch_size: -3}\n")
    result = pytester.runpytest("-p", "covbench.plugin", "--model", "a")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (f"{path}: model 'a' (entry 0): field 'batch_size': Input should be greater than or equal to 1 "
            f"(got -3)") in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_no_model_option_and_no_registry_leaves_other_tests_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest("-p", "covbench.plugin")
    result.assert_outcomes(passed=1)


def test_session_options_reach_the_fixtures(pytester: pytest.Pytester, registry: Path) -> None:
    (pytester.path / "here").mkdir()
    pytester.makepyfile(test_opts=f"""
        from pathlib import Path

        def test_options(covbench_session, covbench_tasks, covbench_samples_n, covbench_results_dir,
                         covbench_registry, covbench_specs):
            assert covbench_tasks == ["graph_fig1", "arith_ll"]
            assert covbench_samples_n == 32
            assert covbench_results_dir == Path({str(pytester.path)!r}) / "out" / "res"
            assert covbench_results_dir.is_dir()
            assert covbench_registry.names == ["hub-model", "other", "run-step-20", "run-step-10"]
            assert [s.name for s in covbench_specs] == ["other"]
            assert covbench_session.wants_task("arith_ll") and not covbench_session.wants_task("gsm8k")
    """)
    result = pytester.runpytest("-p", "covbench.plugin", "--model", "other", "--tasks", "graph_fig1, arith_ll",
                                "--samples-n", "32", "--results-dir", "out/res")
    result.assert_outcomes(passed=1)


def test_defaults_live_in_the_rootdir(pytester: pytest.Pytester, registry: Path) -> None:
    pytester.makepyfile(test_defaults=f"""
        from pathlib import Path

        def test_defaults(covbench_session):
            assert covbench_session.results_dir == Path({str(pytester.path)!r}) / "results"
            assert covbench_session.models_file == Path({str(pytester.path)!r}) / "models.yaml"
            assert covbench_session.tasks is None and covbench_session.samples_n is None
    """)
    pytester.runpytest("-p", "covbench.plugin").assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_samples_n_must_be_a_positive_integer(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest("-p", "covbench.plugin", "--samples-n", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--samples-n" in result.stderr.str() and "expected a positive integer" in result.stderr.str()


_RECORDING_TESTS = """
    import pytest
    from types import SimpleNamespace
    from covbench.records import Estimate, Provenance, Run, RunRecord, TaskDescriptor
    from covbench.store import write_run

    PROV = Provenance(covbench_version="0", lm_eval_version="0", git_commit="x", task_hash="t",
                      model_spec_hash="m", seed=0, machine="m", time="t")

    @pytest.mark.parametrize("model,ce", [("model-a", 0.5), ("model-b", 0.25)])
    def test_record(covbench_record, covbench_results_dir, model, ce):
        rec = RunRecord(model=model, task="graph_fig1", provenance=PROV,
                        descriptor=TaskDescriptor(name="graph_fig1", reference="known", kind="loglikelihood"),
                        metrics={"ce": Estimate(value=ce), "cov@4": Estimate(value=ce / 10)})
        path = write_run(covbench_results_dir, Run(rec))
        covbench_record(SimpleNamespace(path=path, record=rec, message=f"{model}: scored"))
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_terminal_summary_tables_recorded_runs(pytester: pytest.Pytester, xdist: list[str]) -> None:
    pytester.makepyfile(test_rec=_RECORDING_TESTS)
    result = pytester.runpytest_subprocess("-p", "covbench.plugin", *xdist)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*covbench: 2 results in *results*", "graph_fig1",
                                 "model*CE*Cov4*rCE*rCov4*"])
    out = result.stdout.str()
    row_a = next(line for line in out.splitlines() if line.startswith("model-a "))
    row_b = next(line for line in out.splitlines() if line.startswith("model-b "))
    assert row_a.split()[1:3] == ["0.500", "0.050"] and row_a.split()[-3:] == ["2", "2", "—"]
    assert row_b.split()[1:3] == ["0.250", "0.025"] and row_b.split()[-3:] == ["1", "1", "—"]
    assert "model-a: scored" in out and "model-b: scored" in out


def test_terminal_summary_is_silent_without_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rec="def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "covbench.plugin")
    assert "covbench:" not in result.stdout.str()


def test_lm_fixture_builds_the_whole_policy_family_with_its_first_member(pytester: pytest.Pytester,
                                                                         tiny_model_dir: Path) -> None:
    """Entries that differ only in ``generation`` are built together, so the first scoring job scores
    every member's policy in one forward pass; other entries are left alone."""
    (pytester.path / "models.yaml").write_text(
        "models:\n"
        f"  - {{name: t1, backend: hf-fast, pretrained: {tiny_model_dir}}}\n"
        f"  - {{name: t07, backend: hf-fast, pretrained: {tiny_model_dir}, generation: {{temperature: 0.7}}}}\n"
        f"  - {{name: b4, backend: hf-fast, pretrained: {tiny_model_dir}, batch_size: 4}}\n")
    pytester.makepyfile(test_lm="""
        from covbench.backends import factory

        def test_lm(covbench_lm, covbench_specs):
            factory.clear_cache()
            t1, t07, b4 = covbench_specs
            lm = covbench_lm(t1)
            assert lm is factory.get_lm(t1) and factory.cached_count() == 2  # t07 built with it
            assert lm.family is factory.get_lm(t07).family and len(lm.family.policies) == 2
            covbench_lm(b4)
            assert factory.cached_count() == 3 and factory.get_lm(b4).family is not lm.family
            factory.clear_cache()
    """)
    pytester.runpytest_subprocess("-p", "covbench.plugin", "--models-file", "models.yaml",
                                  "--model", "all").assert_outcomes(passed=1)


def test_scheduler_scopes_put_a_policy_family_on_one_worker(tiny_model_dir: Path, tmp_path: Path) -> None:
    from covbench.plugin import model_scopes
    from covbench.registry import load_registry

    (tmp_path / "models.yaml").write_text(
        "models:\n"
        f"  - {{name: a, backend: hf-fast, pretrained: {tiny_model_dir}}}\n"
        f"  - {{name: a-hot, backend: hf-fast, pretrained: {tiny_model_dir}, generation: {{temperature: 1.5, top_p: 0.9}}}}\n"
        f"  - {{name: a-int4, backend: hf-fast, pretrained: {tiny_model_dir}, quantize: {{bits: 4, group_size: 16}}}}\n"
        f"  - {{name: stock, pretrained: {tiny_model_dir}}}\n")
    scopes = model_scopes(load_registry(tmp_path / "models.yaml").specs)
    assert scopes["a"] == scopes["a-hot"] != scopes["a-int4"]
    assert scopes["stock"] == "model:stock"
