"""Efficacy of the suite: does it catch the defects it claims to, and only those?

``python -m efficacy matrix [--fast] [--defect NAME ...] [--busy-core] [--profile local|aws-emulated]``
    Runs every ``catches-*`` scenario on the clean platform (any failure is a false alarm), then, per defect of
    ``efficacy/catalogue.toml``, the scenarios tagged ``catches-<defect>`` on platforms started with that defect
    (at least one must fail). Prints the matrix; exits 1 on any miss, false alarm or unmapped defect.
    ``--profile aws-emulated`` runs the recovery and chaos suites through the AWS backends against the embedded
    platform's AWS face (one emulated deployment per run, started with the defect); a defect whose every scenario
    is skipped on AWS (``needs-…``: what AWS cannot do) is reported ``aws-skip`` with the reason, not as a miss, and
    one the catalogue marks ``invisible_on_aws`` (no AWS API can show it) ``aws-invisible``, not run.
``python -m efficacy flake [--runs N] [--busy-core] [--cpu-limit CORES]``
    Runs the whole suite N times on the clean platform and lists every test that did not pass every time, with
    its failure messages, and every test that skipped at least once, with its skip messages (a measuring test
    skips when the machine is too busy to measure). Exits 1 when a test is flaky; a skip is not a flake.

``--cpu-limit CORES`` caps every run the command starts at CORES cores with a cgroup CPU quota (v1
``cpu.cfs_quota_us``, v2 ``cpu.max``), as a slower machine of the same kind would be: the cgroup is made before the
first run and removed at the end (also on Ctrl-C or SIGTERM; one left by a SIGKILLed command is removed by the
next). ``python -m efficacy flake --runs 10 --cpu-limit 1.2``.

``--busy-core`` keeps one core busy for the whole run with a CPU hog of the command's own (one process,
stopped by PID at the end, also on Ctrl-C or SIGTERM): does the suite hold on a busy machine, i.e. do the
measuring tests skip with their figures instead of failing the platform? The run's JSON records ``busy_core``.

A command ended early (SIGTERM, Ctrl-C) stops its pabot run in order: pabot is told to start nothing more, each
robot process gets SIGTERM (Robot's graceful stop: teardowns stop the platforms and revert the faults), then
whatever is left of the run is stopped by PID.

Results go to ``results/efficacy/`` (``matrix.json``, ``flake.json`` and each run's Robot Framework output).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psutil
from robot.api import ExecutionResult, ResultVisitor, TestSuiteBuilder

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "efficacy"
SUITES = ROOT / "suites"
PYTHON = sys.executable
BIN = Path(PYTHON).parent
PROCESSES = int(os.environ.get("PABOT_PROCESSES", "4"))  # as run.sh runs the suites
# What each profile runs: the variable file, and the suites (aws-emulated: the recovery and chaos suites, as CI).
PROFILES = {
    "local": ("resources/profiles/local.py", [SUITES]),
    "aws-emulated": ("resources/profiles/aws_emulated.py", [SUITES / "recovery", SUITES / "chaos"]),
}


@dataclass
class RunResult:
    statuses: dict[str, str] = field(default_factory=dict)  # test longname -> PASS/FAIL/SKIP
    messages: dict[str, str] = field(default_factory=dict)  # failure messages, first line
    seconds: float = 0.0
    skips: dict[str, str] = field(default_factory=dict)  # skip messages, first line: why the test did not judge


class _Collect(ResultVisitor):
    def __init__(self, result: RunResult) -> None:
        self.result = result

    def visit_test(self, test) -> None:
        self.result.statuses[test.longname] = test.status
        first = test.message.splitlines()[0] if test.message else ""
        if test.status == "FAIL":
            self.result.messages[test.longname] = first[:300]
        elif test.status == "SKIP":
            self.result.skips[test.longname] = first[:200]


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def busy_core(enabled: bool) -> Iterator[int | None]:
    """Keeps one core busy while the block runs (yields the hog's pid), so the suite meets a busy machine.

    The hog is a child of this command, not of the robot processes, so a measuring test counts its CPU as
    others' and skips. It is stopped by PID in ``finally``; SIGTERM is turned into SystemExit meanwhile so that
    ``finally`` also runs when the command is terminated, and the hog never outlives the command.
    """
    if not enabled:
        yield None
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    hog: subprocess.Popen[bytes] | None = None
    try:
        hog = subprocess.Popen(
            [PYTHON, "-c", "while True: pass"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(f"busy core: a CPU hog (pid {hog.pid}) keeps one core busy for the whole run", flush=True)
        yield hog.pid
    finally:
        if hog is not None:
            hog.kill()  # by its PID; a no-op when it has already been reaped
            hog.wait(10)
            print(f"busy core: CPU hog (pid {hog.pid}) stopped", flush=True)
        signal.signal(signal.SIGTERM, previous)


CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "efficacy-cpu-limit-"


class CpuLimitError(RuntimeError):
    """The machine cannot cap a run's CPU (no writable cgroup cpu controller)."""


def _cgroup_parent() -> tuple[Path, str]:
    """Where a capped cgroup can be made, and its kind: the v1 cpu controller, or cgroup v2 with cpu enabled."""
    if (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists():
        return CGROUP_V1_CPU, "v1"
    controllers = CGROUP_V2 / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return CGROUP_V2, "v2"
    raise CpuLimitError(
        "no cgroup cpu controller to cap the run with: neither /sys/fs/cgroup/cpu/cpu.cfs_quota_us (v1) nor 'cpu' "
        "in /sys/fs/cgroup/cgroup.controllers (v2); --cpu-limit needs root on Linux"
    )


def _remove_cgroup(group: Path) -> None:
    """Moves whatever is left in ``group`` back to its parent and removes it (a capped run never outlives us)."""
    procs = group / "cgroup.procs"
    with contextlib.suppress(OSError):
        for pid in procs.read_text().split():
            with contextlib.suppress(OSError):
                (group.parent / "cgroup.procs").write_text(pid)
    with contextlib.suppress(OSError):
        group.rmdir()


def _remove_stale_cgroups(parent: Path) -> list[str]:
    """Cgroups of earlier capped runs whose command is gone (killed before its finally): removed, named."""
    removed = []
    for group in parent.glob(f"{CGROUP_PREFIX}*"):
        owner = group.name.removeprefix(CGROUP_PREFIX)
        if owner.isdigit() and Path(f"/proc/{owner}").exists():
            continue  # a capped run that is still going
        _remove_cgroup(group)
        removed.append(group.name)
    return removed


@contextmanager
def cpu_limit(cores: float | None) -> Iterator[Path | None]:
    """Caps the CPU of every run this command starts at ``cores`` (a cgroup CPU quota), as a slower machine of the
    same kind would; yields the cgroup's folder (``None`` without a cap). Removed in ``finally``, also on Ctrl-C or
    SIGTERM; a cap left by a command that was SIGKILLed is removed by the next one."""
    if cores is None:
        yield None
        return
    if cores <= 0:
        raise CpuLimitError(f"--cpu-limit must be above 0 cores, not {cores:g}")
    parent, kind = _cgroup_parent()
    for name in _remove_stale_cgroups(parent):
        print(f"cpu limit: removed {name}, left by a capped run that was killed", flush=True)
    group = parent / f"{CGROUP_PREFIX}{os.getpid()}"
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    period = 100_000
    try:
        group.mkdir(exist_ok=True)
        quota = int(cores * period)
        if kind == "v1":
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (group / "cpu.max").write_text(f"{quota} {period}")
        print(f"cpu limit: every run is capped at {cores:g} cores (cgroup {kind} {group})", flush=True)
        yield group
    finally:
        _remove_cgroup(group)
        print(f"cpu limit: cgroup {group} removed", flush=True)
        signal.signal(signal.SIGTERM, previous)


def _join_cgroup(group: Path | None):
    """A ``preexec_fn`` that puts the child (and so everything it starts) into ``group`` before it runs."""
    if group is None:
        return None
    procs = str(group / "cgroup.procs")

    def join() -> None:
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))

    return join


def load_catalogue() -> dict[str, dict[str, object]]:
    with (ROOT / "efficacy" / "catalogue.toml").open("rb") as handle:
        return tomllib.load(handle)["defects"]


def mapped_tests() -> dict[str, list[str]]:
    """Defect name -> names of the tests tagged ``catches-<defect>``."""
    suite = TestSuiteBuilder(included_extensions=("robot",)).build(str(SUITES))
    mapping: dict[str, list[str]] = {}

    def walk(node) -> None:
        for test in node.tests:
            for tag in test.tags:
                if tag.startswith("catches-"):
                    mapping.setdefault(tag.removeprefix("catches-"), []).append(test.longname)
        for child in node.suites:
            walk(child)

    walk(suite)
    return mapping


RUN_TIMEOUT = 1800.0  # one pabot run, seconds
STOP_GRACE = 90.0  # after SIGTERM, how long Robot may run teardowns before what is left is killed
PABOT_EXIT_WAIT = 15.0  # how long pabot may take to stop PabotLib and exit once its robot processes are gone


def run_pabot(
    command: list[str], *, env: dict[str, str], timeout: float, preexec_fn=None, grace: float = STOP_GRACE
) -> int:
    """Runs pabot and returns its exit code; when the run ends early (this command's SIGTERM or Ctrl-C, or
    ``timeout``), stops it as :func:`stop_pabot` does before the exception goes on.

    Killing only pabot (what ``subprocess.run`` does on a timeout or an interrupt) left its robot processes
    running on, orphaned, with their platforms and PabotLib.
    """
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C in the terminal reaches this command only; stop_pabot passes it on
        preexec_fn=preexec_fn,
    )
    try:
        return process.wait(timeout)
    except BaseException:
        stop_pabot(process, grace)
        raise


def _alive(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    return False


def _is_robot(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(Path(part).name == "robot" for part in process.cmdline()[:2])
    return False


def stop_pabot(process: subprocess.Popen[bytes], grace: float, exit_wait: float = PABOT_EXIT_WAIT) -> None:
    """Stops a pabot run and everything it started, in the order that lets each clean up after itself.

    1. SIGINT to pabot (its Ctrl-C): it starts no further suite.
    2. SIGTERM to each robot process: Robot stops gracefully, its teardowns stop the platforms and revert the
       faults its tests made; up to ``grace`` seconds for that.
    3. pabot, its robot processes gone, stops PabotLib and exits (up to ``exit_wait`` seconds).
    4. Whatever of the tree is still alive gets SIGTERM, then SIGKILL five seconds later, each by its PID.
    """
    try:
        leader = psutil.Process(process.pid)
        tree = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        tree = []
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    robots = [p for p in tree[1:] if _is_robot(p)]
    for robot in robots:
        with contextlib.suppress(psutil.Error):
            robot.terminate()
    psutil.wait_procs(robots, timeout=grace)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(exit_wait)
    left = [p for p in tree if _alive(p)]
    for rest in left:
        with contextlib.suppress(psutil.Error):
            rest.terminate()
    _, alive = psutil.wait_procs(left, timeout=5)
    for rest in alive:
        with contextlib.suppress(psutil.Error):
            rest.kill()
    psutil.wait_procs(alive, timeout=5)  # a SIGKILL takes effect a moment later: gone before this returns
    process.wait()


def run_robot(
    name: str,
    include: str | None,
    defects: str = "",
    processes: int = PROCESSES,
    profile: str = "local",
    cgroup: Path | None = None,
) -> RunResult:
    """Run the tagged scenarios with pabot on platforms of their own (state under results/efficacy/<name>)."""
    outdir = OUT / (name if profile == "local" else f"{profile}-{name}")
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    variables, suites = PROFILES[profile]
    emulated = outdir / "aws-platform"
    env = {
        **os.environ,
        "TESTBED_DEFECTS": defects,
        "TESTBED_STATE": str(outdir / "testbed"),
        "AWS_EMULATED_STATE": str(emulated),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        str(BIN / "pabot"),
        "--processes",
        str(processes),
        *(["--ordering", str(SUITES / "pabot-ordering.txt")] if profile == "local" else []),
        "--pythonpath",
        "libraries",
        "--variablefile",
        variables,
        "--outputdir",
        str(outdir),
        *(["--include", include] if include else []),
        "--console",
        "none",
        *[str(s) for s in suites],
    ]
    began = time.monotonic()
    try:
        if profile == "aws-emulated":  # the deployment the profile points at, with the defect switched on
            subprocess.run(
                [PYTHON, "-m", "testbed", "up", "--aws-face", "--state", str(emulated)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                timeout=120,
                check=True,
                preexec_fn=_join_cgroup(cgroup),
            )
        run_pabot(command, env=env, timeout=RUN_TIMEOUT, preexec_fn=_join_cgroup(cgroup))
    finally:
        # A run may leave its shared platform up when a teardown failed: stop it, it must not outlive the run.
        for state in (outdir / "testbed", emulated):
            subprocess.run(
                [PYTHON, "-m", "testbed", "down", "--state", str(state)], cwd=ROOT, capture_output=True, timeout=120
            )
    result = RunResult(seconds=time.monotonic() - began)
    output = outdir / "output.xml"
    if output.exists():
        ExecutionResult(str(output)).visit(_Collect(result))
    return result


def cmd_matrix(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    names = args.defect or [n for n, d in catalogue.items() if d.get("fast") or not args.fast]
    unknown = sorted(set(names) - set(catalogue))
    if unknown:
        print(f"efficacy: not in the catalogue: {', '.join(unknown)}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from testbed.config import DEFECTS

    not_switches = [n for n in names if n not in DEFECTS]
    if not_switches:  # a platform refuses unknown defects, which would look like a catch
        print(f"efficacy: not defect switches of the platform: {', '.join(not_switches)}", file=sys.stderr)
        return 2
    mapping = mapped_tests()
    problems: list[str] = []
    rows: list[dict[str, object]] = []
    print(
        f"Running the catches-* scenarios on the clean platform{' (fast subset)' if args.fast else ''} ...", flush=True
    )
    includes = "OR".join(f"catches-{n}" for n in names)
    profile = args.profile
    clean = run_robot("clean", includes, profile=profile, cgroup=args.cgroup)
    false_alarms = {t: clean.messages.get(t, "") for t, s in clean.statuses.items() if s == "FAIL"}
    for test, message in false_alarms.items():
        problems.append(f"false alarm on the clean platform: {test}: {message}")
    for name in names:
        tests = mapping.get(name, [])
        if not tests:
            rows.append({"defect": name, "area": catalogue[name]["area"], "verdict": "UNMAPPED", "tests": 0})
            problems.append(f"{name}: no scenario is tagged catches-{name}")
            continue
        print(f"  {name}: {len(tests)} scenario(s) ...", flush=True)
        invisible = catalogue[name].get("invisible_on_aws") if profile != "local" else None
        if invisible:  # nothing an AWS API returns can show this defect: not run, said why
            rows.append(
                {"defect": name, "area": catalogue[name]["area"], "verdict": "aws-invisible", "tests": len(tests),
                 "first_failure": str(invisible)}
            )  # fmt: skip
            continue
        result = run_robot(name, f"catches-{name}", defects=name, profile=profile, cgroup=args.cgroup)
        failed = [t for t, s in result.statuses.items() if s == "FAIL"]
        skipped = [t for t, s in result.statuses.items() if s == "SKIP"]
        verdict = "caught" if failed else "MISSED"
        if (
            not result.statuses
            and profile != "local"
            and not any(t.split(".")[1] in ("Recovery", "Chaos") for t in tests)
        ):
            verdict = "not-in-profile"  # its scenarios are in suites this profile does not run
        elif not result.statuses:
            verdict = "NOT RUN"
        elif profile != "local" and not failed and len(skipped) == len(result.statuses):
            verdict = "aws-skip"  # every scenario needs what AWS cannot do; the skip says what
        if verdict not in ("caught", "aws-skip", "not-in-profile"):
            problems.append(f"{name}: {verdict.lower()} by {', '.join(tests)}")
        first = result.messages.get(failed[0], "") if failed else ""
        rows.append(
            {
                "defect": name,
                "area": catalogue[name]["area"],
                "verdict": verdict,
                "tests": len(tests),
                "failed": len(failed),
                "skipped": len(skipped),
                "seconds": round(result.seconds, 1),
                "first_failure": first or (result.skips.get(skipped[0], "") if verdict == "aws-skip" else ""),
            }
        )
    print()
    print(f"{'defect':28} {'area':38} {'verdict':8} {'failed/tests':>12}  first failure")
    for row in rows:
        ratio = f"{row.get('failed', 0)}/{row['tests']}"
        print(
            f"{row['defect']:28} {row['area']!s:38} {row['verdict']!s:8} {ratio:>12}  "
            f"{str(row.get('first_failure', ''))[:90]}"
        )
    clean_total = len(clean.statuses)
    clean_skips = sum(1 for s in clean.statuses.values() if s == "SKIP")
    print(
        f"\nclean platform: {clean_total - len(false_alarms) - clean_skips} of {clean_total} catches-* scenarios "
        f"passed, {clean_skips} skipped, {len(false_alarms)} false alarm(s)"
    )
    caught = sum(1 for r in rows if r["verdict"] == "caught")
    judged = [r for r in rows if r["verdict"] not in ("aws-skip", "not-in-profile", "aws-invisible")]
    print(f"profile {profile}: defects caught: {caught} of {len(judged)}", end="")
    others = len(rows) - len(judged)
    print(f" ({others} not judged on this profile: aws-skip, aws-invisible or not in its suites)" if others else "")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / ("matrix.json" if profile == "local" else f"matrix-{profile}.json")).write_text(
        json.dumps(
            {
                "profile": profile,
                "busy_core": args.busy_core,
                "cpu_limit": args.cpu_limit,
                "rows": rows,
                "false_alarms": false_alarms,
                "problems": problems,
            },
            indent=2,
        )
    )
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


def cmd_flake(args: argparse.Namespace) -> int:
    runs: list[RunResult] = []
    for i in range(args.runs):
        print(f"run {i + 1} of {args.runs} ...", flush=True)
        runs.append(run_robot(f"flake-{i + 1}", None, cgroup=args.cgroup))
        passed = sum(1 for s in runs[-1].statuses.values() if s == "PASS")
        print(f"  {passed} of {len(runs[-1].statuses)} passed in {runs[-1].seconds:.0f} s", flush=True)
    tests = sorted({t for r in runs for t in r.statuses})
    flaky: dict[str, dict[str, list[str]]] = {}
    skipped: dict[str, dict[str, list[str]]] = {}
    for test in tests:
        outcomes = [r.statuses.get(test, "MISSING") for r in runs]
        if any(o not in ("PASS", "SKIP") for o in outcomes):
            flaky[test] = {"outcomes": outcomes, "messages": [r.messages[test] for r in runs if test in r.messages]}
        if "SKIP" in outcomes:  # fine (a measuring test on a busy machine), but said, with why
            skipped[test] = {"outcomes": outcomes, "messages": [r.skips[test] for r in runs if test in r.skips]}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "flake.json").write_text(
        json.dumps(
            {
                "runs": args.runs,
                "busy_core": args.busy_core,
                "cpu_limit": args.cpu_limit,
                "tests": len(tests),
                "flaky": flaky,
                "skipped": skipped,
            },
            indent=2,
        )
    )
    if flaky:
        print(f"\ndid not pass every time ({len(flaky)}):")
    for test, info in flaky.items():
        print(f"- {test}: {' '.join(info['outcomes'])}")
        for message in dict.fromkeys(info["messages"]):
            print(f"    {message}")
    if skipped:
        print(f"\nskipped at least once ({len(skipped)}):")
    for test, info in skipped.items():
        print(f"- {test}: {' '.join(info['outcomes'])}")
        for message in dict.fromkeys(info["messages"]):
            print(f"    {message}")
    print(
        f"\n{len(tests)} tests, {args.runs} runs: {len(flaky)} did not pass every time, "
        f"{len(skipped)} skipped at least once"
    )
    return 1 if flaky or not tests else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m efficacy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    matrix = sub.add_parser("matrix", help="defect x caught/missed, plus false alarms on the clean platform")
    matrix.add_argument("--fast", action="store_true", help="only the defects marked fast (the CI subset)")
    matrix.add_argument("--defect", action="append", help="only this defect (repeatable)")
    matrix.add_argument(
        "--profile", choices=sorted(PROFILES), default="local", help="local (default) or aws-emulated (AWS backends)"
    )
    matrix.set_defaults(func=cmd_matrix)
    flake = sub.add_parser("flake", help="run the whole suite N times and list tests that did not always pass")
    flake.add_argument("--runs", type=int, default=5)
    flake.set_defaults(func=cmd_flake)
    for command in (matrix, flake):
        command.add_argument(
            "--busy-core", action="store_true", help="keep one core busy with a CPU hog for the whole run"
        )
        command.add_argument(
            "--cpu-limit",
            type=float,
            metavar="CORES",
            help="cap every run's CPU at CORES cores with a cgroup quota (a slower machine), e.g. 1.2",
        )
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so that every ``finally`` runs on SIGTERM too
    try:
        with busy_core(args.busy_core), cpu_limit(args.cpu_limit) as group:
            args.cgroup = group
            return int(args.func(args))
    except CpuLimitError as error:
        print(f"efficacy: {error}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
