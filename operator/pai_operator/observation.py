"""Batched drift observation: when one list of a group's versions is worth its pages.

Pure. The engine lists every version of a group (PAI: a region and model; TrueFoundry: a
model) once per resync interval and asks the reconciler, per settled object, whether its listed
version calls for a full pass; a full pass re-reads before it writes anything, so a list never
causes a write on its own. What a listed item does not carry is filled in by the registry
(`Backend.complete_listed`): unknown is never drift.
"""

from __future__ import annotations

import math


def pages_for(total: int, page_size: int) -> int:
    return max(1, math.ceil(total / page_size))


def list_is_cheaper(members: int, last_total: int | None, page_size: int) -> bool:
    """One list (all pages of `page_size`) for `members` objects, or one GET each? A parent with
    few managed versions among many others is cheaper by GET. The first time the total is
    unknown: list."""
    pages = pages_for(last_total, page_size) if last_total is not None else 1
    return members > 1 and pages < members
