"""Local data for the gsm8k-style example: ``data/{train,test}.jsonl`` next to this file, in gsm8k's format.

lm-eval imports this file by path for ``!function utils.load_local`` (docs/lm-eval-notes.md#trap-function-import), so
``__file__`` gives an absolute path and the task runs from any working directory (pitfall 13).
With the hub reachable, a real gsm8k extension needs none of this: drop the ``custom_dataset`` line.
"""

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def load_local(**_):
    """``custom_dataset`` for gsm8k_cov*: the local JSONL files as a ``DatasetDict`` (train, test)."""
    import datasets

    files = {split: str(DATA / f"{split}.jsonl") for split in ("train", "test")}
    return datasets.load_dataset("json", data_files=files)
