"""The secrets this run holds (credentials, tokens, API keys), so that no log line ever shows one.

``remember_secret`` registers a value; ``aws.session.redact`` and the log-record redaction mask every registered
value wherever it appears. ``secret_value`` unwraps Robot Framework's ``Secret`` (the type of secret variables).
"""

from __future__ import annotations

import threading
from typing import Any

_known: set[str] = set()
_lock = threading.Lock()


def secret_value(value: Any) -> str:
    """The plain text of ``value``: a Robot ``Secret``'s value, or the text itself ('' for ``None``)."""
    inner = getattr(value, "value", value)
    return "" if inner is None else str(inner)


def remember_secret(value: Any) -> None:
    """Mask ``value`` wherever it would appear in a log line (values under 8 characters are not secrets)."""
    text = secret_value(value)
    if len(text) >= 8:
        with _lock:
            _known.add(text)


def known_secrets() -> list[str]:
    """Every remembered secret, longest first (so a secret inside another is masked as part of the longer)."""
    with _lock:
        return sorted(_known, key=len, reverse=True)
