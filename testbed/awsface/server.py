"""One HTTP endpoint on 127.0.0.1 for the AWS face: ECS (JSON 1.1, by ``X-Amz-Target``), FIS (REST-JSON, by path)
and ELBv2 (the query protocol: a form-encoded ``POST`` with ``Action``, answered in XML).

boto3 reaches it with ``endpoint_url`` for the ``ecs``, ``fis`` and ``elbv2`` clients (the aws-emulated profile sets
them); moto serves the other services. Requests are not authenticated: like moto, the face accepts any SigV4
signature.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from testbed.awsface.ecs import TARGET_PREFIX, EcsEmulator
from testbed.awsface.elbv2 import ElbV2Emulator
from testbed.httputil import send_with_body

log = logging.getLogger("testbed.awsface")
FIS_PATHS = ("/experimentTemplates", "/experiments", "/tags/", "/actions", "/targetResourceTypes")


class FisHandler(Protocol):
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]: ...


class AwsFaceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ecs: EcsEmulator, fis: FisHandler, elbv2: ElbV2Emulator | None = None) -> None:
        self.ecs, self.fis, self.elbv2 = ecs, fis, elbv2
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: AwsFaceServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def _answer(
        self, status: int, body: dict[str, Any] | str, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        payload = body.encode() if isinstance(body, str) else json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        send_with_body(self, payload)

    def _raw(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    @staticmethod
    def _json(raw: bytes) -> Any:
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _dispatch(self) -> None:
        raw = self._raw()
        form = (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded")
        if form and self.server.elbv2 is not None:  # the query protocol (ELBv2)
            status, xml = self.server.elbv2.handle(parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True))
            self._answer(status, xml, "text/xml")
            return
        body = self._json(raw)
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith(TARGET_PREFIX) or (self.command == "POST" and target):
            if body is None:
                self._answer(
                    400,
                    {"__type": "SerializationException", "message": "Malformed JSON body."},
                    "application/x-amz-json-1.1",
                )
                return
            status, answer = self.server.ecs.handle(target, body)
            self._answer(status, answer, "application/x-amz-json-1.1")
            return
        url = urlsplit(self.path)
        if url.path.startswith(FIS_PATHS):
            if body is None:
                self._answer(
                    400,
                    {"message": "Malformed JSON body."},
                    "application/json",
                    {"x-amzn-ErrorType": "ValidationException"},
                )
                return
            try:
                status, answer, headers = self.server.fis.handle(
                    self.command, url.path, parse_qs(url.query), body or None
                )
            except Exception as error:  # an emulator bug must answer, not hang the client
                log.exception("FIS face failed on %s %s", self.command, self.path)
                status, answer, headers = (
                    500,
                    {"message": f"internal error: {error}"},
                    {"x-amzn-ErrorType": "InternalServerException"},
                )
            self._answer(status, answer, "application/json", headers)
            return
        self._answer(
            404,
            {"message": f"The AWS face serves ECS, FIS and ELBv2 only, not {self.command} {url.path}."},
            "application/json",
            {"x-amzn-ErrorType": "UnknownOperationException"},
        )

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch


def serve(ecs: EcsEmulator, fis: FisHandler, elbv2: ElbV2Emulator | None = None) -> AwsFaceServer:
    """Start the face in a daemon thread and return it (``.url``, ``.shutdown()``)."""
    server = AwsFaceServer(ecs, fis, elbv2)
    threading.Thread(target=server.serve_forever, name="aws-face", daemon=True).start()
    return server
