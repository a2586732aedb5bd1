"""The ``covbench`` command: a thin dispatcher; each subcommand lives in the module that owns its job.

Subcommand modules are imported only when called, so ``covbench validate`` never imports torch.
Each handler takes the remaining argv and returns the exit code.
"""

from __future__ import annotations

import difflib
import importlib
import sys

# subcommand -> ("module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("covbench.registry:validate_main", "validate a model registry YAML file"),
    "data": ("covbench.graphs.cli:main", "regenerate the graph task YAMLs or export their docs ('covbench data yaml|write|sample')"),
    "zoo": ("covbench.zoo.cli:main", "train and evaluate the checkpoint zoo ('covbench zoo train|eval|fig2-table')"),
    "finetune": ("covbench.finetune.cli:main",
                 "LoRA-tune SmolLM2 on arith, evaluate the adapters ('covbench finetune train|eval')"),
    "select": ("covbench.select_cli:main", "pick a family member: min-CE vs the tournaments ('--method offset' adds Eq. 32)"),
    "leaderboard": ("covbench.site.build:main", "build the static site ('covbench leaderboard build')"),
    "store": ("covbench.store.cli:main", "look after a results store ('covbench store ls|index|migrate')"),
    "wrap": ("covbench.wrap.cli:main", "derive covbench tasks from an lm-eval task ('covbench wrap gsm8k --data test=FILE')"),
}


def _usage() -> str:
    lines = ["usage: covbench COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        hint = difflib.get_close_matches(name, COMMANDS, n=1)
        print(f"covbench: unknown command '{name}'" + (f"; did you mean '{hint[0]}'?" if hint else ""),
              file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    module, func = COMMANDS[name][0].split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
