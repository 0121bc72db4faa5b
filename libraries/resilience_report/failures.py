"""The failure summary a run ends with: each failed test, its message and where it is in log.html.

``python -m resilience_report.failures results/output.xml`` (run.sh calls it after every run). pabot prints
only suite lines while it runs; this puts what failed and why at the end of the console, one block per test, with
the link into the log so nobody scrolls through suites that passed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PlatformLibrary.core.profile import counted
from robot.api import ExecutionResult, ResultVisitor

MESSAGE_LINES = 3
MESSAGE_WIDTH = 200


class _Failed(ResultVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[str, str, str]] = []  # (full name, message, test id)

    def visit_test(self, test) -> None:
        if test.status == "FAIL":
            self.found.append((test.full_name, test.message, test.id))


def summary(output: Path, log_name: str = "log.html") -> str:
    """The summary text for ``output`` (an output.xml); says so when nothing failed."""
    result = ExecutionResult(str(output))
    failed = _Failed()
    result.visit(failed)
    stats = result.statistics.total
    head = f"{counted(stats.total, 'test')}: {stats.passed} passed, {stats.failed} failed, {stats.skipped} skipped."
    if not failed.found:
        return head
    lines = [f"{head} Failed:"]
    for name, message, test_id in failed.found:
        lines.append(f"- {name}")
        for text in (message or "(no message)").splitlines()[:MESSAGE_LINES]:
            lines.append(f"    {text[:MESSAGE_WIDTH]}")
        lines.append(f"    {output.parent / log_name}#{test_id}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    output = Path(args[0] if args else "results/output.xml")
    if not output.is_file():
        print(f"No {output}: the run wrote no output.", file=sys.stderr)
        return 2
    print(summary(output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
