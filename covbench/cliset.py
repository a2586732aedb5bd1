"""``--set SECTION.FIELD=VALUE``: one config field overridden from the command line (``covbench zoo train``,
``covbench finetune train``), validated by the config's pydantic model, a bad value a one-line error naming
the field (docs/errors.md)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Cfg = TypeVar("Cfg", bound=BaseModel)


def apply_set(cfg: Cfg, items: list[str]) -> Cfg:
    """``cfg`` with every ``SECTION.FIELD=VALUE`` item applied; VALUE is JSON when it parses (numbers,
    true/false, null, lists, objects), else the string.

    >>> from pydantic import BaseModel
    >>> class Train(BaseModel):
    ...     lr: float = 0.1
    ...     name: str | None = "a"
    >>> class Cfg(BaseModel):
    ...     train: Train = Train()
    >>> apply_set(Cfg(), ["train.lr=0.01", "train.name=null"]).train
    Train(lr=0.01, name=None)
    >>> apply_set(Cfg(), ["train.lr=fast"])
    Traceback (most recent call last):
    ...
    ValueError: --set: field 'train.lr': Input should be a valid number, unable to parse string as a number
    >>> apply_set(Cfg(), ["train.momentum=0.9"])
    Traceback (most recent call last):
    ...
    ValueError: --set 'train.momentum=0.9': no config field 'train.momentum'
    """
    data: dict[str, Any] = cfg.model_dump()
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE")
        *sections, name = key.split(".")
        node = data
        for s in sections:
            if not isinstance(node.get(s), dict):
                raise ValueError(f"--set {item!r}: no config section {s!r}")  # noqa: TRY004 (user input)
            node = node[s]
        if name not in node:
            raise ValueError(f"--set {item!r}: no config field {key!r}")
        node[name] = _value(value)
    try:
        return type(cfg).model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise ValueError(f"--set: field '{'.'.join(map(str, err['loc']))}': {err['msg']}") from None


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
