"""Chaos engineering: network, AWS API, resource and time faults, always reverted (issue 4)."""

from __future__ import annotations

from .base import LibraryComponent


class ChaosKeywords(LibraryComponent):
    """Chaos engineering: network, AWS API, resource and time faults, always reverted (issue 4)."""
