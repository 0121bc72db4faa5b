"""AWS keywords: EFS mount targets, ALB target health, CloudWatch utilisation, auto scaling, caller identity.

Everything here reads the AWS APIs (boto3; the unit tests run it against moto). The other AWS-facing
keywords live with their concern: ECS tasks in ``targets.aws.keywords``, FIS faults and the chaos guard in
``faults.fis``, the Toxiproxy hop in front of the ALB in ``faults.proxy``, cost in ``report.cost``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Literal

from robot.api.deco import keyword
from robot.api.exceptions import SkipExecution

from ..core.profile import format_seconds
from ..core.waiting import wait_until
from .observe import (
    efs_mount_targets,
    metric_sample_counts,
    parse_dimensions,
    scaling_activities,
    service_capacity,
    service_utilisation,
    target_group_arns,
    target_health,
)
from .session import AwsComponent, call

# Choice arguments: libdoc lists the allowed values and Robot converts them.
UtilisationMetric = Literal["CPUUtilization", "MemoryUtilization"]  # observe.UTILISATION_METRICS
Statistic = Literal["Average", "Maximum", "Minimum", "Sum", "SampleCount"]  # CloudWatch statistics


class AwsKeywords(AwsComponent):
    """Keywords that read the deployment's AWS services around the sessions."""

    # ------------------------------------------------------------------ EFS
    @keyword(tags=["aws-only", "efs"])
    def get_efs_mount_targets(self) -> list[dict]:
        """Returns the mount targets of ``${EFS_FILE_SYSTEM_ID}``: ``id``, ``subnet``, ``availabilityZone``,
        ``ip`` and ``state`` (``available``, ``creating``, ``deleting`` ...)."""
        return efs_mount_targets(self._client("efs"), self._name("EFS_FILE_SYSTEM_ID"))

    @keyword(tags=["aws-only", "efs", "assertion"])
    def efs_mount_targets_should_be_available(self) -> list[dict]:
        """Fails unless the file system has mount targets and every one is ``available``; returns them."""
        targets = self.get_efs_mount_targets()
        if not targets:
            raise AssertionError(f"EFS {self._name('EFS_FILE_SYSTEM_ID')} has no mount targets.")
        bad = [t for t in targets if t["state"] != "available"]
        if bad:
            raise AssertionError(
                "EFS mount targets not available: "
                + "; ".join(f"{t['id']} in {t['subnet']} is {t['state']}" for t in bad)
            )
        self.info(f"{len(targets)} EFS mount target(s) available.")
        return targets

    # ------------------------------------------------------------------ ALB
    @keyword(tags=["aws-only", "alb"])
    def get_alb_target_health(self) -> list[dict]:
        """Returns the health of every target behind the ALB: ``${ALB_TARGET_GROUP_ARN}``, or every target
        group of ``${ALB_ARN}``. Items: ``targetGroup``, ``id``, ``port``, ``state``, ``reason``, ``description``."""
        elbv2 = self._client("elbv2")
        arns = target_group_arns(
            elbv2, str(self.profile.get("ALB_TARGET_GROUP_ARN", "") or ""), str(self.profile.get("ALB_ARN", "") or "")
        )
        return target_health(elbv2, arns)

    @keyword(tags=["aws-only", "alb", "wait"])
    def wait_until_alb_targets_are_healthy(self, minimum: int = 1, timeout: timedelta | None = None) -> float:
        """Waits until at least ``minimum`` targets are ``healthy`` and returns the seconds it took.

        Deadline: ``timeout`` or ``${ALB_HEALTH_TIMEOUT}``; the failure lists every target's state and reason.
        """
        seen: dict[str, list] = {"targets": []}

        def probe():
            seen["targets"] = self.get_alb_target_health()
            healthy = [t for t in seen["targets"] if t["state"] == "healthy"]
            return len(healthy) if len(healthy) >= minimum else None

        waited = wait_until(
            probe,
            self._timeout(timeout, "ALB_HEALTH_TIMEOUT", "5 min"),
            self._poll(),
            lambda: (
                f"Fewer than {minimum} healthy ALB target(s): "
                + (
                    "; ".join(f"{t['id']}:{t['port']} {t['state']} {t['reason']}".strip() for t in seen["targets"])
                    or "none"
                )
            ),
        )
        self.info(f"{waited.value} healthy ALB target(s) after {format_seconds(waited.seconds)}.")
        return waited.seconds

    # ------------------------------------------------------------------ CloudWatch (both targets)
    @keyword(tags=["cloudwatch", "metrics"])
    def get_service_utilisation(
        self,
        metric: UtilisationMetric = "CPUUtilization",
        window: timedelta = timedelta(minutes=5),
        statistic: Statistic = "Average",
        period: timedelta = timedelta(minutes=1),
    ) -> dict:
        """Returns the ``AWS/ECS`` ``metric`` (``CPUUtilization`` or ``MemoryUtilization``) of the session service.

        Dimensions ``ClusterName``/``ServiceName`` from ``${ECS_CLUSTER}``/``${ECS_SERVICE}``; one datapoint of
        ``statistic`` per ``period`` over the last ``window``. Works on both targets: the embedded platform
        publishes the same metrics to its moto server (``CLOUDWATCH_ENDPOINT_URL``). Keys: ``datapoints``
        (``timestamp``, ``value``), ``count``, ``latest``, ``maximum``, ``average`` (``None`` without data).
        """
        result = service_utilisation(
            self._client("cloudwatch"),
            self._name("ECS_CLUSTER"),
            self._name("ECS_SERVICE"),
            metric,
            window.total_seconds(),
            statistic,
            int(period.total_seconds()),
        )
        self.info(
            f"{metric} ({statistic}) of {result['cluster']}/{result['service']} over "
            f"{format_seconds(window.total_seconds())}: {result['count']} datapoint(s), "
            f"latest {result['latest']}, maximum {result['maximum']}."
        )
        return result

    def _platform_metric(self) -> dict | None:
        namespace = str(self.profile.get("PLATFORM_METRIC_NAMESPACE", "") or "").strip()
        name = str(self.profile.get("PLATFORM_METRIC_NAME", "") or "").strip()
        if not namespace or not name:
            return None
        dimensions = parse_dimensions(str(self.profile.get("PLATFORM_METRIC_DIMENSIONS", "") or ""))
        return {"namespace": namespace, "name": name, "dimensions": dimensions}

    @keyword(tags=["cloudwatch", "metrics", "assertion"])
    def platform_metric_should_be_named(self) -> dict:
        """Skips the test, saying what to set, unless the profile names the metric the platform publishes itself:
        ``${PLATFORM_METRIC_NAMESPACE}``, ``${PLATFORM_METRIC_NAME}`` and ``${PLATFORM_METRIC_DIMENSIONS}``
        (``Name=Value`` pairs separated by commas). Returns it (``namespace``, ``name``, ``dimensions``).

        The deployment contract promises no metric of the platform's own, and ``AWS/ECS`` metrics are ECS's, not the
        tasks': they do not pass the tasks' route to CloudWatch, so they cannot show it failing or coming back.
        """
        metric = self._platform_metric()
        if metric is None:
            raise SkipExecution(
                "The profile names no metric the platform publishes itself (${PLATFORM_METRIC_NAMESPACE} and "
                "${PLATFORM_METRIC_NAME}, env of the same names; ${PLATFORM_METRIC_DIMENSIONS} as Name=Value,...), "
                "so its metrics flowing again cannot be seen. AWS/ECS metrics are ECS's own and do not pass the "
                'platform\'s route to CloudWatch (docs/deployment-contract.md, "The route to CloudWatch").'
            )
        self.info(f"The platform's own metric: {metric['namespace']} {metric['name']} {metric['dimensions']}.")
        return metric

    @keyword(tags=["cloudwatch", "metrics", "wait"])
    def wait_until_platform_metric_is_published(self, timeout: timedelta | None = None) -> float:
        """Waits until CloudWatch holds a sample of the platform's own metric (see `Platform Metric Should Be Named`)
        that it did not hold when this keyword started, and returns the seconds it took: the platform's metrics flow
        again, e.g. after CloudWatch was unreachable. Read per minute as ``SampleCount`` (a count that grew or a minute
        that appeared), so standard-resolution metrics count as well as high-resolution ones. Deadline: ``timeout``
        or ``${RECOVERY_TIMEOUT}``.
        """
        metric = self.platform_metric_should_be_named()
        cloudwatch = self._client("cloudwatch")
        since = time.time()
        start = since - 300  # fixed, so the minutes read stay the same ones

        def counts() -> dict[float, float]:
            args = (metric["namespace"], metric["name"], metric["dimensions"])
            return metric_sample_counts(cloudwatch, *args, start, time.time() + 60)

        before = counts()
        seen = {"latest": before}

        def probe():
            seen["latest"] = now = counts()
            grown = {stamp: count for stamp, count in now.items() if count > before.get(stamp, 0)}
            return grown or None

        waited = wait_until(
            probe,
            self._timeout(timeout, "RECOVERY_TIMEOUT", "30 s"),
            self._poll(),
            lambda: (
                f"The platform published no {metric['namespace']} {metric['name']} sample since {since:.0f}: samples "
                f"per minute then {before}, last read {seen['latest']}."
            ),
        )
        self.info(f"{metric['name']} published again after {format_seconds(waited.seconds)}: {waited.value}.")
        return waited.seconds

    @keyword(tags=["cloudwatch", "metrics", "assertion"])
    def service_utilisation_should_be_below(
        self,
        metric: UtilisationMetric,
        percent: float,
        window: timedelta = timedelta(minutes=5),
        statistic: Statistic = "Maximum",
    ) -> float:
        """Fails unless every datapoint of ``metric`` over ``window`` is below ``percent``; returns the highest.

        Fails too when there is no datapoint at all: no data is not a pass.
        """
        result = self.get_service_utilisation(metric, window, statistic)
        if not result["count"]:
            raise AssertionError(f"No {metric} datapoints for {result['cluster']}/{result['service']} in the window.")
        if result["maximum"] >= float(percent):
            raise AssertionError(
                f"{metric} ({statistic}) reached {result['maximum']:g} %, allowed is below {percent} %."
            )
        return result["maximum"]

    # ------------------------------------------------------------------ Application Auto Scaling
    @keyword(tags=["aws-only", "scaling"])
    def get_service_capacity(self) -> dict:
        """Returns the session service's ``desired``, ``running``, ``pending`` task counts (ECS) and its scaling
        bounds ``min``/``max`` (Application Auto Scaling; ``autoScaled`` is false when none is registered)."""
        return service_capacity(
            self._client("ecs"),
            self._client("application-autoscaling"),
            self._name("ECS_CLUSTER"),
            self._name("ECS_SERVICE"),
        )

    @keyword(tags=["aws-only", "scaling"])
    def get_scaling_activities(self, since: float | None = None) -> list[dict]:
        """Returns the service's scaling activities (oldest first), those started at or after ``since``
        (epoch seconds) when given. Items: ``id``, ``description``, ``cause``, ``status``, ``startTime``,
        ``endTime``, ``desiredCount`` (from the description)."""
        return scaling_activities(
            self._client("application-autoscaling"), self._name("ECS_CLUSTER"), self._name("ECS_SERVICE"), since
        )

    @keyword(tags=["aws-only", "scaling", "wait", "metrics"])
    def wait_until_scaling_activity_succeeds(
        self, since: float, minimum_desired: int | None = None, timeout: timedelta | None = None
    ) -> dict:
        """Waits for a successful scaling activity started after ``since`` and returns the response times.

        ``since`` is when the trigger began (epoch seconds, e.g. ``Get Current Date  result_format=epoch``
        before the load starts). With ``minimum_desired`` only an activity setting the desired count to at
        least that counts (a scale-out to that size). Returns ``activity``, ``decisionSeconds`` (trigger to
        the activity's start) and ``responseSeconds`` (trigger to its end). Deadline: ``timeout`` or
        ``${SCALE_OUT_TIMEOUT}``.
        """
        seen: dict[str, list] = {"activities": []}

        def probe():
            seen["activities"] = self.get_scaling_activities(since)
            for activity in seen["activities"]:
                if activity["status"] != "Successful" or activity["endTime"] is None:
                    continue
                if minimum_desired is not None and (activity["desiredCount"] or 0) < int(minimum_desired):
                    continue
                return activity
            return None

        waited = wait_until(
            probe,
            self._timeout(timeout, "SCALE_OUT_TIMEOUT", "15 min"),
            self._poll(),
            lambda: (
                "No successful scaling activity"
                + (f" to at least {minimum_desired} tasks" if minimum_desired is not None else "")
                + f" since {since}; seen: "
                + ("; ".join(f"{a['description']} {a['status']}" for a in seen["activities"]) or "none")
            ),
        )
        activity = waited.value
        result = {
            "activity": activity,
            "decisionSeconds": round(activity["startTime"] - float(since), 3),
            "responseSeconds": round(activity["endTime"] - float(since), 3),
        }
        self.info(f"Scaling activity '{activity['description']}': response {result['responseSeconds']} s.")
        return result

    # ------------------------------------------------------------------ identity (for the log)
    @keyword(tags=["aws-only"])
    def get_aws_caller_identity(self) -> dict:
        """Returns the ``Account`` and ``Arn`` the suite acts as (STS GetCallerIdentity, needs no permission).

        Use it at the start of an AWS run to see in the log which account and role the default credential
        chain picked. Keys and tokens are never part of the answer.
        """
        answer = call(self._client("sts"), "get_caller_identity", "Reading the caller identity")
        identity = {"Account": answer.get("Account"), "Arn": answer.get("Arn")}
        self.info(f"Acting as {identity['Arn']} in account {identity['Account']}.")
        return identity
