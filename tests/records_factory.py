"""Small run builders shared by the store, summary, checks, report and site tests."""

from __future__ import annotations

from covbench.records import DocArrays, Estimate, Provenance, Run, RunRecord, SampleArrays, TaskDescriptor


def provenance(**over) -> Provenance:
    base = dict(covbench_version="0.1.0", lm_eval_version="0.4.13", git_commit="abc", task_hash="t" * 64,
                model_spec_hash="m" * 64, seed=1, sampling={"n": 4, "temperature": 1.0}, machine="test",
                time="2026-01-01T00:00:00+00:00")
    base.update(over)
    return Provenance(**base)


def descriptor(task: str = "t", reference: str = "gold", kind: str = "loglikelihood", **over) -> TaskDescriptor:
    return TaskDescriptor(name=task, reference=reference, kind=kind, **over)


def record(model: str = "m", task: str = "t", metrics: dict[str, float] | None = None, *,
           reference: str = "gold", kind: str = "loglikelihood", desc: TaskDescriptor | None = None,
           **over) -> RunRecord:
    ms = {k: Estimate(value=v) for k, v in (metrics or {}).items()}
    return RunRecord(model=model, task=task, descriptor=desc or descriptor(task, reference, kind),
                     provenance=over.pop("prov", provenance()), metrics=ms, **over)


def run(model: str = "m", task: str = "t", metrics: dict[str, float] | None = None, *,
        docs: DocArrays | None = None, samples: SampleArrays | None = None, **over) -> Run:
    return Run(record(model, task, metrics, **over), docs, samples)


def gold_docs(logp: list[float]) -> DocArrays:
    n = len(logp)
    return DocArrays(doc_id=list(range(n)), logp_model=logp, logp_ref=[0.0] * n, n_tokens=[2] * n, n_bytes=[4] * n)
