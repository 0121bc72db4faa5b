"""The API as this run's clients reach it: a partition on their route, and what they see of it (a request that
times out, a client that keeps retrying and how long after the heal it got through).

One keyword surface on both targets; the route is the backend's (``faults/clientroute``), chosen in one place
(``create_client_route``): on the embedded platform the fault proxy's ``api`` hop in front of its load balancer (every
client's route: a fault on the whole platform), on AWS a hop of a fault proxy this run starts on this machine in front
of the API's address (this run's connections only: no AWS action, no ``${CHAOS_SCOPE}`` ``deployment``). The probing
clients are the library's one API client taking that route (`PlatformApiClient.through` on AWS): authentication,
SigV4, TLS and the contract mapping as every other keyword's.
"""

from __future__ import annotations

from datetime import timedelta

from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from .clientroute import ClientRoute, create_client_route
from .clients import ExpectedStatus, RetryingClient, timed_request
from .injector import FaultInjector
from .network import ChaosNetworkKeywords


class ClientPartitionKeywords(LibraryComponent):
    """A partition between this run's clients and the API, and what the clients see, on both targets.

    Also a library listener: the retrying API clients a test started are stopped when it ends, and the route's own
    fault proxy (AWS) when the run ends.
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, network: ChaosNetworkKeywords):
        super().__init__(ctx)
        self.injector = injector
        self.network = network
        self._routes: dict[str, ClientRoute] = {}
        self._clients: dict[str, RetryingClient] = {}

    @property
    def route(self) -> ClientRoute:
        """The clients' route of the profile's target (created once per target)."""
        target = self.profile.target
        if target not in self._routes:
            self._routes[target] = create_client_route(target, self.ctx, self.injector, self.network)
        return self._routes[target]

    def end_test(self, data, result):
        for client in self._clients.values():
            client.stop()
        self._clients.clear()

    def close(self):
        for route in self._routes.values():
            route.close()

    # ------------------------------------------------------------------ the partition
    @keyword(tags=["chaos", "network", "client"])
    def cut_off_api_from_its_clients(self) -> str:
        """Cuts this run's clients off the API: their connections open, but no request gets through and no answer
        comes back, so requests hang until their own timeout (a partition as clients see one). Returns the fault id.

        Embedded platform: the fault proxy's ``api`` hop (the load balancer's) becomes a black hole, for every client
        of the platform (a fault on the whole platform: a private platform or the platform held). AWS: the same black
        hole on this run's own hop in front of ``${PLATFORM_API_URL}`` (a fault proxy on this machine); only the
        keywords below take it (`API Request Should Time Out`, `Start Retrying API Client`), every other keyword still
        reaches the API. Reverted by `Revert Fault`, `Revert All Faults` or the test's fault clean-up.

        Example:
        | ${fault} = | Cut Off API From Its Clients |
        | Start Retrying API Client | reader | /sessions/${session}[sessionId] |
        """
        return self.route.cut_off()

    # ------------------------------------------------------------------ what clients see
    @keyword(tags=["chaos", "client", "assertion"])
    def api_request_should_time_out(self, path: str = "/health", timeout: timedelta | None = None) -> None:
        """Fails unless ``GET path`` on this run's clients' route to the API gets no answer within ``timeout``.

        A partition looks like this to clients: no refusal and no error answer, just silence until their own
        timeout (default ``${CHAOS_CLIENT_TIMEOUT}``).
        """
        seconds = timeout.total_seconds() if timeout is not None else self.profile.seconds("CHAOS_CLIENT_TIMEOUT")
        attempt = timed_request(self.route.client(), "GET", path, seconds)
        if attempt.status is not None or "Timeout" not in attempt.outcome:
            raise AssertionError(
                f"GET {path} should have timed out after {format_seconds(seconds)} but got {attempt.describe()} after "
                f"{format_seconds(attempt.seconds)}."
            )
        self.info(f"GET {path} timed out after {format_seconds(attempt.seconds)} ({attempt.outcome}).")

    @keyword(tags=["chaos", "client"])
    def start_retrying_api_client(
        self,
        name: str,
        path: str,
        attempt_timeout: timedelta | None = None,
        backoff: timedelta = timedelta(seconds=0.1),
        expected_status: str = "2xx",
    ) -> None:
        """Starts a background client that sends ``GET path`` until it gets the answer it expects.

        It talks through the library's session-API client (authentication, TLS, contract mapping as every other
        keyword) and counts as getting through only an answer in ``expected_status``: ``2xx`` by default, or the
        statuses the step names (``200 404``). A 401, 403 or 404 the step did not name is an attempt that failed.
        Each attempt waits ``attempt_timeout`` (default ``${CHAOS_CLIENT_TIMEOUT}``); the pause between attempts
        starts at ``backoff`` and doubles up to 1 s, like an SDK's retries. It gives up after
        ``${RECOVERY_TIMEOUT}``. See `Retrying API Client Should Still Be Waiting` and
        `Wait Until Retrying API Client Gets Through`.

        Example:
        | Start Retrying API Client | reader | /sessions/${session}[sessionId] |
        | Start Retrying API Client | prober | /sessions/gone | expected_status=404 |
        """
        expected = ExpectedStatus.parse(expected_status)
        if name in self._clients:
            self._clients.pop(name).stop()
        per_attempt = (
            attempt_timeout.total_seconds()
            if attempt_timeout is not None
            else self.profile.seconds("CHAOS_CLIENT_TIMEOUT")
        )
        client = RetryingClient(
            name,
            self.route.client(),
            "GET",
            path,
            per_attempt,
            backoff.total_seconds(),
            1.0,
            self.profile.seconds("RECOVERY_TIMEOUT") + self.profile.seconds("FAULT_REACTION_TIMEOUT"),
            expected,
        )
        client.start()
        self._clients[name] = client
        self.info(
            f"Retrying client '{name}' started: GET {path}, {format_seconds(per_attempt)} per attempt, "
            f"expects {expected}."
        )

    def _client(self, name: str) -> RetryingClient:
        try:
            return self._clients[name]
        except KeyError:
            raise ValueError(f"No retrying client named '{name}'; start it with Start Retrying API Client.") from None

    @keyword(tags=["chaos", "client", "assertion"])
    def retrying_api_client_should_still_be_waiting(self, name: str, attempts: int = 2) -> None:
        """Waits until the client has made ``attempts`` attempts, and fails if any of them got an answer.

        During a partition every attempt must end in a timeout: an answer would mean the fault did not hold.
        """
        client = self._client(name)

        def probe():
            done, success = client.snapshot()
            if success is not None or any(a.status is not None for a in done):
                return "answered"
            return "waiting" if len(done) >= attempts else None

        deadline = attempts * (client.attempt_timeout + 1.0) + self.profile.seconds("FAULT_REACTION_TIMEOUT")
        waited = wait_until(probe, deadline, self.profile.seconds("POLL_INTERVAL"), client.summary)
        if waited.value == "answered":
            raise AssertionError(f"The client got an answer while the fault should hold: {client.summary()}")
        timeouts = {a.outcome for a in client.snapshot()[0]}
        self.info(f"Retrying client '{name}' is still waiting: {client.summary()} ({', '.join(sorted(timeouts))}).")

    @keyword(tags=["chaos", "client", "wait"])
    def wait_until_retrying_api_client_gets_through(self, name: str, timeout: timedelta | None = None) -> float:
        """Waits until the client got the answer it expects (2xx unless `Start Retrying API Client` named other
        statuses); returns the seconds from the last revert to that answer.

        The deadline is ``timeout`` or ``${RECOVERY_TIMEOUT}``; at the deadline the message says what the client
        got instead (status and body excerpt of its last answer, and its attempts by status).

        Example:
        | ${seconds} = | Wait Until Retrying API Client Gets Through | reader |
        """
        client = self._client(name)
        since = self.injector.since_revert()
        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("RECOVERY_TIMEOUT")
        waited = wait_until(
            lambda: client.snapshot()[1],
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"The retrying client never got the answer it expects ({client.expected}): {client.summary()}",
        )
        success = waited.value
        seconds = max(0.0, success.started + success.seconds - since)
        self.info(f"Retrying client '{name}' got through {format_seconds(seconds)} after the heal: {client.summary()}.")
        self._clients.pop(name).stop()
        return seconds
