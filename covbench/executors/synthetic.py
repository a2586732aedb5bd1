"""A worker that computes a synthetic run instead of running a model: executor tests and benchmarks.

:class:`SyntheticWorker` answers a plan with a run of :func:`covbench.synthetic.synthetic_records`
(64 prompts × 8 samples by default), named after the plan's model and task and carrying the plan's
task hash and the spec's hash, so the store's reuse works on it exactly as on a real run. It loads no
model and builds no lm-eval task: what an executor costs per job is then all that is measured
(tests/bench/test_bench_ray.py, docs/scale.md). ``delay`` (seconds) stands for a job's model time.

>>> from covbench.registry import ModelSpec
>>> from covbench.runner import JobPlan
>>> plan = JobPlan("m", "t", "loglikelihood", "ab" * 32, 1, 0, 0, 1, None)
>>> run = SyntheticWorker(ModelSpec(name="m", pretrained="gpt2")).compute(plan)
>>> run.record.model, run.record.task, len(run.docs), run.record.provenance.task_hash == plan.task_hash
('m', 't', 64, True)
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from covbench.executors.worker import ModelWorker
from covbench.records import Run


class SyntheticWorker(ModelWorker):
    """A :class:`ModelWorker` whose runs are synthetic (no model, no lm-eval)."""

    n_docs = 64
    n_samples = 8
    delay = 0.0

    def compute(self, plan: Any, info: Any = None) -> Run:
        from covbench.backends import spec_hash
        from covbench.synthetic import synthetic_records

        if self.delay:
            time.sleep(self.delay)
        seed = int.from_bytes(hashlib.sha256(f"{plan.model}\0{plan.task}".encode()).digest()[:4], "little")
        (run,) = synthetic_records(n_models=0, names=[plan.model], n_tasks=1, n_docs=self.n_docs,
                                   n_samples=self.n_samples, seed=seed)
        rec = run.record
        provenance = rec.provenance.model_copy(update={"task_hash": plan.task_hash, "seed": plan.seed,
                                                       "model_spec_hash": spec_hash(self.driver_spec)})
        record = rec.model_copy(update={"task": plan.task, "provenance": provenance,
                                        "descriptor": rec.descriptor.model_copy(update={"name": plan.task})})
        return Run(record, run.docs, run.samples)
