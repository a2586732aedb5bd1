"""LoRA adapters (registry ``adapter:``, covbench/backends/adapters.py) on a shared base: scores equal an
independently built ``PeftModel`` (fresh base from disk, teacher forcing with torch) and lm-eval's own
``HFLM(peft=...)``, and differ from the base model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from covbench.backends import clear_cache, get_lms, model_args
from covbench.registry import load_registry

ROOT = Path(__file__).parent.parent
ZOO = ROOT / "covbench" / "zoo" / "checkpoints" / "graph-pt"
PAIRS = [("0 1 | 1 2 / 0 2 =", " 0 1 2"), ("3 4 | 4 5 / 3 5 =", " 3 4 5"), ("7 8 / 7 9 =", " 7 9"),
         ("1 2 | 2 3 | 3 4 / 1 4 =", " 1 2 3 4"), ("5 6 / 5 6 =", " 5 6")]


pytestmark = pytest.mark.slow   # loads the zoo checkpoint through lm-eval (seconds)

@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models on a shared 2-core machine: one thread."""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with the zoo model, plus the same model with a random LoRA adapter (saved by peft)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False)   # random A and B: the adapter really changes the model
    get_peft_model(AutoModelForCausalLM.from_pretrained(ZOO), config).save_pretrained(root / "adapters" / "lora")
    path = root / "models.yaml"
    path.write_text(f"models:\n  - {{name: base, backend: hf-fast, pretrained: {str(ZOO)!r}, batch_size: 4}}\n"
                    f"  - {{name: tuned, backend: hf-fast, pretrained: {str(ZOO)!r}, batch_size: 4, "
                    "adapter: adapters/lora}\n"
                    f"  - {{name: tuned-hf, backend: hf, pretrained: {str(ZOO)!r}, batch_size: 4, "
                    "adapter: adapters/lora}\n")
    return path


def _reference(adapter: Path | None) -> list[float]:
    """log p(continuation | context) with a freshly loaded model (and PeftModel), by teacher forcing."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ZOO)
    model = AutoModelForCausalLM.from_pretrained(ZOO, dtype=torch.float32).eval()
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter)).eval()
    out = []
    for context, continuation in PAIRS:
        ctx = tok(context)["input_ids"]
        cont = tok(context + continuation)["input_ids"][len(ctx):]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].float(), -1)
        out.append(sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(cont)))
    return out


def test_adapter_scores_equal_an_independent_peft_model_and_differ_from_the_base(registry: Path) -> None:
    clear_cache()
    reg = load_registry(registry)
    lms = get_lms(reg.specs)
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(PAIRS)]
    scores = {name: np.array([lp for lp, _ in lm.loglikelihood(requests)]) for name, lm in lms.items()}
    adapter = reg.get("tuned").adapter_path
    np.testing.assert_allclose(scores["tuned"], _reference(adapter), atol=1e-5)
    np.testing.assert_allclose(scores["base"], _reference(None), atol=1e-5)
    assert np.abs(scores["tuned"] - scores["base"]).max() > 0.1
    np.testing.assert_array_equal(scores["tuned-hf"], scores["tuned"])   # stock backend, same weights
    # lm-eval's own loading of the adapter (HFLM(peft=...), the --model_args form) agrees
    stock = HFLM(**model_args(reg.get("tuned-hf")))
    np.testing.assert_allclose([lp for lp, _ in stock.loglikelihood(requests)], scores["tuned"], atol=1e-6)
    # the base LM was not changed by building the adapter variant on it
    assert lms["tuned"].model.get_base_model() is not lms["base"].model
    assert not any("lora" in name for name, _ in lms["base"].model.named_parameters())
    clear_cache()
