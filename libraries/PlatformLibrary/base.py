"""Base class of the library's components (one component per area, like Browser library)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robot.api import logger

from .profile import Profile

if TYPE_CHECKING:
    from .library import PlatformLibrary


class LibraryComponent:
    """Gives every component access to the library's shared state: profile, endpoints, context."""

    def __init__(self, library: PlatformLibrary):
        self.library = library

    @property
    def profile(self) -> Profile:
        return self.library.profile

    @property
    def context(self):
        return self.library.context

    def endpoint(self, key: str) -> str:
        return self.library.endpoints.get(key)

    def info(self, message: str, html: bool = False) -> None:
        logger.info(message, html=html)

    def debug(self, message: str) -> None:
        logger.debug(message)

    @staticmethod
    def session_id_of(session: Any) -> str:
        """Accept a session id or a session object (dict with ``sessionId``) and return the id."""
        if isinstance(session, dict):
            session_id = session.get("sessionId")
            if not session_id:
                raise ValueError(f"Session object has no 'sessionId': {session!r}")
            return str(session_id)
        if not isinstance(session, str) or not session.strip():
            raise ValueError(f"Expected a session id or a session object, got {session!r}.")
        return session.strip()
