"""Which AWS API calls the library makes under test, and whether docs/aws-iam-policy.json allows each one.

``conftest.py`` wraps botocore's ``BaseClient._make_api_call`` for the whole pytest session and records every call
whose stack passes through ``libraries/PlatformLibrary`` (the tests' own set-up calls to moto do not count). At
the end of the session every recorded call must match an action of the policy, or the run fails naming it.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path
from typing import Any

import botocore.client

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_DIR = str(ROOT / "libraries" / "PlatformLibrary")
POLICY = ROOT / "docs" / "aws-iam-policy.json"
# IAM's name for a service where it differs from botocore's signing name.
IAM_PREFIX = {"monitoring": "cloudwatch"}
# Calls IAM does not authorise (documented: GetCallerIdentity needs no permission).
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}

LIBRARY_CALLS: set[str] = set()
_original = botocore.client.BaseClient._make_api_call


def iam_action(client: Any, operation: str) -> str:
    signing = client.meta.service_model.signing_name
    return f"{IAM_PREFIX.get(signing, signing)}:{operation}"


def _recording(self: Any, operation_name: str, api_params: dict) -> Any:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith(LIBRARY_DIR):
            LIBRARY_CALLS.add(iam_action(self, operation_name))
            break
        frame = frame.f_back
    return _original(self, operation_name, api_params)


def start_recording() -> None:
    botocore.client.BaseClient._make_api_call = _recording


def policy_actions(path: Path = POLICY) -> set[str]:
    statements = json.loads(path.read_text(encoding="utf-8"))["Statement"]
    actions: set[str] = set()
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        listed = statement["Action"]
        actions |= set(listed if isinstance(listed, list) else [listed])
    return actions


def not_allowed(calls: set[str], actions: set[str]) -> list[str]:
    """The calls no action of the policy allows (IAM matches case-insensitively, with ``*`` wildcards)."""
    lowered = [a.lower() for a in actions]
    return sorted(
        call
        for call in calls - NEEDS_NO_PERMISSION
        if not any(fnmatch.fnmatchcase(call.lower(), action) for action in lowered)
    )
