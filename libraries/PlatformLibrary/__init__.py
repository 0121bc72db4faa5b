"""PlatformLibrary: Robot Framework keywords for the per-user container session platform."""

from .library import PlatformLibrary

__all__ = ["PlatformLibrary"]
