"""AWS-only operations: FIS experiments, ELB target health, EFS mount targets, auto scaling (issue 6)."""

from __future__ import annotations

from .base import LibraryComponent


class AwsKeywords(LibraryComponent):
    """AWS-only operations: FIS experiments, ELB target health, EFS mount targets, auto scaling (issue 6)."""
