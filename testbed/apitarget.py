"""One API target: a process the load balancer routes to, serving the session API from the platform's core.

On AWS the API is an ECS service of several tasks behind the ALB, stateless, with the sessions in DynamoDB. Here a
target is the HTTP face of such a task: a process of its own (so it can die, hang or be replaced alone) that hands
each request to the platform's session service in the main process and answers with its result. The session logic
stays in one process on purpose: the store's circuit breaker, bulkhead and defect switches are one per platform,
so a scenario about the load balancer never also changes what the store tests see. A request in flight on a target
that dies is lost, as on a task that dies. ``GET /health`` is the service's own check (the session store answers).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from testbed.loadbalancer import MAX_HEAD, HealthCheck, LoadBalancer, serve_until_stopped


async def run(args: argparse.Namespace) -> None:
    # One upstream, never taken out of rotation: a target answers for its service whatever the service's health.
    core = LoadBalancer(HealthCheck(enabled=False), args.timeout)
    core.register([{"id": "session-service", "port": args.upstream}])
    server = await asyncio.start_server(core.serve_client, "127.0.0.1", 0, limit=MAX_HEAD, backlog=256)
    await serve_until_stopped(args.ready_file, {"port": server.sockets[0].getsockname()[1]}, server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.apitarget")
    parser.add_argument("--upstream", type=int, required=True, help="port of the platform's session service")
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=60.0, help="longest wait for the session service")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
