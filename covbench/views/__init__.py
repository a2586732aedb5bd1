"""Views of a store: per-task boards, checkpoint families and model pages, built once from the catalog
(pure: no I/O beyond the per-prompt vectors the caller provides) and shared by the site and the
terminal report (docs/site.md).

>>> from covbench.views import build
"""

from __future__ import annotations

from dataclasses import dataclass

from covbench.store import Catalog

from .board import Agreement, Board, GetVectors, Row, TaskGroup, TauFn, agreements, board, groups, rows, tau_inputs
from .classes import ClassRow, ClassTable, class_table
from .families import Family, FamilyTask, PicksFn, difference_text, families, family, family_members, picks_of
from .models import ModelPage, ModelTask, model_entries, model_page, model_pages, page_entries
from .vectors import PassVector, Vectors, pass_vector, vectors_of

__all__ = ["Agreement", "Board", "ClassRow", "ClassTable", "Family", "FamilyTask", "ModelPage", "ModelTask",
           "PassVector", "Row", "TaskGroup", "Vectors", "Views", "build", "class_table", "difference_text",
           "pass_vector", "vectors_of"]


@dataclass(frozen=True)
class Views:
    groups: tuple[TaskGroup, ...]
    boards: tuple[Board, ...]
    families: tuple[Family, ...]
    models: tuple[ModelPage, ...]


def build(cat: Catalog, get: GetVectors | None = None, tau: TauFn | None = None,
          picks: PicksFn | None = None) -> Views:
    """Every view of ``cat``; ``get``: the per-prompt vectors of a catalog entry (default: the catalog's);
    ``tau`` / ``picks``: how to get a board's agreements and a family's picks (default: compute them)."""
    get = get or cat.vectors.__getitem__
    gs = groups(cat)
    boards = tuple(board(cat, g, get, tau) for g in gs)
    return Views(groups=tuple(gs), boards=boards, families=tuple(families(boards, cat, get, picks)),
                 models=tuple(model_pages(cat, gs, boards)))
