"""``planctl report``: every plan, its progress, dependency graph, attempts and metrics as a static
HTML site. One folder, no server and no JavaScript: it opens from disk or can be published as is.

    index.html                  overview of every plan: progress bar, phase table, ready/in progress/waiting/
                                blocked/stale counts
    style.css
    <plan>/index.html           one plan: dependency graph (SVG), phases and tasks with their evidence,
                                attempts timeline (SVG) and table, metric plots
    <plan>/metric-<hash>.png    each numeric metric the checks recorded, over attempts (matplotlib)
    evidence/<plan>/<N>/        attempt #N's summary.md and output.log (hard links or copies), linked from the table
    .planctl-report.json        what planctl wrote, so that a rebuild removes only its own stale files

Pages are Jinja templates (``templates/report/`` in the project over planctl's defaults).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from planctl import gitmeta
from planctl.project import Project
from planctl.records import Attempt
from planctl.report.graph import layout
from planctl.report.model import Evidence, PlanReport, collect, inside
from planctl.report.plots import draw, legend, plot_name
from planctl.report.site import Site
from planctl.report.timeline import timeline
from planctl.store import read_all
from planctl.views import environment, template_errors

EVIDENCE_FILES = ("summary.md", "output.log")


@dataclass(frozen=True)
class Built:
    plans: int
    attempts: int
    plots: int
    drawn: int
    removed: int


def build_report(project: Project, out: Path) -> Built:
    """Write the report of every plan into ``out``. Plots and evidence files that a previous
    report left there are reused while unchanged; files it wrote that are now gone are removed."""
    reports = collect(project, read_all(project))
    site = Site(out)
    env = environment(project, html=True)
    common = {"generated": _generated(project)}
    plots = {f"{r.name}/{plot_name(metric)}": metric for r in reports for metric in r.metrics}
    missing = [relative for relative in plots if not site.has(relative)]
    for relative, png in zip(missing, draw([plots[relative] for relative in missing]), strict=True):
        site.write(relative, png)
    for relative in plots.keys() - set(missing):
        site.keep(relative)
    for report in reports:
        for attempt in report.entry.attempts:
            report.evidence[attempt.number] = _evidence(project, site, report.name, attempt)
        page = _render(
            project,
            env,
            "report/plan.html.j2",
            title=f"{report.plan.initiative.id} — planctl report",
            root="../",
            r=report,
            graph=layout(report.plan.phases, report.tasks),
            timeline=timeline([view.task.id for view in report.tasks], report.entry.attempts),
            plots=[(metric, plot_name(metric), legend(metric)) for metric in report.metrics],
            **common,
        )
        site.write(f"{report.name}/index.html", page)
    overview = _render(
        project,
        env,
        "report/index.html.j2",
        title="planctl report",
        root="",
        reports=reports,
        totals=_totals(reports),
        **common,
    )
    site.write("index.html", overview)
    with template_errors(project, "report/style.css"):
        loader = env.loader
        assert loader is not None  # views.environment always gives one
        site.write("style.css", loader.get_source(env, "report/style.css")[0])
    removed = site.finish()
    attempts = sum(len(r.entry.attempts) for r in reports)
    return Built(len(reports), attempts, len(plots), len(missing), len(removed))


def _render(project: Project, env: jinja2.Environment, name: str, **context: object) -> str:
    with template_errors(project, name):
        return env.get_template(name).render(**context)


def _evidence(project: Project, site: Site, plan_name: str, attempt: Attempt) -> Evidence:
    """The bundle's summary and log inside the site (a published site has no reports/)."""
    bundle = inside(project, attempt.bundle)
    found: dict[str, str | None] = {}
    for name in EVIDENCE_FILES:
        source = bundle / name if bundle is not None else None
        relative = f"evidence/{plan_name}/{attempt.number}/{name}"
        if source is not None and source.is_file():
            site.link(relative, source)
            found[name] = relative
        else:
            found[name] = None
    return Evidence(summary=found["summary.md"], log=found["output.log"])


def _generated(project: Project) -> dict[str, object]:
    git = gitmeta.git_state(gitmeta.open_repo(project.root))
    return {
        "project": project.root.name,
        "commit": (git["commit"] or "")[:10] if git else None,
        "dirty": bool(git and git["dirty"]),
        "at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _totals(reports: list[PlanReport]) -> dict[str, int]:
    attempts = [a for r in reports for a in r.entry.attempts]
    return {
        "plans": len(reports),
        "tasks": sum(r.counts.total for r in reports),
        "closed": sum(r.counts.closed for r in reports),
        "in_progress": sum(r.counts.in_progress for r in reports),
        "blocked": sum(r.counts.blocked for r in reports),
        "attempts": len(attempts),
        "passed": sum(a.outcome == "passed" for a in attempts),
        "failed": sum(a.outcome == "failed" for a in attempts),
        "stale": sum(r.count("stale") for r in reports),
    }
