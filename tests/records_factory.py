"""Small RunRecord builders shared by the store, summary, checks and report tests."""

from __future__ import annotations

from covbench.records import DocArrays, Estimate, Provenance, RunRecord, SampleArrays


def provenance(**over) -> Provenance:
    base = dict(covbench_version="0.1.0", lm_eval_version="0.4.13", git_commit="abc", task_hash="t" * 64,
                model_spec_hash="m" * 64, seed=1, sampling={"n": 4, "temperature": 1.0}, machine="test",
                time="2026-01-01T00:00:00+00:00")
    base.update(over)
    return Provenance(**base)


def record(model: str = "m", task: str = "t", metrics: dict[str, float] | None = None, *,
           reference: str = "gold", docs: DocArrays | None = None, samples: SampleArrays | None = None,
           **over) -> RunRecord:
    ms = {k: Estimate(value=v) for k, v in (metrics or {}).items()}
    return RunRecord(model=model, task=task, reference=reference, provenance=over.pop("prov", provenance()),
                     metrics=ms, docs=docs, samples=samples, **over)


def gold_docs(logp: list[float]) -> DocArrays:
    n = len(logp)
    return DocArrays(doc_id=list(range(n)), logp_model=logp, logp_ref=[0.0] * n, n_tokens=[2] * n,
                     n_bytes=[4] * n)
