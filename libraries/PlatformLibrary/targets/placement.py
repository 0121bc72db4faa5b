"""Where each test runs: embedded, AWS, or skipped on AWS with the reason in the skip message.

A test that needs something only the embedded platform has carries a ``needs-…`` tag (``needs-dynamodb-hop``
...). On the AWS target the library's listener turns such a test into a skip whose message says what it needs and
why AWS cannot give it, before its setup runs: nothing is created, nothing fails. Every other test runs on both
targets. ``python -m PlatformLibrary.targets.placement suites`` prints the table in ``docs/where-tests-run.md``
(a unit test keeps the two equal).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from ..core.base import LibraryComponent, LibraryContext

# What a test needs -> why the AWS target cannot give it (the skip message says this).
EMBEDDED_ONLY = {
    "needs-dynamodb-hop": (
        "forges DynamoDB's answers on the platform's route to DynamoDB (throttles, 500 and 503 errors) or faults "
        "single calls, by operation or count (one call held or dropped, every read delayed, a connection cap); on AWS "
        "FIS reaches that route only as traffic: delay or loss on every call or on a share of the connections "
        "(aws:ecs:task-network-latency / -packet-loss with sources DYNAMODB on the API tasks: the outage, slow-store "
        "and lost-connection tests run that way), its API error actions (aws:fis:inject-api-*) take only the ec2 and "
        "kinesis namespaces, and its one DynamoDB action pauses global-table replication (FIS user guide, AWS FIS "
        "Actions reference)"
    ),
    "needs-mesh-hop": (
        "keeps a fault on the hop between the API and one session's container while the container is replaced; on "
        "AWS a network fault is a FIS action inside one task (aws:ecs:task-network-*), and the replacement task "
        "starts without it"
    ),
    "needs-platform-clock": (
        "skews the platform's clock against DynamoDB's and the client's; neither ECS nor FIS can set a task's clock"
    ),
    "needs-container-limits": (
        "pushes one container past its cgroup limits or lowers them, or fails its workspace folder; FIS's stress "
        "actions load a task but cannot change its limits or its EFS mount"
    ),
    "needs-warm-pool-without-ecs": (
        "uses up the platform's warm pool while ECS is away, as many agents as its settings say (warm_pool_size; "
        "start_timeout for the start that must fail), each handed out without an ECS call, so that the next create "
        "needs ECS; a deployment's warm pool and start timeout are its own (the deployment contract names neither), "
        "and on AWS handing a warm task to a session is itself an ECS call (the task's session tag, TagResource: "
        "deployment-contract.md, The session containers). The tests that need no warm pool (running sessions, a "
        "delete, a crash while the platform is cut off from ECS) run on AWS"
    ),
    "needs-one-way-partition": (
        "drops DynamoDB's answers to the platform while its requests still land (a one-way partition); no FIS action "
        "does that on an ECS task: aws:ecs:task-network-packet-loss and -latency act on 'egress traffic to specific "
        "sources' (the requests: the writes would not land), and aws:ecs:task-network-blackhole-port 'drops inbound "
        "or outbound traffic for the specified protocol and port' and takes no sources, so it cannot single out "
        "DynamoDB's answers among the API tasks' HTTPS traffic (FIS user guide, AWS FIS Actions reference, Amazon ECS "
        "actions)"
    ),
    "needs-load-balancer-process": (
        "kills the load balancer in front of the API as a process; on AWS that is an ALB, which AWS runs: an ALB node "
        "cannot be killed, and FIS has no action that fails a load balancer (it acts on tasks, instances and networks; "
        "cutting the ALB's subnets off would take the deployment down, not fail over its load balancer)"
    ),
    "needs-record-writes": (
        "writes a session record into the sessions table as the platform would (a start no API target carries out); "
        "the deployment contract does not say how a platform writes its records, nor promise how it ends such a start"
    ),
    "needs-private-platform": (
        "cuts the network of a platform it started itself, so the faults hit nothing shared; a deployment is shared"
    ),
}
NEEDS_PREFIX = "needs-"
# A test whose faults hit the deployment itself (its API tier, its API tasks' routes to DynamoDB, CloudWatch and
# ECS), not only the run's sessions: on AWS it runs only with CHAOS_SCOPE=deployment (docs/chaos.md, "Two blast
# radii"), which the aws-emulated profile sets.
DEPLOYMENT_SCOPE_TAG = "chaos-scope-deployment"
# The suites CI runs on the aws-emulated profile (./run.sh test; docs/aws-emulation.md).
EMULATED_SUITES = ("recovery/", "chaos/")


def embedded_only_reason(tags: Iterable[str]) -> str | None:
    """Why a test with ``tags`` cannot run on AWS, or ``None`` when it runs on both targets."""
    reasons = [EMBEDDED_ONLY[tag] for tag in sorted(tags) if tag in EMBEDDED_ONLY]
    return "; ".join(reasons) or None


def unknown_needs(tags: Iterable[str]) -> list[str]:
    """``needs-…`` tags that have no reason here (a typo would silently run the test on AWS)."""
    return sorted(tag for tag in tags if tag.startswith(NEEDS_PREFIX) and tag not in EMBEDDED_ONLY)


class TestPlacement(LibraryComponent):
    """Library listener: on the AWS target, a test tagged ``needs-…`` is skipped with its reason."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: LibraryContext):
        super().__init__(ctx)

    def start_test(self, data, result) -> None:
        if self.profile.is_embedded:
            return
        reason = embedded_only_reason(data.tags)
        if reason:
            message = f"Embedded platform only: this test {reason}. Target: {self.profile.target}."
            data.setup.config(name="Skip", args=(message,))
            data.teardown.config(name=None)


def table(suites: Path) -> str:
    """The markdown table of every test: where it runs, and on AWS why not."""
    from robot.api import TestSuiteBuilder

    root = TestSuiteBuilder().build(str(suites))
    rows = ["| suite | test | embedded | AWS | aws-emulated (CI) |", "| --- | --- | --- | --- | --- |"]

    def walk(suite) -> None:
        for test in suite.tests:
            name = Path(suite.source).relative_to(suites.resolve()).as_posix() if suite.source else suite.name
            reason = embedded_only_reason(test.tags)
            aws = f"skipped: {reason}" if reason else "runs"
            if not reason and DEPLOYMENT_SCOPE_TAG in test.tags:
                aws = (
                    "runs with CHAOS_SCOPE=deployment (it faults the deployment itself: its API tier or its API tasks' "
                    "routes to DynamoDB, CloudWatch and ECS); skipped otherwise"
                )
            emulated = "skipped" if reason else "runs"
            if not name.startswith(EMULATED_SUITES):
                emulated = "not run"
            rows.append(f"| `{name}` | {test.name} | runs | {aws} | {emulated} |")
        for child in suite.suites:
            walk(child)

    walk(root)
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    suites = Path(args[0] if args else "suites").resolve()
    print(
        "# Where each test runs\n\n"
        "Generated by `python -m PlatformLibrary.targets.placement suites` from the tests' `needs-…` tags "
        "(`libraries/PlatformLibrary/targets/placement.py` holds the reasons); a unit test keeps it current. On the "
        "AWS target a test marked skipped is skipped with this reason in its message, before its setup runs. "
        '"runs" under AWS means the test is not skipped there. The aws-emulated column is what CI runs through the '
        "AWS backends against the embedded platform's AWS face (docs/aws-emulation.md): the recovery and chaos "
        "suites, skipped for the same reasons; the stress and performance suites read EFS and Application Auto "
        "Scaling, which the face does not emulate yet (of ELBv2 it answers DescribeTargetHealth of the API tier's "
        "target group only). None has run against a real deployment from this "
        "repository (no AWS account here: docs/aws.md).\n"
    )
    print(table(suites), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
