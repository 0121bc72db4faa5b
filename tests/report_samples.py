"""Sample metrics of a two-process run, as the library writes them, for the report tests."""

from __future__ import annotations

import json
from pathlib import Path

from PlatformLibrary.load.engine import LoadRun
from PlatformLibrary.load.results import new_histogram


def write_sample_metrics(folder: Path) -> Path:
    """Writes ``<folder>/metrics`` as two pabot workers (pids 101 and 202) would and a small output.xml."""
    metrics = folder / "metrics"
    metrics.mkdir(parents=True)
    lines = {101: [], 202: []}
    samples = {
        "container_cold_start": [0.61, 0.65, 0.72, 0.58, 0.69],
        "container_warm_start": [0.031, 0.028, 0.044, 0.036],
        "session_creation": [0.012, 0.015, 0.019, 0.011, 0.030, 0.014],
        "session_start": [0.7, 0.05, 0.8, 0.06],
        "auto_shutdown": [2.21, 2.35, 2.28],
        "scale_out_response": [1.12],
        "recovery_time": [0.91, 1.02, 0.88],
        "recovery_after_overload": [0.11],
        "session_container_seconds": [1.8, 2.1, 1.9],
        "utilisation_cpuPercent": [12.5],
    }
    for index, (name, values) in enumerate(samples.items()):
        for j, value in enumerate(values):
            pid = 101 if (index + j) % 2 else 202
            unit = "%" if name.startswith("utilisation_") else "s"
            lines[pid].append(
                {
                    "ts": 1.0,
                    "name": name,
                    "value": value,
                    "unit": unit,
                    "tags": {},
                    "profile": "local",
                    "run": "abc123",
                    "suite": "S",
                    "test": "T",
                    "pid": pid,
                }
            )
    for pid, records in lines.items():
        (metrics / f"{pid}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for pid, (ok, slow) in {101: (900, 0), 202: (95, 5)}.items():
        result = LoadRun("file-ops", action=lambda i: "ok", rate=1, duration=1).result
        corrected, service = new_histogram(), new_histogram()
        for i in range(ok):
            corrected.record_value(2000 + i)
            service.record_value(1500 + i)
        for _ in range(slow):
            corrected.record_value(900_000)
            service.record_value(3000)
        result.corrected, result.uncorrected = corrected, service
        result.sent = result.completed = ok + slow
        result.outcomes.update({"ok": ok + slow - (3 if pid == 202 else 0), "rejected-429": 3 if pid == 202 else 0})
        result.timeline = [
            {"t": 0, "sent": ok, "ok": ok, "errors": 0, "dropped": 0},
            {"t": 1, "sent": slow, "ok": slow, "errors": 0, "dropped": 0},
        ]
        result.extra = {"scenario": "file-ops", "apiCalls": {"file": ok + slow, "create": 3}}
        record = {"kind": "load_run", "pid": pid, "run": "abc123", "profile": "local", **result.summary()}
        (metrics / f"loadruns-{pid}.jsonl").write_text(json.dumps(record) + "\n")
        (metrics / f"hist-load.file-ops-{pid}.hdr").write_bytes(corrected.encode() + b"\n")
        (metrics / f"hist-load.file-ops.service-{pid}.hdr").write_bytes(service.encode() + b"\n")
    (folder / "output.xml").write_text(
        "<robot><suite name='S'><test name='A'><status status='PASS'/></test>"
        "<test name='B'><status status='FAIL'>p95 was 900 ms</status></test><status status='FAIL'/></suite>"
        "<statistics><total><stat pass='1' fail='1' skip='0'>All Tests</stat></total></statistics></robot>"
    )
    return metrics
