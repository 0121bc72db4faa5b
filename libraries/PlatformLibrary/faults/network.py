"""Chaos keywords for network and AWS API faults on the fault proxy's hops, and what the API answers under them."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Literal

from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from ..sessions.api import PlatformApiKeywords, SessionRef
from .clients import timed_request
from .fis import FisKeywords
from .injector import FaultInjector
from .ledger import ChaosError, reverted_toxics
from .ledger import toxic_hits as chaos_ledger_toxic_hits
from .toxiproxy import FaultProxyError, ToxiproxyClient

DYNAMODB_PREFIX = "DynamoDB_20120810."
WHOLE_PLATFORM_HOPS = ("api", "dynamodb")
TOXIC_INT_ATTRIBUTES = {
    "latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes", "max",
}  # fmt: skip


class ChaosNetworkKeywords(LibraryComponent):
    """Network and AWS API faults on the fault proxy's hops, and what the API answers under them (the circuit
    breaker). What clients see of a partition is `ClientPartitionKeywords`' (``faults/partition.py``)."""

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, api: PlatformApiKeywords, fis: FisKeywords):
        super().__init__(ctx)
        self.injector = injector
        self.api = api
        self.fis = fis  # FIS faults of the test count in `Every Injected Fault Should Have Fired`

    # ------------------------------------------------------------------ network faults (fault proxy toxics)
    def _proxy(self) -> ToxiproxyClient:
        url = self.ctx.endpoints.get("FAULT_PROXY_URL", "")
        if not url:
            raise ChaosError("This target has no fault proxy (FAULT_PROXY_URL is empty).")
        return ToxiproxyClient(str(url), self.http_timeout)

    def _guard_hop(self, hop: str) -> None:
        if hop in WHOLE_PLATFORM_HOPS:
            self.injector.guard_whole_platform(f"A fault on the '{hop}' hop")
        elif hop.startswith("mesh-"):
            self.injector.guard_session(hop[len("mesh-") :])
        else:
            self.injector.allow(f"add a toxic to hop {hop}")

    def add_hop_toxic(self, hop: str, body: dict, description: str, proxy: ToxiproxyClient | None = None) -> str:
        """Adds the toxic ``body`` to ``hop`` after the hop's guard, kept in the fault ledger; returns the fault id.

        ``proxy`` is the fault proxy the hop is on: the platform's (``FAULT_PROXY_URL``) unless another is given (the
        run's own, in front of the API: ``faults/clientroute``)."""
        self._guard_hop(hop)
        proxy = proxy or self._proxy()
        name = f"chaos-{self.context.run_id}-{int(time.time() * 1000) % 10**8}-{body['type']}"
        body = {**body, "name": name}
        entry = self.injector.record(
            "toxic",
            f"{description} on hop {hop}",
            [{"do": "delete-toxic", "proxy": proxy.url, "hop": hop, "toxic": name}],
        )
        try:
            proxy.add_toxic(hop, body)
        except FaultProxyError as error:
            self.injector.undo_now(entry)
            raise ChaosError(f"The fault proxy did not take toxic {body}: {error}") from None
        return self.injector.activate(entry, toxic={"proxy": proxy.url, "hop": hop, "name": name})

    @keyword(tags=["chaos", "network"])
    def add_toxic(
        self, hop: str, type: str, stream: str = "downstream", toxicity: float = 1.0, **attributes: str
    ) -> str:
        """Adds a Toxiproxy toxic to a hop of the fault proxy and returns the fault id for `Revert Fault`.

        ``type`` is a Toxiproxy toxic (``latency``, ``bandwidth``, ``slow_close``, ``timeout``, ``reset_peer``,
        ``slicer``, ``limit_data``) or ``aws_fault``; ``attributes`` are its attributes (numbers are converted).
        Works the same against a real Toxiproxy server. Hops: ``api`` (the load balancer), ``dynamodb`` (the
        platform's route to DynamoDB), ``mesh-<sessionId>`` (the API's route to one session's container).

        Example:
        | ${fault} = | Add Toxic | mesh-${session}[sessionId] | latency | latency=200 |
        | ${fault} = | Add Toxic | dynamodb | reset_peer | toxicity=0.3 | timeout=0 |
        """
        attrs: dict[str, Any] = {}
        for key, value in attributes.items():
            if key in TOXIC_INT_ATTRIBUTES or key in ("count", "hits"):
                attrs[key] = int(value)
            elif key == "probability":
                attrs[key] = float(value)
            else:
                attrs[key] = value
        body = {"type": type, "stream": stream, "toxicity": float(toxicity), "attributes": attrs}
        return self.add_hop_toxic(hop, body, f"{type} toxic {attrs} on the {stream} stream (toxicity {toxicity})")

    @keyword(tags=["chaos", "network"])
    def limit_connections_on_fault_proxy_hop(self, hop: str, maximum: int) -> str:
        """Lets at most ``maximum`` connections through ``hop`` at once; a new one beyond is reset at once (what a
        connection limit does). Connections already open stay. Returns the fault id; `Get Fault Hits` says how
        many connections the limit refused.

        Example:
        | ${fault} = | Limit Connections On Fault Proxy Hop | dynamodb | 2 |
        """
        if maximum < 0:
            raise ValueError(f"maximum must be 0 or more, got {maximum}.")
        return self.add_hop_toxic(
            hop,
            {"type": "limit_connections", "stream": "upstream", "attributes": {"max": int(maximum)}},
            f"at most {maximum} connection(s) at once",
        )

    @keyword(tags=["chaos", "network"])
    def get_fault_hits(self, fault: str) -> int:
        """How often an active toxic fault acted: requests an ``aws_fault`` faulted, connections a connection limit
        refused, chunks any other toxic handled."""
        toxic = self._toxic_of(fault)
        try:
            answer = ToxiproxyClient(toxic["proxy"], self.http_timeout).toxic(toxic["hop"], toxic["name"])
            return chaos_ledger_toxic_hits(answer)
        except FaultProxyError as error:
            raise ChaosError(f"Cannot read the hits of fault {fault} (toxic {toxic['name']}): {error}") from None

    @keyword(tags=["chaos", "assertion"])
    def every_injected_fault_should_have_fired(self) -> None:
        """Fails unless every toxic fault of the current test acted at least once (faults still active and those
        reverted during the test), and every FIS fault reached its target: a fault that never fired proves
        nothing, so the test must not pass on it. Faults of other kinds (cgroups, files, processes, the clock)
        are applied before their keyword returns and are not counted here.
        """
        unfired = []
        for entry in self.injector.ledger.mine():
            if entry.get("kind") == "toxic" and entry.get("toxic"):
                toxic = entry["toxic"]
                try:
                    client = ToxiproxyClient(toxic["proxy"], self.http_timeout)
                    hits = chaos_ledger_toxic_hits(client.toxic(toxic["hop"], toxic["name"]))
                except FaultProxyError:
                    continue  # its hop is gone (the session was deleted): nothing to judge
                if hits == 0:
                    unfired.append(f"{entry['id']} {entry.get('description')}")
            elif entry.get("kind") == "fis" and entry.get("experiment"):
                experiment = self.fis.get_fis_experiment(entry["experiment"])
                states = [a.get("state", {}).get("status") for a in (experiment.get("actions") or {}).values()]
                if not any(state in ("running", "completed", "stopping", "stopped") for state in states):
                    unfired.append(f"{entry['id']} {entry.get('description')} (FIS actions: {states})")
        for reverted in reverted_toxics(self.injector.test_started):
            if reverted["hits"] == 0:
                unfired.append(f"{reverted['id']} {reverted['description']} (reverted)")
        if unfired:
            raise AssertionError(
                "A fault of this test never fired, so the test proved nothing about it:\n"
                + "\n".join(f"- {u}" for u in unfired)
            )
        self.info("Every fault of the test fired.")

    @keyword(tags=["chaos", "network"])
    def cut_off_fault_proxy_hop(self, hop: str) -> str:
        """Makes a hop a black hole: connections open but no request gets through and no answer comes back.

        This is a network partition as clients see one: requests hang until their own timeout (Toxiproxy
        ``timeout`` toxic with ``timeout=0`` on the upstream stream, which also holds connections already open).
        Returns the fault id.

        Example:
        | ${fault} = | Cut Off Fault Proxy Hop | api |
        """
        return self.add_hop_toxic(
            hop,
            {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}},
            "network partition (black hole)",
        )

    def mesh_hop_of(self, session: SessionRef) -> str:
        """The fault proxy's hop between the API and the session's container (``mesh-<sessionId>``), checked."""
        session_id = self.injector.guard_session(session)
        hop = f"mesh-{session_id}"
        try:
            found = self._proxy().hop(hop)
        except FaultProxyError as error:
            raise ChaosError(f"The fault proxy did not answer about hop {hop}: {error}") from None
        if found is None:
            raise ChaosError(f"Session {session_id} has no service-mesh hop {hop} (is it RUNNING? is mesh_proxy on?).")
        return hop

    # ------------------------------------------------------------------ AWS API faults (aws_fault toxic)
    @staticmethod
    def _aws_target(target: str) -> str:
        target = (target or "").strip()
        if target and "." not in target and not target.endswith("*"):
            return DYNAMODB_PREFIX + target
        return target

    @keyword(tags=["chaos"])
    def inject_aws_fault(
        self,
        action: Literal["throttle", "throttling", "error500", "error503", "latency", "drop"],
        target: str = "",
        probability: float = 1.0,
        count: int = 0,
        latency: timedelta = timedelta(0),
        hop: str = "dynamodb",
    ) -> str:
        """Answers DynamoDB requests of the platform with forged AWS errors on the ``dynamodb`` hop.

        ``action``: ``throttle`` (ProvisionedThroughputExceededException, 400), ``throttling``
        (ThrottlingException, 400), ``error500`` (InternalServerError), ``error503`` (ServiceUnavailable),
        ``latency`` (the request is delayed by ``latency``) or ``drop`` (the connection is closed).
        The answers have exactly DynamoDB's shape, so botocore classifies and retries them as it would AWS's.
        ``target`` picks the operation (``PutItem`` or ``DynamoDB_20120810.PutItem``; ``Prefix*`` for several;
        empty for every request); ``probability`` hits a share of the matching requests; ``count`` caps the
        hits (0 = no cap). Returns the fault id (see `Get AWS Fault Hits`).

        Example:
        | ${fault} = | Inject AWS Fault | throttle | target=PutItem | count=2 |
        | ${fault} = | Inject AWS Fault | error503 | probability=0.3 |
        | ${fault} = | Inject AWS Fault | latency | target=GetItem | latency=1.5 s | count=1 |
        """
        attributes = {
            "action": action,
            "target": self._aws_target(target),
            "probability": float(probability),
            "count": int(count),
            "latency": int(latency.total_seconds() * 1000),
        }
        body = {"type": "aws_fault", "stream": "upstream", "attributes": attributes}
        what = f"forged DynamoDB {action} on {attributes['target'] or 'every request'}"
        what += f" (probability {probability:g}, count {count or 'unlimited'})"
        return self.add_hop_toxic(hop, body, what)

    def _toxic_of(self, fault: str) -> dict:
        entry = self.injector.ledger.get(str(fault))
        if entry is None or "toxic" not in entry:
            raise ChaosError(f"Fault {fault} is not an active toxic (already reverted?).")
        return entry["toxic"]

    def get_aws_fault_hits(self, fault: str) -> int:
        """Returns how many requests the ``aws_fault`` toxic of ``fault`` has answered with its fault so far."""
        toxic = self._toxic_of(fault)
        try:
            answer = ToxiproxyClient(toxic["proxy"], self.http_timeout).toxic(toxic["hop"], toxic["name"])
            return int(answer["attributes"]["hits"])
        except (FaultProxyError, TypeError, ValueError, KeyError) as error:
            raise ChaosError(f"Cannot read the hits of fault {fault} (toxic {toxic['name']}): {error}") from None

    @keyword(tags=["chaos", "wait"])
    def wait_until_aws_fault_was_hit(self, fault: str, times: int = 1, timeout: timedelta | None = None) -> int:
        """Waits until the fault has hit at least ``times`` requests; returns the hits.

        The deadline is ``timeout`` or ``${FAULT_REACTION_TIMEOUT}``.
        """
        seen = {"hits": 0}

        def probe():
            seen["hits"] = self.get_aws_fault_hits(fault)
            return seen["hits"] if seen["hits"] >= times else None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("FAULT_REACTION_TIMEOUT")
        waited = wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"Fault {fault} hit {seen['hits']} request(s), expected at least {times}",
        )
        return int(waited.value)

    @keyword(tags=["chaos", "assertion"])
    def aws_fault_hits_should_be(self, fault: str, expected: int) -> None:
        """Fails unless the fault hit exactly ``expected`` requests: proof the platform met the fault (and retried)."""
        hits = self.get_aws_fault_hits(fault)
        if hits != int(expected):
            raise AssertionError(f"Fault {fault} hit {hits} request(s), expected {expected}.")

    # ------------------------------------------------------------------ circuit breaker
    @keyword(tags=["chaos", "circuit-breaker", "wait"])
    def wait_until_api_fails_fast(
        self, session: SessionRef, bound: timedelta | None = None, timeout: timedelta | None = None
    ) -> float:
        """Waits until ``GET /sessions/{id}`` answers a clean 503 ``store_unavailable`` within ``bound``.

        That is the circuit breaker at work: during a DynamoDB outage the API stops waiting out timeouts and
        retries. Returns the seconds from the fault's injection to the first fast answer (time to open). The
        bound is ``${CHAOS_FAIL_FAST_MAX}``, the deadline ``timeout`` or ``${FAULT_REACTION_TIMEOUT}``; at the
        deadline the keyword fails naming the slowest and the last answer.
        """
        session_id = self.session_id_of(session)
        limit = bound.total_seconds() if bound is not None else self.profile.seconds("CHAOS_FAIL_FAST_MAX")
        path = self.ctx.api.session_path(session_id)
        since = self.injector.injected_at or time.monotonic()
        seen: dict[str, Any] = {"last": None, "slowest": 0.0, "count": 0}

        def probe():
            attempt = timed_request(self.ctx.api, "GET", path, self.http_timeout)
            seen["count"] += 1
            seen["last"] = attempt
            seen["slowest"] = max(seen["slowest"], attempt.seconds)
            if attempt.status == 503 and "store_unavailable" in attempt.detail and attempt.seconds < limit:
                return attempt
            return None

        def describe():
            last = seen["last"]
            answer = f"{last.status} {last.detail[:120]!r}" if last and last.status else (last and last.outcome)
            return (
                f"The API did not fail fast during the DynamoDB outage: {seen['count']} request(s), slowest "
                f"{format_seconds(seen['slowest'])}, last answer {answer} after "
                f"{format_seconds(last.seconds if last else 0)}; fail-fast bound {format_seconds(limit)}"
            )

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("FAULT_REACTION_TIMEOUT")
        waited = wait_until(probe, deadline, self.profile.seconds("POLL_INTERVAL"), describe)
        seconds = waited.value.started + waited.value.seconds - since
        self.info(
            f"The API fails fast {format_seconds(seconds)} after the outage began: 503 in "
            f"{format_seconds(waited.value.seconds)} (slowest answer before: {format_seconds(seen['slowest'])})."
        )
        return seconds

    @keyword(tags=["chaos", "circuit-breaker", "assertion"])
    def api_should_keep_failing_fast(
        self, session: SessionRef, requests_count: int = 5, bound: timedelta | None = None
    ) -> float:
        """Sends ``requests_count`` lookups; each must be 503 ``store_unavailable`` with ``Retry-After`` in ``bound``.

        Returns the slowest answer in seconds. ``bound`` defaults to ``${CHAOS_FAIL_FAST_MAX}``.
        """
        session_id = self.session_id_of(session)
        limit = bound.total_seconds() if bound is not None else self.profile.seconds("CHAOS_FAIL_FAST_MAX")
        problems, slowest = [], 0.0
        for _ in range(int(requests_count)):
            response = self.ctx.api.request("GET", self.ctx.api.session_path(session_id))
            slowest = max(slowest, response.seconds)
            if response.status != 503 or response.error_code != "store_unavailable":
                problems.append(f"{response.describe()} (expected 503 store_unavailable)")
            elif not response.retry_after:
                problems.append(f"{response.describe()} without Retry-After")
            elif response.seconds >= limit:
                problems.append(f"answer took {format_seconds(response.seconds)}, bound {format_seconds(limit)}")
        if problems:
            raise AssertionError(
                "The API did not keep failing fast and cleanly:\n" + "\n".join(f"- {p}" for p in problems)
            )
        self.info(f"{requests_count} lookups failed fast and cleanly; slowest {format_seconds(slowest)}.")
        return slowest

    @keyword(tags=["chaos", "circuit-breaker", "assertion"])
    def health_should_report_the_store_unavailable(self) -> dict:
        """Fails unless ``GET /health`` answers 503 ``degraded`` with the store ``unavailable`` and the circuit open.

        A health check that says ``ok`` while DynamoDB is unreachable sends traffic to a platform that cannot
        serve it. Returns the health body.
        """
        health = self.api.get_platform_health()
        ok = (
            health.get("httpStatus") == 503
            and health.get("status") == "degraded"
            and health.get("store") == "unavailable"
            and health.get("storeCircuit") in ("open", "half-open")
        )
        if not ok:
            raise AssertionError(
                f"GET /health should report the store unavailable during the DynamoDB outage (503, status "
                f"degraded, store unavailable, storeCircuit open) but answered {health}."
            )
        return health

    @keyword(tags=["chaos", "circuit-breaker", "wait"])
    def wait_until_circuit_closes(self, timeout: timedelta | None = None) -> float:
        """Waits until ``GET /health`` answers 200 ``ok`` with ``storeCircuit`` ``closed``; returns the seconds
        since the last revert (time to close). The deadline is ``timeout`` or ``${RECOVERY_TIMEOUT}``."""
        since = self.injector.since_revert()
        last: dict[str, Any] = {}

        def probe():
            last["health"] = health = self.api.get_platform_health()
            ok = health.get("httpStatus") == 200 and health.get("status") == "ok"
            return True if ok and health.get("storeCircuit") in ("closed", None) else None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("RECOVERY_TIMEOUT")
        wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"The store circuit did not close; last health {last.get('health')}",
        )
        seconds = time.monotonic() - since
        self.info(f"The store circuit closed {format_seconds(seconds)} after DynamoDB came back.")
        return seconds
