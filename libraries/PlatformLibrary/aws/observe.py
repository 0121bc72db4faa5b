"""Read-only views of the AWS deployment: EFS mount targets, ALB target health, CloudWatch utilisation,
Application Auto Scaling. Plain functions over boto3 clients; the keywords in ``aws/keywords.py`` wrap them."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from .session import AwsError, call, paginate

ECS_NAMESPACE = "AWS/ECS"
UTILISATION_METRICS = ("CPUUtilization", "MemoryUtilization")
SCALABLE_DIMENSION = "ecs:service:DesiredCount"
_DESIRED_COUNT = re.compile(r"desired count to (\d+)", re.IGNORECASE)


def epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


# ---------------------------------------------------------------------------------------------------- EFS
def efs_mount_targets(efs: Any, file_system_id: str) -> list[dict]:
    """The file system's mount targets: id, subnet, availability zone, IP and ``LifeCycleState``."""
    if not file_system_id:
        raise AwsError("${EFS_FILE_SYSTEM_ID} is empty; set it to the platform's EFS file system (fs-...).")
    items = paginate(
        efs,
        "describe_mount_targets",
        "MountTargets",
        f"Listing the mount targets of EFS {file_system_id}",
        FileSystemId=file_system_id,
    )
    return [
        {
            "id": m.get("MountTargetId"),
            "subnet": m.get("SubnetId"),
            "availabilityZone": m.get("AvailabilityZoneName", ""),
            "ip": m.get("IpAddress", ""),
            "state": m.get("LifeCycleState"),
        }
        for m in items
    ]


# -------------------------------------------------------------------------------------------------- ELBv2
def target_group_arns(elbv2: Any, target_group_arn: str = "", load_balancer_arn: str = "") -> list[str]:
    """The target group to check, or every target group of the load balancer."""
    if target_group_arn:
        return [target_group_arn]
    if not load_balancer_arn:
        raise AwsError("Set ${ALB_TARGET_GROUP_ARN} or ${ALB_ARN}: the ALB's target health needs one of them.")
    groups = paginate(
        elbv2,
        "describe_target_groups",
        "TargetGroups",
        f"Listing the target groups of {load_balancer_arn}",
        LoadBalancerArn=load_balancer_arn,
    )
    return [g["TargetGroupArn"] for g in groups]


def target_health(elbv2: Any, arns: list[str]) -> list[dict]:
    """One entry per registered target: target group, id, port, ``state`` (healthy, unhealthy ...), reason."""
    found = []
    for arn in arns:
        answer = call(elbv2, "describe_target_health", f"Reading target health of {arn}", TargetGroupArn=arn)
        for item in answer.get("TargetHealthDescriptions", []):
            health = item.get("TargetHealth", {})
            found.append(
                {
                    "targetGroup": arn,
                    "id": item.get("Target", {}).get("Id"),
                    "port": item.get("Target", {}).get("Port"),
                    "state": health.get("State"),
                    "reason": health.get("Reason", ""),
                    "description": health.get("Description", ""),
                }
            )
    return found


# --------------------------------------------------------------------------------------------- CloudWatch
def service_utilisation(
    cloudwatch: Any,
    cluster: str,
    service: str,
    metric: str,
    seconds: float,
    statistic: str = "Average",
    period: int = 60,
    now: float | None = None,
) -> dict:
    """``AWS/ECS`` ``metric`` of the service over the last ``seconds``, one datapoint per ``period``."""
    if metric not in UTILISATION_METRICS:
        raise ValueError(f"Metric must be one of {', '.join(UTILISATION_METRICS)}, got {metric!r}.")
    current = now or time.time()
    start = datetime.fromtimestamp(current - seconds, UTC)
    # EndTime is exclusive and compared at whole seconds: one period ahead keeps the newest datapoint in.
    end = datetime.fromtimestamp(current + max(1, int(period)), UTC)
    answer = call(
        cloudwatch,
        "get_metric_statistics",
        f"Reading {ECS_NAMESPACE} {metric} of {cluster}/{service}",
        Namespace=ECS_NAMESPACE,
        MetricName=metric,
        Dimensions=[{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": service}],
        StartTime=start,
        EndTime=end,
        Period=max(1, int(period)),
        Statistics=[statistic],
    )
    points = sorted(
        ({"timestamp": epoch(p["Timestamp"]), "value": float(p[statistic])} for p in answer.get("Datapoints", [])),
        key=lambda p: p["timestamp"],
    )
    values = [p["value"] for p in points]
    return {
        "metric": metric,
        "statistic": statistic,
        "cluster": cluster,
        "service": service,
        "datapoints": points,
        "count": len(values),
        "latest": values[-1] if values else None,
        "maximum": max(values) if values else None,
        "average": sum(values) / len(values) if values else None,
    }


def parse_dimensions(text: str) -> list[dict[str, str]]:
    """``Name=Value,Name2=Value2`` (a profile variable) -> CloudWatch ``Dimensions``; empty: none."""
    dimensions = []
    for item in (part.strip() for part in str(text or "").split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise AwsError(f"Metric dimension {item!r} is not Name=Value (pairs separated by commas).")
        dimensions.append({"Name": name.strip(), "Value": value.strip()})
    return dimensions


def metric_sample_counts(
    cloudwatch: Any, namespace: str, metric: str, dimensions: list[dict[str, str]], start: float, end: float
) -> dict[float, float]:
    """How many samples of ``namespace``/``metric`` (with ``dimensions``) CloudWatch holds per minute from ``start``
    to ``end`` (epoch seconds): the minute's timestamp -> ``SampleCount``. Minutes hold standard-resolution metrics as
    well as high-resolution ones, so a new sample shows as a count that grew or a minute that appeared."""
    answer = call(
        cloudwatch,
        "get_metric_statistics",
        f"Reading {namespace} {metric}",
        Namespace=namespace,
        MetricName=metric,
        Dimensions=dimensions,
        StartTime=datetime.fromtimestamp(start, UTC),
        EndTime=datetime.fromtimestamp(end, UTC),
        Period=60,
        Statistics=["SampleCount"],
    )
    return {float(epoch(p["Timestamp"]) or 0): float(p["SampleCount"]) for p in answer.get("Datapoints", [])}


# ------------------------------------------------------------------------------- Application Auto Scaling
def resource_id(cluster: str, service: str) -> str:
    return f"service/{cluster}/{service}"


def service_capacity(ecs: Any, autoscaling: Any, cluster: str, service: str) -> dict:
    """Desired, running and pending task counts (ECS) and the scaling bounds (Application Auto Scaling)."""
    answer = call(ecs, "describe_services", f"Reading ECS service {service}", cluster=cluster, services=[service])
    services = answer.get("services", [])
    if not services:
        failures = answer.get("failures", [])
        raise AwsError(f"ECS service {service} not found in cluster {cluster}: {failures}")
    svc = services[0]
    targets = call(
        autoscaling,
        "describe_scalable_targets",
        f"Reading the scalable target of {service}",
        ServiceNamespace="ecs",
        ResourceIds=[resource_id(cluster, service)],
        ScalableDimension=SCALABLE_DIMENSION,
    ).get("ScalableTargets", [])
    target = targets[0] if targets else {}
    return {
        "desired": svc.get("desiredCount"),
        "running": svc.get("runningCount"),
        "pending": svc.get("pendingCount"),
        "min": target.get("MinCapacity"),
        "max": target.get("MaxCapacity"),
        "autoScaled": bool(target),
    }


def scaling_activities(autoscaling: Any, cluster: str, service: str, since: float | None = None) -> list[dict]:
    """The service's scaling activities (oldest first), only those started at or after ``since``."""
    items = paginate(
        autoscaling,
        "describe_scaling_activities",
        "ScalingActivities",
        f"Reading the scaling activities of {service}",
        ServiceNamespace="ecs",
        ResourceId=resource_id(cluster, service),
        ScalableDimension=SCALABLE_DIMENSION,
    )
    activities = []
    for item in items:
        started = epoch(item.get("StartTime"))
        if since is not None and (started is None or started < since):
            continue
        match = _DESIRED_COUNT.search(str(item.get("Description", "")))
        activities.append(
            {
                "id": item.get("ActivityId"),
                "description": item.get("Description", ""),
                "cause": item.get("Cause", ""),
                "status": item.get("StatusCode"),
                "statusMessage": item.get("StatusMessage", ""),
                "startTime": started,
                "endTime": epoch(item.get("EndTime")),
                "desiredCount": int(match.group(1)) if match else None,
            }
        )
    return sorted(activities, key=lambda a: a["startTime"] or 0.0)
