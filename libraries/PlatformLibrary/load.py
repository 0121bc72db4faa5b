"""Load generation: open and closed models with coordinated-omission-corrected latency (issue 5)."""

from __future__ import annotations

from .base import LibraryComponent


class LoadKeywords(LibraryComponent):
    """Load generation: open and closed models with coordinated-omission-corrected latency (issue 5)."""
