"""Live progress on the console, under pabot too.

pabot holds each worker's console output until its suite ends, so a load run's progress or a long recovery wait
would only show afterwards. When ``run.sh`` runs the suites it sets ``PLATFORM_PROGRESS_FILE`` and follows that
file on the console while pabot runs; every progress line goes there, one line per write (appends of a line are
atomic on Linux, so workers never interleave within a line). Outside ``run.sh`` the line goes to Robot Framework's
console as before.
"""

from __future__ import annotations

import os
import time

from robot.api import logger

ENV = "PLATFORM_PROGRESS_FILE"


def console(text: str, worker: str = "") -> None:
    """Show ``text`` on the console now: through the progress file ``run.sh`` follows, or Robot's console."""
    path = os.environ.get(ENV)
    if not path:
        logger.console(text)
        return
    prefix = f"{time.strftime('%H:%M:%S')} {worker + ' ' if worker else ''}"
    lines = "".join(f"{prefix}{line}\n" for line in text.strip("\n").splitlines() if line.strip())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
    except OSError:
        logger.console(text)


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
