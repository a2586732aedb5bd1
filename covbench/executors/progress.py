"""Live progress of a distributed run: jobs done / running / queued, in total and per model.

A model's jobs run one after another on its one worker, so a model has at most one running job: the
oldest unfinished one, once its worker is up. Pure bookkeeping, no Ray; the Ray executor feeds it.

>>> p = Progress()
>>> p.add("a", 2); p.add("b", 1)
>>> p.started("a"); p.finished("a", ok=True)
>>> p.line()
'1/3 done, 1 running, 1 queued | a 1/2 (1 running) | b 0/1'
>>> p.finished("a", ok=False, retried=True); p.started("b"); p.finished("b", ok=True)
>>> p.line(), p.complete
('3/3 done (1 failed, 1 retried after a lost worker), 0 running, 0 queued | a 2/2 | b 1/1', True)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelProgress:
    total: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0
    up: bool = False  # the model's worker has started

    @property
    def running(self) -> int:
        return 1 if self.up and self.done < self.total else 0

    @property
    def queued(self) -> int:
        return self.total - self.done - self.running


class Progress:
    """Counts per model, in the order models were added."""

    def __init__(self) -> None:
        self.models: dict[str, ModelProgress] = {}

    def add(self, model: str, jobs: int = 1) -> None:
        self.models.setdefault(model, ModelProgress()).total += jobs

    def started(self, model: str) -> None:
        self.models[model].up = True

    def finished(self, model: str, *, ok: bool, retried: bool = False) -> None:
        m = self.models[model]
        m.done += 1
        m.failed += 0 if ok else 1
        m.retried += 1 if retried else 0

    def stopped(self, model: str) -> None:
        """The model's worker was released (all its jobs done); a later job needs a new one."""
        self.models[model].up = False

    @property
    def complete(self) -> bool:
        return all(m.done == m.total for m in self.models.values())

    def totals(self) -> tuple[int, int, int, int, int, int]:
        """(done, total, running, queued, failed, retried) over every model."""
        ms = list(self.models.values())
        return (sum(m.done for m in ms), sum(m.total for m in ms), sum(m.running for m in ms),
                sum(m.queued for m in ms), sum(m.failed for m in ms), sum(m.retried for m in ms))

    def line(self, max_models: int = 8) -> str:
        """One line: the totals, then the models that are running or queued (then the finished ones)."""
        done, total, running, queued, failed, retried = self.totals()
        extra = [f"{failed} failed"] if failed else []
        extra += [f"{retried} retried after a lost worker"] if retried else []
        head = f"{done}/{total} done" + (f" ({', '.join(extra)})" if extra else "") + f", {running} running, {queued} queued"
        order = sorted(self.models.items(), key=lambda kv: kv[1].done == kv[1].total)  # unfinished first, stable
        parts = [f"{name} {m.done}/{m.total}" + (" (1 running)" if m.running else "") for name, m in order[:max_models]]
        if len(order) > max_models:
            parts.append(f"... {len(order) - max_models} more models")
        return " | ".join([head, *parts])
