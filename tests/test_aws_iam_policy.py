"""The least-privilege policy (docs/aws-iam-policy.json) against the calls the library makes.

The session-wide check is in conftest.py (every botocore call made from library code under test must be
allowed); these tests check the checker and the calls that only a few tests reach.
"""

from __future__ import annotations

import json

from tests.aws_calls import NEEDS_NO_PERMISSION, not_allowed, policy_actions


def test_the_checker_names_a_call_the_policy_does_not_allow(tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps({"Statement": [{"Effect": "Allow", "Action": ["ecs:Describe*", "fis:GetExperiment"]}]})
    )
    calls = {"ecs:DescribeTasks", "fis:GetExperiment", "dynamodb:DeleteItem", "sts:GetCallerIdentity"}
    assert not_allowed(calls, policy_actions(policy)) == ["dynamodb:DeleteItem"]
    assert "sts:GetCallerIdentity" in NEEDS_NO_PERMISSION


def test_the_policy_allows_what_the_record_keywords_call():
    """Delete Session Record Behind The Platform's Back calls DeleteItem; reading a record GetItem."""
    actions = policy_actions()
    assert not_allowed({"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:DescribeTable"}, actions) == []
