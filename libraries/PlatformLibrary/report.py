"""The resilience report: performance, reliability and cost, merged across pabot workers (issue 5)."""

from __future__ import annotations

from .base import LibraryComponent


class ReportKeywords(LibraryComponent):
    """The resilience report: performance, reliability and cost, merged across pabot workers (issue 5)."""
