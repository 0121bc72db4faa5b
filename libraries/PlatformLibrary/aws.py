"""AWS keywords: FIS faults inside ECS tasks, ECS tasks, EFS, ALB, CloudWatch, auto scaling, cost, safety guards.

Everything here works against the AWS APIs (boto3; the unit tests run it against moto). Keywords tagged
``aws-only`` refuse the embedded target with a clear message before any call; the CloudWatch and safety
keywords work on both targets.
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import SkipExecution

from .aws_cost import SessionUsage, architecture_of, load_pricing, price_set_for, session_cost, task_size
from .aws_fis import (
    TERMINAL_STATES,
    FisExperiments,
    alarm_name_of,
    build_template,
    describe_injection,
    ecs_task_target,
    resolve_action,
)
from .aws_observe import (
    efs_mount_targets,
    epoch,
    scaling_activities,
    service_capacity,
    service_utilisation,
    target_group_arns,
    target_health,
)
from .aws_safety import ChaosGuard, ChaosRefused, check_chaos_allowed, run_tags
from .aws_session import AwsError, call, clients_for, describe_error, redact
from .backends.ecs import EcsTaskBackend, billed_seconds, cold_start_phases, is_live
from .base import LibraryComponent, LibraryContext
from .containers import ContainerKeywords
from .platform_api import SessionRef
from .profile import format_seconds
from .session_store import SessionStoreKeywords
from .toxiproxy import FaultProxyError, ToxiproxyClient
from .waiting import wait_until

NOT_LIVE_STATUSES = ("STOPPED", "FAILED")


class AwsKeywords(LibraryComponent):
    """AWS-only keywords: FIS experiments, ECS tasks, EFS, ALB, CloudWatch, auto scaling, cost, safety guards.

    Also a library listener: experiments a test started are stopped when the test ends, those of a suite
    setup when the suite ends, and everything left (plus this run's templates) when the run ends, whatever
    the teardowns did.
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: LibraryContext, containers: ContainerKeywords, records: SessionStoreKeywords):
        super().__init__(ctx)
        self.containers = containers
        self.records = records
        self._lock = threading.Lock()
        self._experiments: dict[str, list[str]] = {}  # scope -> ids of experiments this library started
        self._templates: list[str] = []
        self._task_stops: dict[str, tuple[str, float]] = {}  # session -> (stopped task ARN, monotonic time)
        self._toxiproxy_hops: list[str] = []

    # ------------------------------------------------------------------ plumbing
    def _client(self, service: str) -> Any:
        return clients_for(self.ctx).client(service)

    def _name(self, key: str) -> str:
        value = str(self.ctx.endpoints.get(key, "") or "")
        if not value:
            raise AwsError(f"Profile variable ${{{key}}} is empty; set it in resources/profiles/aws.py or its env.")
        return value

    @property
    def _fis(self) -> FisExperiments:
        return FisExperiments(self._client("fis"), self.context.run_id)

    @property
    def _ecs(self) -> EcsTaskBackend:
        backend = self.containers.backend
        if not isinstance(backend, EcsTaskBackend):
            raise AwsError(f"The container backend is {backend.name}, not ECS tasks.")
        return backend

    def _timeout(self, given: timedelta | None, name: str, default: str) -> float:
        return given.total_seconds() if given is not None else self.profile.seconds(name, default)

    def _poll(self) -> float:
        return self.profile.seconds("POLL_INTERVAL")

    # ------------------------------------------------------------------ safety
    @keyword(tags=["aws", "safety"])
    def get_chaos_guard(self) -> dict:
        """Returns what the safety guards decide for this profile.

        Keys: ``allowed``, ``reason`` (why not), ``dryRun``, ``environment``, ``target``, ``forcedInProduction``.
        Chaos is refused unless ``${CHAOS_ALLOWED}`` is true; on AWS also when ``${ENVIRONMENT_NAME}`` is empty
        or it, ``${ECS_CLUSTER}`` or ``${ECS_SERVICE}`` contains ``prod``, ``production`` or ``prd`` as a word,
        unless ``--variable FORCE_CHAOS_IN_PRODUCTION:true`` is given.
        """
        decision = ChaosGuard.from_context(self.ctx).as_dict()
        self.info(f"Chaos guard: {decision}")
        return decision

    @keyword(tags=["aws", "safety"])
    def chaos_should_be_allowed(self, what: str = "inject a fault") -> None:
        """Fails, naming the reason, unless the safety guards allow chaos on this profile.

        Every fault keyword of this library checks the guards itself, before any AWS call; use this keyword
        to stop a test early, e.g. in a chaos suite's setup.

        Example:
        | Chaos Should Be Allowed | stress the session's CPU |
        """
        check_chaos_allowed(self.ctx, what)

    # ------------------------------------------------------------------ FIS
    def _session_task_arn(self, session_id: str) -> str:
        if session_id not in self.ctx.tracker.all_ids():
            raise ChaosRefused(
                f"Refused to target session {session_id}: it was not created by this run, and a run only "
                "disrupts its own sessions."
            )
        containers = self._ecs.containers_of(session_id)
        if len(containers) != 1:
            raise AwsError(
                f"Session {session_id} has {len(containers)} live task(s); a FIS target needs exactly one: "
                f"{[c.container_id for c in containers]}"
            )
        return containers[0].container_id

    def _check_stop_alarm(self, alarm_arn: str) -> None:
        name = alarm_name_of(alarm_arn)
        alarms = call(
            self._client("cloudwatch"), "describe_alarms", f"Reading stop alarm {name}", AlarmNames=[name]
        ).get("MetricAlarms", [])
        if not alarms:
            raise AwsError(f"The FIS stop-condition alarm {alarm_arn} (${{FIS_STOP_ALARM_ARN}}) does not exist.")
        if alarms[0].get("StateValue") == "ALARM":
            raise ChaosRefused(
                f"Refused to start a FIS experiment: its stop-condition alarm {name} is already in ALARM "
                f"({alarms[0].get('StateReason', '')}). The platform is not healthy enough for more faults."
            )

    @keyword(tags=["aws-only", "fis", "chaos"])
    def create_fis_experiment_template(
        self,
        action: str,
        session: SessionRef | None = None,
        duration: timedelta | None = None,
        selection: str = "COUNT(1)",
        **parameters: str,
    ) -> str:
        """Creates a FIS experiment template for one ECS task action and returns its id.

        ``action``: ``aws:ecs:stop-task``, ``aws:ecs:task-kill-process``, ``aws:ecs:task-cpu-stress``,
        ``aws:ecs:task-io-stress``, ``aws:ecs:task-network-blackhole-port``, ``aws:ecs:task-network-latency``
        or ``aws:ecs:task-network-packet-loss`` (``cpu-stress`` and the like work too). ``parameters`` are the
        action's FIS parameters (``percent=80``, ``processName=node``, ``port=443 protocol=tcp``,
        ``delayMilliseconds=200`` ...); ``duration`` (a time like ``1 min``) is needed by every action but
        stop-task and kill-process.

        The target is the task of ``session`` (a session this run created), or without a session
        ``selection`` (``COUNT(1)``, ``PERCENT(25)``, ``ALL``) of the tasks of ``${ECS_SERVICE}``.
        The template uses ``${FIS_ROLE_ARN}``, stops on ``${FIS_STOP_ALARM_ARN}`` (required unless
        ``${CHAOS_DRY_RUN}``; refused when that alarm is already in ALARM) and is tagged
        ``suite-run-id=<run id>``. The safety guards are checked first: a refused call creates nothing.

        Example:
        | ${id} = | Create FIS Experiment Template | task-cpu-stress | ${SESSION} | duration=2 min | percent=90 |
        """
        spec = resolve_action(action)
        what = f"create a FIS experiment for {spec.action_id}"
        guard = check_chaos_allowed(self.ctx, what)
        alarm = str(self.profile.get("FIS_STOP_ALARM_ARN", "") or "")
        if not alarm and not guard.dry_run:
            raise ChaosRefused(
                f"Refused to {what}: ${{FIS_STOP_ALARM_ARN}} is empty, and an experiment that really injects "
                "needs a CloudWatch alarm that stops it. Set it, or use CHAOS_DRY_RUN."
            )
        if alarm:
            self._check_stop_alarm(alarm)
        if session is not None:
            target = ecs_task_target(task_arns=[self._session_task_arn(self.session_id_of(session))])
        else:
            target = ecs_task_target(
                cluster=self._name("ECS_CLUSTER"), service=self._name("ECS_SERVICE"), selection_mode=selection
            )
        request = build_template(
            spec,
            target,
            run_id=self.context.run_id,
            role_arn=str(self.profile.get("FIS_ROLE_ARN", "") or ""),
            parameters=parameters,
            duration_seconds=duration.total_seconds() if duration is not None else None,
            stop_alarm_arns=[alarm] if alarm else [],
            worker=self.context.worker,
            test=self.context.current_test or self.context.current_suite,
        )
        self.debug(f"CreateExperimentTemplate request: {redact(request)}")
        template = self._fis.create_template(request)
        with self._lock:
            self._templates.append(template["id"])
        self.info(f"FIS experiment template {template['id']}:\n{describe_injection(request, guard.dry_run)}")
        return template["id"]

    @keyword(tags=["aws-only", "fis", "chaos"])
    def start_fis_experiment(self, template_id: str, timeout: timedelta | None = None) -> str:
        """Starts an experiment from ``template_id``, tagged with the run, and returns the experiment id.

        In a dry run (``${CHAOS_DRY_RUN}``) the experiment runs with ``actionsMode=skip-all``: FIS resolves the
        targets and checks the role, but injects nothing. The keyword waits until FIS has done that (deadline
        ``timeout`` or ``${FIS_START_TIMEOUT}``), logs what would have been injected, fails if FIS found a
        problem, and otherwise skips the rest of the test, which needs the fault.

        Every experiment this keyword starts is stopped when the test (or, from a suite setup, the suite)
        ends; `Stop Experiments Started By This Run` stops them earlier.
        """
        guard = check_chaos_allowed(self.ctx, f"start a FIS experiment from template {template_id}")
        fis = self._fis
        template = fis.template(template_id)
        if not fis.ours(template):
            raise ChaosRefused(f"Refused to start template {template_id}: it is not tagged with this run.")
        tags = run_tags(self.context.run_id, self.context.worker, test=self.context.current_test or "")
        experiment = fis.start(template_id, guard.dry_run, tags)
        with self._lock:
            self._experiments.setdefault(self.context.scope, []).append(experiment["id"])
        self.info(
            f"Started FIS experiment {experiment['id']} from template {template_id}"
            + (" in dry-run mode (actionsMode=skip-all)." if guard.dry_run else ".")
        )
        if guard.dry_run:
            state = self._wait_for_state(
                experiment["id"], ("running", *TERMINAL_STATES), self._timeout(timeout, "FIS_START_TIMEOUT", "5 min")
            )
            current = fis.get(experiment["id"])
            if state in ("failed", "cancelled"):
                raise AwsError(
                    f"Dry run of FIS experiment {experiment['id']} {state}: {fis.reason_of(current)}. "
                    "The real experiment would fail the same way."
                )
            message = describe_injection(template, dry_run=True)
            self.info(f"{message}\nFIS state: {state} ({fis.reason_of(current)}).")
            raise SkipExecution(
                f"Chaos dry run: FIS experiment {experiment['id']} validated ({state}) without injecting; "
                "the rest of the test needs the fault, so it is skipped."
            )
        return experiment["id"]

    @keyword(tags=["aws-only", "fis", "chaos"])
    def inject_fis_fault(
        self,
        action: str,
        session: SessionRef | None = None,
        duration: timedelta | None = None,
        selection: str = "COUNT(1)",
        timeout: timedelta | None = None,
        **parameters: str,
    ) -> str:
        """Creates a template (see `Create FIS Experiment Template`), starts it and waits until the fault is on.

        Returns the experiment id once FIS reports it ``running`` (or ``completed``, for instant actions such as
        stop-task); fails with FIS's reason when it fails or is stopped by its alarm first. Deadline:
        ``timeout`` or ``${FIS_START_TIMEOUT}``.

        Example:
        | ${id} = | Inject FIS Fault | task-network-latency | ${SESSION} | duration=2 min | delayMilliseconds=300 |
        | [Teardown] | Stop Experiments Started By This Run |
        """
        template_id = self.create_fis_experiment_template(action, session, duration, selection, **parameters)
        experiment_id = self.start_fis_experiment(template_id, timeout)
        state = self._wait_for_state(
            experiment_id, ("running", *TERMINAL_STATES), self._timeout(timeout, "FIS_START_TIMEOUT", "5 min")
        )
        if state not in ("running", "completed"):
            current = self._fis.get(experiment_id)
            raise AssertionError(
                f"FIS experiment {experiment_id} ({action}) {state} instead of injecting: "
                f"{self._fis.reason_of(current)}"
            )
        self.info(f"FIS experiment {experiment_id} is {state}: {action} injected.")
        return experiment_id

    def _wait_for_state(self, experiment_id: str, states: tuple[str, ...], timeout: float) -> str:
        fis = self._fis
        seen = {"state": "unknown", "reason": ""}

        def probe():
            experiment = fis.get(experiment_id)
            seen["state"], seen["reason"] = fis.state_of(experiment), fis.reason_of(experiment)
            return seen["state"] if seen["state"] in states else None

        def fail_fast():
            if seen["state"] in TERMINAL_STATES:
                return f"FIS experiment {experiment_id} ended {seen['state']} ({seen['reason']})"
            return None

        waited = wait_until(
            probe,
            timeout,
            self._poll(),
            lambda: (
                f"FIS experiment {experiment_id} is {seen['state']} ({seen['reason']}), expected {'/'.join(states)}"
            ),
            fail_fast,
        )
        return waited.value

    @keyword(tags=["aws-only", "fis"])
    def get_fis_experiment(self, experiment_id: str) -> dict:
        """Returns the experiment as FIS describes it (``state``, ``actions``, ``targets``, ``tags`` ...)."""
        return self._fis.get(experiment_id)

    @keyword(tags=["aws-only", "fis"])
    def get_fis_experiment_state(self, experiment_id: str) -> str:
        """Returns the experiment's state: ``pending``, ``initiating``, ``running``, ``completed``, ``stopping``,
        ``stopped``, ``failed`` or ``cancelled``."""
        return FisExperiments.state_of(self._fis.get(experiment_id))

    @keyword(tags=["aws-only", "fis", "wait"])
    def wait_until_fis_experiment_ends(
        self, experiment_id: str, expected: str | None = None, timeout: timedelta | None = None
    ) -> str:
        """Waits until the experiment has ended and returns its final state (``completed``, ``stopped`` ...).

        With ``expected`` (e.g. ``completed``) the keyword fails when it ended otherwise, with FIS's reason.
        Deadline: ``timeout`` or ``${FIS_EXPERIMENT_TIMEOUT}``.
        """
        fis = self._fis
        seen = {"state": "unknown", "reason": ""}

        def probe():
            experiment = fis.get(experiment_id)
            seen["state"], seen["reason"] = fis.state_of(experiment), fis.reason_of(experiment)
            return seen["state"] if seen["state"] in TERMINAL_STATES else None

        waited = wait_until(
            probe,
            self._timeout(timeout, "FIS_EXPERIMENT_TIMEOUT", "30 min"),
            self._poll(),
            lambda: f"FIS experiment {experiment_id} is still {seen['state']} ({seen['reason']})",
        )
        if expected and waited.value != expected.lower():
            raise AssertionError(
                f"FIS experiment {experiment_id} ended {waited.value}, expected {expected}: {seen['reason']}"
            )
        self.info(f"FIS experiment {experiment_id} ended {waited.value} after {format_seconds(waited.seconds)}.")
        return waited.value

    @keyword(tags=["aws-only", "fis", "cleanup"])
    def stop_fis_experiment(self, experiment_id: str) -> str:
        """Stops one experiment of this run and returns its state; refuses one not tagged with this run."""
        experiment = self._fis.stop(experiment_id)
        state = FisExperiments.state_of(experiment)
        self.info(f"FIS experiment {experiment_id}: {state}.")
        return state

    @keyword(tags=["aws-only", "fis", "cleanup"])
    def stop_experiments_started_by_this_run(self, this_worker_only: bool = False) -> list[str]:
        """Stops every active FIS experiment tagged ``suite-run-id=<this run>`` and returns their ids.

        Safe in any teardown: does nothing when none runs, and never touches an experiment without the
        run's tag. The run id is shared by all pabot workers, so this stops the other workers' experiments
        too; ``this_worker_only=True`` limits it to this worker's. (Experiments a test started are also
        stopped automatically when the test ends.)
        """
        if self.profile.is_embedded:
            self.info("Embedded target: no FIS experiments to stop.")
            return []
        stopped = self._fis.stop_experiments_of_run(self.context.worker if this_worker_only else None)
        self.info(f"Stopped {len(stopped)} FIS experiment(s) of run {self.context.run_id}: {stopped}")
        return stopped

    @keyword(tags=["aws-only", "fis", "cleanup"])
    def delete_experiment_templates_created_by_this_run(self) -> list[str]:
        """Deletes every FIS experiment template tagged ``suite-run-id=<this run>``; returns their ids."""
        if self.profile.is_embedded:
            return []
        deleted = self._fis.delete_templates_of_run()
        with self._lock:
            self._templates = [t for t in self._templates if t not in deleted]
        self.info(f"Deleted {len(deleted)} FIS experiment template(s) of run {self.context.run_id}.")
        return deleted

    # Listener: experiments never outlive the test (or suite) that started them.
    def _stop_scope(self, scope: str | None) -> None:
        with self._lock:
            if scope is None:
                ids = [i for ids in self._experiments.values() for i in ids]
                self._experiments.clear()
            else:
                ids = self._experiments.pop(scope, [])
        fis = None
        for experiment_id in ids:
            try:
                fis = fis or self._fis
                state = FisExperiments.state_of(fis.stop(experiment_id))
                self.info(f"FIS experiment {experiment_id} left by {scope or 'the run'}: {state}.")
            except Exception as error:  # a listener must not break the run; say what is left behind
                self._warn(f"Could not stop FIS experiment {experiment_id}: {error}")

    @staticmethod
    def _warn(message: str) -> None:
        logger.warn(redact(message))

    def end_test(self, data, result):
        self._stop_scope(f"test:{result.full_name}")

    def end_suite(self, data, result):
        self._stop_scope(f"suite:{result.full_name}")

    def close(self):
        self._stop_scope(None)
        with self._lock:
            templates, self._templates = list(self._templates), []
        for template_id in templates:
            try:
                fis = self._fis
                if fis.ours(fis.template(template_id)):
                    call(fis.client, "delete_experiment_template", "Deleting a template", id=template_id)
            except Exception as error:
                self._warn(f"Could not delete FIS experiment template {template_id}: {error}")

    # ------------------------------------------------------------------ ECS
    def _session_tasks(self, session: SessionRef, include_stopped: bool = True) -> list[dict]:
        tasks = self._ecs.session_tasks(self.session_id_of(session), include_stopped=include_stopped)
        return sorted(tasks, key=lambda t: epoch(t.get("createdAt")) or 0.0)  # oldest first

    @keyword(tags=["aws-only", "ecs"])
    def get_session_task(self, session: SessionRef) -> dict:
        """Returns the live ECS task of the session (``taskArn``, ``lastStatus``, ``startedBy``, ``tags``,
        timestamps ...); fails unless exactly one task serves it."""
        session_id = self.session_id_of(session)
        live = [t for t in self._ecs.session_tasks(session_id, include_stopped=False) if is_live(t)]
        if len(live) != 1:
            raise AssertionError(
                f"Session {session_id} should have exactly one live task but has {len(live)}: "
                f"{[t['taskArn'] for t in live]}"
            )
        return live[0]

    @keyword(tags=["aws-only", "ecs"])
    def get_session_task_status(self, session: SessionRef) -> str:
        """Returns ``lastStatus`` of the session's newest task (``PROVISIONING`` ... ``RUNNING`` ... ``STOPPED``)."""
        tasks = self._session_tasks(session)
        if not tasks:
            raise AssertionError(f"Session {self.session_id_of(session)} has no ECS task.")
        return str(tasks[-1].get("lastStatus"))

    @keyword(tags=["aws-only", "ecs", "fault"])
    def stop_session_task(self, session: SessionRef) -> str:
        """Stops the session's task with ``StopTask`` and returns its ARN (a fault: the safety guards apply).

        Remembers the moment for `Wait Until Session Task Is Replaced`.
        """
        session_id = self.session_id_of(session)
        containers = self._ecs.containers_of(session_id)
        if len(containers) != 1:
            raise AssertionError(f"Session {session_id} has {len(containers)} live task(s), expected 1.")
        self._ecs.kill(containers[0], signal.SIGTERM)
        with self._lock:
            self._task_stops[session_id] = (containers[0].container_id, time.monotonic())
        self.info(f"Stopped task {containers[0].container_id} of session {session_id}.")
        return containers[0].container_id

    @keyword(tags=["aws-only", "ecs", "wait"])
    def wait_until_session_task_is_replaced(
        self, session: SessionRef, old_task_arn: str | None = None, timeout: timedelta | None = None
    ) -> float:
        """Waits until one new live task serves the session and the old one is not live; returns the seconds.

        ``old_task_arn`` defaults to the task `Stop Session Task` stopped, and the time counts from that stop.
        Deadline: ``timeout`` or ``${RECOVERY_TIMEOUT}``.
        """
        session_id = self.session_id_of(session)
        stopped = self._task_stops.get(session_id)
        if old_task_arn is None:
            if stopped is None:
                raise ValueError(f"Give old_task_arn: no task of session {session_id} was stopped by this library.")
            old_task_arn = stopped[0]
        started = stopped[1] if stopped and stopped[0] == old_task_arn else time.monotonic()
        seen: dict[str, Any] = {"containers": []}

        def probe():
            seen["containers"] = self._ecs.containers_of(session_id)
            return self._ecs.replacement(session_id, old_task_arn)

        deadline = max(0.0, self._timeout(timeout, "RECOVERY_TIMEOUT", "5 min") - (time.monotonic() - started))
        waited = wait_until(
            probe,
            deadline,
            self._poll(),
            lambda: (
                f"Task {old_task_arn} of session {session_id} was not replaced; live tasks: "
                f"{[c.container_id for c in seen['containers']]}"
            ),
        )
        seconds = time.monotonic() - started
        self.info(
            f"Session {session_id}: task {old_task_arn} -> {waited.value.container_id} in {format_seconds(seconds)}."
        )
        return seconds

    @keyword(tags=["aws-only", "ecs", "metrics"])
    def get_session_cold_start_phases(self, session: SessionRef, timeout: timedelta | None = None) -> dict:
        """Splits the start of the session's newest task into phases, in seconds, from its ECS timestamps.

        ``provisioning`` (``createdAt`` -> ``pullStartedAt``), ``imagePull`` (-> ``pullStoppedAt``),
        ``containerStart`` (-> ``startedAt``) and ``total`` (``createdAt`` -> ``startedAt``), plus ``taskArn``.
        Waits until the task has ``startedAt`` (deadline ``timeout`` or ``${SESSION_START_TIMEOUT}``).

        Example:
        | ${phases} = | Get Session Cold Start Phases | ${SESSION} |
        | Record Metric | cold_start_image_pull | ${phases}[imagePull] |
        """
        session_id = self.session_id_of(session)

        def probe():
            tasks = self._session_tasks(session_id)
            return tasks[-1] if tasks and tasks[-1].get("startedAt") is not None else None

        waited = wait_until(
            probe,
            self._timeout(timeout, "SESSION_START_TIMEOUT", "3 min"),
            self._poll(),
            lambda: f"No task of session {session_id} has started (no startedAt)",
        )
        phases: dict[str, Any] = cold_start_phases(waited.value)
        phases["taskArn"] = waited.value["taskArn"]
        self.info(f"Cold start phases of session {session_id}: {phases}")
        return phases

    def _not_live_reason(self, session_id: str) -> str | None:
        try:
            record = self.records.store.get(session_id)
        except (BotoCoreError, ClientError) as error:
            raise AwsError(f"Reading session {session_id} from DynamoDB failed: {describe_error(error)}") from None
        if record is None:
            return "no DynamoDB record"
        status = record.get("status")
        if status in NOT_LIVE_STATUSES:
            return f"status {status}"
        expires = record.get("expiresAt")
        if isinstance(expires, int | float) and expires <= time.time():
            return f"expired at {expires}"
        return None

    @keyword(tags=["aws-only", "ecs", "orphans"])
    def list_orphaned_session_tasks(self) -> list[dict]:
        """Returns the live tasks whose session is not live in DynamoDB: no record, ``STOPPED``/``FAILED``, or
        past ``expiresAt``. Warm-pool tasks (no session) are not orphans. Items: ``taskArn``, ``sessionId``,
        ``pid`` (the task's number), ``reason``."""
        orphans = self._ecs.orphans(self._not_live_reason)
        self.info(f"{len(orphans)} orphaned task(s)" + "".join(f"\n- {o}" for o in orphans))
        return orphans

    @keyword(tags=["aws-only", "ecs", "orphans", "assertion"])
    def orphaned_session_tasks_should_be_none(self) -> None:
        """Fails when any live task of the session service outlives its session in DynamoDB, listing each."""
        orphans = self.list_orphaned_session_tasks()
        if orphans:
            raise AssertionError(
                f"{len(orphans)} orphaned task(s): "
                + "; ".join(f"{o['taskArn']} of session {o['sessionId']} ({o['reason']})" for o in orphans)
            )

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
        metric: str = "CPUUtilization",
        window: timedelta = timedelta(minutes=5),
        statistic: str = "Average",
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

    @keyword(tags=["cloudwatch", "metrics", "assertion"])
    def service_utilisation_should_be_below(
        self, metric: str, percent: float, window: timedelta = timedelta(minutes=5), statistic: str = "Maximum"
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
    @keyword(tags=["aws-only", "autoscaling"])
    def get_service_capacity(self) -> dict:
        """Returns the session service's ``desired``, ``running``, ``pending`` task counts (ECS) and its scaling
        bounds ``min``/``max`` (Application Auto Scaling; ``autoScaled`` is false when none is registered)."""
        return service_capacity(
            self._client("ecs"),
            self._client("application-autoscaling"),
            self._name("ECS_CLUSTER"),
            self._name("ECS_SERVICE"),
        )

    @keyword(tags=["aws-only", "autoscaling"])
    def get_scaling_activities(self, since: float | None = None) -> list[dict]:
        """Returns the service's scaling activities (oldest first), those started at or after ``since``
        (epoch seconds) when given. Items: ``id``, ``description``, ``cause``, ``status``, ``startTime``,
        ``endTime``, ``desiredCount`` (from the description)."""
        return scaling_activities(
            self._client("application-autoscaling"), self._name("ECS_CLUSTER"), self._name("ECS_SERVICE"), since
        )

    @keyword(tags=["aws-only", "autoscaling", "wait", "metrics"])
    def wait_for_scaling_activity(
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

    # ------------------------------------------------------------------ cost
    def _pricing(self) -> dict:
        return load_pricing(self.profile.text("AWS_PRICING_FILE", "") or None)

    @keyword(tags=["cost"])
    def estimate_session_cost(
        self,
        task_seconds: float,
        vcpu: float = 1.0,
        memory_gb: float = 2.0,
        requests: int = 0,
        dynamodb_reads: float = 0,
        dynamodb_writes: float = 0,
        architecture: str = "linux_x86",
        day: str | None = None,
    ) -> dict:
        """Returns the cost of one session from its usage, with the prices valid on ``day`` (default today).

        Prices come from ``${AWS_PRICING_FILE}`` (default ``resources/pricing_aws.json``), a dated file.
        Result keys: ``total``, ``compute``, ``requests``, ``dynamodb``, ``currency``, ``pricesValidFrom``,
        ``usage``. ``requests`` are API requests through the ALB (priced as LCU-hours), ``dynamodb_reads`` and
        ``dynamodb_writes`` request units.
        """
        usage = SessionUsage(
            float(task_seconds),
            float(vcpu),
            float(memory_gb),
            int(requests),
            float(dynamodb_reads),
            float(dynamodb_writes),
            architecture,
        )
        cost = session_cost(usage, self._pricing(), day)
        self.info(f"Session cost {cost['total']:.6f} {cost['currency']} (prices from {cost['pricesValidFrom']}).")
        return cost

    @keyword(tags=["aws-only", "ecs", "cost"])
    def get_session_task_usage(self, session: SessionRef) -> dict:
        """Returns what the session's tasks used: ``taskSeconds`` (Fargate-billed: image pull start to stop, at
        least a minute per task; a running task counts until now), ``vcpu``, ``memoryGb``, ``architecture``
        and ``tasks`` (how many)."""
        session_id = self.session_id_of(session)
        tasks = self._ecs.session_tasks(session_id, include_stopped=True)
        if not tasks:
            raise AssertionError(f"Session {session_id} has no ECS task (stopped tasks are kept about an hour).")
        minimum = billing_minimum(self._pricing())
        definitions: dict[str, dict] = {}
        seconds = vcpu_seconds = gb_seconds = 0.0
        architecture = "linux_x86"
        for task in tasks:
            arn = task["taskDefinitionArn"]
            if arn not in definitions:
                definitions[arn] = call(
                    self._client("ecs"), "describe_task_definition", f"Reading {arn}", taskDefinition=arn
                )["taskDefinition"]
            vcpu, gb = task_size(task, definitions[arn])
            architecture = architecture_of(definitions[arn])
            billed = billed_seconds(task, minimum=minimum)
            seconds += billed
            vcpu_seconds += billed * vcpu
            gb_seconds += billed * gb
        usage = {
            "sessionId": session_id,
            "tasks": len(tasks),
            "taskSeconds": round(seconds, 3),
            "vcpu": round(vcpu_seconds / seconds, 4) if seconds else 0.0,
            "memoryGb": round(gb_seconds / seconds, 4) if seconds else 0.0,
            "architecture": architecture,
        }
        self.info(f"Usage of session {session_id}: {usage}")
        return usage

    @keyword(tags=["aws-only", "ecs", "cost"])
    def get_session_cost(
        self, session: SessionRef, requests: int = 0, dynamodb_reads: float = 0, dynamodb_writes: float = 0
    ) -> dict:
        """`Get Session Task Usage` priced with `Estimate Session Cost`; returns the cost with ``sessionId``.

        Example:
        | ${cost} = | Get Session Cost | ${SESSION} | requests=${request_count} |
        | Record Metric | session_cost | ${cost}[total] | unit=USD |
        """
        usage = self.get_session_task_usage(session)
        cost = self.estimate_session_cost(
            usage["taskSeconds"],
            usage["vcpu"],
            usage["memoryGb"],
            requests,
            dynamodb_reads,
            dynamodb_writes,
            usage["architecture"],
        )
        cost["sessionId"] = usage["sessionId"]
        cost["tasks"] = usage["tasks"]
        return cost

    # ------------------------------------------------------------------ Toxiproxy in front of the ALB
    def _toxiproxy(self) -> ToxiproxyClient:
        base = str(self.profile.get("FAULT_PROXY_URL", "") or "")
        if not base:
            raise AwsError("${FAULT_PROXY_URL} (env TOXIPROXY_URL) is empty: no Toxiproxy server to configure.")
        return ToxiproxyClient(base, self.http_timeout)

    @keyword(tags=["aws-only", "faults"])
    def ensure_alb_hop_on_toxiproxy(
        self, name: str = "api", listen: str | None = None, upstream: str | None = None
    ) -> dict:
        """Makes the Toxiproxy server (``${FAULT_PROXY_URL}``) forward ``listen`` to the ALB; returns the hop.

        ``listen`` defaults to ``${TOXIPROXY_LISTEN}``, ``upstream`` to the host and port of ``${ALB_URL}``.
        The hop is named ``api`` like the embedded platform's load-balancer hop, so the fault proxy keywords
        work unchanged; ``${PLATFORM_API_URL}`` must point at ``listen`` for the suite's traffic to take it.
        An existing hop is updated; a hop this keyword created is removed by `Remove ALB Hop From Toxiproxy`.
        """
        listen = listen or str(self.profile.get("TOXIPROXY_LISTEN", "") or "")
        if not listen:
            raise AwsError("Give listen (host:port) or set ${TOXIPROXY_LISTEN}.")
        if not upstream:
            alb = urlsplit(self._name("ALB_URL"))
            port = alb.port or (443 if alb.scheme == "https" else 80)
            upstream = f"{alb.hostname}:{port}"
        proxy = self._toxiproxy()
        try:
            if proxy.hop(name) is None:
                hop = proxy.create_hop(name, listen, upstream)
                with self._lock:
                    self._toxiproxy_hops.append(name)
            else:
                hop = proxy.update_hop(name, listen=listen, upstream=upstream, enabled=True)
        except FaultProxyError as error:
            raise AwsError(
                f"Toxiproxy did not take hop {name} ({listen} -> {upstream}): {redact(str(error))}"
            ) from None
        hop = hop or {}
        api_url = str(self.profile.get("PLATFORM_API_URL", "") or "")
        if urlsplit(api_url).netloc != hop.get("listen", listen):
            self._warn(
                f"${{PLATFORM_API_URL}} {api_url} does not go through Toxiproxy hop {name} ({hop.get('listen')}); "
                "faults on the hop will not reach the suite's requests."
            )
        self.info(f"Toxiproxy hop {name}: {hop.get('listen')} -> {hop.get('upstream')}.")
        return hop

    @keyword(tags=["aws-only", "faults", "cleanup"])
    def remove_alb_hop_from_toxiproxy(self, name: str = "api") -> bool:
        """Deletes the hop ``name`` if `Ensure ALB Hop On Toxiproxy` created it in this run; returns whether it did."""
        with self._lock:
            if name not in self._toxiproxy_hops:
                self.info(f"Toxiproxy hop {name} was not created by this run; left as it is.")
                return False
            self._toxiproxy_hops.remove(name)
        try:
            self._toxiproxy().delete_hop(name)
        except FaultProxyError as error:
            raise AwsError(f"Deleting Toxiproxy hop {name} failed: {redact(str(error))}") from None
        return True

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


def billing_minimum(pricing: dict) -> float:
    """Fargate's per-task billing minimum (seconds) in the price set valid today."""
    return float(price_set_for(pricing).get("fargate", {}).get("minimumSecondsPerTask", 60))
