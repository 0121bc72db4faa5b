"""FIS keywords: faults inside ECS tasks through AWS Fault Injection Service, and the chaos guard's keywords.

The engine (templates, experiments, run tags) is :mod:`PlatformLibrary.aws.fis`; this component adds the
safety guards, targets a session's task, waits for FIS states and, as a listener, stops every experiment
when the test (or suite) that started it ends and deletes this run's templates when the run ends.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import SkipExecution

from ..aws.fis import (
    TERMINAL_STATES,
    FisAction,
    FisExperiments,
    alarm_name_of,
    build_template,
    describe_injection,
    ecs_task_target,
    essential_container_port,
    fault_injection_problems,
    resolve_action,
)
from ..aws.safety import ChaosGuard, ChaosRefused, check_chaos_allowed, run_tags
from ..aws.session import AwsComponent, AwsError, call, clients_for, redact
from ..core.base import LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from ..sessions.api import SessionRef
from ..targets.aws.keywords import EcsKeywords
from .injector import FaultInjector


class FisKeywords(AwsComponent):
    """FIS experiments on the session tasks, and the chaos guard (``Get Chaos Guard``, ``Chaos Should Be Allowed``).

    Also a library listener: experiments a test started are stopped when the test ends, those of a suite
    setup when the suite ends, and everything left (plus this run's templates) when the run ends, whatever
    the teardowns did.
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: LibraryContext, ecs: EcsKeywords, injector: FaultInjector):
        super().__init__(ctx)
        self.ecs = ecs
        self.injector = injector
        self._lock = threading.Lock()
        self._experiments: dict[str, list[str]] = {}  # scope -> ids of experiments this library started
        self._templates: list[str] = []

    @property
    def _fis(self) -> FisExperiments:
        return FisExperiments(self._client("fis"), self.context.run_id)

    # ------------------------------------------------------------------ safety
    @keyword(tags=["safety"])
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

    @keyword(tags=["safety"])
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
        containers = self.ecs.backend_of_tasks().containers_of(session_id)
        if len(containers) != 1:
            raise AwsError(
                f"Session {session_id} has {len(containers)} live task(s); a FIS target needs exactly one: "
                f"{[c.container_id for c in containers]}"
            )
        return containers[0].container_id

    def _service_task_definition(self) -> str | None:
        services = call(
            self._client("ecs"),
            "describe_services",
            "Reading the session service",
            cluster=self._name("ECS_CLUSTER"),
            services=[self._name("ECS_SERVICE")],
        ).get("services", [])
        return services[0].get("taskDefinition") if services else None

    def task_definition_problems(self, action: str | FisAction, definition_arns: list[str]) -> list[str]:
        """Why FIS cannot run ``action`` in tasks of these task definitions (SSM agent, pidMode, fault injection
        endpoints); ``[]`` when it can (FIS user guide, "Use the AWS FIS aws:ecs:task actions")."""
        spec = action if isinstance(action, FisAction) else resolve_action(action)
        problems = []
        for arn in dict.fromkeys(definition_arns):
            definition = call(self._client("ecs"), "describe_task_definition", f"Reading {arn}", taskDefinition=arn)[
                "taskDefinition"
            ]
            problems += fault_injection_problems(definition, spec)
        return problems

    def _check_fault_injection_prerequisites(
        self, spec: FisAction, definition_arns: list[str], whose: str = "the session tasks"
    ) -> None:
        """Fails before anything is created when the tasks cannot take ``spec`` (SSM agent, pidMode, endpoints)."""
        problems = self.task_definition_problems(spec, definition_arns)
        if problems:
            raise AwsError(
                f"FIS cannot run {spec.action_id} in {whose}: " + "; ".join(problems) + ". "
                "See docs/deployment-contract.md (Faults on AWS)."
            )

    def check_stop_alarm(self, alarm_arn: str) -> None:
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
        guarded = self._template_guard(spec)  # before the first AWS call: a refused call creates nothing
        if session is not None:
            task_arn = self._session_task_arn(self.session_id_of(session))
            target = ecs_task_target(task_arns=[task_arn])
            definitions = [t.get("taskDefinitionArn") for t in self.ecs.backend_of_tasks().describe([task_arn])]
        else:
            target = ecs_task_target(
                cluster=self._name("ECS_CLUSTER"), service=self._name("ECS_SERVICE"), selection_mode=selection
            )
            definitions = [self._service_task_definition()]
        return self._create_template(spec, target, [d for d in definitions if d], duration, parameters, guarded=guarded)

    def _template_guard(self, spec: FisAction) -> tuple[ChaosGuard, str]:
        """The chaos guard and the stop alarm (required unless a dry run; refused when in ALARM): (guard, alarm)."""
        what = f"create a FIS experiment for {spec.action_id}"
        guard = check_chaos_allowed(self.ctx, what)
        alarm = str(self.profile.get("FIS_STOP_ALARM_ARN", "") or "")
        if not alarm and not guard.dry_run:
            raise ChaosRefused(
                f"Refused to {what}: ${{FIS_STOP_ALARM_ARN}} is empty, and an experiment that really injects "
                "needs a CloudWatch alarm that stops it. Set it, or use CHAOS_DRY_RUN."
            )
        if alarm:
            self.check_stop_alarm(alarm)
        return guard, alarm

    def _create_template(
        self,
        spec: FisAction,
        target: dict,
        definitions: list[str],
        duration: timedelta | None,
        parameters: dict[str, str],
        whose: str = "the session tasks",
        guarded: tuple[ChaosGuard, str] | None = None,
    ) -> str:
        """The guards (unless ``guarded`` already), the task definitions' prerequisites, then the tagged template."""
        guard, alarm = guarded or self._template_guard(spec)
        self._check_fault_injection_prerequisites(spec, definitions, whose)
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
        return self._start_until_injected(template_id, action, timeout)

    def _start_until_injected(self, template_id: str, action: str, timeout: timedelta | None) -> str:
        """Starts the template's experiment and waits until it is ``running`` with its actions started (an experiment
        runs before its actions do: FIS user guide, "Action states"), or ``completed``; its id."""
        experiment_id = self.start_fis_experiment(template_id, timeout)
        state = self._wait_for_state(
            experiment_id,
            ("running", *TERMINAL_STATES),
            self._timeout(timeout, "FIS_START_TIMEOUT", "5 min"),
            actions_started=True,
        )
        if state not in ("running", "completed"):
            current = self._fis.get(experiment_id)
            raise AssertionError(
                f"FIS experiment {experiment_id} ({action}) {state} instead of injecting: "
                f"{self._fis.reason_of(current)}"
            )
        self.info(f"FIS experiment {experiment_id} is {state}: {action} injected.")
        return experiment_id

    def inject_session_fault(
        self, action: str, session: SessionRef, description: str, duration: timedelta | None = None, **parameters: str
    ) -> str:
        """A fault on the session's task through FIS, kept in the fault ledger like every other fault.

        The fault keywords of both targets call this on AWS (`Break Service Mesh Of Session` ...): the injector's
        guards first, the ledger entry before the experiment starts, and as its revert step the StopExperiment
        that `Revert Fault` (or the next run, after a killed one) carries out. ``duration`` (default
        ``${FIS_FAULT_DURATION}``) is the longest the fault can last when nobody reverts it. Returns the fault id.
        """
        self.injector.guard_session(session, f"inject {description}")
        seconds = duration or timedelta(seconds=self.profile.seconds("FIS_FAULT_DURATION", "10 min"))
        return self._recorded(description, lambda: self.inject_fis_fault(action, session, seconds, **parameters))

    def inject_task_fault(
        self,
        action: str,
        task_arn: str,
        definition_arn: str,
        description: str,
        whose: str,
        duration: timedelta | None = None,
        **parameters: str,
    ) -> str:
        """A FIS fault on one task of the deployment that is not a session's (an API target's task), recorded in the
        fault ledger with StopExperiment as its revert step, as `inject_session_fault` does. Returns the fault id.

        The caller has asked the injector's deployment guard (``FaultInjector.guard_deployment``): scope, exclusive
        hold. ``definition_arn`` is the task's task definition, checked for FIS's prerequisites before anything is
        created; ``whose`` names the tasks in that check's message.
        """
        target = ecs_task_target(task_arns=[task_arn])
        return self._inject_deployment_fault(action, target, definition_arn, description, whose, duration, parameters)

    def inject_service_fault(
        self,
        action: str,
        service: str,
        definition_arn: str,
        description: str,
        duration: timedelta | None = None,
        **parameters: str,
    ) -> str:
        """A FIS fault on every task of one ECS service of the deployment (``service``, in ``${ECS_CLUSTER}``): the
        target is the service's tasks with selection mode ``ALL``, as FIS resolves them when the experiment starts
        (FIS user guide, "Targets for AWS FIS", resource type ``aws:ecs:task`` with parameters ``cluster`` and
        ``service``). Recorded in the fault ledger with StopExperiment as its revert step, as `inject_task_fault`;
        the caller has asked the deployment guard. Returns the fault id."""
        target = ecs_task_target(cluster=self._name("ECS_CLUSTER"), service=service, selection_mode="ALL")
        whose = f"the tasks of {service}"
        return self._inject_deployment_fault(action, target, definition_arn, description, whose, duration, parameters)

    def _inject_deployment_fault(
        self,
        action: str,
        target: dict,
        definition_arn: str,
        description: str,
        whose: str,
        duration: timedelta | None,
        parameters: dict[str, str],
    ) -> str:
        spec = resolve_action(action)
        seconds = None
        if spec.takes_duration:
            seconds = duration or timedelta(seconds=self.profile.seconds("FIS_FAULT_DURATION", "10 min"))

        def inject() -> str:
            template_id = self._create_template(spec, target, [definition_arn], seconds, parameters, whose)
            return self._start_until_injected(template_id, spec.action_id, None)

        return self._recorded(description, inject)

    def _recorded(self, description: str, inject) -> str:
        """Ledger entry first, then ``inject()`` (an experiment id); its StopExperiment becomes the revert step."""
        entry = self.injector.record("fis", description, [])
        try:
            experiment_id = inject()
        except BaseException:
            self.injector.undo_now(entry)
            raise
        self.injector.injected_at = time.monotonic()  # the fault began when FIS reported it running, not at record
        settings = clients_for(self.ctx).settings
        step = {
            "do": "stop-fis-experiment",
            "experiment": experiment_id,
            "region": settings.region,
            "endpoint": settings.endpoint_for("fis") or "",
            "profile": settings.profile_name or "",
            "dummyCredentials": settings.embedded,
        }
        self.injector.ledger.update(entry["id"], undo=[step])
        return self.injector.activate(entry, experiment=experiment_id)

    def session_port(self, session: SessionRef) -> int:
        """The port the session's app listens on in its task: ``${SESSION_CONTAINER_PORT}``, else the first
        ``containerPort`` of the task definition's essential container."""
        configured = self.profile.integer("SESSION_CONTAINER_PORT", 0)
        if configured:
            return configured
        task_arn = self._session_task_arn(self.session_id_of(session))
        [task] = self.ecs.backend_of_tasks().describe([task_arn])
        definition = call(
            self._client("ecs"),
            "describe_task_definition",
            "Reading the session's task definition",
            taskDefinition=task["taskDefinitionArn"],
        )["taskDefinition"]
        port = essential_container_port(definition)
        if port is not None:
            return port
        raise AwsError(
            f"Task definition {definition.get('family')} maps no container port; set ${{SESSION_CONTAINER_PORT}} to "
            "the port the session's app listens on."
        )

    def _wait_for_state(
        self, experiment_id: str, states: tuple[str, ...], timeout: float, actions_started: bool = False
    ) -> str:
        """Waits until the experiment is in one of ``states``; with ``actions_started`` a ``running`` one counts only
        once none of its actions is still ``pending`` or ``initiating``."""
        fis = self._fis
        seen = {"state": "unknown", "reason": ""}

        def probe():
            experiment = fis.get(experiment_id)
            seen["state"], seen["reason"] = fis.state_of(experiment), fis.reason_of(experiment)
            if actions_started and seen["state"] == "running":
                waiting = [
                    name
                    for name, action in (experiment.get("actions") or {}).items()
                    if action.get("state", {}).get("status") in ("pending", "initiating")
                ]
                if waiting:
                    seen["reason"] = f"running; action(s) {', '.join(waiting)} not started yet"
                    return None
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
        if self.ctx.endpoints.local_platform_dir is not None:  # its AWS stand-ins serve DynamoDB and CloudWatch only
            self.info("A platform on this machine has no FIS: no experiments to stop.")
            return []
        stopped = self._fis.stop_experiments_of_run(self.context.worker if this_worker_only else None)
        self.info(f"Stopped {len(stopped)} FIS experiment(s) of run {self.context.run_id}: {stopped}")
        return stopped

    @keyword(tags=["aws-only", "fis", "cleanup"])
    def delete_experiment_templates_created_by_this_run(self) -> list[str]:
        """Deletes every FIS experiment template tagged ``suite-run-id=<this run>``; returns their ids."""
        if self.ctx.endpoints.local_platform_dir is not None:  # no FIS on this machine's platform
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
