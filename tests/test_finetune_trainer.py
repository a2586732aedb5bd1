"""The LoRA trainer on the tiny config: loss against a plain reference, determinism, checkpoints, loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from covbench.arith.generator import generate
from covbench.finetune.base import build_tiny_llama, load_base
from covbench.finetune.config import checkpoint_steps, preset
from covbench.finetune.data import collate, encode_pair, load_eval_task, render
from covbench.finetune.trainer import (
    ADAPTER_WEIGHTS,
    TRAIN_INFO,
    add_lora,
    answer_loss,
    checkpoint_name,
    train,
)

pytestmark = pytest.mark.slow

TINY = preset("tiny")


@pytest.fixture(scope="module")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory, one_torch_thread) -> Path:
    return build_tiny_llama(TINY.base, tmp_path_factory.mktemp("tiny-llama"), seed=0)


@pytest.fixture(scope="module")
def tiny_cfg(tiny_base_dir: Path):
    return TINY.model_copy(update={"base": TINY.base.model_copy(update={"pretrained": str(tiny_base_dir)})})


@pytest.fixture(scope="module")
def trained(tiny_cfg, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("adapters")
    records: list[dict] = []
    train(tiny_cfg, out, records.append)
    return out, records


def _reference_loss(model, pairs) -> torch.Tensor:
    """Answer-token CE the plain way: each full sequence alone, HF's shifted loss on y* labels."""
    total, count = torch.zeros(()), 0
    for p in pairs:
        ids = torch.tensor([p.context + p.continuation])
        labels = torch.full_like(ids, -100)
        labels[0, len(p.context):] = torch.tensor(p.continuation)
        n = len(p.continuation)
        total = total + model(input_ids=ids, labels=labels).loss * n
        count += n
    return total / count


def test_shared_prefix_loss_and_gradients_equal_the_plain_per_sequence_loss(tiny_cfg) -> None:
    base = load_base(tiny_cfg.base, ".", seed=0)
    model = add_lora(base.model, tiny_cfg)
    # a trained-looking adapter: B = 0 at init would hide errors in the adapter's path
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(hash(name) % 1000))
    task = load_eval_task("arith_ll")
    pairs = [encode_pair(base.tokenizer, *render(task, p)) for p in generate(6, seed="shared-prefix-test")]
    batch = collate(pairs, pad_id=base.tokenizer.pad_token_id)
    assert batch.prefix_ids.shape[1] > 200  # the 4-shot context is shared
    fast = answer_loss(model, batch)
    grads_fast = torch.autograd.grad(fast, [p for p in model.parameters() if p.requires_grad])
    ref = _reference_loss(model, pairs)
    grads_ref = torch.autograd.grad(ref, [p for p in model.parameters() if p.requires_grad])
    assert float(fast) == pytest.approx(float(ref), rel=1e-5)
    for gf, gr in zip(grads_fast, grads_ref):
        torch.testing.assert_close(gf, gr, rtol=1e-4, atol=1e-6)


def test_run_saves_every_log_spaced_checkpoint_with_its_record(trained, tiny_cfg) -> None:
    out, records = trained
    steps = checkpoint_steps(tiny_cfg.train)
    assert [p.name for p in sorted(out.glob("smollm2-lora-*"))] == [checkpoint_name("smollm2-lora", s)
                                                                     for s in steps]
    for s in steps:
        folder = out / checkpoint_name("smollm2-lora", s)
        info = json.loads((folder / TRAIN_INFO).read_text())
        assert info["step"] == s and info["seed"] == tiny_cfg.seed
        assert info["wall_s"] >= 0 and info["cpu_s"] >= 0
        assert info["config"]["lora"]["r"] == tiny_cfg.lora.r and "peft" in info["versions"]
        assert info["held_out_docs"] == {"arith_ll": 64, "arith_sample": 32}
        cfg = json.loads((folder / "adapter_config.json").read_text())
        assert cfg["r"] == tiny_cfg.lora.r and cfg["target_modules"] == ["q_proj", "v_proj"]  # sorted
        from safetensors import safe_open

        with safe_open(str(folder / ADAPTER_WEIGHTS), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        assert tensors and all(t.dtype == torch.float16 for t in tensors.values())
        assert any("lora_B" in k and t.abs().sum() > 0 for k, t in tensors.items())  # it trained
    events = [r["event"] for r in records]
    assert events[0] == "start" and events[-1] == "done" and events.count("saved") == len(steps)
    losses = [r["loss"] for r in records if r["event"] == "step"]
    assert all(torch.isfinite(torch.tensor(losses)))


def test_same_seed_and_threads_give_byte_identical_adapters(trained, tiny_cfg, tmp_path: Path) -> None:
    out, _ = trained
    train(tiny_cfg, tmp_path, lambda r: None)
    for folder in sorted(out.glob("smollm2-lora-*")):
        again = tmp_path / folder.name
        assert (again / ADAPTER_WEIGHTS).read_bytes() == (folder / ADAPTER_WEIGHTS).read_bytes()
        assert (tmp_path / folder.name / "adapter_config.json").read_bytes() == \
            (folder / "adapter_config.json").read_bytes()
    other = tiny_cfg.model_copy(update={"seed": 1})
    train(other, tmp_path / "seed1", lambda r: None)
    last = max(out.glob("smollm2-lora-*")).name
    other_bytes = (tmp_path / "seed1" / last / ADAPTER_WEIGHTS).read_bytes()
    assert other_bytes != (out / last / ADAPTER_WEIGHTS).read_bytes()


def test_every_checkpoint_loads_through_lm_eval_hflm_peft(trained, tiny_cfg) -> None:
    """HFLM(pretrained=BASE, peft=ADAPTER) applies the saved adapter: its log-likelihoods are those of
    the in-memory trained model, and differ from the base's."""
    from lm_eval.models.huggingface import HFLM
    from peft import PeftModel

    from covbench.backends.fast_hf import FastHFLM

    out, _ = trained
    base_dir = tiny_cfg.base.pretrained
    task = load_eval_task("arith_ll")
    req = [render(task, p) for p in generate(2, seed=1234)]  # two arith_ll docs
    plain = HFLM(pretrained=base_dir, device="cpu", batch_size=2)
    base_ll = [ll for ll, _ in plain.loglikelihood([_instance(c, t) for c, t in req])]
    for folder in sorted(out.glob("smollm2-lora-*")):
        lm = HFLM(pretrained=base_dir, peft=str(folder), device="cpu", batch_size=2)
        assert isinstance(lm.model, PeftModel)
        got = [ll for ll, _ in lm.loglikelihood([_instance(c, t) for c, t in req])]
        ref = load_base(tiny_cfg.base, ".", seed=0)
        manual = PeftModel.from_pretrained(ref.model, str(folder)).eval()
        with torch.no_grad():
            expected = [-_reference_loss(manual, [encode_pair(ref.tokenizer, c, t)]).item()
                        * len(encode_pair(ref.tokenizer, c, t).continuation) for c, t in req]
        assert got == pytest.approx(expected, abs=1e-4)
        assert got != pytest.approx(base_ll, abs=1e-4)
    fast = FastHFLM(pretrained=base_dir, peft=str(folder), device="cpu", batch_size=2)
    assert [ll for ll, _ in fast.loglikelihood([_instance(c, t) for c, t in req])] == pytest.approx(got)


def _instance(context: str, target: str):
    from lm_eval.api.instance import Instance

    return Instance("loglikelihood", {}, (context, target), 0)
