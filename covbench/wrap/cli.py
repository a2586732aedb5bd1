"""``covbench wrap TASK --data SPLIT=FILE ...``: covbench tasks derived from an lm-eval task (docs/wrap.md).

Exit status 0 when the folder is written and lm-eval builds every task in it, 2 with a one-line error
(docs/errors.md) otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from covbench.wrap.glue import WrapError
from covbench.wrap.origin import read_origin
from covbench.wrap.plan import WrapRequest, plan
from covbench.wrap.write import describe, write


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own usage text goes to stderr first)
        self.print_usage(sys.stderr)
        raise WrapError(f"covbench wrap: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="covbench wrap", description="Write covbench tasks that wrap an lm-eval task: n samples "
                "judged by the task's own filters and metric (generation tasks), and the log-likelihood of its "
                "gold target (every task). The task's YAML is included, not copied.")
    p.add_argument("task", help="an lm-eval task name (e.g. gsm8k, arc_easy, mmlu_anatomy) or a task YAML file")
    p.add_argument("--data", action="append", default=[], metavar="SPLIT=FILE",
                   help="a local data file for a split (.jsonl/.json/.csv/.parquet, in the task's own format); "
                        "repeat per split. Without --data the task's own (hub) dataset is used")
    p.add_argument("--out", type=Path, default=Path("tasks-wrapped"), help="folder to write into (default: %(default)s)")
    p.add_argument("--name", help="task name stem (default: the task's name): writes NAME_wrap and NAME_wrap_ll")
    p.add_argument("--n", type=int, default=16, help="samples per prompt (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling (default: off)")
    p.add_argument("--max-gen-toks", type=int, default=None, help="default: the task's, else 256")
    p.add_argument("--filter", dest="verdict_filter", help="the task's filter that decides the stored verdict "
                   "(default: its first)")
    p.add_argument("--metric", help="the task's metric that decides a verdict (default: its first)")
    p.add_argument("--threshold", type=float, default=1.0, help="a sample is correct when the metric reaches "
                   "this value (default: %(default)s, full credit)")
    p.add_argument("--num-fewshot", type=int, default=None, help="override the task's few-shot count")
    p.add_argument("--no-check", action="store_true", help="do not build the tasks with lm-eval before writing")
    return p


def _data(pairs: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pair in pairs:
        split, sep, path = pair.partition("=")
        if not sep or not split or not path:
            raise WrapError(f"covbench wrap: --data must be SPLIT=FILE, got {pair!r}")
        if split in out:
            raise WrapError(f"covbench wrap: --data gives split {split!r} twice")
        out[split] = Path(path).expanduser()
    return out


def check_folder(folder: Path, tasks: list[str]) -> None:
    """Build every task of ``folder`` as covbench's runner will (lm-eval's TaskManager, the data loaded)."""
    from covbench.runner import TaskError, load_task

    for task in tasks:
        try:
            load_task(task, folder)
        except TaskError as e:
            raise WrapError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        request = WrapRequest(origin=args.task, data=_data(args.data), n=args.n, temperature=args.temperature,
                              top_p=args.top_p, max_gen_toks=args.max_gen_toks, verdict_filter=args.verdict_filter,
                              metric=args.metric, threshold=args.threshold, num_fewshot=args.num_fewshot,
                              name=args.name)
        the_plan = plan(request, read_origin(request.origin))
        folder = write(the_plan, args.out, None if args.no_check else check_folder)
    except WrapError as e:
        print(str(e), file=sys.stderr)
        return 2
    print("\n".join(describe(the_plan, folder)))
    return 0
