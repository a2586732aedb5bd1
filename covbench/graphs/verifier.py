"""Verifier of generated graph paths: is the response's path in the correct set S_x?

A response is read as its first ``length`` node ids (L + 2: s, the intermediate nodes, t), separated by
whitespace; leading whitespace and any text after the last node are ignored, but a longer number
("13" followed by "4" with no space is "134") is not cut short, and anything but whitespace between two
nodes rejects the response. This matches the loglikelihood side exactly: log π̂(y|x) is summed over the
L + 2 response tokens, so π̂(S_x|x) = P(the first L + 2 generated nodes form a path in S_x), which is what
this verifier accepts.

>>> parse_path("  3 17\\n 9 t=2", 3)
(3, 17, 9)
>>> parse_path("3 17", 3) is None, parse_path("3 x 17 9", 3) is None
(True, True)
>>> is_correct(" 3 17 9 <eos> 4 4", [" 3 17 9", " 3 16 9"], length=3)
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NODE = re.compile(r"\s*(\d+)(?!\d)")


def parse_path(response: str, length: int) -> tuple[int, ...] | None:
    """The first ``length`` whitespace-separated node ids of ``response``, or None if it has fewer."""
    nodes: list[int] = []
    pos = 0
    for _ in range(length):
        match = _NODE.match(response, pos)
        if match is None:
            return None
        nodes.append(int(match.group(1)))
        pos = match.end()
    return tuple(nodes)


def is_correct(response: str, support: Iterable[str], length: int) -> bool:
    """True when the response's first ``length`` nodes are one of the paths in ``support`` (S_x)."""
    path = parse_path(response, length)
    if path is None:
        return False
    return any(parse_path(y, length) == path for y in support)
