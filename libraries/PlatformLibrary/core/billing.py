"""What billing is measured from, on both targets: the tasks (containers) that served a session, and when each ran.

A value type below every layer: the container backends (``targets/``) produce it, the price arithmetic (``aws/cost``)
and the report (``report/cost``) read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BilledTask:
    """One task (container) that served a session: when billing started and ended (epoch seconds).

    ``end`` is ``None`` while it still runs. ``pull_unseen``: the runtime shows no image pull before ``start`` (the
    embedded platform's containers are processes that exist only once their image is "pulled"), so a session's first
    task is billed from the create request if that came earlier (Fargate's ``pullStartedAt`` is never before it).
    """

    task: str
    start: float
    end: float | None
    pull_unseen: bool = False
