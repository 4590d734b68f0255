"""``planctl report``: every plan, its progress, dependency graph, attempts and metrics as a static
HTML site. One folder, no server and no JavaScript: it opens from disk or can be published as is.

    index.html                  overview of every plan: progress bar, phase table, ready/in progress/waiting/
                                blocked/stale counts
    style.css
    <plan>/index.html           one plan: dependency graph, phases and tasks with their evidence, attempts
                                timeline and table, metric plots (the drawings are SVG inside the page)
    evidence/<plan>/<N>-summary.md, <N>-output.log
                                attempt #N's summary and log (hard links or copies), linked from the table;
                                one folder per plan, not per attempt: thousands of mkdirs cost seconds
    .planctl-report.json        what planctl wrote, so that a rebuild removes only its own stale files

Pages are Jinja templates (``templates/report/`` in the project over planctl's defaults).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from planctl import gitmeta
from planctl.project import Project
from planctl.records import Attempt
from planctl.report.graph import layout
from planctl.report.model import BundleFolders, Evidence, PlanReport, collect
from planctl.report.plots import legend, plot
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
    removed: int


def build_report(project: Project, out: Path) -> Built:
    """Write the report of every plan into ``out``. Evidence files that a previous report left
    there are kept while unchanged; files it wrote that are now gone are removed."""
    reports = collect(project, read_all(project))
    site = Site(out)
    env = environment(project, html=True)
    common = {"generated": _generated(project)}
    bundles = BundleFolders(project)
    for report in reports:
        for attempt in report.entry.attempts:
            report.evidence[attempt.number] = _evidence(bundles, site, report.name, attempt)
        page = _render(
            project,
            env,
            "report/plan.html.j2",
            title=f"{report.plan.initiative.id} — planctl report",
            root="../",
            r=report,
            graph=layout(report.plan.phases, report.tasks),
            timeline=timeline([view.task.id for view in report.tasks], report.entry.attempts),
            plots=[(metric, plot(metric), legend(metric)) for metric in report.metrics],
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
    return Built(len(reports), attempts, sum(len(r.metrics) for r in reports), len(removed))


def _render(project: Project, env: jinja2.Environment, name: str, **context: object) -> str:
    with template_errors(project, name):
        return env.get_template(name).render(**context)


def _evidence(bundles: BundleFolders, site: Site, plan_name: str, attempt: Attempt) -> Evidence:
    """The bundle's summary and log inside the site (a published site has no reports/)."""
    bundle = bundles.resolve(attempt.bundle)
    found: dict[str, str | None] = dict.fromkeys(EVIDENCE_FILES)
    for name in EVIDENCE_FILES:
        relative = f"evidence/{plan_name}/{attempt.number}-{name}"
        if bundle is not None and site.link(relative, os.path.join(bundle, name)):
            found[name] = relative
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
