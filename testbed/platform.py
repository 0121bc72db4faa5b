"""The platform's main process: starts moto server and the fault proxy, then serves the API and runs the runtime.

Started detached by ``python -m testbed up``; it leads its own process group, so ``down`` stops every process of
the platform (moto, fault proxy, containers) with one signal to the group.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from testbed import api, clock
from testbed.apitier import API_CONTAINER, API_CONTAINER_PORT, API_FAMILY, API_SERVICE, ApiTier
from testbed.awsface.tasks import TaskRegistry
from testbed.config import Settings
from testbed.faultproxy.client import ToxiproxyClient
from testbed.httputil import SWITCH_INTERVAL_S
from testbed.runtime import PROJECT_ROOT, Runtime
from testbed.service import SessionService
from testbed.store import SessionStore

log = logging.getLogger("testbed.platform")


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, int]:
    """Poll for a child's ready file; fail fast when the child dies first."""
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2]} exited with code {proc.returncode} before it was ready")
        time.sleep(0.01)
    raise RuntimeError(f"{path.name} did not appear in time")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def start_aws_face(
    settings: Settings, runtime: Runtime, moto_url: str, admin_port: int, tier: ApiTier
) -> dict[str, str]:
    """Serve ECS, FIS and ELBv2 over the runtime's tasks and the API tier; create the FIS stop-condition alarm in
    moto's CloudWatch.

    Returns the endpoint keys the aws-emulated profile reads (docs/aws-emulation.md).
    """
    import boto3

    from testbed.awsface.actions import ProcessFaultActions, dynamodb_endpoint_name, monitoring_endpoint_name
    from testbed.awsface.ecs import EcsEmulator, ServiceSpec
    from testbed.awsface.elbv2 import ElbV2Emulator
    from testbed.awsface.fis import FisEmulator
    from testbed.awsface.server import serve
    from testbed.awsface.tasks import ACCOUNT_ID
    from testbed.controlplane import ecs_endpoint_name

    assert runtime.tasks is not None
    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=moto_url,
        region_name=settings.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    alarm = f"{settings.service_name}-unhealthy"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        AlarmDescription="Stops FIS experiments when the session service is unhealthy",
        Namespace="AWS/ECS",
        MetricName="CPUUtilization",
        Dimensions=[
            {"Name": "ClusterName", "Value": settings.cluster_name},
            {"Name": "ServiceName", "Value": settings.service_name},
        ],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=100.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="the platform started")
    lock = threading.Lock()

    def alarm_state(name: str) -> str | None:
        with lock:  # one boto3 client, used from the experiments' threads
            found = cloudwatch.describe_alarms(AlarmNames=[name]).get("MetricAlarms", [])
        return found[0]["StateValue"] if found else None

    def workspace_of(task) -> str | None:
        wanted = runtime.wanted.get(task.session_id or "")
        return wanted.workspace if wanted else None

    actions = ProcessFaultActions(
        runtime.tasks,
        lambda: ToxiproxyClient(f"http://127.0.0.1:{admin_port}"),
        runtime.limits,
        workspace_of,
        api_tier=tier,
        api_port=API_CONTAINER_PORT,
        region=settings.region,
        # The hops every call of the platform to DynamoDB and to CloudWatch (its metrics) takes (main, below).
        route_hops={"dynamodb": "dynamodb", "cloudwatch": "cloudwatch"},
        control_plane=runtime.control_plane.path,  # every ECS call of the platform asks it (testbed/controlplane.py)
    )
    # The API tier: its targets are the tasks of an ECS service behind an ALB target group (type ip).
    group_id = uuid.uuid4().hex[:16]
    target_group = f"arn:aws:elasticloadbalancing:{settings.region}:{ACCOUNT_ID}:targetgroup/api/{group_id}"
    api_service = ServiceSpec(
        API_SERVICE, API_FAMILY, API_CONTAINER, API_CONTAINER_PORT, lambda: settings.api_targets, target_group
    )
    ecs = EcsEmulator(
        runtime.tasks,
        runtime.counts,
        memory_mib=settings.container_memory_limit // (1024 * 1024),
        stop_timeout=max(1, round(settings.ecs_stop_timeout)),
        services=(api_service,),
    )
    fis = FisEmulator(runtime.tasks, actions, alarm_state, settings.region)
    server = serve(ecs, fis, ElbV2Emulator(target_group, tier.target_health))
    return {
        "AWS_FACE_URL": server.url,
        "FIS_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/fis-session-experiments",
        "FIS_STOP_ALARM_ARN": f"arn:aws:cloudwatch:{settings.region}:{ACCOUNT_ID}:alarm:{alarm}",
        "API_ECS_SERVICE": API_SERVICE,
        "API_TARGET_GROUP_ARN": target_group,
        # The name of the Regional DynamoDB endpoint the API tier's calls stand for (FIS network actions' sources).
        "DYNAMODB_ENDPOINT_NAME": dynamodb_endpoint_name(settings.region),
        # The name of the Regional ECS endpoint the platform's control-plane calls stand for (the same, for ECS).
        "ECS_ENDPOINT_NAME": ecs_endpoint_name(settings.region),
        # ... and of the Regional CloudWatch endpoint its metrics go to.
        "CLOUDWATCH_ENDPOINT_NAME": monitoring_endpoint_name(settings.region),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="testbed-platform")
    parser.add_argument("--state", required=True, type=Path)
    args = parser.parse_args()
    state: Path = args.state.resolve()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    settings = Settings.load(state / "settings.json")
    instance = uuid.uuid4().hex[:10]
    clock_file = state / "clock-skew"
    clock.set_skew_file(str(clock_file))
    env = {
        **os.environ,
        "TESTBED_INSTANCE": instance,
        "TESTBED_CLOCK_FILE": str(clock_file),
        "TESTBED_CONTAINER_CLOCK_FILE": str(state / "clock-skew-containers"),
        "TESTBED_STATE_DIR": str(state),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    os.environ.update(env)
    run_dir = state / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.iterdir():
        stale.unlink()
    # Written before anything is spawned, so 'down' can find this instance's containers even if start-up fails.
    write_atomic(
        run_dir / "platform.json", json.dumps({"instance": instance, "pid": os.getpid(), "pgid": os.getpgid(0)})
    )
    logs = open(state / "services.log", "ab")  # noqa: SIM115 - lives as long as the platform
    children: list[subprocess.Popen[bytes]] = []

    def spawn(*cmd: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, *cmd],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=logs,
            stderr=logs,
            stdin=subprocess.DEVNULL,
        )
        children.append(proc)
        return proc

    moto = spawn("-m", "testbed.motoserver", "--ready-file", str(run_dir / "moto.json"))
    proxy = spawn(
        "-m",
        "testbed.faultproxy",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--ready-file",
        str(run_dir / "faultproxy.json"),
        "--state-file",
        str(state / "faults.json"),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime = None
    try:
        deadline = time.monotonic() + 15
        moto_port = wait_for_file(run_dir / "moto.json", moto, deadline)["port"]
        admin_port = wait_for_file(run_dir / "faultproxy.json", proxy, deadline)["admin_port"]
        proxies = ToxiproxyClient(f"http://127.0.0.1:{admin_port}")
        hop = proxies.create_proxy("dynamodb", "127.0.0.1:0", f"127.0.0.1:{moto_port}")
        hop_url = f"http://{hop['listen']}"
        # The platform's own route to CloudWatch (its metrics), a hop of its own so it can fail on its own.
        metrics_hop = proxies.create_proxy("cloudwatch", "127.0.0.1:0", f"127.0.0.1:{moto_port}")
        metrics_url = f"http://{metrics_hop['listen']}"
        store = SessionStore(hop_url, settings)
        store.ensure_table()
        moto_url = f"http://127.0.0.1:{moto_port}"
        tasks = None
        if settings.aws_face:
            tasks = TaskRegistry(
                settings.cluster_name,
                settings.service_name,
                settings.region,
                stop_timeout=settings.ecs_stop_timeout,
                oom_killed=lambda cgroup: runtime.limits.oom_killed(cgroup) if runtime else False,
            )
        runtime = Runtime(
            settings, store, instance, state, ToxiproxyClient(f"http://127.0.0.1:{admin_port}"), tasks=tasks
        )
        service = SessionService(settings, store, runtime, state, instance, metrics_url)
        server = api.serve(service)
        api_port = server.server_address[1]
        # Clients -> fault-proxy hop "api" (the network in front of the ALB) -> load balancer -> API targets.
        tier = ApiTier(settings, run_dir, spawn, wait_for_file, api_port, tasks=tasks, service=API_SERVICE)
        tier.start()
        front = proxies.create_proxy("api", "127.0.0.1:0", f"127.0.0.1:{tier.port}")
        runtime.start()
        service.start()
        face = start_aws_face(settings, runtime, moto_url, admin_port, tier) if tasks is not None else {}
        endpoints = {
            "PLATFORM_INSTANCE": instance,
            "PLATFORM_API_URL": f"http://{front['listen']}",
            "PLATFORM_API_DIRECT_URL": f"http://127.0.0.1:{api_port}",
            "LOAD_BALANCER_URL": f"http://127.0.0.1:{tier.port}",
            "LOAD_BALANCER_ADMIN_URL": f"http://127.0.0.1:{tier.admin_port}",
            "API_TIER_FILE": str(run_dir / "api-tier.json"),
            "DYNAMODB_ENDPOINT_URL": moto_url,
            "DYNAMODB_HOP_URL": hop_url,
            "CLOUDWATCH_ENDPOINT_URL": moto_url,
            "CLOUDWATCH_HOP_URL": metrics_url,
            "FAULT_PROXY_URL": f"http://127.0.0.1:{admin_port}",
            "SESSIONS_TABLE": settings.table_name,
            "ECS_CLUSTER": settings.cluster_name,
            "ECS_SERVICE": settings.service_name,
            "AWS_REGION": settings.region,
            "STATE_DIR": str(state),
            "EFS_ROOT": str(service.efs_root),
            "PLATFORM_PID": os.getpid(),
            "PLATFORM_PGID": os.getpgid(0),
            "CLOCK_SKEW_FILE": str(clock_file),
            "CONTAINER_CLOCK_SKEW_FILE": str(state / "clock-skew-containers"),
            "CONTROL_PLANE_FILE": str(runtime.control_plane.path),
            "CONTAINER_LIMITS": runtime.limits.mode,
            "DEFECTS": list(settings.defects),
            **face,
        }
        write_atomic(state / "endpoints.json", json.dumps(endpoints, indent=2))
        log.info("platform %s up: %s", instance, endpoints["PLATFORM_API_URL"])
        while not stop.wait(0.1):
            for child in (moto, proxy):
                if child.poll() is not None:
                    log.error("%s exited with %s; stopping the platform", child.args[2], child.returncode)
                    stop.set()
            if not stop.is_set():
                tier.supervise()
    except Exception:
        log.exception("platform failed")
        return 1
    finally:
        if runtime is not None:
            runtime.shutdown()
            if runtime.tasks is not None:
                runtime.tasks.close()
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=3)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
