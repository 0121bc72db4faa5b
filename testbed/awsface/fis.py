"""AWS Fault Injection Service (REST-JSON, API version 2020-12-01) for the embedded platform's ECS tasks.

:class:`FisEmulator` answers the FIS operations an HTTP server hands it (``handle(method, path, query, body)``)
and runs every experiment in a thread, injecting the faults into the real task processes through a
:class:`~testbed.awsface.actions.FaultActions`. Paths, shapes and error codes are botocore's service model for
``fis`` 2020-12-01: errors are HTTP 400/404/409 with ``{"message": ...}`` and an ``x-amzn-ErrorType`` header (which
botocore's rest-json parser reads first); timestamps are epoch seconds.

Behaviour, and the AWS documentation it follows:

- Experiment and action states: FIS user guide, "Experiment states" / "Action states" (and the API reference's
  ExperimentState, ExperimentActionState). An experiment goes ``pending`` -> ``initiating`` (targets resolved, stop
  conditions checked) -> ``running`` -> ``completed``, or ``stopping`` -> ``stopped``, or ``failed``. An action goes
  ``pending`` -> ``initiating`` -> ``running`` -> ``completed`` (or ``stopping`` -> ``stopped``, ``failed``);
  ``skipped`` when it has no target (emptyTargetResolutionMode ``skip``) or the experiment runs with
  ``actionsMode=skip-all``; ``cancelled`` when the experiment stopped or failed before the action started.
  Instant actions (stop-task, kill-process) complete as soon as they have acted; the others when their
  ``duration`` has passed. An action with ``startAfter`` starts when those actions have completed or been skipped.
- Stop conditions: FIS user guide, "Stop conditions for AWS FIS". Each ``aws:cloudwatch:alarm`` must exist when
  the template is created; the experiment fails to start when one is already in ALARM, and while it runs every
  alarm is read every 0.5 s: one in ALARM stops the experiment (``stopping`` -> ``stopped``).
- Targets: FIS user guide, "Targets for AWS FIS" (resource ARNs or tags or parameters, filters, selection mode)
  and "Resource types" (``aws:ecs:task`` with parameters ``cluster`` and ``service``). Targets are resolved once,
  when the experiment starts: ARNs name tasks of the registry that are running (others are not resolved),
  ``cluster``/``service`` pick the service's running tasks, ``resourceTags`` must all match, then ``ALL``,
  ``COUNT(n)`` (n at random, all of them when fewer) or ``PERCENT(n)`` (n% at random, rounded down as FIS does:
  "If you have an odd number of resources and specify 50%, AWS FIS rounds down"; less than one resource selects
  none). No resource: the experiment fails with "Target resolution returned empty set", unless the template's
  ``experimentOptions.emptyTargetResolutionMode`` is ``skip`` (FIS user guide, "Experiment options for AWS FIS").
- ``actionsMode=skip-all`` (StartExperiment's experimentOptions; "Experiment options for AWS FIS", "Actions mode"):
  targets are resolved and stop conditions checked, every action is ``skipped``, the experiment ``completed``.
- Actions and their parameters: FIS user guide, "AWS FIS actions reference", aws:ecs:stop-task and the
  aws:ecs:task-* actions ("Use the AWS FIS aws:ecs:task actions"), whose limitation "the network actions cannot
  run in parallel" holds per task. How each is carried out: :mod:`testbed.awsface.actions`.
- StopExperiment answers ``stopping`` (reason "Stopping Experiment.", as in the AWS CLI reference example); the
  experiment's thread then reverts the faults and ends ``stopped``.

Whatever ends an experiment (completion, StopExperiment, a stop condition, a failed action, :meth:`close`), every
fault it applied is reverted before it reaches its final state.

Deliberate simplifications:

- Only the aws:ecs:stop-task and aws:ecs:task-* actions and the ``aws:ecs:task`` resource type; single-account.
- Parameters (values and ranges too) are all checked at CreateExperimentTemplate, where FIS checks names and
  required ones; problems found only when injecting (no such process, no mesh hop) fail the action.
- How each fault is made differs from FIS's SSM documents (see :mod:`testbed.awsface.actions`): io-stress's
  ``percent`` is the share of time spent writing (FIS: a share of the free disk space); packet-loss drops a share
  of the connections, not of the packets; blackhole-port holds the data of the task's one port whatever ``port``;
  latency and packet-loss on the API tier's tasks reach only its route to DynamoDB (``sources`` naming it), which
  every API target shares.
- An experiment's tags are StartExperiment's tags only (the template's are not copied).
- The role is only checked to be an IAM role ARN: no permission is evaluated. Log and report configurations are
  kept and echoed, never used. UpdateExperimentTemplate, target account configurations and safety levers are
  not implemented.
- A stop-condition alarm that disappears while an experiment runs stops it (the guardrail is gone); an alarm
  that cannot be read for a moment (``alarm_state`` raised) is read again at the next poll.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .actions import (
    ACTIONS,
    ECS_TASK_RESOURCE,
    TARGET_KEY,
    FaultActions,
    FaultError,
    ParameterError,
    Reversible,
)
from .tasks import ACCOUNT_ID, Task, TaskRegistry

log = logging.getLogger(__name__)

Response = tuple[int, dict[str, Any], dict[str, str]]

ALARM_POLL_S = 0.5
TICK_S = 0.05
EXPERIMENTS_KEPT = 2000  # ended experiments kept for Get/List (oldest go first)
ACTIVE = ("pending", "initiating", "running", "stopping")
ENDED = ("completed", "stopped", "failed", "cancelled")
ACTION_DONE = ("completed", "skipped")
ACTION_ENDED = ("completed", "skipped", "stopped", "failed", "cancelled")
EMPTY_TARGETS = "Target resolution returned empty set"
_ID_CHARS = string.ascii_letters + string.digits
_ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_TASK_ARN = re.compile(r"arn:aws[\w-]*:ecs:[\w-]+:\d{12}:task/[^/\s]+/[^/\s]+")
_ALARM_ARN = re.compile(r"arn:aws[\w-]*:cloudwatch:[\w-]+:\d{12}:alarm:(.+)")
_SELECTION = re.compile(r"ALL|COUNT\((\d+)\)|PERCENT\((\d+)\)")


class FisError(Exception):
    """An error FIS answers: HTTP status, error code (``x-amzn-ErrorType``) and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> FisError:
    return FisError(400, "ValidationException", message)


def _not_found(message: str) -> FisError:
    return FisError(404, "ResourceNotFoundException", message)


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(14))


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _invalid(f"{what} must be a map of strings")
    return dict(value)


@dataclass
class Template:
    """An experiment template as CreateExperimentTemplate stored it."""

    id: str
    arn: str
    description: str
    targets: dict[str, dict[str, Any]]
    actions: dict[str, dict[str, Any]]
    stop_conditions: list[dict[str, str]]
    role_arn: str
    tags: dict[str, str]
    options: dict[str, str]
    extra: dict[str, Any]
    created: float
    updated: float

    def describe(self) -> dict[str, Any]:
        answer = {
            "id": self.id,
            "arn": self.arn,
            "description": self.description,
            "targets": copy.deepcopy(self.targets),
            "actions": copy.deepcopy(self.actions),
            "stopConditions": copy.deepcopy(self.stop_conditions),
            "creationTime": self.created,
            "lastUpdateTime": self.updated,
            "roleArn": self.role_arn,
            "tags": dict(self.tags),
            "experimentOptions": dict(self.options),
            "targetAccountConfigurationsCount": 0,
        }
        answer.update(copy.deepcopy(self.extra))
        return answer

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "arn": self.arn,
            "description": self.description,
            "creationTime": self.created,
            "lastUpdateTime": self.updated,
            "tags": dict(self.tags),
        }


@dataclass
class ActionRun:
    """One action of one experiment: its state, and the faults it applied (reverted when it ends)."""

    name: str
    definition: dict[str, Any]
    params: dict[str, Any]
    status: str = "pending"
    reason: str = "Initial state"
    started_at: float | None = None
    ended_at: float | None = None
    due: float | None = None  # monotonic time the action's duration ends
    applied: list[Reversible] = field(default_factory=list)
    network_tasks: list[str] = field(default_factory=list)

    @property
    def action_id(self) -> str:
        return str(self.definition["actionId"])

    @property
    def target(self) -> str:
        return str(self.definition.get("targets", {}).get(TARGET_KEY, ""))

    def describe(self) -> dict[str, Any]:
        answer = copy.deepcopy(self.definition)
        answer["state"] = {"status": self.status, "reason": self.reason}
        if self.started_at is not None:
            answer["startTime"] = self.started_at
        if self.ended_at is not None:
            answer["endTime"] = self.ended_at
        return answer


@dataclass
class Experiment:
    """One run of a template."""

    id: str
    arn: str
    template: Template
    tags: dict[str, str]
    actions_mode: str
    runs: dict[str, ActionRun]
    created: float
    status: str = "pending"
    reason: str = "Experiment is pending."
    started: float | None = None
    ended: float | None = None
    resolved: dict[str, list[str]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_status: str = "stopped"
    stop_reason: str = ""
    thread: threading.Thread | None = None

    def describe(self) -> dict[str, Any]:
        template = self.template
        answer: dict[str, Any] = {
            "id": self.id,
            "arn": self.arn,
            "experimentTemplateId": template.id,
            "roleArn": template.role_arn,
            "state": {"status": self.status, "reason": self.reason},
            "targets": copy.deepcopy(template.targets),
            "actions": {name: run.describe() for name, run in self.runs.items()},
            "stopConditions": copy.deepcopy(template.stop_conditions),
            "creationTime": self.created,
            "tags": dict(self.tags),
            "experimentOptions": self.options(),
            "targetAccountConfigurationsCount": 0,
        }
        if self.started is not None:
            answer["startTime"] = self.started
        if self.ended is not None:
            answer["endTime"] = self.ended
        for key in ("logConfiguration", "experimentReportConfiguration"):
            if key in template.extra:
                answer[key] = copy.deepcopy(template.extra[key])
        return answer

    def options(self) -> dict[str, str]:
        return {
            "accountTargeting": "single-account",
            "emptyTargetResolutionMode": self.template.options.get("emptyTargetResolutionMode", "fail"),
            "actionsMode": self.actions_mode,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "arn": self.arn,
            "experimentTemplateId": self.template.id,
            "state": {"status": self.status, "reason": self.reason},
            "creationTime": self.created,
            "tags": dict(self.tags),
            "experimentOptions": self.options(),
        }


class FisEmulator:
    """The FIS API over the platform's ECS tasks; see the module docstring for what it follows and simplifies.

    ``alarm_state(name)`` returns a CloudWatch alarm's StateValue (``OK``, ``ALARM``, ``INSUFFICIENT_DATA``) or None
    when no alarm has that name.
    """

    def __init__(
        self,
        registry: TaskRegistry,
        actions: FaultActions,
        alarm_state: Callable[[str], str | None],
        region: str,
    ) -> None:
        self.registry = registry
        self.actions = actions
        self.alarm_state = alarm_state
        self.region = region
        self._lock = threading.RLock()
        self._templates: dict[str, Template] = {}
        self._experiments: dict[str, Experiment] = {}
        self._tokens: dict[tuple[str, str], str] = {}  # (operation, clientToken) -> id
        self._network_busy: dict[str, str] = {}  # task ARN -> "experiment/action" holding a network fault on it
        self._closed = False

    # ----- HTTP ------------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any] | None) -> Response:
        """One FIS request -> (HTTP status, JSON body, extra headers). ``path`` may still be percent-encoded."""
        try:
            return 200, self._dispatch(method.upper(), path, query, body), {}
        except FisError as error:
            return error.status, {"message": error.message}, {"x-amzn-ErrorType": error.code}
        except Exception as error:  # a bug must answer as FIS would, not kill the server thread
            log.exception("FIS %s %s failed", method, path)
            return 500, {"message": f"Internal error: {error}"}, {"x-amzn-ErrorType": "InternalServerException"}

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any] | None) -> dict:
        raw = path.split("?", 1)[0].strip("/")
        if raw.startswith("tags/"):
            return self._tags(method, unquote(raw[len("tags/") :]), query, body)
        parts = [unquote(p) for p in raw.split("/") if p]
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        match (method, parts):
            case ("POST", ["experimentTemplates"]):
                return {"experimentTemplate": self.create_template(body)}
            case ("GET", ["experimentTemplates"]):
                return self._page([t.summary() for t in self._list(self._templates)], query, "experimentTemplates")
            case ("GET", ["experimentTemplates", template_id]):
                return {"experimentTemplate": self._template(template_id).describe()}
            case ("DELETE", ["experimentTemplates", template_id]):
                return {"experimentTemplate": self.delete_template(template_id)}
            case ("POST", ["experiments"]):
                return {"experiment": self.start_experiment(body)}
            case ("GET", ["experiments"]):
                wanted = (query.get("experimentTemplateId") or [None])[0]
                with self._lock:
                    items = [
                        e.summary() for e in self._experiments.values() if wanted is None or e.template.id == wanted
                    ]
                return self._page(items, query, "experiments")
            case ("GET", ["experiments", experiment_id]):
                with self._lock:
                    return {"experiment": self._experiment(experiment_id).describe()}
            case ("DELETE", ["experiments", experiment_id]):
                return {"experiment": self.stop_experiment(experiment_id)}
            case ("GET", ["experiments", experiment_id, "resolvedTargets"]):
                return self._page(self._resolved(experiment_id, query), query, "resolvedTargets")
            case ("GET", ["actions"]):
                items = [spec.describe(self.region, ACCOUNT_ID) for spec in ACTIONS.values()]
                for item in items:
                    del item["parameters"]
                return self._page(items, query, "actions")
            case ("GET", ["actions", action_id]):
                if action_id not in ACTIONS:
                    raise _not_found(f"Action {action_id} not found.")
                return {"action": ACTIONS[action_id].describe(self.region, ACCOUNT_ID)}
        raise FisError(404, "ResourceNotFoundException", f"No FIS operation {method} /{raw} in this emulator.")

    def _list(self, items: dict[str, Any]) -> list[Any]:
        with self._lock:
            return list(items.values())

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, list[str]], key: str) -> dict[str, Any]:
        token = (query.get("nextToken") or ["0"])[0]
        size_text = (query.get("maxResults") or ["100"])[0]
        if not token.isdigit() or not size_text.isdigit() or not 1 <= int(size_text) <= 100:
            raise _invalid("nextToken or maxResults is not valid (maxResults: 1-100).")
        start, size = int(token), int(size_text)
        answer: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            answer["nextToken"] = str(start + size)
        return answer

    # ----- templates -------------------------------------------------------------------------------------------
    def create_template(self, body: dict[str, Any]) -> dict[str, Any]:
        """CreateExperimentTemplate: validate everything FIS validates, store, describe."""
        token = str(body.get("clientToken") or "")
        with self._lock:
            known = self._tokens.get(("template", token)) if token else None
            if known in self._templates:
                return self._templates[known].describe()
        role = body.get("roleArn")
        if not isinstance(role, str) or not role:
            raise _invalid("roleArn is required: the IAM role FIS acts with.")
        if not _ROLE_ARN.fullmatch(role):
            raise _invalid(f"roleArn {role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>).")
        description = body.get("description", "")
        if not isinstance(description, str) or len(description) > 512:
            raise _invalid("description must be a string of at most 512 characters.")
        targets = self._check_targets(body.get("targets"))
        actions = self._check_actions(body.get("actions"), targets)
        stop_conditions = self._check_stop_conditions(body.get("stopConditions"))
        options = self._check_template_options(body.get("experimentOptions"))
        tags = _strings(body.get("tags"), "tags")
        extra = {k: copy.deepcopy(body[k]) for k in ("logConfiguration", "experimentReportConfiguration") if k in body}
        now = time.time()
        template_id = _new_id("EXT")
        template = Template(
            id=template_id,
            arn=f"arn:aws:fis:{self.region}:{ACCOUNT_ID}:experiment-template/{template_id}",
            description=description,
            targets=targets,
            actions=actions,
            stop_conditions=stop_conditions,
            role_arn=role,
            tags=tags,
            options=options,
            extra=extra,
            created=now,
            updated=now,
        )
        with self._lock:
            self._templates[template_id] = template
            if token:
                self._tokens[("template", token)] = template_id
        return template.describe()

    def delete_template(self, template_id: str) -> dict[str, Any]:
        with self._lock:
            template = self._template(template_id)
            del self._templates[template_id]
            return template.describe()

    def _template(self, template_id: str) -> Template:
        with self._lock:
            template = self._templates.get(template_id)
        if template is None:
            raise _not_found(f"Experiment template {template_id} not found.")
        return template

    @staticmethod
    def _check_targets(raw: Any) -> dict[str, dict[str, Any]]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise _invalid("targets must be a map of target name to target.")
        targets: dict[str, dict[str, Any]] = {}
        for name, target in raw.items():
            if not isinstance(target, dict):
                raise _invalid(f"Target {name} must be an object.")
            resource_type = target.get("resourceType")
            if resource_type != ECS_TASK_RESOURCE:
                raise _invalid(
                    f"Target {name}: resource type {resource_type!r} is not supported; this FIS supports "
                    f"{ECS_TASK_RESOURCE} only."
                )
            mode = str(target.get("selectionMode") or "")
            match = _SELECTION.fullmatch(mode)
            if match is None:
                raise _invalid(f"Target {name}: selectionMode {mode!r} is not ALL, COUNT(n) or PERCENT(n).")
            count, percent = match.groups()
            if (count is not None and int(count) < 1) or (percent is not None and not 1 <= int(percent) <= 100):
                raise _invalid(f"Target {name}: selectionMode {mode}: COUNT needs n >= 1, PERCENT 1-100.")
            arns = target.get("resourceArns")
            tags = _strings(target.get("resourceTags"), f"Target {name} resourceTags")
            params = _strings(target.get("parameters"), f"Target {name} parameters")
            if arns is not None:
                if not isinstance(arns, list) or not all(isinstance(a, str) for a in arns):
                    raise _invalid(f"Target {name}: resourceArns must be a list of ARNs.")
                bad = [a for a in arns if not _TASK_ARN.fullmatch(a)]
                if bad:
                    raise _invalid(f"Target {name}: {bad[0]!r} is not an ECS task ARN.")
            if arns and tags:
                raise _invalid(f"Target {name}: specify resourceArns or resourceTags, not both.")
            if not arns and not tags and not params:
                raise _invalid(f"Target {name}: specify resourceArns, resourceTags or parameters (cluster, service).")
            unknown = sorted(set(params) - {"cluster", "service"})
            if unknown:
                raise _invalid(f"Target {name}: {ECS_TASK_RESOURCE} has no parameter(s) {', '.join(unknown)}.")
            if "service" in params and "cluster" not in params:
                raise _invalid(f"Target {name}: parameter service needs parameter cluster.")
            filters = target.get("filters") or []
            if not isinstance(filters, list) or not all(
                isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("values"), list)
                for f in filters
            ):
                raise _invalid(f"Target {name}: filters must be a list of {{path, values}}.")
            clean: dict[str, Any] = {"resourceType": resource_type, "selectionMode": mode}
            if arns:
                clean["resourceArns"] = list(arns)
            if tags:
                clean["resourceTags"] = tags
            if params:
                clean["parameters"] = params
            if filters:
                clean["filters"] = [{"path": f["path"], "values": [str(v) for v in f["values"]]} for f in filters]
            targets[name] = clean
        return targets

    @staticmethod
    def _check_actions(raw: Any, targets: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not isinstance(raw, dict) or not raw:
            raise _invalid("actions must name at least one action.")
        actions: dict[str, dict[str, Any]] = {}
        for name, action in raw.items():
            if not isinstance(action, dict):
                raise _invalid(f"Action {name} must be an object.")
            action_id = action.get("actionId")
            spec = ACTIONS.get(str(action_id))
            if spec is None:
                raise _invalid(
                    f"Action {name}: action {action_id!r} is not supported; this FIS supports {', '.join(ACTIONS)}."
                )
            try:
                spec.parse(_strings(action.get("parameters"), f"Action {name} parameters"))
            except ParameterError as error:
                raise _invalid(f"Action {name}: {error}.") from None
            action_targets = _strings(action.get("targets"), f"Action {name} targets")
            if set(action_targets) != {TARGET_KEY}:
                raise _invalid(f"Action {name}: {action_id} needs exactly one target, under the key {TARGET_KEY}.")
            if action_targets[TARGET_KEY] not in targets:
                raise _invalid(f"Action {name}: target {action_targets[TARGET_KEY]!r} is not defined in targets.")
            after = action.get("startAfter") or []
            if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
                raise _invalid(f"Action {name}: startAfter must be a list of action names.")
            clean: dict[str, Any] = {
                "actionId": action_id,
                "parameters": dict(action.get("parameters") or {}),
                "targets": action_targets,
            }
            if action.get("description"):
                clean["description"] = str(action["description"])
            if after:
                clean["startAfter"] = list(after)
            actions[name] = clean
        for name, action in actions.items():
            for before in action.get("startAfter", []):
                if before not in actions or before == name:
                    raise _invalid(f"Action {name}: startAfter names {before!r}, which is not another action.")
        FisEmulator._check_no_cycle(actions)
        return actions

    @staticmethod
    def _check_no_cycle(actions: dict[str, dict[str, Any]]) -> None:
        done: set[str] = set()
        remaining = dict(actions)
        while remaining:
            ready = [n for n, a in remaining.items() if set(a.get("startAfter", [])) <= done]
            if not ready:
                raise _invalid(f"The startAfter of actions {', '.join(sorted(remaining))} form a cycle.")
            for name in ready:
                done.add(name)
                del remaining[name]

    def _check_stop_conditions(self, raw: Any) -> list[dict[str, str]]:
        if not isinstance(raw, list) or not raw:
            raise _invalid("stopConditions is required: [{'source': 'none'}] or CloudWatch alarms.")
        conditions = []
        for condition in raw:
            source = condition.get("source") if isinstance(condition, dict) else None
            if source == "none":
                conditions.append({"source": "none"})
                continue
            if source != "aws:cloudwatch:alarm":
                raise _invalid(f"Stop condition source {source!r} is not none or aws:cloudwatch:alarm.")
            value = str(condition.get("value") or "")
            match = _ALARM_ARN.fullmatch(value)
            if match is None:
                raise _invalid(f"Stop condition {value!r} is not a CloudWatch alarm ARN.")
            try:
                state = self.alarm_state(match.group(1))
            except Exception as error:
                raise _invalid(f"Could not read the stop condition alarm {value}: {error}") from None
            if state is None:
                raise _invalid(f"The stop condition alarm {value} does not exist.")
            conditions.append({"source": source, "value": value})
        return conditions

    @staticmethod
    def _check_template_options(raw: Any) -> dict[str, str]:
        options = _strings(raw, "experimentOptions")
        mode = options.get("emptyTargetResolutionMode", "fail")
        if mode not in ("fail", "skip"):
            raise _invalid(f"emptyTargetResolutionMode {mode!r} is not fail or skip.")
        targeting = options.get("accountTargeting", "single-account")
        if targeting != "single-account":
            raise _invalid(f"accountTargeting {targeting!r}: this FIS supports single-account experiments only.")
        return {"accountTargeting": targeting, "emptyTargetResolutionMode": mode}

    # ----- experiments -----------------------------------------------------------------------------------------
    def start_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        """StartExperiment: a ``pending`` experiment whose thread takes it from there."""
        token = str(body.get("clientToken") or "")
        options = _strings(body.get("experimentOptions"), "experimentOptions")
        mode = options.get("actionsMode", "run-all")
        if mode not in ("run-all", "skip-all"):
            raise _invalid(f"actionsMode {mode!r} is not run-all or skip-all.")
        tags = _strings(body.get("tags"), "tags")
        template = self._template(str(body.get("experimentTemplateId") or ""))
        with self._lock:
            known = self._tokens.get(("experiment", token)) if token else None
            if known in self._experiments:
                return self._experiments[known].describe()
            if self._closed:
                raise FisError(409, "ConflictException", "The platform is shutting down; no new experiments.")
            snapshot = copy.deepcopy(template)
            runs = {
                name: ActionRun(name, definition, ACTIONS[definition["actionId"]].parse(definition["parameters"]))
                for name, definition in snapshot.actions.items()
            }
            experiment_id = _new_id("EXP")
            experiment = Experiment(
                id=experiment_id,
                arn=f"arn:aws:fis:{self.region}:{ACCOUNT_ID}:experiment/{experiment_id}",
                template=snapshot,
                tags=tags,
                actions_mode=mode,
                runs=runs,
                created=time.time(),
            )
            self._experiments[experiment_id] = experiment
            if token:
                self._tokens[("experiment", token)] = experiment_id
            self._trim()
            experiment.thread = threading.Thread(
                target=self._run, args=(experiment,), name=f"fis-{experiment_id}", daemon=True
            )
            experiment.thread.start()
            return experiment.describe()

    def stop_experiment(self, experiment_id: str, reason: str = "Experiment stopped by user.") -> dict[str, Any]:
        """StopExperiment: ``stopping`` now; the experiment's thread reverts the faults and ends it ``stopped``."""
        with self._lock:
            experiment = self._experiment(experiment_id)
            if experiment.status in ACTIVE and not experiment.stop.is_set():
                self._request_stop(experiment, "stopped", reason)
            return experiment.describe()

    def _request_stop(self, experiment: Experiment, final: str, reason: str) -> None:
        experiment.stop_status, experiment.stop_reason = final, reason
        experiment.status, experiment.reason = "stopping", "Stopping Experiment."
        experiment.stop.set()

    def _experiment(self, experiment_id: str) -> Experiment:
        with self._lock:
            experiment = self._experiments.get(experiment_id)
        if experiment is None:
            raise _not_found(f"Experiment {experiment_id} not found.")
        return experiment

    def _resolved(self, experiment_id: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        wanted = (query.get("targetName") or [None])[0]
        with self._lock:
            experiment = self._experiment(experiment_id)
            return [
                {"resourceType": ECS_TASK_RESOURCE, "targetName": name, "targetInformation": {"arn": arn}}
                for name, arns in experiment.resolved.items()
                if wanted is None or name == wanted
                for arn in arns
            ]

    def _trim(self) -> None:
        ended = [i for i, e in self._experiments.items() if e.status in ENDED]
        for experiment_id in ended[: max(0, len(ended) - EXPERIMENTS_KEPT)]:
            del self._experiments[experiment_id]

    # ----- tags --------------------------------------------------------------------------------------------------
    def _tags(self, method: str, arn: str, query: dict[str, list[str]], body: dict[str, Any] | None) -> dict:
        with self._lock:
            resource: Template | Experiment | None = next(
                (r for r in [*self._templates.values(), *self._experiments.values()] if r.arn == arn), None
            )
            if resource is None:
                raise _not_found(f"Resource {arn} not found.")
            if method == "GET":
                return {"tags": dict(resource.tags)}
            if method == "POST":
                resource.tags.update(_strings((body or {}).get("tags"), "tags"))
                return {}
            if method == "DELETE":
                for key in query.get("tagKeys", []):
                    resource.tags.pop(key, None)
                return {}
        raise _not_found(f"No FIS operation {method} /tags.")

    # ----- the experiment's thread -------------------------------------------------------------------------------
    def _run(self, experiment: Experiment) -> None:
        """Carry the experiment to its end; whatever happens, revert what it applied."""
        try:
            self._execute(experiment)
        except Exception as error:
            log.exception("FIS experiment %s broke", experiment.id)
            self._end(experiment, "failed", f"Experiment failed: internal error: {error}")
        finally:
            self._revert_all(experiment)
            with self._lock:
                if experiment.status in ACTIVE:  # a stop requested at the last moment
                    self._finish(experiment, experiment.stop_status, experiment.stop_reason)

    def _advance(self, experiment: Experiment, status: str, reason: str) -> bool:
        """Move to ``status`` unless a stop was requested (then the caller goes to the stop path)."""
        with self._lock:
            if experiment.stop.is_set():
                return False
            experiment.status, experiment.reason = status, reason
            if experiment.started is None:  # FIS: the experiment started when it began initiating
                experiment.started = time.time()
            return True

    def _execute(self, experiment: Experiment) -> None:
        if not self._advance(experiment, "initiating", "Experiment is initiating."):
            return self._stop_path(experiment)
        problem = self._alarm_problem(experiment, starting=True)
        if problem:
            return self._end(experiment, "failed", problem)
        resolved = {name: self._resolve(target) for name, target in experiment.template.targets.items()}
        skip_empty = experiment.template.options.get("emptyTargetResolutionMode") == "skip"
        with self._lock:
            experiment.resolved = {name: [t.arn for t in tasks] for name, tasks in resolved.items()}
        used = {run.target for run in experiment.runs.values()}
        empty = sorted(name for name in used if not resolved.get(name))
        if empty and not skip_empty:
            return self._end(experiment, "failed", EMPTY_TARGETS)
        if not self._advance(experiment, "running", "Experiment is running."):
            return self._stop_path(experiment)
        with self._lock:
            for run in experiment.runs.values():
                if experiment.actions_mode == "skip-all":
                    self._action(run, "skipped", "Actions mode is skip-all: the action was not run.", end=True)
                elif run.target in empty:
                    self._action(run, "skipped", f"{EMPTY_TARGETS} for target {run.target}.", end=True)
        next_poll = time.monotonic() + ALARM_POLL_S
        while True:
            if experiment.stop.is_set():
                return self._stop_path(experiment)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + ALARM_POLL_S
                problem = self._alarm_problem(experiment, starting=False)
                if problem:
                    with self._lock:
                        if not experiment.stop.is_set():
                            self._request_stop(experiment, "stopped", problem)
                    continue
            failure = self._step(experiment, resolved)
            if failure:
                return self._end(experiment, "failed", failure)
            with self._lock:
                if all(run.status in ACTION_DONE for run in experiment.runs.values()):
                    self._finish(experiment, "completed", "Experiment completed.")
                    return None
            experiment.stop.wait(TICK_S)

    def _step(self, experiment: Experiment, resolved: dict[str, list[Task]]) -> str | None:
        """Start the actions whose turn it is, complete those whose duration is over; a failure's reason."""
        now = time.monotonic()
        for run in experiment.runs.values():
            if run.status == "running" and run.due is not None and now >= run.due:
                self._revert(run)
                with self._lock:
                    self._action(run, "completed", "Action completed.", end=True)
            elif run.status == "running" and run.network_tasks and run.applied:
                # The fault runs inside the tasks it targets: once they have all stopped it is gone with them (a
                # replacement task starts clean), though the action runs on until its duration ends.
                tasks = [self.registry.find(arn) for arn in run.network_tasks]
                if all(task is None or not task.live for task in tasks):
                    with self._lock:
                        applied, run.applied = list(run.applied), []
                    for fault in applied:
                        try:
                            fault.revert()
                        except Exception:
                            log.exception("FIS: removing the fault of stopped tasks of action %s failed", run.name)
        for run in experiment.runs.values():
            if experiment.stop.is_set():
                return None
            after = run.definition.get("startAfter", [])
            if run.status != "pending" or any(experiment.runs[a].status not in ACTION_DONE for a in after):
                continue
            with self._lock:
                self._action(run, "initiating", "Action is initiating.")
                run.started_at = time.time()
            try:
                self._inject(experiment, run, resolved.get(run.target, []))
            except FaultError as error:
                self._revert(run)
                with self._lock:
                    self._action(run, "failed", str(error), end=True)
                return f"Action {run.name} ({run.action_id}) failed: {error}"
            with self._lock:
                if run.action_id in ("aws:ecs:stop-task", "aws:ecs:task-kill-process"):
                    self._action(run, "completed", "Action completed.", end=True)
                else:
                    run.due = time.monotonic() + float(run.params["duration"])
                    self._action(run, "running", "Action is running.")
        return None

    def _inject(self, experiment: Experiment, run: ActionRun, tasks: list[Task]) -> None:
        """Apply one action to each of its tasks; what lasts is kept on the run, to be reverted."""
        p = run.params
        toxic = f"fis-{experiment.id}-{run.name}"
        for task in tasks:
            if experiment.stop.is_set():
                return
            action = run.action_id
            applied: Reversible | None = None
            if action == "aws:ecs:stop-task":
                self.actions.stop_task(task, f"Stopped by AWS FIS experiment {experiment.id}")
            elif action == "aws:ecs:task-kill-process":
                self.actions.kill_process(task, p["processName"], p["signal"])
            elif action == "aws:ecs:task-cpu-stress":
                applied = self.actions.cpu_stress(task, p["percent"], p["workers"], p["duration"])
            elif action == "aws:ecs:task-io-stress":
                applied = self.actions.io_stress(task, p["percent"], p["duration"], p["workers"])
            else:
                self._claim_network(experiment, run, task)
                try:
                    if action == "aws:ecs:task-network-latency":
                        delay, jitter = p["delayMilliseconds"], p["jitterMilliseconds"]
                        applied = self.actions.network_latency(
                            task, delay, jitter, toxic, p["sources"], p["flowsPercent"]
                        )
                    elif action == "aws:ecs:task-network-blackhole-port":
                        applied = self.actions.network_blackhole_port(
                            task, p["port"], p["protocol"], p["trafficType"], toxic
                        )
                    else:
                        applied = self.actions.network_packet_loss(
                            task, p["lossPercent"], toxic, p["sources"], p["flowsPercent"]
                        )
                except BaseException:
                    self._release_network(run)
                    raise
            if applied is not None:
                with self._lock:
                    run.applied.append(applied)

    def _claim_network(self, experiment: Experiment, run: ActionRun, task: Task) -> None:
        """FIS: the network actions cannot run in parallel (on one task)."""
        with self._lock:
            holder = self._network_busy.get(task.arn)
            if holder is not None:
                raise FaultError(
                    f"task {task.task_id} already has a network fault ({holder}); the aws:ecs:task-network-* "
                    "actions cannot run in parallel"
                )
            self._network_busy[task.arn] = f"experiment {experiment.id} action {run.name}"
            run.network_tasks.append(task.arn)

    def _release_network(self, run: ActionRun) -> None:
        with self._lock:
            for arn in run.network_tasks:
                self._network_busy.pop(arn, None)
            run.network_tasks.clear()

    def _resolve(self, target: dict[str, Any]) -> list[Task]:
        """The target's tasks, as FIS resolves them when the experiment starts."""
        live = [t for t in self.registry.tasks() if t.live and t.desired_status == "RUNNING"]
        if "resourceArns" in target:
            wanted = set(target["resourceArns"])
            found = [t for t in live if t.arn in wanted]
        else:
            found = live
        params = target.get("parameters", {})
        if "cluster" in params:
            cluster = params["cluster"]
            found = [t for t in found if cluster in (self.registry.cluster, self.registry.cluster_arn)]
        if "service" in params:
            found = [t for t in found if t.group == f"service:{params['service']}"]
        tags = target.get("resourceTags", {})
        found = [t for t in found if all(t.tags.get(k) == v for k, v in tags.items())]
        for condition in target.get("filters", []):
            found = [t for t in found if self._filter_matches(t, condition["path"], condition["values"])]
        match = _SELECTION.fullmatch(target["selectionMode"])
        assert match is not None  # checked at template creation
        count, percent = match.groups()
        if count is not None:
            return random.sample(found, min(int(count), len(found)))
        if percent is not None:
            return random.sample(found, math.floor(len(found) * int(percent) / 100))
        return found

    def _filter_matches(self, task: Task, path: str, values: list[str]) -> bool:
        """A resource filter: the DescribeTasks field at ``path`` (dotted, any case) is one of ``values``."""
        current: list[Any] = [self.registry.describe(task)]
        for segment in path.split("."):
            following: list[Any] = []
            for item in current:
                for element in item if isinstance(item, list) else [item]:
                    if isinstance(element, dict):
                        following += [v for k, v in element.items() if k.lower() == segment.lower()]
            current = following
        flat = [v for item in current for v in (item if isinstance(item, list) else [item])]
        return any(str(v) in values for v in flat)

    def _alarm_problem(self, experiment: Experiment, starting: bool) -> str | None:
        """Why the stop conditions end the experiment now (None: they do not)."""
        for condition in experiment.template.stop_conditions:
            if condition["source"] != "aws:cloudwatch:alarm":
                continue
            arn = condition["value"]
            name = arn.split(":alarm:", 1)[1]
            try:
                state = self.alarm_state(name)
            except Exception as error:
                if starting:
                    return f"Could not read the stop condition alarm {arn}: {error}"
                log.warning("FIS experiment %s: could not read alarm %s: %s", experiment.id, name, error)
                continue
            if state is None:
                return f"The stop condition alarm {arn} does not exist."
            if state == "ALARM":
                if starting:
                    return f"The experiment cannot start: its stop condition alarm {arn} is in ALARM state."
                return f"Experiment stopped by stop condition: alarm {arn} is in ALARM state."
        return None

    # ----- ending ------------------------------------------------------------------------------------------------
    def _stop_path(self, experiment: Experiment) -> None:
        """StopExperiment or a stop condition: running actions ``stopping`` -> reverted -> ``stopped``."""
        with self._lock:
            for run in experiment.runs.values():
                if run.status in ("initiating", "running"):
                    self._action(run, "stopping", "Action is stopping.")
        self._revert_all(experiment)
        with self._lock:
            for run in experiment.runs.values():
                if run.status == "stopping":
                    self._action(run, "stopped", "Action stopped.", end=True)
            self._finish(experiment, experiment.stop_status, experiment.stop_reason)

    def _end(self, experiment: Experiment, status: str, reason: str) -> None:
        """A failure: revert, stop what runs, cancel what had not started (a stop asked for first wins)."""
        if experiment.stop.is_set():
            return self._stop_path(experiment)
        self._revert_all(experiment)
        with self._lock:
            for run in experiment.runs.values():
                if run.status in ("initiating", "running", "stopping"):
                    self._action(run, "stopped", f"Action stopped: {reason}", end=True)
            self._finish(experiment, status, reason)

    def _finish(self, experiment: Experiment, status: str, reason: str) -> None:
        """The final state (lock held): actions that never started are ``cancelled``."""
        for run in experiment.runs.values():
            if run.status == "pending":
                self._action(run, "cancelled", "The experiment ended before the action started.", end=True)
        experiment.status, experiment.reason = status, reason
        experiment.ended = experiment.ended or time.time()

    @staticmethod
    def _action(run: ActionRun, status: str, reason: str, end: bool = False) -> None:
        run.status, run.reason = status, reason
        if end and run.ended_at is None:
            run.ended_at = time.time()

    def _revert(self, run: ActionRun) -> None:
        with self._lock:
            applied, run.applied = list(run.applied), []
        for fault in applied:
            try:
                fault.revert()
            except Exception:
                log.exception("FIS: reverting a fault of action %s failed", run.name)
        self._release_network(run)

    def _revert_all(self, experiment: Experiment) -> None:
        for run in experiment.runs.values():
            self._revert(run)

    def close(self, timeout: float = 10.0) -> None:
        """Stop every running experiment and revert its faults (the platform is shutting down)."""
        with self._lock:
            self._closed = True
            active = [e for e in self._experiments.values() if e.status in ACTIVE]
            for experiment in active:
                if not experiment.stop.is_set():
                    self._request_stop(experiment, "stopped", "Experiment stopped: the platform is shutting down.")
        deadline = time.monotonic() + timeout
        for experiment in active:
            if experiment.thread is not None and experiment.thread is not threading.current_thread():
                experiment.thread.join(max(0.0, deadline - time.monotonic()))
            self._revert_all(experiment)
