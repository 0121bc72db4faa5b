"""The failure summary at the end of a run names each failed test, its message and its place in log.html."""

from __future__ import annotations

from pathlib import Path

import robot
from resilience_report.failures import main, summary

SUITE = """*** Test Cases ***
Passes
    Log    fine

Fails With A Long Story
    Fail    first line of the story\\nsecond line\\nthird line\\nfourth line never shown

Skips
    Skip    not here
"""


def test_the_summary_lists_failures_with_messages_and_log_links(tmp_path: Path, capsys) -> None:
    (tmp_path / "demo.robot").write_text(SUITE)
    robot.run(str(tmp_path / "demo.robot"), outputdir=str(tmp_path), log="NONE", report="NONE", stdout=None)
    text = summary(tmp_path / "output.xml")
    assert text.splitlines()[0] == "3 tests: 1 passed, 1 failed, 1 skipped. Failed:"
    assert "- Demo.Fails With A Long Story" in text
    assert "    first line of the story" in text and "third line" in text and "fourth line" not in text
    assert f"{tmp_path / 'log.html'}#s1-t2" in text
    assert "Passes" not in text and "Skips" not in text


def test_a_missing_output_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "output.xml")]) == 2
    assert "the run wrote no output" in capsys.readouterr().err
