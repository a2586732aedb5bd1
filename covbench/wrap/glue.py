"""Run-time glue of wrapped tasks: the origin task's own gold target, filters and metric (docs/wrap.md).

A folder written by ``covbench wrap`` holds a small module, ``covbench_wrap.py``, that lm-eval imports by
path for the ``!function covbench_wrap.NAME`` entries of the YAML files next to it. It only builds a
:class:`Binding` to the origin task's YAML and exports two of its objects:

- ``gold_choices(doc)``: ``[y*]``, the origin's gold target of the doc as lm-eval renders it (a gold
  choice's text for multiple-choice tasks, the first target of a multi-target task). The wrapped scoring
  task is a one-choice ``multiple_choice`` task over it, so lm-eval scores ``target_delimiter + y*`` after
  the origin's own prompt, few-shot examples included.
- ``Judge``: an lm-eval filter class (``function: !function covbench_wrap.Judge`` with the keyword
  ``origin_filter``, ``metric`` and ``threshold`` written in the YAML). It replaces each doc's n sampled
  responses with n :func:`covbench.taskglue.judged` records: each response alone goes through the
  origin's filter pipeline called ``origin_filter`` (lm-eval builds the pipeline; a trailing
  ``take_first`` then keeps that one response), then through the origin's own ``process_results``, and
  the sample is correct when the metric's value reaches ``threshold`` (1.0: full credit, the
  exact-match event). So gsm8k's regex extraction and ``exact_match`` decide each verdict.

The origin task object is lm-eval's own ``ConfigurableTask`` built from the origin YAML with a one-doc
dataset (the first doc it is asked about; the docs arrive already processed by the origin's
``process_docs``, so that step is switched off, as are few-shot examples, which judging never uses).
Its ``doc_to_target``, ``doc_to_choice``, filters and ``process_results`` are then the origin's, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

from covbench.taskglue import judged


class WrapError(Exception):
    """A wrapped task that cannot be judged or scored as asked; one line naming the origin and the field."""


class Binding:
    """The origin task of a wrapped folder, built once per process when first needed."""

    def __init__(self, origin: str | Path) -> None:
        self.origin = Path(origin)
        self._task: Any = None

    # ---- the origin task ---------------------------------------------------------------------------

    def task(self, doc: Mapping[str, Any]) -> Any:
        """lm-eval's task object for the origin YAML, over a one-doc dataset holding ``doc``."""
        if self._task is None:
            self._task = _build(self.origin, doc)
        return self._task

    # ---- the scoring task: the gold target ---------------------------------------------------------

    def gold_choices(self, doc: Mapping[str, Any]) -> list[str]:
        """``[y*]``: the doc's gold target as the origin renders it (``doc_to_choice`` of the scoring task)."""
        task = self.task(doc)
        if task.multiple_input:
            raise WrapError(f"{self.origin}: field 'doc_to_text': a multiple-input task (the text varies, the "
                            "target is fixed) has no single gold continuation to score")
        target = task.doc_to_target(doc)
        first = target[0] if isinstance(target, list) and target else target
        if task.config.doc_to_choice is None:
            return [str(first)]
        choices = task.doc_to_choice(doc)
        if isinstance(first, int) and 0 <= first < len(choices):
            return [str(choices[first])]
        if isinstance(first, str) and first in choices:
            return [first]
        raise WrapError(f"{self.origin}: field 'doc_to_target': gold {first!r} is not one of the doc's "
                        f"{len(choices)} choices")

    # ---- the sampling task: verdicts from the origin's filters and metric ----------------------------

    def verdict(self, doc: Mapping[str, Any], response: str, origin_filter: str, metric: str | None,
                threshold: float) -> dict[str, Any]:
        """One response judged by the origin's pipeline ``origin_filter`` and metric (a judged record)."""
        task = self.task(doc)
        pipeline = _pipeline(task, origin_filter, self.origin)
        resps: Any = [[response]]
        for step in pipeline.filters:
            resps = step().apply(resps, [doc])
        value = next(iter(resps))  # the one response, filtered
        scores = task.process_results(doc, [value])
        name = metric or next(iter(task._metric_fn_list), None)
        if name not in scores:
            raise WrapError(f"{self.origin}: field 'metric_list': the task scores {sorted(scores)} per sample, "
                            f"not {name!r}")
        try:
            score = float(scores[name])  # bool, int, numpy scalars; a NaN score is not a pass
        except (TypeError, ValueError):
            raise WrapError(f"{self.origin}: field 'metric_list': metric {name!r} gives "
                            f"{type(scores[name]).__name__} per sample, not a score; choose another with "
                            "--metric") from None
        shown = value if isinstance(value, str) else repr(value)
        return judged(response, score >= threshold, f"{origin_filter}: {shown[:120]!r} -> {name} = {score:g}")

    def filter_class(self) -> type:
        """An lm-eval filter class bound to this origin (``Judge`` of the folder's module)."""
        from lm_eval.api.filter import Filter

        binding = self

        class Judge(Filter):
            """Judge every sampled response with the origin's own filter pipeline and metric."""

            def __init__(self, origin_filter: str, metric: str | None = None, threshold: float = 1.0,
                         **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.origin_filter, self.metric, self.threshold = str(origin_filter), metric, float(threshold)

            def apply(self, resps: Sequence[Sequence[str]], docs: Sequence[Mapping[str, Any]]) -> list[list[dict]]:
                return [[binding.verdict(doc, str(r), self.origin_filter, self.metric, self.threshold) for r in rs]
                        for rs, doc in zip(resps, docs, strict=True)]

        return Judge


def _pipeline(task: Any, name: str, origin: Path) -> Any:
    for pipeline in task._filters:
        if pipeline.name == name:
            return pipeline
    names = [p.name for p in task._filters]
    raise WrapError(f"{origin}: field 'filter_list': no filter named {name!r} (the task has {names})")


def _build(origin: Path, doc: Mapping[str, Any]) -> Any:
    """The origin's ``ConfigurableTask`` over ``{"test": [doc]}`` (no data files, no hub, no few-shot)."""
    import datasets
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = deepcopy(load_yaml(origin, resolve_func=True))
    for key in ("tag", "group", "task_list", "class"):
        cfg.pop(key, None)
    row = dict(doc)
    cfg.update(custom_dataset=lambda **_: datasets.DatasetDict({"test": datasets.Dataset.from_list([row])}),
               dataset_kwargs=None, test_split="test", validation_split=None, training_split=None,
               fewshot_split=None, fewshot_config=None, num_fewshot=0, process_docs=None, repeats=1)
    try:
        return ConfigurableTask(config=cfg)
    except Exception as e:  # noqa: BLE001 - lm-eval rejects a config in many ways; each is one line
        raise WrapError(f"{origin}: lm-eval cannot build the origin task to judge with: "
                        f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
