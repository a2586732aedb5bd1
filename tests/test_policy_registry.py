"""Registry fields of policies and variants: ``generation.min_p``, ``quantize``, ``adapter``; one-line
errors naming file, model and field; unknown keys rejected; the spec hash follows every scoring field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from covbench.backends import family_key, spec_hash
from covbench.backends.policy import IDENTITY, Policy, policy_of
from covbench.registry import RegistryError, load_registry

ROOT = Path(__file__).parent.parent


def _registry(tmp_path: Path, entry: str) -> Path:
    (tmp_path / "ckpt").mkdir(exist_ok=True)
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - {name: base, pretrained: ./ckpt, backend: hf-fast}\n"
                    f"  - {{name: x, pretrained: ./ckpt, {entry}}}\n")
    return path


def _adapter(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    return folder


INVALID = {
    "quantize: {bits: 9, group_size: 32}":
        "field 'quantize.bits': Input should be less than or equal to 8 (got 9)",
    "quantize: {bits: 1, group_size: 32}":
        "field 'quantize.bits': Input should be greater than or equal to 2 (got 1)",
    "quantize: {bits: 4}": "field 'quantize.group_size': required field is missing",
    "quantize: {bits: 4, group_size: 0}":
        "field 'quantize.group_size': Input should be greater than or equal to 2 (got 0)",
    "quantize: {bits: 4, group_size: 32, scheme: nf4}":
        "field 'quantize.scheme': Input should be 'sym' or 'asym' (got 'nf4')",
    "quantize: {bits: 4, group_size: 32, group: 64}":
        "field 'quantize.group': unknown key; did you mean 'group_size'? (allowed: bits, group_size, scheme)",
    "quantize: 4": "field 'quantize': Input should be a valid dictionary or instance of QuantizeSpec (got 4)",
    "backend: hf-fast, generation: {min_p: 1.5}":
        "field 'generation.min_p': Input should be less than or equal to 1 (got 1.5)",
    "backend: hf-fast, generation: {top_p: 0}":
        "field 'generation.top_p': Input should be greater than 0 (got 0)",
    "generation: {temperature: 0.7}":
        "field 'generation.temperature': backend 'hf' (lm-eval's stock HFLM) scores at temperature 1 without "
        "truncation, so CE and coverage would not describe this sampled policy; use backend 'hf-fast'",
    "generation: {temperature: 1.0, top_p: 0.9}":
        "field 'generation.top_p': backend 'hf' (lm-eval's stock HFLM) scores at temperature 1 without "
        "truncation, so CE and coverage would not describe this sampled policy; use backend 'hf-fast'",
    "adapter: ./nope": "field 'adapter': adapter folder '{tmp}/nope' does not exist",
    "adapter: ./models.yaml":
        "field 'adapter': '{tmp}/models.yaml' is a file; adapter needs the folder peft's save_pretrained wrote",
    "adapter: ./ckpt": "field 'adapter': '{tmp}/ckpt' has no adapter_config.json (not a peft adapter folder)",
    "adapter: ''": "field 'adapter': String should have at least 1 character (got '')",
}


@pytest.mark.parametrize("entry", sorted(INVALID))
def test_invalid_policy_and_variant_fields_give_one_line_errors(tmp_path: Path, entry: str) -> None:
    path = _registry(tmp_path, entry)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    expected = INVALID[entry].replace("{tmp}", str(tmp_path.resolve()))
    assert str(info.value) == f"{path}: model 'x' (entry 1): {expected}"


def test_bad_adapter_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "ad").mkdir()
    (tmp_path / "ad" / "adapter_config.json").write_text("{not json")
    path = _registry(tmp_path, "adapter: ./ad")
    with pytest.raises(RegistryError, match=r"field 'adapter': .*adapter_config.json is not readable JSON: "):
        load_registry(path)
    (tmp_path / "ad" / "adapter_config.json").write_text('{"r": 4}')
    with pytest.raises(RegistryError, match=r"field 'adapter': .* has no 'peft_type'"):
        load_registry(path)


def test_valid_fields_load_and_resolve_relative_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _adapter(tmp_path / "adapters" / "lora")
    path = _registry(tmp_path, "backend: hf-fast, quantize: {bits: 3, group_size: 64}, adapter: adapters/lora, "
                               "generation: {temperature: 0.7, top_k: 40, top_p: 0.9, min_p: 0.05}")
    monkeypatch.chdir(ROOT)
    spec = load_registry(path).get("x")
    assert (spec.quantize.bits, spec.quantize.group_size, spec.quantize.scheme) == (3, 64, "sym")
    assert spec.adapter == "adapters/lora" and spec.adapter_path == (tmp_path / "adapters" / "lora").resolve()
    assert policy_of(spec) == Policy(temperature=0.7, top_k=40, top_p=0.9, min_p=0.05)
    assert policy_of(load_registry(path).get("base")) == IDENTITY
    # identity settings are allowed on stock hf (they are what it scores)
    ok = _registry(tmp_path, "generation: {temperature: 1.0, max_gen_toks: 8}, quantize: {bits: 8, group_size: 32}")
    assert load_registry(ok).get("x").backend == "hf"


def test_spec_hash_follows_every_scoring_field_and_families_ignore_only_the_policy(tmp_path: Path) -> None:
    _adapter(tmp_path / "a1")
    _adapter(tmp_path / "a2")
    variants = ["backend: hf-fast", "backend: hf-fast, generation: {temperature: 0.7}",
                "backend: hf-fast, generation: {temperature: 0.7, min_p: 0.1}",
                "backend: hf-fast, generation: {temperature: 0.7, top_p: 0.9}",
                "backend: hf-fast, quantize: {bits: 4, group_size: 32}",
                "backend: hf-fast, quantize: {bits: 4, group_size: 64}",
                "backend: hf-fast, quantize: {bits: 3, group_size: 32}",
                "backend: hf-fast, quantize: {bits: 4, group_size: 32, scheme: asym}",
                "backend: hf-fast, adapter: ./a1", "backend: hf-fast, adapter: ./a2"]
    specs = [load_registry(_registry(tmp_path, v)).get("x") for v in variants]
    hashes = [spec_hash(s) for s in specs]
    assert len(set(hashes)) == len(variants)
    families = [family_key(s) for s in specs]
    assert len(set(families[:4])) == 1                     # policies only: one family
    assert len(set(families[3:])) == len(variants) - 3     # weights differ: different families
    # an entry that uses none of the new fields hashes exactly as before they existed (stored results
    # stay reusable): the old canonical form has no quantize, adapter, ttt or generation.min_p keys
    for entry in ("backend: hf-fast", "backend: hf-fast, generation: {temperature: 0.7, max_gen_toks: 5}"):
        spec = load_registry(_registry(tmp_path, entry)).get("x")
        old = {k: v for k, v in spec.model_dump(mode="json").items()
               if k not in ("description", "tags", "default", "floors", "tasks", "axis", "x", "resources",
                            "quantize", "adapter", "ttt")}
        if old["generation"] is not None:
            old["generation"] = {k: v for k, v in old["generation"].items() if k != "min_p"}
        text = json.dumps(old, sort_keys=True, separators=(",", ":"))
        assert spec_hash(spec) == hashlib.sha256(text.encode()).hexdigest()


def test_shipped_registry_still_validates() -> None:
    assert len(load_registry(ROOT / "models.yaml")) >= 14
