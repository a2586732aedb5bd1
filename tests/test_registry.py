"""The model registry: a valid file, every kind of invalid file (exact one-line messages), selectors,
``pkg:`` resolution, and ``covbench validate``'s exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from covbench.backends.sources import SourceError, locate_in_distribution, resolve_source
from covbench.cli import main as cli_main
from covbench.metrics import METRICS
from covbench.registry import ModelSpec, RegistryError, load_registry, validate_main

DATA = Path(__file__).parent / "data" / "registries"
ROOT = Path(__file__).parent.parent

ALLOWED = ", ".join(ModelSpec.model_fields)
KNOWN_METRICS = ", ".join(sorted(c.name + ("@N" if c.curve else "") for c in METRICS.values()))

# file -> the message after "<file>: ". Exact, so a changed wording fails the test.
INVALID: dict[str, str] = {
    "unknown_key": "model 'a' (entry 0): field 'batchsize': unknown key; did you mean 'batch_size'? (allowed: "
                   f"{ALLOWED})",
    "duplicate_name": "model 'a' (entry 2): field 'name': duplicate name (entry 0 has it too)",
    "blank_name": "entry 0: field 'name': must not be blank",
    "gguf_file_with_file_pretrained": "model 'a' (entry 0): field 'gguf_file': 'tiny.gguf' is a file; "
                                      "gguf_file needs pretrained to be its folder",
    "tasks_empty_name": "model 'a' (entry 0): field 'tasks': task names must not be empty",
    "empty_name": "entry 0: field 'name': String should have at least 1 character (got '')",
    "name_not_string": "entry 0: field 'name': Input should be a valid string (got 3)",
    "missing_pretrained": "model 'a' (entry 0): field 'pretrained': required field is missing",
    "bad_backend": "model 'a' (entry 0): field 'backend': Input should be 'hf' or 'hf-fast' (got 'vllm')",
    "bad_dtype": "model 'a' (entry 0): field 'dtype': Input should be 'float32', 'bfloat16', 'float16' "
                 "or 'auto' (got 'fp32')",
    "batch_size_zero": "model 'a' (entry 1): field 'batch_size': Input should be greater than or equal "
                       "to 1 (got 0)",
    "batch_size_string": "model 'a' (entry 0): field 'batch_size': Input should be a valid integer, "
                         "unable to parse string as an integer (got 'big')",
    "trust_remote_code_string": "model 'a' (entry 0): field 'trust_remote_code': Input should be a valid "
                                "boolean, unable to interpret input (got 'maybe')",
    "tags_not_list": "model 'a' (entry 0): field 'tags': Input should be a valid list (got 7)",
    "step_without_family": "model 'a' (entry 0): field 'step': step requires family (the training run "
                           "it is a checkpoint of)",
    "negative_step": "model 'a' (entry 0): field 'step': Input should be greater than or equal to 0 (got -1)",
    "reserved_name": "model 'all' (entry 0): field 'name': 'all' is reserved for selecting models",
    "family_is_model_name": "model 'ft' (entry 1): field 'family': 'base' is also a model name (entry 0)",
    "gguf_bad_magic": "model 'a' (entry 0): field 'gguf_file': gguf_file 'fake.gguf' is not a GGUF file "
                      "(no GGUF magic bytes)",
    "gguf_file_not_gguf_name": "model 'a' (entry 0): field 'gguf_file': gguf_file 'model.bin' must name "
                               "a .gguf file",
    "pkg_not_installed": "model 'a' (entry 0): field 'pretrained': distribution 'no-such-dist-covbench' "
                         "is not installed (pip install no-such-dist-covbench)",
    "generation_temperature_zero": "model 'a' (entry 0): field 'generation.temperature': Input should be "
                                   "greater than 0 (got 0)",
    "generation_unknown_key": "model 'a' (entry 0): field 'generation.temprature': unknown key; did you "
                              "mean 'temperature'? (allowed: temperature, top_p, top_k, max_gen_toks, min_p)",
    "floor_curve_without_n": "model 'a' (entry 0): field 'floors.graph.cov': 'cov' is a curve; name its "
                             "threshold, e.g. 'cov@8'",
    "floor_unknown_metric": "model 'a' (entry 0): field 'floors.graph.accuracy@8': unknown metric key "
                            f"(known: {KNOWN_METRICS})",
    "yaml_syntax": "line 4: YAML syntax error: expected ',' or ']', but got ':'",
    "top_level_list": "top level must be a mapping with a 'models:' list, got list",
    "models_not_list": "field 'models': must be a list of model entries, got dict",
    "unknown_top_key": "field 'version': unknown top-level key (only 'models' is allowed)",
    "empty": "field 'models': missing (the file is empty)",
    "entry_not_mapping": "entry 0: must be a mapping of fields, got str",
}

# Messages that contain an absolute path of this machine: checked by prefix and a fragment.
INVALID_PREFIX: dict[str, tuple[str, str]] = {
    "missing_local_path": (("model 'a' (entry 0): field 'pretrained': local path './checkpoints/nope' "
                            "does not exist (looked for "), "/tests/data/registries/checkpoints/nope)"),
    "gguf_not_in_folder": ("model 'a' (entry 0): field 'gguf_file': gguf_file 'model.gguf' is not in ",
                           "/tests/data/registries/assets"),
    "pretrained_file_not_gguf": ("model 'a' (entry 0): field 'pretrained': '",
                                 ("/assets/config.json' is a file but not a GGUF file; point pretrained "
                                  "at a model folder")),
    "pkg_missing_file": (("model 'a' (entry 0): field 'pretrained': 'no_such_dir/model.gguf' is not in "
                          "distribution 'pytest'"), ""),
}


def _error(path: Path) -> str:
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    return str(info.value)


def test_at_least_fifteen_invalid_files_are_covered() -> None:
    files = {p.stem for p in DATA.glob("*.yaml")} - {"valid"}
    assert files == set(INVALID) | set(INVALID_PREFIX)
    assert len(files) >= 15


@pytest.mark.parametrize("stem", sorted(INVALID))
def test_invalid_file_gives_exact_one_line_error(stem: str) -> None:
    path = DATA / f"{stem}.yaml"
    assert _error(path) == f"{path}: {INVALID[stem]}"


@pytest.mark.parametrize("stem", sorted(INVALID_PREFIX))
def test_invalid_path_error_names_file_model_and_field(stem: str) -> None:
    path = DATA / f"{stem}.yaml"
    message = _error(path)
    start, fragment = INVALID_PREFIX[stem]
    assert message.startswith(f"{path}: {start}")
    assert fragment in message
    assert "\n" not in message


def test_missing_file_is_one_line() -> None:
    path = DATA / "no_such_registry.yaml"
    assert _error(path) == f"{path}: cannot read: No such file or directory"


def test_valid_registry_loads_every_field() -> None:
    reg = load_registry(DATA / "valid.yaml")
    assert reg.names == ["local-hf", "local-gguf", "gguf-by-file", "hub-model", "run-step-20", "run-step-10"]
    local = reg.get("local-hf")
    assert local.tasks == ["graph_fig1"] and reg.get("hub-model").tasks is None
    assert (local.batch_size, local.max_length, local.dtype, local.tags) == (4, 128, "float32", ["tiny", "test"])
    assert local.floors == {"graph_fig1": {"pass_exact@8": 0.5, "kl": 2.0}}
    assert local.pretrained == "./assets"  # kept as written: the hash must not depend on the machine
    assert local.source.kind == "local" and local.source.pretrained == str((DATA / "assets").resolve())
    assert local.source.gguf_file is None
    gguf = reg.get("local-gguf")
    assert (gguf.source.pretrained, gguf.source.gguf_file) == (str((DATA / "assets").resolve()), "tiny.gguf")
    by_file = reg.get("gguf-by-file")  # a .gguf file as pretrained is split into (folder, file name)
    assert by_file.source == gguf.source and by_file.backend == "hf-fast" and by_file.chat_template
    assert by_file.generation is not None and by_file.generation.top_k == 50
    hub = reg.get("hub-model")
    assert (hub.source.kind, hub.source.pretrained, hub.revision) == ("hub", "HuggingFaceTB/SmolLM2-135M", "main")
    assert hub.dtype == "float32" and hub.batch_size == 16 and not hub.trust_remote_code  # defaults


def test_paths_resolve_relative_to_the_file_not_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_registry(DATA / "valid.yaml").get("local-hf").source.pretrained == str((DATA / "assets").resolve())
    (tmp_path / "assets").mkdir()  # a folder of the same name in the CWD must not be picked up
    assert load_registry(DATA / "valid.yaml").get("local-hf").source.pretrained != str(tmp_path / "assets")


def test_specs_are_frozen() -> None:
    spec = load_registry(DATA / "valid.yaml").get("hub-model")
    with pytest.raises(Exception, match="frozen"):
        spec.batch_size = 3  # type: ignore[misc]


def test_resolve_name_family_all_default() -> None:
    reg = load_registry(DATA / "valid.yaml")
    assert [s.name for s in reg.resolve("hub-model")] == ["hub-model"]
    assert [s.name for s in reg.resolve("run")] == ["run-step-10", "run-step-20"]  # ordered by step
    assert [s.name for s in reg.resolve("all")] == reg.names
    assert [s.name for s in reg.resolve("default")] == ["local-hf", "run-step-20"]
    assert [s.name for s in reg.resolve_many(["run", "run-step-20", "hub-model"])] == [
        "run-step-10", "run-step-20", "hub-model"]
    assert list(reg.families) == ["run"]


def test_unknown_selector_suggests_close_names() -> None:
    reg = load_registry(DATA / "valid.yaml")
    with pytest.raises(RegistryError, match=r"unknown model or family 'hub-modle'; did you mean 'hub-model'\?"):
        reg.resolve("hub-modle")
    with pytest.raises(RegistryError, match=r"did you mean 'run'"):
        reg.resolve("rnu")
    with pytest.raises(RegistryError) as info:
        reg.get("zzzzzz")
    assert "did you mean" not in str(info.value) and str(DATA / "valid.yaml") in str(info.value)


def test_pkg_source_resolves_inside_an_installed_distribution(tmp_path: Path) -> None:
    # pytest is installed in every environment that runs this test; its __init__ is a known file.
    path = locate_in_distribution("pkg:pytest/pytest/__init__.py")
    assert path == Path(pytest.__file__).resolve()
    with pytest.raises(SourceError, match="not of the form"):
        locate_in_distribution("pkg:pytest")
    with pytest.raises(SourceError, match="is a file but not a GGUF file"):
        resolve_source("pkg:pytest/pytest/__init__.py", None, tmp_path)


def test_spec_without_a_registry_file_resolves_against_the_cwd(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ckpt").mkdir()
    monkeypatch.chdir(tmp_path)
    spec = ModelSpec(name="x", pretrained="./ckpt")
    assert spec.source.pretrained == str((tmp_path / "ckpt").resolve())


def test_root_registry_is_valid_and_has_smollm2() -> None:
    reg = load_registry(ROOT / "models.yaml")
    spec = reg.get("smollm2-135m")
    assert spec.source.kind == "pkg" and spec.source.gguf_file is not None
    assert spec.source.gguf_path is not None and spec.source.gguf_path.is_file()


def test_validate_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_main([str(DATA / "valid.yaml")]) == 0
    assert capsys.readouterr().out == f"ok: 6 models in {DATA / 'valid.yaml'}\n"
    bad = DATA / "bad_dtype.yaml"
    assert cli_main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"{bad}: {INVALID['bad_dtype']}\n"


def test_validate_command_defaults_to_models_yaml_in_the_cwd(tmp_path: Path) -> None:
    # A real subprocess: no traceback on stderr, exit code 2, and the default path is ./models.yaml.
    (tmp_path / "models.yaml").write_text("models:\n  - {name: a, pretrained: gpt2, dtype: fp8}\n")
    proc = subprocess.run([sys.executable, "-m", "covbench.cli", "validate"], cwd=tmp_path, check=False,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        ("models.yaml: model 'a' (entry 0): field 'dtype': Input should be 'float32', 'bfloat16', "
         "'float16' or 'auto' (got 'fp8')")]
    (tmp_path / "models.yaml").write_text("models:\n  - {name: a, pretrained: gpt2}\n")
    proc = subprocess.run([sys.executable, "-m", "covbench.cli", "validate"], cwd=tmp_path, check=False,
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "ok: 1 models in models.yaml\n")
