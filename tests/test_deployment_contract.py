"""docs/deployment-contract.md against what the AWS path asks of a deployment, read from the code and the suites.

The checker is ``tests/deployment_contract.py``; these tests run it on the real page and show it can fail.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.deployment_contract import (
    DOC,
    Demands,
    Library,
    RobotCalls,
    demands,
    listed_but_never_called,
    missing_from,
    optional_without_fallback,
    path_template,
)


@pytest.fixture(scope="module")
def asked() -> Demands:
    return demands()


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_checker_reads_every_call_of_the_aws_path(asked):
    assert asked.problems == []
    # the calls the keywords make through ApiComponent._call, forwarders and the load engine, among others
    assert {
        ("POST", "/sessions"),
        ("GET", "/sessions/{}"),
        ("GET", "/sessions?userId="),
        ("PUT", "/sessions/{}/files/{}"),
        ("GET", "/admin/reaper"),
        ("POST", "/admin/reaper/run"),
    } <= set(asked.calls)
    assert "faults/clients.py:timed_request" in asked.calls[("GET", "/sessions/{}")]  # a path a suite hands in


def test_the_deployment_contract_lists_everything_the_aws_path_asks(asked, doc):
    assert missing_from(doc, asked) == []


def test_the_deployment_contract_lists_no_call_the_suite_never_makes(asked, doc):
    assert listed_but_never_called(doc, asked) == []


@pytest.mark.parametrize(
    ("removed", "named"),
    [
        ("| `GET /admin/reaper` |", "call `GET /admin/reaper` (called by sessions/api.py:ApiComponent._call)"),
        ("`container_unavailable`", "error code `container_unavailable`"),
        ("`stoppedReason`", "session field `stoppedReason`"),
        ("| 409 |", "HTTP status 409"),
    ],
)
def test_the_checker_names_what_the_doc_leaves_out(asked, doc, removed, named):
    assert removed in doc
    gutted = doc.replace(removed, "| |")
    missing = missing_from(gutted, asked)
    assert len(missing) == 1 and missing[0].startswith(named), missing


def test_every_optional_promise_says_what_the_suite_does_without_it(doc):
    assert "**optional**: where it answers 404" in doc
    assert optional_without_fallback(doc) == []
    assert optional_without_fallback("| `GET /x` | 200 | orphans | optional |\n") == ["`GET /x`"]


def test_the_checker_names_a_listed_call_nobody_makes(asked, doc):
    assert listed_but_never_called(doc + "\n| `DELETE /sessions/{id}/files/{path}` | 204 |\n", asked) == [
        "`DELETE /sessions/{}/files/{}`"
    ]


def test_path_templates_ignore_the_names_of_values():
    assert path_template("/sessions/{id}/files/{path}") == path_template("/sessions/{}/files/{}")
    assert path_template("/sessions?userId={userId}") == "/sessions?userId="
    assert path_template("/sessions/") == "/sessions"


def _library(tmp_path: Path, source: str) -> Library:
    package = tmp_path / "lib"
    package.mkdir()
    (package / "probes.py").write_text(textwrap.dedent(source))
    return Library(package)


def _robot(tmp_path: Path, steps: str) -> RobotCalls:
    suite = tmp_path / "suites"
    suite.mkdir()
    (suite / "probe.robot").write_text(
        "*** Test Cases ***\nOn Both Targets\n" + steps + "\n\nOnly Embedded\n    [Tags]    needs-dynamodb-hop\n"
        "    Probe Path    /embedded/only\n"
    )
    return RobotCalls.read(suite)


def test_a_path_a_suite_hands_in_is_followed_to_the_suite(tmp_path):
    library = _library(
        tmp_path,
        """
        from robot.api.deco import keyword

        def send(api, method, path):
            return api.request(method, path)

        class Probes:
            @keyword
            def probe_path(self, path, verb="GET"):
                send(self.ctx.api, verb, path)

            @keyword(tags=["embedded-only"])
            def embedded_probe(self):
                self.ctx.api.request("GET", "/never/on/aws")
        """,
    )
    robot = _robot(tmp_path, "    Probe Path    /items/${ITEM}[id]\n    Probe Path    /other    verb=DELETE")
    found = demands(library, robot)
    assert found.problems == []
    assert set(found.calls) == {("GET", "/items/{}"), ("DELETE", "/other")}


def test_a_call_the_checker_cannot_read_is_a_problem_not_a_pass(tmp_path):
    library = _library(
        tmp_path,
        """
        class Probes:
            def probe(self, request_for):
                request = request_for()
                self.api.request("GET", request.path)

            def url(self):
                return self.endpoint("PLATFORM_API_URL") + "/health"
        """,
    )
    found = demands(library, _robot(tmp_path, "    No Operation"))
    assert found.calls == {}
    assert [p.split(":", 2)[1] for p in found.problems] == ["Probes.probe", "Probes.url"], found.problems
