"""One base load per process (covbench/backends/weights.py): policies share the model object, quantized
variants and adapters are built from the cached base without reading it again and without writing to
it, and an entry without variants scores bit-identically to lm-eval loading the folder itself."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from covbench.backends import BackendError, clear_cache, get_lms, make_lm, model_args
from covbench.backends import weights as weights_mod
from covbench.backends.fast_hf import FastHFLM
from covbench.backends.policy import Policy
from covbench.graphs.generator import FIG1_FINETUNE, fig1_config, sample_docs
from covbench.registry import ModelSpec

ROOT = Path(__file__).parent.parent
ZOO = ROOT / "covbench" / "zoo" / "checkpoints" / "graph-pt"   # a 0.33M-parameter Llama (nn.Linear layers)


pytestmark = pytest.mark.slow   # loads the zoo checkpoint through lm-eval (seconds)

@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models on a shared 2-core machine: one thread."""


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()
    yield
    clear_cache()


def _spec(name: str, path: Path = ZOO, **fields: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": name, "pretrained": str(path), "backend": "hf-fast",
                                     "batch_size": 16, **fields})


def _graph_requests(n_docs: int = 12) -> list[Instance]:
    """graph_fig1-style requests: every path of each doc's support, as lm-eval builds them."""
    docs = sample_docs(fig1_config(), FIG1_FINETUNE, n=n_docs, seed=5)
    pairs = [(d.prompt, y) for d in docs for y in d.support] + [(d.prompt, " 0 1 2 3 4 5") for d in docs]
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


@pytest.mark.parametrize("backend", ["hf", "hf-fast"])
@pytest.mark.parametrize("source", ["zoo", "tiny-gpt2"])
def test_an_entry_without_variants_scores_bit_identically_to_lm_eval_loading_it(
        backend: str, source: str, tiny_model_dir: Path) -> None:
    path = ZOO if source == "zoo" else tiny_model_dir
    spec = _spec("plain", path, backend=backend)
    requests = _graph_requests() if source == "zoo" else [
        Instance("loglikelihood", {}, (f"{a} {b} =", f" {c} {d}"), i)
        for i, (a, b, c, d) in enumerate(itertools.product(range(3), repeat=4))]
    stock = (FastHFLM if backend == "hf-fast" else HFLM)(**model_args(spec))   # lm-eval loads the folder
    ours = make_lm(spec)                                                        # covbench's shared loader
    assert type(ours) is type(stock) and ours.max_length == stock.max_length
    assert ours.loglikelihood(requests) == stock.loglikelihood(requests)


def _storages(model: torch.nn.Module) -> dict[int, int]:
    """data_ptr -> bytes of every tensor a model holds (torchao tensors: their int8 codes and scales)."""
    out: dict[int, int] = {}
    for t in (*model.parameters(), *model.buffers()):
        parts = [getattr(t, n) for n in ("qdata", "scale", "zero_point") if hasattr(t, n)] or [t]
        for p in parts:
            out[p.data_ptr()] = p.numel() * p.element_size()
    return out


def test_one_base_load_serves_policies_quantized_variants_and_adapters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    real = AutoModelForCausalLM.from_pretrained
    reads: list[str] = []
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: reads.append(str(a[0])) or real(*a, **k))
    adapter = tmp_path / "lora"
    get_peft_model(real(ZOO), LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)) \
        .save_pretrained(adapter)
    reads.clear()
    loads = weights_mod.load_count()
    specs = [_spec("base"), _spec("t07", generation={"temperature": 0.7}), _spec("p09", generation={"top_p": 0.9}),
             _spec("q4", quantize={"bits": 4, "group_size": 32}),
             _spec("q4-t07", quantize={"bits": 4, "group_size": 32}, generation={"temperature": 0.7}),
             _spec("q8", quantize={"bits": 8, "group_size": 64}),
             _spec("lora", adapter=str(adapter)),
             _spec("q4-lora", quantize={"bits": 4, "group_size": 32}, adapter=str(adapter))]
    lms = get_lms(specs)
    assert reads == [str(ZOO)] and weights_mod.load_count() == loads + 1         # one read from disk, for all eight
    base = lms["base"].model
    before = {k: v.clone() for k, v in base.state_dict().items()}
    assert lms["t07"].model is base and lms["p09"].model is base           # policies: the very same object
    assert lms["q4-t07"].model is lms["q4"].model                          # a policy of a quantized variant
    assert lms["base"].family is lms["t07"].family is not lms["q4"].family
    assert lms["t07"].family.policies == [Policy(), Policy(temperature=0.7), Policy(top_p=0.9)]
    q4 = lms["q4"].model
    assert q4 is not base and q4.model.embed_tokens.weight is base.model.embed_tokens.weight   # shared, not copied
    assert q4.lm_head.weight is base.lm_head.weight and q4.model.norm.weight is base.model.norm.weight
    assert type(q4.model.layers[0].mlp.up_proj.weight).__name__ == "IntxUnpackedToInt8Tensor"
    lora_on_q4 = lms["q4-lora"].model
    assert lora_on_q4.base_model.model.model.layers[0].mlp.up_proj.weight is q4.model.layers[0].mlp.up_proj.weight
    # memory: each quantized variant adds its int8 codes and scales, nothing else
    seen = _storages(base)
    base_bytes = sum(seen.values())
    extra = {}
    for name in ("q4", "q8", "lora", "q4-lora"):
        for ptr, size in _storages(lms[name].model).items():
            if ptr not in seen:
                extra[ptr] = size
    n_quantized = sum(m.weight.numel() for m in weights_mod_quantizable(base).values())
    # two quantized variants: 1-byte codes plus per-group scales (and zero points) for each, plus two
    # small LoRA adapters; two float32 copies would be 8 bytes per quantized weight plus the rest
    assert sum(extra.values()) < 2.5 * n_quantized < base_bytes
    # scoring every member writes nothing into the shared base
    requests = _graph_requests(4)
    scores = {name: lm.loglikelihood(requests) for name, lm in lms.items()}
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    assert scores["lora"] != scores["base"] and scores["q4"] != scores["base"] and scores["t07"] != scores["base"]
    assert scores["q4-t07"] != scores["q4"] and scores["q4-lora"] != scores["q4"]
    assert len(reads) == 1


def weights_mod_quantizable(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    from covbench.backends.quantize import quantizable_layers

    return quantizable_layers(model)


def test_clear_cache_forgets_the_weights() -> None:
    loads = weights_mod.load_count()
    make_lm(_spec("a"))
    make_lm(_spec("b", generation={"temperature": 0.5}))
    assert weights_mod.load_count() == loads + 1
    clear_cache()
    make_lm(_spec("a"))
    assert weights_mod.load_count() == loads + 2


@pytest.mark.parametrize(("path", "quantize", "message"), [
    ("zoo", {"bits": 4, "group_size": 128},
     ("model 'x': field 'quantize.group_size': 128 does not divide the input width 64 of layer "
      "'model.layers.0.self_attn.q_proj'")),
    ("tiny", {"bits": 4, "group_size": 32},
     ("model 'x': field 'quantize': GPT2LMHeadModel has no nn.Linear layers to quantize (torchao quantizes "
      "nn.Linear; e.g. GPT-2's Conv1D is not supported)")),
])
def test_a_variant_that_does_not_fit_the_model_is_a_one_line_error(path: str, quantize: dict, message: str,
                                                                   tiny_model_dir: Path) -> None:
    spec = _spec("x", ZOO if path == "zoo" else tiny_model_dir, quantize=quantize)
    with pytest.raises(BackendError) as info:
        make_lm(spec)
    assert str(info.value) == message


def test_an_adapter_for_another_model_is_a_one_line_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    get_peft_model(AutoModelForCausalLM.from_pretrained(ZOO), LoraConfig(r=2, target_modules=["q_proj"])) \
        .save_pretrained(tmp_path / "lora")
    spec = _spec("x", tiny_model_dir, adapter=str(tmp_path / "lora"))
    with pytest.raises(BackendError, match=r"^model 'x': field 'adapter': peft cannot apply '.*/lora' to this "
                                           r"base model: NoMatchingPeftModuleError: Target modules \{'q_proj'\} not found") as info:
        make_lm(spec)
    assert "\n" not in str(info.value)
