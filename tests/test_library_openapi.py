"""docs/openapi.yaml is a valid OpenAPI 3.1 document and covers every call PlatformLibrary makes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary.core.http_client import PlatformApiClient

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "docs" / "openapi.yaml"

# (method, path template) of every API call in libraries/PlatformLibrary.
LIBRARY_CALLS = {
    ("get", "/health"),
    ("get", "/capacity"),
    ("post", "/sessions"),
    ("get", "/sessions"),
    ("get", "/sessions/{sessionId}"),
    ("delete", "/sessions/{sessionId}"),
    ("get", "/sessions/{sessionId}/files"),
    ("put", "/sessions/{sessionId}/files/{path}"),
    ("get", "/sessions/{sessionId}/files/{path}"),
    ("delete", "/sessions/{sessionId}/files/{path}"),
    ("post", "/admin/reaper/run"),
    ("get", "/admin/reaper"),
}


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


def test_is_valid_openapi_31(spec):
    validator = pytest.importorskip("openapi_spec_validator")
    assert spec["openapi"].startswith("3.1")
    validator.validate(spec)


def test_covers_every_library_call(spec):
    documented = {(method, path) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert documented >= LIBRARY_CALLS, sorted(LIBRARY_CALLS - documented)


def test_library_calls_list_matches_the_code():
    source = "\n".join(p.read_text() for p in (ROOT / "libraries" / "PlatformLibrary").rglob("*.py"))
    for path in ("/health", "/capacity", "/admin/reaper/run", "/admin/reaper", "/sessions"):
        assert f'"{path}' in source, path
    assert PlatformApiClient.file_path("s-1", "notes/a b.md") == "/sessions/s-1/files/notes/a%20b.md"


def test_errors_with_retry_after(spec):
    responses = spec["paths"]["/sessions"]["post"]["responses"]
    assert "Retry-After" in responses["429"]["headers"]
    store = spec["components"]["responses"]["StoreUnavailable"]
    assert "Retry-After" in store["headers"]
    assert spec["components"]["schemas"]["Error"]["required"] == ["error", "message"]
