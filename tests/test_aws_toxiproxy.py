"""The Toxiproxy hop between the suite and the ALB, against a Toxiproxy-compatible server (the fault proxy).

The fault proxy keywords then work on it unchanged, as on the embedded platform.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PlatformLibrary.aws.session import AwsError

from tests.test_aws_support import make_library

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toxiproxy(tmp_path):
    ready = tmp_path / "ready.json"
    with (tmp_path / "proxy.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "testbed.faultproxy", "--port", "0", "--ready-file", str(ready)],
            cwd=ROOT,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() or not ready.read_text().strip():
            assert proc.poll() is None, (tmp_path / "proxy.log").read_text()
            assert time.monotonic() < deadline, "fault proxy did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{json.loads(ready.read_text())['admin_port']}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(5)


def test_alb_hop_is_created_used_by_the_fault_keywords_and_removed(toxiproxy):
    library = make_library(
        FAULT_PROXY_URL=toxiproxy,
        TOXIPROXY_LISTEN="127.0.0.1:0",
        ALB_URL="http://internal-sessions-123.us-east-1.elb.amazonaws.com",
        PLATFORM_API_URL="http://127.0.0.1:18080",
    )
    hop = library.keywords["ensure_alb_hop_on_toxiproxy"]()
    assert hop["name"] == "api"
    assert hop["upstream"] == "internal-sessions-123.us-east-1.elb.amazonaws.com:80"
    library.keywords["disable_fault_proxy_hop"]("api")
    assert requests.get(f"{toxiproxy}/proxies/api", timeout=5).json()["enabled"] is False
    library.keywords["revert_all_faults"]()
    assert requests.get(f"{toxiproxy}/proxies/api", timeout=5).json()["enabled"] is True
    again = library.keywords["ensure_alb_hop_on_toxiproxy"](upstream="10.0.0.9:8080")
    assert again["upstream"] == "10.0.0.9:8080"
    assert library.keywords["remove_alb_hop_from_toxiproxy"]() is True
    assert requests.get(f"{toxiproxy}/proxies/api", timeout=5).status_code == 404


def test_a_hop_this_run_did_not_create_is_left_alone(toxiproxy):
    requests.post(
        f"{toxiproxy}/proxies", json={"name": "api", "listen": "127.0.0.1:0", "upstream": "10.0.0.1:80"}, timeout=5
    ).raise_for_status()
    library = make_library(FAULT_PROXY_URL=toxiproxy, TOXIPROXY_LISTEN="127.0.0.1:0", ALB_URL="https://alb.example")
    assert library.keywords["ensure_alb_hop_on_toxiproxy"]()["upstream"] == "alb.example:443"
    assert library.keywords["remove_alb_hop_from_toxiproxy"]() is False
    assert requests.get(f"{toxiproxy}/proxies/api", timeout=5).status_code == 200


def test_missing_settings_fail_clearly():
    with pytest.raises(AwsError, match="FAULT_PROXY_URL"):
        make_library(FAULT_PROXY_URL="", TOXIPROXY_LISTEN="127.0.0.1:1", ALB_URL="http://a").keywords[
            "ensure_alb_hop_on_toxiproxy"
        ]()
    with pytest.raises(AwsError, match="TOXIPROXY_LISTEN"):
        make_library(FAULT_PROXY_URL="http://127.0.0.1:1").keywords["ensure_alb_hop_on_toxiproxy"]()
