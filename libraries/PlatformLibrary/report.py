"""The resilience report: performance, reliability and cost, merged across pabot workers (issue 5).

The builder is :mod:`PlatformLibrary.reportgen` (``python -m PlatformLibrary.reportgen results``), which ``run.sh``
runs after pabot. These keywords build it from inside a run (plain ``robot``) and link it from the log.
"""

from __future__ import annotations

from pathlib import Path

from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from .base import LibraryComponent, LibraryContext
from .metrics import MetricsKeywords
from .reportgen import HTML_NAME, write_report


class ReportKeywords(LibraryComponent):
    """The resilience report: performance, reliability and cost, merged across pabot workers.

    The report (``resilience-report.json`` with the schema in ``docs/load-and-report.md``, and the self-contained
    ``resilience-report.html``) is built from every process's metrics in ``${METRICS_DIR}``: the JSON lines of
    `Record Metric`, the load-run summaries and the HdrHistograms of the load keywords (added, never averaged).
    """

    def __init__(self, ctx: LibraryContext, metrics: MetricsKeywords):
        super().__init__(ctx)
        self._metrics = metrics

    def _output_dir(self) -> Path:
        try:
            return Path(BuiltIn().get_variable_value("${OUTPUT DIR}"))
        except RobotNotRunningError:
            return Path("results")

    @keyword(tags=["report"])
    def write_resilience_report(self, folder: str | None = None) -> str:
        """Builds the resilience report from the metrics recorded so far into ``folder`` (default: the output
        directory) and returns the HTML file's path. Under pabot, ``run.sh`` builds the merged report after all
        workers have finished; this keyword is for plain ``robot`` runs, e.g. in a suite teardown.

        Example:
        | Suite Teardown | Write Resilience Report |
        """
        target = Path(folder) if folder else self._output_dir()
        metrics = self._metrics.metrics_file.parent
        profile = self.profile.text("PROFILE", "local")
        profile_file = self.ctx.project_root / "resources" / "profiles" / f"{profile}.py"
        _, html_path = write_report(
            target, metrics_dir=metrics, profile_path=profile_file if profile_file.is_file() else None
        )
        self.log_resilience_report_link(str(html_path))
        return str(html_path)

    @keyword(tags=["report"])
    def log_resilience_report_link(self, path: str = HTML_NAME) -> None:
        """Logs a link to the resilience report (relative to the log file, which sits in the same folder)."""
        name = Path(path).name
        self.info(f'Resilience report: <a href="{name}">{name}</a>', html=True)
