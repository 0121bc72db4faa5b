"""Remembers which sessions each test and suite created, so teardowns can remove exactly those."""

from __future__ import annotations

import threading


class SessionTracker:
    def __init__(self):
        self._lock = threading.Lock()
        self._by_scope: dict[str, list[str]] = {}

    def add(self, scope: str, session_id: str) -> None:
        with self._lock:
            ids = self._by_scope.setdefault(scope, [])
            if session_id not in ids:
                ids.append(session_id)

    def ids(self, scope: str) -> list[str]:
        with self._lock:
            return list(self._by_scope.get(scope, []))

    def discard(self, session_id: str) -> None:
        with self._lock:
            for ids in self._by_scope.values():
                if session_id in ids:
                    ids.remove(session_id)

    def all_ids(self) -> list[str]:
        with self._lock:
            return [session_id for ids in self._by_scope.values() for session_id in ids]
