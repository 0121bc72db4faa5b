"""TCP fault proxy speaking Toxiproxy's admin HTTP API, plus an HTTP-aware ``aws_fault`` toxic.

Run ``python -m testbed.faultproxy --port 0 --ready-file ready.json`` and drive it with
``testbed.faultproxy.client.ToxiproxyClient`` (which also works against a real Toxiproxy server).
The client is imported lazily so the proxy process itself loads only the standard library.
"""

from typing import Any

__all__ = ["ToxiproxyClient", "ToxiproxyError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import client

        return getattr(client, name)
    raise AttributeError(name)
