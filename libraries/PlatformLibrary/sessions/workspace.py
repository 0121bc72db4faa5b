"""Keywords of a session's workspace files: write, read, list, byte-for-byte checks, and the tries that return an
answer without judging it (for invalid paths)."""

from __future__ import annotations

import hashlib

from robot.api.deco import keyword

from ..core.profile import format_seconds
from .api import ApiComponent, SessionRef


class WorkspaceKeywords(ApiComponent):
    """A session's workspace (EFS) through the API's file routes."""

    @keyword(tags=["workspace"])
    def write_workspace_file(
        self, session: SessionRef, path: str, content: str | bytes, encoding: str = "UTF-8"
    ) -> dict:
        """Writes ``content`` to ``path`` in the session's workspace; returns ``{"path", "size"}``.

        The platform fsyncs before it answers 201, so the file is durable when this keyword passes.

        Example:
        | Write Workspace File | ${session} | project/package.json | {"name": "demo"} |
        """
        session_id = self.session_id_of(session)
        _check_path(path)
        data = content if isinstance(content, bytes) else content.encode(encoding)
        response = self._expect(self._call("PUT", self.api.file_path(session_id, path), data=data), 201)
        self.info(f"Wrote {len(data)} bytes to {path} of session {session_id} in {format_seconds(response.seconds)}.")
        return response.body

    @keyword(tags=["workspace"])
    def try_to_write_workspace_file(
        self, session: SessionRef, path: str, content: str = "", raw_path: bool = False
    ) -> dict:
        """Sends ``PUT`` of ``path`` and returns the answer without judging it (for invalid-path tests).

        The path reaches the platform as written, ``..`` segments included. With ``raw_path=True`` it goes into
        the URL exactly as given, not percent-encoded by the keyword: for spellings such as ``%2e%2e/x`` or
        ``%2Fetc%2Fpasswd`` that a client could send. Returns ``status``, ``body``, ``error``, ``retryAfter``,
        ``headers`` and ``seconds``.

        Example:
        | ${answer} = | Try To Write Workspace File | ${session} | ../../escaped.txt |
        | ${answer} = | Try To Write Workspace File | ${session} | %2e%2e/other/x.txt | raw_path=${True} |
        | Should Be Equal As Integers | ${answer}[status] | 400 |
        """
        session_id = self.session_id_of(session)
        url = self._file_url(session_id, path, raw_path)
        response = self._call("PUT", url, data=content.encode())
        self.info(f"PUT {path} of session {session_id} -> {response.describe()}")
        return response.as_dict()

    @keyword(tags=["workspace"])
    def try_to_read_workspace_file(self, session: SessionRef, path: str, raw_path: bool = False) -> dict:
        """Sends ``GET`` of ``path`` in the session's workspace and returns the answer without judging it.

        ``path`` and ``raw_path`` as in `Try To Write Workspace File`. Returns ``status``, ``body`` (the file's
        text, or the JSON error), ``error``, ``retryAfter``, ``headers`` and ``seconds``.

        Example:
        | ${answer} = | Try To Read Workspace File | ${session} | ../other-user/notes.txt |
        | Should Be Equal As Integers | ${answer}[status] | 400 |
        """
        session_id = self.session_id_of(session)
        response = self._call("GET", self._file_url(session_id, path, raw_path))
        self.info(f"GET {path} of session {session_id} -> {response.describe()}")
        return response.as_dict()

    def _file_url(self, session_id: str, path: str, raw_path: bool) -> str:
        if raw_path:
            return f"{self.api.session_path(session_id)}/files/{path}"
        return self.api.file_path(session_id, path)

    @keyword(tags=["workspace"])
    def binary_content_of_size(self, size: int, seed: int = 0) -> bytes:
        """Returns ``size`` bytes that run through all 256 byte values, starting at ``seed`` (0-255).

        A file of 256 bytes or more holds every byte value, the ones that are not valid UTF-8 too; two seeds give
        different contents of the same size, so an old version is never mistaken for a new one.

        Example:
        | ${data} = | Binary Content Of Size | ${1048577} | seed=7 |
        """
        if size < 0 or not 0 <= seed <= 255:
            raise ValueError(f"size must be at least 0 and seed 0-255, got size {size} and seed {seed}.")
        block = bytes(range(256))
        block = block[seed:] + block[:seed]
        return (block * (size // 256 + 1))[:size]

    @keyword(tags=["workspace", "assertion"])
    def workspace_file_should_have_bytes(self, session: SessionRef, path: str, expected: bytes) -> None:
        """Fails unless ``path`` in the session's workspace reads back as exactly ``expected``, byte for byte.

        Compares length and SHA-256 of ``GET`` and the size ``GET /files`` lists; the message names both
        lengths, both digests and the first byte that differs.

        Example:
        | ${data} = | Binary Content Of Size | ${65536} |
        | Write Workspace File | ${session} | data.bin | ${data} |
        | Workspace File Should Have Bytes | ${session} | data.bin | ${data} |
        """
        session_id = self.session_id_of(session)
        _check_path(path)
        response = self._expect(self._call("GET", self.api.file_path(session_id, path)), 200)
        actual = response.content
        want, got = hashlib.sha256(expected).hexdigest(), hashlib.sha256(actual).hexdigest()
        if len(actual) != len(expected) or got != want:
            first = next((i for i, (a, b) in enumerate(zip(actual, expected, strict=False)) if a != b), None)
            where = f"first difference at byte {first}" if first is not None else "one is a prefix of the other"
            raise AssertionError(
                f"Broken promise: a file reads back as it was last written. {path} of session {session_id}: "
                f"expected {len(expected)} bytes sha256 {want[:16]}..., read {len(actual)} bytes sha256 "
                f"{got[:16]}... ({where})."
            )
        listed = [f.get("size") for f in self.list_workspace_files(session_id) if f.get("path") == path]
        if listed != [len(expected)]:
            raise AssertionError(
                f"Broken promise: the listing shows a file's size. GET /files lists {path} of session {session_id} "
                f"with size(s) {listed}, expected [{len(expected)}]."
            )
        self.info(f"{path} of session {session_id}: {len(actual)} bytes, sha256 {got[:16]}..., as written.")

    def read_workspace_file(self, session: SessionRef, path: str, encoding: str = "UTF-8") -> str:
        """Returns the content of ``path`` in the session's workspace, decoded with ``encoding``."""
        session_id = self.session_id_of(session)
        _check_path(path)
        response = self._expect(self._call("GET", self.api.file_path(session_id, path)), 200)
        return response.content.decode(encoding)

    @keyword(tags=["workspace", "assertion"])
    def workspace_file_should_have_content(
        self, session: SessionRef, path: str, expected: str, encoding: str = "UTF-8"
    ) -> None:
        """Fails unless ``path`` in the session's workspace holds exactly ``expected``.

        Example:
        | Workspace File Should Have Content | ${session} | project/package.json | ${PACKAGE_JSON} |
        """
        actual = self.read_workspace_file(session, path, encoding)
        if actual != expected:
            raise AssertionError(
                f"Workspace file {path} of session {self.session_id_of(session)} changed.\n"
                f"Expected ({len(expected)} chars): {expected[:500]!r}\nActual ({len(actual)} chars): {actual[:500]!r}"
            )

    @keyword(tags=["workspace"])
    def list_workspace_files(self, session: SessionRef) -> list[dict]:
        """Returns the files of the session's workspace as ``[{"path", "size"}]``."""
        session_id = self.session_id_of(session)
        response = self._expect(self._call("GET", f"{self.api.session_path(session_id)}/files"), 200)
        return list(response.body.get("files", []))


def _check_path(path: str) -> None:
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"Workspace path must be a non-empty relative path, got {path!r}.")
