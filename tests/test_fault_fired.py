"""A test whose fault never fired fails: its teardown says which fault acted on nothing.

Runs a small Robot suite on a private chaos platform of its own: a toxic with toxicity 0 never acts, so
`End Chaos Test` must fail the test naming it; a toxic that meets traffic passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from robot.api import ExecutionResult

ROOT = Path(__file__).resolve().parents[1]

SUITE = """*** Settings ***
Resource          {root}/resources/chaos.resource
Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

*** Test Cases ***
Unfired
    ${{fault}} =    Add Toxic    dynamodb    latency    toxicity=0.0    latency=500
    VAR    ${{FAULT}} =    ${{fault}}    scope=TEST

Fired
    ${{fault}} =    Add Toxic    dynamodb    latency    latency=1
    VAR    ${{FAULT}} =    ${{fault}}    scope=TEST
    A New Session Is Created And Reaches RUNNING
"""


def test_a_fault_that_never_fired_fails_the_test(tmp_path: Path) -> None:
    (tmp_path / "fired.robot").write_text(SUITE.format(root=ROOT))
    env = {**os.environ, "TESTBED_STATE": str(tmp_path / "testbed"), "CHAOS_STATE_ROOT": str(tmp_path / "chaos")}
    command = [
        sys.executable, "-m", "robot", "--pythonpath", str(ROOT / "libraries"),
        "--variable", f"CHAOS_STATE_ROOT:{tmp_path / 'chaos'}", "--variable", f"FAULT_LEDGER_DIR:{tmp_path / 'faults'}",
        "--outputdir", str(tmp_path), "--log", "NONE", "--report", "NONE", str(tmp_path / "fired.robot"),
    ]  # fmt: skip
    subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    unfired, fired = ExecutionResult(str(tmp_path / "output.xml")).suite.tests
    assert unfired.status == "FAIL"
    assert "A fault of this test never fired" in unfired.message and "latency" in unfired.message
    assert fired.status == "PASS", fired.message
