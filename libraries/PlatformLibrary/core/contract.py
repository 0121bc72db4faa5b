"""How a deployment's session API differs from the suite's contract: paths, field names, status names.

The suite speaks the contract of ``docs/platform-contract.md`` (``POST /sessions``, ``sessionId``, ``RUNNING`` ...).
A deployment whose API names things differently describes the differences in a JSON file named by
``${API_CONTRACT_FILE}``; the API client (and the load engine) translate on the way out and back, so no keyword
changes. Example::

    {
      "paths": {"/sessions": "/v2/workspaces", "/health": "/healthz", "/admin/reaper/run": "/ops/reap"},
      "fields": {"sessionId": "id", "userId": "user", "lastFailureReason": "failure"},
      "statuses": {"RUNNING": "ACTIVE", "STOPPED": "TERMINATED"},
      "recordFields": {"restartCount": "restarts", "taskId": "task_arn"}
    }

``paths``: a contract path prefix -> the deployment's (the longest prefix wins, the rest of the path is kept).
``fields``: a contract field -> the deployment's name for it (in request and response bodies, at any depth).
``statuses``: a contract status -> the deployment's value of ``status``.
``recordFields``: a contract field -> the attribute name in the deployment's DynamoDB record, where the record names
it differently from the API (the record reader translates it back, so the consistency checks compare like with like).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTIONS = ("paths", "fields", "statuses", "recordFields")


class ContractError(ValueError):
    """The contract file cannot be used; the message says which file and what is wrong."""


@dataclass(frozen=True)
class ApiContract:
    paths: tuple[tuple[str, str], ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    statuses: tuple[tuple[str, str], ...] = ()
    record_fields: tuple[tuple[str, str], ...] = ()

    @property
    def is_default(self) -> bool:
        return not (self.paths or self.fields or self.statuses or self.record_fields)

    @classmethod
    def load(cls, path: str | Path | None) -> ApiContract:
        """The contract of ``path`` (a JSON file), or the suite's own contract for an empty path."""
        if not path:
            return cls()
        file = Path(path)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except OSError as error:
            raise ContractError(f"API contract file {file} (${{API_CONTRACT_FILE}}) cannot be read: {error}") from None
        except ValueError as error:
            raise ContractError(f"API contract file {file} is not valid JSON: {error}") from None
        if not isinstance(data, dict) or set(data) - set(SECTIONS):
            unknown = sorted(set(data) - set(SECTIONS)) if isinstance(data, dict) else type(data).__name__
            raise ContractError(f"API contract file {file}: expected an object with {SECTIONS}, got {unknown}.")
        sections = {}
        for section in SECTIONS:
            mapping = data.get(section, {})
            if not isinstance(mapping, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and k and v for k, v in mapping.items()
            ):
                raise ContractError(f"API contract file {file}: '{section}' must map non-empty texts to texts.")
            if section == "paths" and not all(k.startswith("/") and v.startswith("/") for k, v in mapping.items()):
                raise ContractError(f"API contract file {file}: every path in 'paths' must start with '/'.")
            sections[section] = tuple(sorted(mapping.items(), key=lambda item: len(item[0]), reverse=True))
        sections["record_fields"] = sections.pop("recordFields")
        return cls(**sections)

    def record_from_deployment(self, record: dict) -> dict:
        """A DynamoDB record with the contract's field names (and status values, as the API's ``statuses``)."""
        fields = {theirs: ours for ours, theirs in self.record_fields}
        statuses = {theirs: ours for ours, theirs in self.statuses}
        return self._rename(record, fields, statuses)

    # ------------------------------------------------------------------ out: contract -> deployment
    def path(self, path: str) -> str:
        """The deployment's path for a contract path (query string kept, field names in it translated)."""
        base, sep, query = path.partition("?")
        for ours, theirs in self.paths:
            if base == ours or base.startswith(ours.rstrip("/") + "/"):
                base = theirs.rstrip("/") + base[len(ours.rstrip("/")) :]
                break
        if query:
            names = dict(self.fields)
            query = "&".join(f"{names.get(k, k)}={v}" for k, _, v in (part.partition("=") for part in query.split("&")))
        return base + sep + query

    def to_deployment(self, body: Any) -> Any:
        return self._rename(body, dict(self.fields), dict(self.statuses))

    # ------------------------------------------------------------------ back: deployment -> contract
    def from_deployment(self, body: Any) -> Any:
        fields = {theirs: ours for ours, theirs in self.fields}
        statuses = {theirs: ours for ours, theirs in self.statuses}
        return self._rename(body, fields, statuses)

    @classmethod
    def _rename(cls, body: Any, fields: dict[str, str], statuses: dict[str, str]) -> Any:
        if isinstance(body, list):
            return [cls._rename(item, fields, statuses) for item in body]
        if not isinstance(body, dict):
            return body
        out = {}
        for key, value in body.items():
            name = fields.get(key, key)
            value = cls._rename(value, fields, statuses)
            if "status" in (key, name) and isinstance(value, str):  # the contract's side of the pair is "status"
                value = statuses.get(value, value)
            out[name] = value
        return out
