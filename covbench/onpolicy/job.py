"""The on-policy job: every candidate's samples on a scoring task's prompts, scored by every candidate.

For a family of K candidates and a scoring task with n prompts (docs/selection.md#offset):

1. **draw**: each candidate k draws m samples per prompt from its own policy (:func:`.sampling.draw`);
   K·n·m generations of H tokens. A stored draw of the same spec hash, task hash and seed with at least
   m samples per prompt is reused (its first m samples);
2. **score**: each candidate j scores every candidate's samples (:func:`.sampling.score`): K²·n·m
   teacher-forced log-probs, of which only the distinct samples of each prompt are computed. Scores already
   stored for a (scorer, draw) pair are reused; a scorer that meets new draws writes one new scores file;
3. the result is ``gen_logp[k, j, i, s] = log π_j(y)`` for y the s-th sample candidate k drew at prompt
   ``doc_id[i]``: the input of :func:`covbench.selection.offset_tournament`.

Nothing is loaded when everything is stored. Candidates must share one tokenizer and one chat-template
setting (a sample is a token sequence that every candidate scores).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from covbench.registry import ModelSpec

from . import files
from .sampling import Prompts, draw, score

DEFAULT_M = 4


class OnPolicyError(Exception):
    """A family or task the on-policy job cannot serve; one line."""


@dataclass(frozen=True, eq=False)
class OnPolicy:
    """``gen_logp[k, j, i, s]`` (candidates in ``names`` order, prompts in ``doc_id`` order) and what the job
    did: the candidates whose samples it drew, the (scorer, draw) pairs it scored and reused."""

    names: tuple[str, ...]
    doc_id: np.ndarray
    gen_logp: np.ndarray
    m: int
    seed: int
    drawn: tuple[str, ...]
    scored: int
    reused: int
    draws: tuple[str, ...]  # the draw files used (relative to the task's on-policy folder)
    problems: tuple[str, ...]  # unreadable files that were skipped, one line each
    seconds: float


class _Lazy:
    """The LMs and the task's prompts, built only when something has to be drawn or scored."""

    def __init__(self, specs: Sequence[ModelSpec], info: Any, get_lm: Callable[[ModelSpec], Any]) -> None:
        self.specs, self.info, self.get_lm = specs, info, get_lm
        self._lms: dict[str, Any] = {}
        self._prompts: Prompts | None = None

    def lm(self, spec: ModelSpec) -> Any:
        if spec.name not in self._lms:
            lm = self.get_lm(spec)
            if self._lms:
                first_name, first = next(iter(self._lms.items()))
                if lm.tokenizer.get_vocab() != first.tokenizer.get_vocab():
                    raise OnPolicyError(f"on-policy samples need one tokenizer for the whole family; "
                                        f"'{spec.name}' and '{first_name}' tokenize differently")
            self._lms[spec.name] = lm
        return self._lms[spec.name]

    def prompts(self) -> Prompts:
        if self._prompts is None:
            self._prompts = prompts_of(self.info, self.lm(self.specs[0]), bool(self.specs[0].chat_template))
        return self._prompts


def prompts_of(info: Any, lm: Any, chat_template: bool) -> Prompts:
    """The scoring task's prompts as lm-eval builds its requests (few-shot context, chat template), with the
    token length of each prompt's reference response; contexts are left-truncated to leave room for it."""
    from covbench.runner import DEFAULT_SEED

    task = info.task
    if hasattr(task, "set_fewshot_seed"):
        task.set_fewshot_seed(seed=DEFAULT_SEED)  # as simple_evaluate does for the scoring run
    task.build_all_requests(apply_chat_template=chat_template, fewshot_as_multiturn=chat_template,
                            chat_template=lm.apply_chat_template if chat_template else None)
    by_doc: dict[int, list[Any]] = {}
    for inst in task.instances:
        by_doc.setdefault(int(inst.doc_id), []).append(inst)
    ids, contexts, lengths = [], [], []
    for doc_id in sorted(by_doc):
        insts = sorted(by_doc[doc_id], key=lambda x: x.idx)
        doc = insts[0].doc
        pick = 0
        if task.OUTPUT_TYPE == "multiple_choice":
            target = task.doc_to_target(doc)
            pick = target if isinstance(target, int) else list(task.doc_to_choice(doc)).index(target)
        ctx, cont = insts[pick].args[:2]
        ctx_ids, cont_ids = lm._encode_pair(ctx, cont)
        h = len(cont_ids)
        room = int(lm.max_length) - h
        if h < 1 or room < 1:
            raise OnPolicyError(f"task '{info.name}': doc {doc_id}: reference response of {h} tokens does not fit "
                                f"the model's {lm.max_length} positions")
        ids.append(doc_id)
        contexts.append(tuple(ctx_ids[-room:]))
        lengths.append(h)
    return Prompts(np.asarray(ids, np.int64), tuple(contexts), np.asarray(lengths, np.int64))


def _draw(lazy: _Lazy, spec: ModelSpec, m: int, seed: int, task_hash: str, policy: str) -> files.Draw:
    prompts = lazy.prompts()
    lm = lazy.lm(spec)
    tokens = {}
    for h in np.unique(prompts.length).tolist():
        at = np.flatnonzero(prompts.length == h)
        part = Prompts(prompts.doc_id[at], tuple(prompts.context[i] for i in at), prompts.length[at])
        tokens[int(h)] = draw(lm, part, m, seed)
    return files.Draw("", spec.name, _spec_hash(spec), task_hash, policy, seed, m, prompts.doc_id, prompts.length,
                      tokens)


def _score(lazy: _Lazy, spec: ModelSpec, draws: Sequence[files.Draw]) -> dict[str, np.ndarray]:
    """``spec``'s log-probs of every sample of ``draws`` ([n, m] each, in the draw's prompt order)."""
    prompts = lazy.prompts()
    lm = lazy.lm(spec)
    out = {d.name: np.zeros((d.doc_id.size, d.m)) for d in draws}
    for h in np.unique(prompts.length).tolist():
        at = np.flatnonzero(prompts.length == h)
        part = Prompts(prompts.doc_id[at], tuple(prompts.context[i] for i in at), prompts.length[at])
        stacked = np.concatenate([d.tokens[int(h)] for d in draws], axis=1)  # [n_h, Σ m, h]
        logp = score(lm, part, stacked)
        start = 0
        for d in draws:
            out[d.name][at] = logp[:, start:start + d.m]
            start += d.m
    return out


def _spec_hash(spec: ModelSpec) -> str:
    from covbench.backends import spec_hash

    return spec_hash(spec)


def _check_draws(draws: Sequence[files.Draw], task: str) -> np.ndarray:
    doc_id = draws[0].doc_id
    for d in draws[1:]:
        if not (np.array_equal(d.doc_id, doc_id) and np.array_equal(d.length, draws[0].length)):
            raise OnPolicyError(f"task '{task}': the stored draws of '{draws[0].model}' and '{d.model}' cover "
                                f"different prompts; delete one of {draws[0].name}, {d.name}")
    return doc_id


def onpolicy_logp(specs: Sequence[ModelSpec], task: str, results_dir: Path, *, m: int = DEFAULT_M,
                  seed: int | None = None, get_lm: Callable[[ModelSpec], Any] | None = None,
                  tasks_dir: Path | None = None, say: Callable[[str], None] | None = None) -> OnPolicy:
    """Draw (or reuse) every candidate's ``m`` samples per prompt of the scoring task ``task`` and score them
    under every candidate (or reuse the scores); see the module docstring. ``say``: progress lines."""
    from covbench.runner import DEFAULT_SEED, TASKS_DIR, load_task, policy_label

    start = time.perf_counter()
    seed = DEFAULT_SEED if seed is None else seed
    say = say or (lambda _line: None)
    if m < 1:
        raise OnPolicyError(f"on-policy samples: m must be >= 1, got {m}")
    if not specs:
        raise OnPolicyError("on-policy samples: no candidates")
    if len({bool(s.chat_template) for s in specs}) > 1:
        raise OnPolicyError("on-policy samples need one chat-template setting for the whole family")
    info = load_task(task, tasks_dir or TASKS_DIR)
    if info.kind != "loglikelihood":
        raise OnPolicyError(f"task '{task}' is a sampling task; on-policy samples are drawn on a scoring task's "
                            "prompts (its held-out responses are the tournament's other input)")
    if get_lm is None:
        from covbench.backends import get_lm as default_get_lm

        get_lm = default_get_lm
    lazy = _Lazy(specs, info, get_lm)
    problems: list[str] = []
    draws, drawn = [], []
    for spec in specs:
        found = files.latest_draw(results_dir, task, spec.name, _spec_hash(spec), info.task_hash, seed, m, problems)
        if found is None:
            t0 = time.perf_counter()
            found = files.write_draw(results_dir, task, _draw(lazy, spec, m, seed, info.task_hash,
                                                                policy_label(spec, info)))
            drawn.append(spec.name)
            say(f"{spec.name} × {task}: drew {m} samples on each of {found.doc_id.size} prompts "
                f"({time.perf_counter() - t0:.1f} s)")
        draws.append(found)
    doc_id = _check_draws(draws, task)
    k = len(specs)
    gen = np.zeros((k, k, doc_id.size, m))
    scored = reused = 0
    for j, spec in enumerate(specs):
        old = files.latest_scores(results_dir, task, spec.name, _spec_hash(spec), info.task_hash, problems)
        have = dict(old.logp) if old is not None else {}
        missing = [d for d in draws if d.name not in have or have[d.name].shape != (d.doc_id.size, d.m)]
        if missing:
            t0 = time.perf_counter()
            have.update(_score(lazy, spec, missing))
            files.write_scores(results_dir, task, files.Scores("", spec.name, _spec_hash(spec), info.task_hash,
                                                               policy_label(spec, info), have))
            say(f"{spec.name} × {task}: scored the samples of {len(missing)} candidates "
                f"({time.perf_counter() - t0:.1f} s)")
        scored += len(missing)
        reused += k - len(missing)
        for c, d in enumerate(draws):
            gen[c, j] = have[d.name][:, :m]
    return OnPolicy(tuple(s.name for s in specs), doc_id, gen, m, seed, tuple(drawn), scored, reused,
                    tuple(d.name for d in draws), tuple(problems), time.perf_counter() - start)
