"""LoRA fine-tuning of SmolLM2-135M-Instruct on the arithmetic gold-answer task (docs/finetune.md).

Modules, one job each: :mod:`~covbench.finetune.config` (typed run configuration, presets),
:mod:`~covbench.finetune.base` (the base model: SmolLM2's GGUF or a tiny Llama),
:mod:`~covbench.finetune.data` (held-out facts, lm-eval-rendered prompts, shared-prefix batches),
:mod:`~covbench.finetune.trainer` (the training loop and adapter checkpoints),
:mod:`~covbench.finetune.evaluate` (every checkpoint through the runner; min-CE vs tournament pick),
:mod:`~covbench.finetune.cli` (``covbench finetune train|eval``). The shipped adapters live in
``covbench/finetune/adapters/``.
"""
