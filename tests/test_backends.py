"""The backend factory: spec hash, HFLM arguments, loading a tiny GPT-2 and SmolLM2 (GGUF) through lm-eval."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import types
from pathlib import Path

import pytest

from covbench.backends import BackendError, clear_cache, get_lm, make_lm, model_args, spec_hash
from covbench.registry import ModelSpec, load_registry

ROOT = Path(__file__).parent.parent
ASSETS = Path(__file__).parent / "data" / "registries" / "assets"


def _spec(tmp_path: Path, **fields: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": "m", "pretrained": "gpt2", **fields},
                                    context={"base_dir": tmp_path})


def test_spec_hash_is_sha256_of_canonical_json(tmp_path: Path) -> None:
    spec = _spec(tmp_path, batch_size=2, tags=["b", "a"])
    # Independent canonical form: every scoring field with its default, keys sorted, no whitespace.
    expected = {"name": "m", "backend": "hf", "pretrained": "gpt2", "revision": None, "gguf_file": None,
                "dtype": "float32", "batch_size": 2, "max_length": None, "trust_remote_code": False,
                "chat_template": False, "generation": None, "family": None, "step": None}
    text = json.dumps(expected, sort_keys=True, separators=(",", ":"))
    assert spec_hash(spec) == hashlib.sha256(text.encode()).hexdigest()


def test_spec_hash_changes_with_any_field_and_not_with_key_order(tmp_path: Path) -> None:
    base = spec_hash(_spec(tmp_path, dtype="float32", batch_size=4))
    assert spec_hash(_spec(tmp_path, batch_size=4, dtype="float32")) == base
    assert spec_hash(_spec(tmp_path, dtype="bfloat16", batch_size=4)) != base
    assert spec_hash(_spec(tmp_path, dtype="float32", batch_size=5)) != base
    assert spec_hash(_spec(tmp_path, dtype="float32", batch_size=4, backend="hf-fast",
                           generation={"temperature": 0.5})) != spec_hash(_spec(tmp_path, batch_size=4,
                                                                                backend="hf-fast"))


def test_spec_hash_ignores_fields_that_cannot_change_scores(tmp_path: Path) -> None:
    base = spec_hash(_spec(tmp_path, batch_size=4))
    edited = _spec(tmp_path, batch_size=4, description="new words", tags=["x"], default=True,
                   floors={"graph_fig1": {"pass_exact@8": 0.9}}, tasks=["graph_fig1"])
    assert spec_hash(edited) == base
    in_family = spec_hash(_spec(tmp_path, batch_size=4, family="f", axis="step"))
    assert spec_hash(_spec(tmp_path, batch_size=4, family="f", axis="training step", x=3.0)) == in_family


def test_spec_hash_does_not_depend_on_where_the_registry_lies(tmp_path: Path) -> None:
    # The same entry in two folders: resolved paths differ, the hash (of the entry as written) does not.
    for sub in ("a", "b"):
        (tmp_path / sub / "ckpt").mkdir(parents=True)
    a = ModelSpec.model_validate({"name": "m", "pretrained": "./ckpt"}, context={"base_dir": tmp_path / "a"})
    b = ModelSpec.model_validate({"name": "m", "pretrained": "./ckpt"}, context={"base_dir": tmp_path / "b"})
    assert a.source.pretrained != b.source.pretrained
    assert spec_hash(a) == spec_hash(b)


def test_model_args_carry_the_spec(tmp_path: Path) -> None:
    spec = _spec(tmp_path, batch_size=3, dtype="bfloat16", max_length=64, revision="v1", trust_remote_code=True)
    assert model_args(spec) == {"pretrained": "gpt2", "device": "cpu", "batch_size": 3, "dtype": "bfloat16",
                                "trust_remote_code": True, "revision": "v1", "max_length": 64}
    gguf = ModelSpec.model_validate({"name": "g", "pretrained": str(ASSETS / "tiny.gguf")})
    args = model_args(gguf)
    assert (args["pretrained"], args["gguf_file"]) == (str(ASSETS.resolve()), "tiny.gguf")
    assert "revision" not in args and "max_length" not in args


def test_hf_fast_backend_is_imported_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in module proves the dispatch: the factory imports covbench.backends.fast_hf only for
    # backend 'hf-fast' and constructs its FastHFLM around the shared weights, with the entry's policy.
    from covbench.backends.policy import Policy
    from covbench.backends.weights import Weights

    built: list[dict[str, object]] = []
    weights = Weights(model=object(), tokenizer=object())
    monkeypatch.setattr("covbench.backends.weights.weights_for", lambda spec: weights)

    class FakeFastHFLM:
        def __init__(self, **kwargs: object) -> None:
            built.append(kwargs)

    fake = types.ModuleType("covbench.backends.fast_hf")
    fake.FastHFLM = FakeFastHFLM  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "covbench.backends.fast_hf", fake)
    spec = _spec(tmp_path, backend="hf-fast", batch_size=7, generation={"temperature": 0.5, "top_p": 0.9})
    assert isinstance(make_lm(spec), FakeFastHFLM)
    assert built == [{"pretrained": weights.model, "tokenizer": weights.tokenizer, "batch_size": 7,
                      "trust_remote_code": False, "policy": Policy(temperature=0.5, top_p=0.9), "family": None}]


def test_load_failure_is_one_line_naming_the_model(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"model_type": "gpt2"}')  # no weights, no tokenizer
    spec = ModelSpec.model_validate({"name": "broken-model", "pretrained": "./broken"},
                                    context={"base_dir": tmp_path})
    with pytest.raises(BackendError) as info:
        make_lm(spec)
    message = str(info.value)
    assert message.startswith("model 'broken-model': cannot load './broken' with backend 'hf': ")
    assert "\n" not in message


def test_hub_id_offline_fails_without_network(tmp_path: Path) -> None:
    spec = _spec(tmp_path, pretrained="covbench-no-such-org/no-such-model")
    with pytest.raises(BackendError, match=r"^model 'm': cannot load 'covbench-no-such-org/no-such-model'"):
        make_lm(spec)


def _loglikelihood(lm: object, context: str, continuation: str) -> float:
    from lm_eval.api.instance import Instance

    request = Instance(request_type="loglikelihood", doc={}, arguments=(context, continuation), idx=0)
    (logp, _greedy), = lm.loglikelihood([request])  # type: ignore[attr-defined]
    return float(logp)


@pytest.mark.slow
def test_tiny_gpt2_loads_through_lm_eval_and_scores_like_torch(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    registry = tmp_path / "models.yaml"
    registry.write_text(f"models:\n  - {{name: tiny, pretrained: {str(tiny_model_dir)!r}, batch_size: 2}}\n")
    spec = load_registry(registry).get("tiny")
    clear_cache()
    lm = get_lm(spec)
    assert isinstance(lm, HFLM) and get_lm(spec) is lm  # cached for the run
    assert lm.batch_size == 2 and str(lm.device) == "cpu"

    # Independent reference: sum of log-softmax of the continuation tokens, computed with torch directly.
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    words = tok.convert_ids_to_tokens(list(range(len(tok))))
    plain = [w for w in words if w.isalnum()][:4]
    context, continuation = " ".join(plain[:2]), " " + " ".join(plain[2:4])
    ctx_ids = tok(context, add_special_tokens=False)["input_ids"]
    cont_ids = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx_ids + cont_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), -1)
    expected = sum(float(logp[len(ctx_ids) - 1 + i, t]) for i, t in enumerate(cont_ids))
    got = _loglikelihood(lm, context, continuation)
    assert math.isfinite(got) and got < 0
    assert got == pytest.approx(expected, abs=1e-4)
    clear_cache()


@pytest.mark.slow
def test_hf_fast_backend_builds_fast_hflm(tiny_model_dir: Path) -> None:
    from covbench.backends.fast_hf import FastHFLM

    spec = ModelSpec(name="tiny-fast", backend="hf-fast", pretrained=str(tiny_model_dir), batch_size=3)
    lm = make_lm(spec)
    assert type(lm) is FastHFLM and lm.batch_size == 3
    assert math.isfinite(_loglikelihood(lm, "0 1", " 2"))


@pytest.mark.slow
def test_smollm2_loads_from_the_installed_gguf_and_scores_a_loglikelihood() -> None:
    from lm_eval.models.huggingface import HFLM

    spec = load_registry(ROOT / "models.yaml").get("smollm2-135m")
    lm = make_lm(spec)
    assert isinstance(lm, HFLM)
    paris = _loglikelihood(lm, "The capital of France is", " Paris")
    potato = _loglikelihood(lm, "The capital of France is", " potato")
    assert math.isfinite(paris) and math.isfinite(potato)
    assert -5.0 < paris < 0.0  # a real pre-trained model finds the answer likely
    assert paris > potato + 3.0  # ... and far likelier than nonsense
