"""AWS Fault Injection Service: experiment templates for faults inside ECS tasks, experiments, clean-up.

Templates and experiments carry the run's tags (``aws/safety.run_tags``); stopping and deleting only ever
touch ones tagged with this run's id. A dry run starts the experiment with ``actionsMode=skip-all``: FIS
resolves the targets and checks the role and the stop condition, but injects nothing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .safety import is_tagged_with_run, run_tags, tags_as_dict
from .session import AwsError, call, paginate, redact

TERMINAL_STATES = ("completed", "stopped", "failed", "cancelled")
ACTIVE_STATES = ("pending", "initiating", "running", "stopping")
TARGET_KEY = "Tasks"  # the target key of every aws:ecs:task action
ECS_TASK_RESOURCE = "aws:ecs:task"
ACTION_NAME = "fault"


@dataclass(frozen=True)
class FisAction:
    """One FIS action on ECS tasks: its id, whether it runs for a ``duration``, and its parameters."""

    action_id: str
    summary: str
    takes_duration: bool = True
    required: tuple[str, ...] = ()
    defaults: Mapping[str, str] = field(default_factory=dict)
    network: bool = False


FIS_ECS_ACTIONS: dict[str, FisAction] = {
    action.action_id: action
    for action in (
        FisAction("aws:ecs:stop-task", "stop the task", takes_duration=False),
        FisAction(
            "aws:ecs:task-kill-process",
            "kill a process inside the task",
            takes_duration=False,
            required=("processName",),
            defaults={"signal": "SIGKILL"},
        ),
        FisAction("aws:ecs:task-cpu-stress", "stress the task's CPU"),
        FisAction("aws:ecs:task-io-stress", "stress the task's I/O"),
        FisAction(
            "aws:ecs:task-network-blackhole-port",
            "drop traffic to a port of the task",
            required=("port", "protocol"),
            defaults={"trafficType": "ingress"},
            network=True,
        ),
        FisAction("aws:ecs:task-network-latency", "add network latency to the task", network=True),
        FisAction("aws:ecs:task-network-packet-loss", "drop a share of the task's packets", network=True),
    )
}


def fault_injection_problems(definition: dict, action: FisAction) -> list[str]:
    """Why FIS cannot run ``action`` in tasks of ``definition`` (a DescribeTaskDefinition answer); ``[]`` if it can.

    The aws:ecs:task-* actions run an SSM document through an SSM agent container in the task (FIS user guide,
    "Use the AWS FIS aws:ecs:task actions": its environment names MANAGED_INSTANCE_ROLE_NAME); on Fargate that
    container sees the others' processes only with ``pidMode: task``; the network actions use ECS's fault injection
    endpoints, which need ``enableFaultInjection: true`` and the awsvpc or host network mode (ECS developer guide,
    "Use fault injection with your Amazon ECS and Fargate workloads"). stop-task needs none of it.
    """
    if action.action_id == "aws:ecs:stop-task":
        return []
    name = f"task definition {definition.get('family', '?')}:{definition.get('revision', '?')}"
    problems = []
    containers = definition.get("containerDefinitions") or []
    environment = [entry.get("name") for c in containers for entry in c.get("environment") or []]
    if "MANAGED_INSTANCE_ROLE_NAME" not in environment:
        problems.append(
            f"{name} has no SSM agent container (no container sets MANAGED_INSTANCE_ROLE_NAME), through which FIS "
            "runs its aws:ecs:task actions"
        )
    if "FARGATE" in (definition.get("requiresCompatibilities") or []) and definition.get("pidMode") != "task":
        problems.append(f"{name} does not set pidMode 'task': on Fargate FIS cannot reach the app's processes")
    if action.network:
        if not definition.get("enableFaultInjection"):
            problems.append(f"{name} does not set enableFaultInjection: true, which the network actions need")
        if definition.get("networkMode") not in ("awsvpc", "host"):
            problems.append(f"{name} uses network mode {definition.get('networkMode')!r}; fault injection needs awsvpc")
    return problems


def essential_container_port(definition: Mapping[str, Any]) -> int | None:
    """The first container port the task definition's essential container maps (what a port fault such as
    ``aws:ecs:task-network-blackhole-port`` targets), ``None`` when it maps none."""
    for container in definition.get("containerDefinitions") or []:
        if container.get("essential", True):
            for mapping in container.get("portMappings") or []:
                if mapping.get("containerPort"):
                    return int(mapping["containerPort"])
    return None


def resolve_action(name: str) -> FisAction:
    """``aws:ecs:task-cpu-stress``, ``task-cpu-stress`` or ``cpu-stress`` -> the action; anything else fails."""
    text = str(name).strip()
    for candidate in (text, f"aws:ecs:{text}", f"aws:ecs:task-{text}"):
        if candidate in FIS_ECS_ACTIONS:
            return FIS_ECS_ACTIONS[candidate]
    raise ValueError(f"Unknown FIS action {name!r}; supported: {', '.join(FIS_ECS_ACTIONS)}.")


def iso_duration(seconds: float) -> str:
    """Seconds as the ISO 8601 duration FIS wants: ``PT1M``, ``PT90S``, ``PT2H`` (rounded up to a second)."""
    if seconds <= 0:
        raise ValueError(f"A fault duration must be positive, got {seconds} s.")
    whole = math.ceil(seconds)
    if whole % 3600 == 0:
        return f"PT{whole // 3600}H"
    if whole % 60 == 0:
        return f"PT{whole // 60}M"
    return f"PT{whole}S"


def ecs_task_target(
    task_arns: Iterable[str] | None = None,
    cluster: str | None = None,
    service: str | None = None,
    selection_mode: str = "ALL",
) -> dict:
    """A FIS target of ECS tasks: exact task ARNs, or tasks of a service (``COUNT(n)``/``PERCENT(n)``/``ALL``)."""
    target: dict[str, Any] = {"resourceType": ECS_TASK_RESOURCE, "selectionMode": selection_mode}
    arns = [str(a) for a in task_arns or [] if a]
    if arns:
        target["resourceArns"] = arns
    elif cluster and service:
        target["parameters"] = {"cluster": cluster, "service": service}
    else:
        raise ValueError("A FIS target needs task ARNs, or the cluster and the service whose tasks it picks.")
    return target


def build_template(
    action: FisAction,
    target: dict,
    *,
    run_id: str,
    role_arn: str,
    parameters: Mapping[str, Any] | None = None,
    duration_seconds: float | None = None,
    stop_alarm_arns: Iterable[str] = (),
    worker: str | None = None,
    test: str | None = None,
) -> dict:
    """The ``CreateExperimentTemplate`` request for one action on one target, tagged with the run."""
    if not role_arn:
        raise AwsError("${FIS_ROLE_ARN} is empty: FIS needs the role it acts with (see docs/aws.md).")
    params = {**action.defaults, **{str(k): _text(v) for k, v in (parameters or {}).items()}}
    if action.takes_duration:
        if duration_seconds is None:
            raise ValueError(f"{action.action_id} needs a duration, e.g. duration=1 min.")
        params["duration"] = iso_duration(duration_seconds)
    missing = [name for name in action.required if not params.get(name)]
    if missing:
        raise ValueError(f"{action.action_id} needs parameter(s) {', '.join(missing)}.")
    alarms = [a for a in stop_alarm_arns if a]
    stop_conditions = (
        [{"source": "aws:cloudwatch:alarm", "value": arn} for arn in alarms] if alarms else [{"source": "none"}]
    )
    description = f"PlatformLibrary run {run_id}: {action.action_id} ({action.summary})"
    if test:
        description += f" in {test}"
    return {
        "clientToken": str(uuid.uuid4()),
        "description": description[:512],
        "roleArn": role_arn,
        "stopConditions": stop_conditions,
        "targets": {TARGET_KEY: target},
        "actions": {
            ACTION_NAME: {
                "actionId": action.action_id,
                "description": action.summary,
                "parameters": params,
                "targets": {TARGET_KEY: TARGET_KEY},
            }
        },
        "experimentOptions": {"emptyTargetResolutionMode": "fail"},
        "tags": run_tags(run_id, worker, Name=f"platformlibrary-{run_id}", test=test or ""),
    }


def describe_injection(request: Mapping[str, Any], dry_run: bool = False) -> str:
    """Human text of what a template would inject, for the log (redacted)."""
    lines = []
    for name, action in request.get("actions", {}).items():
        target_names = ", ".join(action.get("targets", {}).values())
        params = ", ".join(f"{k}={v}" for k, v in sorted(action.get("parameters", {}).items())) or "no parameters"
        lines.append(f"action {name}: {action['actionId']} ({params}) on target {target_names}")
    for name, target in request.get("targets", {}).items():
        chosen = target.get("resourceArns") or target.get("parameters")
        lines.append(f"target {name}: {target['resourceType']} {chosen} selection {target.get('selectionMode')}")
    conditions = [c.get("value") or c.get("source") for c in request.get("stopConditions", [])]
    lines.append(f"stop conditions: {', '.join(conditions)}")
    lines.append(f"role: {request.get('roleArn')}")
    prefix = "DRY RUN (actionsMode=skip-all), would inject:" if dry_run else "Injecting:"
    return redact(prefix + "\n- " + "\n- ".join(lines))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def alarm_name_of(arn: str) -> str:
    """``arn:aws:cloudwatch:<region>:<account>:alarm:<name>`` -> ``<name>``."""
    parts = str(arn).split(":alarm:", 1)
    if len(parts) != 2 or not parts[1]:
        raise ValueError(f"{arn!r} is not a CloudWatch alarm ARN (arn:aws:cloudwatch:<region>:<account>:alarm:<name>).")
    return parts[1]


class FisExperiments:
    """FIS calls for one run: every create and start is tagged, every stop and delete checks the tag."""

    def __init__(self, client: Any, run_id: str):
        self.client = client
        self.run_id = run_id

    def create_template(self, request: Mapping[str, Any]) -> dict:
        answer = call(self.client, "create_experiment_template", "Creating the FIS experiment template", **request)
        return answer["experimentTemplate"]

    def start(self, template_id: str, dry_run: bool, tags: Mapping[str, str]) -> dict:
        params: dict[str, Any] = {
            "clientToken": str(uuid.uuid4()),
            "experimentTemplateId": template_id,
            "tags": dict(tags),
        }
        if dry_run:
            params["experimentOptions"] = {"actionsMode": "skip-all"}
        answer = call(self.client, "start_experiment", f"Starting FIS experiment from template {template_id}", **params)
        return answer["experiment"]

    def get(self, experiment_id: str) -> dict:
        return call(self.client, "get_experiment", f"Reading FIS experiment {experiment_id}", id=experiment_id)[
            "experiment"
        ]

    def template(self, template_id: str) -> dict:
        return call(
            self.client, "get_experiment_template", f"Reading FIS experiment template {template_id}", id=template_id
        )["experimentTemplate"]

    @staticmethod
    def state_of(experiment: Mapping[str, Any]) -> str:
        return str(experiment.get("state", {}).get("status", "unknown"))

    @staticmethod
    def reason_of(experiment: Mapping[str, Any]) -> str:
        return str(experiment.get("state", {}).get("reason", ""))

    def ours(self, experiment: Mapping[str, Any]) -> bool:
        return is_tagged_with_run(experiment.get("tags"), self.run_id)

    def stop(self, experiment_id: str) -> dict:
        """Stop one experiment of this run; refuse one without the run's tag."""
        experiment = self.get(experiment_id)
        if not self.ours(experiment):
            raise AwsError(
                f"FIS experiment {experiment_id} is not tagged suite-run-id={self.run_id}; this run does not stop "
                f"what it did not start (its tags: {tags_as_dict(experiment.get('tags'))})."
            )
        if self.state_of(experiment) in TERMINAL_STATES:
            return experiment
        return call(self.client, "stop_experiment", f"Stopping FIS experiment {experiment_id}", id=experiment_id)[
            "experiment"
        ]

    def experiments_of_run(self, worker: str | None = None) -> list[dict]:
        """Summaries of the experiments tagged with this run (and ``worker``, when given)."""
        found = []
        for summary in paginate(self.client, "list_experiments", "experiments", "Listing FIS experiments"):
            tags = tags_as_dict(summary.get("tags"))
            if not self.ours(summary):
                continue
            if worker and tags.get("suite-worker") != worker:
                continue
            found.append(summary)
        return found

    def stop_experiments_of_run(self, worker: str | None = None) -> list[str]:
        """Stop every active experiment tagged with this run; returns the ids it stopped."""
        stopped = []
        for summary in self.experiments_of_run(worker):
            if self.state_of(summary) in ("pending", "initiating", "running"):
                call(self.client, "stop_experiment", f"Stopping FIS experiment {summary['id']}", id=summary["id"])
                stopped.append(summary["id"])
        return stopped

    def templates_of_run(self) -> list[dict]:
        items = paginate(self.client, "list_experiment_templates", "experimentTemplates", "Listing FIS templates")
        return [t for t in items if is_tagged_with_run(t.get("tags"), self.run_id)]

    def delete_templates_of_run(self) -> list[str]:
        deleted = []
        for template in self.templates_of_run():
            call(
                self.client,
                "delete_experiment_template",
                f"Deleting FIS experiment template {template['id']}",
                id=template["id"],
            )
            deleted.append(template["id"])
        return deleted
