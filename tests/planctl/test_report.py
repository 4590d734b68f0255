"""planctl report: a static site whose every link resolves on disk, with plots, evidence and staleness."""

from __future__ import annotations

import html.parser
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from planctl.cli import main
from planctl.graph import ready_tasks
from planctl.project import Project
from planctl.records import Attempt, load_records, records_path
from planctl.report.graph import layout
from planctl.report.model import TaskView, metric_series, waits_on
from planctl.schema import Plan
from tests.planctl.planctl_testkit import RUN_PLAN, SMALL_PLAN, git, init_repo, write


class Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)
            if name == "id" and value:
                self.ids.add(value)


def parse(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def broken_links(site: Path) -> list[str]:
    """Links of every page that do not resolve to a file (or an anchor) inside the site."""
    broken = []
    for page in site.rglob("*.html"):
        parsed = parse(page)
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                broken.append(f"{page.name}: external {link}")
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if site.resolve() not in target.parents or not target.is_file():
                broken.append(f"{page.relative_to(site)}: {link}")
            elif parts.fragment and parts.fragment not in parse(target).ids:
                broken.append(f"{page.relative_to(site)}: no #{parts.fragment} in {target.name}")
    return broken


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory) -> Path:
    """RUN-001 with a pass (A1), a JSON metric twice (A3), a failure (A4) and a verify of A1."""
    repo = init_repo(tmp_path_factory.mktemp("ran") / "repo", RUN_PLAN)
    for args in (["run", "run", "A1"], ["run", "run", "A3"], ["run", "run", "A4"], ["run", "run", "A3"]):
        cli(repo, *args)
    assert cli(repo, "verify", "run", "A1") == 0
    return repo


def cli(root: Path, *args: str) -> int:
    try:
        main(["--root", str(root), *args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


@pytest.fixture
def ran(ran_once, tmp_path) -> Path:
    """A copy of the module's repository, for a test to change."""
    return Path(shutil.copytree(ran_once, tmp_path / "repo", symlinks=True))


def test_the_report_is_one_folder_whose_links_all_resolve(ran, planctl):
    result = planctl("report", root=ran)
    assert result.code == 0, result.err
    assert result.out.strip() == "wrote reports/site/index.html: 1 plan(s), 5 attempt(s), 4 metric plot(s)"
    site = ran / "reports" / "site"
    assert broken_links(site) == []
    assert "script" not in parse(site / "index.html").tags | parse(site / "run" / "index.html").tags

    overview = (site / "index.html").read_text()
    assert 'id="plan-RUN-001"' in overview and 'aria-valuenow="2"' in overview  # A1 and A3 closed
    counts = re.findall(r'<li class="(\w+)"><span class="n">(\d+)</span>', overview)
    assert counts[:4] == [("ready", "3"), ("in_progress", "0"), ("waiting", "1"), ("blocked", "0")]

    page = (site / "run" / "index.html").read_text()
    # Plots are inline SVG: one per metric, each point a link to its attempt (checked above).
    assert sorted((site / "run").iterdir()) == [site / "run" / "index.html"]
    assert page.count('<svg class="metric-plot') == 4 and page.count("<polyline ") >= 4
    assert 'aria-label="A3 · gradients.json: control.* over attempts: ' in page
    assert 'aria-label="A1 · junit counts over attempts: passed, failed"' in page
    assert '<a href="#attempt-7"><circle ' in page and "<title>#7 passed = 1</title>" in page
    assert page.count('<g class="task ') == 6 and 'd="M234,' in page  # six boxes, phase A -> B arrow
    assert page.count('class="mark ') == 5 and "verify of #3" in page

    # The evidence of each attempt is copied in, so the folder can be published on its own.
    bundle = ran / load_records(records_path(Project(ran), "run"), "RUN-001").attempt(7).bundle
    copies = site / "evidence" / "run"
    assert (copies / "7-summary.md").read_bytes() == (bundle / "summary.md").read_bytes()
    assert (copies / "7-output.log").read_bytes() == (bundle / "output.log").read_bytes()
    assert 'href="../evidence/run/7-summary.md"' in page and 'href="../evidence/run/7-output.log"' in page
    assert git(ran, "status", "--porcelain", "--", "plans", "attempts", "ledgers") == ""


def test_stale_evidence_shows_with_the_changed_files(ran, planctl):
    test = ran / "tests" / "test_pass.py"
    test.write_text(test.read_text() + "# edited\n")
    assert planctl("report", "--out", ran / "site", root=ran).code == 0
    page = (ran / "site" / "run" / "index.html").read_text()
    assert re.search(r'<tr id="task-A1" class="done stale">', page)
    assert 'inputs changed since attempt #7<ul class="changed"><li><code>tests/test_pass.py</code>' in page
    # A3 checks that tests/test_pass.py holds default_F=100: the same edit makes its evidence stale.
    assert re.search(r'<tr id="task-A3" class="done stale">', page)
    assert '<span class="n">2</span> stale' in (ran / "site" / "index.html").read_text()


def test_a_rebuild_rewrites_nothing_unchanged_and_removes_what_is_gone(ran, planctl, tmp_path):
    out = tmp_path / "site"
    assert planctl("report", "--out", out, root=ran).code == 0
    kept = [out / "style.css", out / "evidence" / "run" / "7-summary.md"]
    before = [(p.stat().st_ino, p.stat().st_ctime_ns) for p in kept]  # a new link changes the ctime
    assert planctl("report", "--out", out, root=ran).code == 0
    assert [(p.stat().st_ino, p.stat().st_ctime_ns) for p in kept] == before
    (out / "notes.txt").write_text("the user's own file")
    (ran / "plans" / "run.yaml").rename(ran / "plans" / "renamed.yaml")
    result = planctl("report", "--out", out, root=ran)
    assert result.code == 0 and "old file(s) removed" in result.out
    assert not (out / "run").exists() and (out / "renamed" / "index.html").is_file()
    assert (out / "notes.txt").read_text() == "the user's own file"  # not planctl's: left alone
    assert broken_links(out) == []

    elsewhere = tmp_path / "docs"
    write(elsewhere / "index.md", "# not a report\n")
    refused = planctl("report", "--out", elsewhere, root=ran)
    assert refused.code == 2
    assert refused.err.strip() == (
        f"planctl: error: --out {elsewhere}: the folder holds other files; choose a new or empty folder"
    )


def attempt(number: int, task: str, metrics: dict) -> Attempt:
    return Attempt(
        number=number, task=task, phase="D", stamp="s", outcome="passed", started="t", bundle="b", metrics=metrics
    )


def test_every_numeric_metric_becomes_named_series_over_attempts():
    gradients = {
        "count": 2,
        "min": -2.0,
        "max": 1.0,
        "values": [1.0, -2.0],
        "labels": ["results.0.gradients.cell_a", "results.0.gradients.cell_b"],
    }
    many = {"count": 500, "min": 0.5, "max": 9.0}  # more values than a record keeps: min and max
    junit = {"tests": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0}
    series = metric_series(
        [
            attempt(9, "D2", {"junit": junit, "g.json:results.0.gradients": gradients}),
            attempt(4, "D2", {"g.json:results.0.gradients": gradients | {"values": [3.0, 4.0]}, "big:x": many}),
        ]
    )
    assert [(s.task, s.key, s.series) for s in series] == [
        ("D2", "g.json:results.0.gradients", {"cell_a": [(4, 3.0), (9, 1.0)], "cell_b": [(4, 4.0), (9, -2.0)]}),
        ("D2", "big:x", {"min": [(4, 0.5)], "max": [(4, 9.0)]}),
        ("D2", "junit", {"passed": [(9, 1.0)], "failed": [(9, 1.0)]}),
    ]
    assert series[0].title == "D2 · g.json: results.0.gradients" and series[0].attempts == 2


def test_the_graph_has_a_box_per_task_and_an_arrow_per_dependency():
    from ruamel.yaml import YAML

    plan = Plan.model_validate(YAML(typ="safe").load(SMALL_PLAN))
    ready = {t.id for _, t in ready_tasks(plan)}
    views = [TaskView(p, t, t.id in ready, [], None, []) for p, t in plan.tasks()]
    graph = layout(plan.phases, views)
    assert [b.label for b in graph.headers] == ["Phase A", "Phase B"]
    assert [(b.label, b.css) for b in graph.boxes] == [
        ("A1 [D]", "task done"),
        ("A2 [ ]", "task open ready"),
        ("B1 [ ]", "task open waiting"),
        ("B2 [ ]", "task open waiting"),
    ]
    # B requires A (header to header); B2 depends on B1 (a bow beside phase B's column).
    assert [e.css for e in graph.edges] == ["requires", "depends"]
    b1, b2 = graph.boxes[2], graph.boxes[3]
    assert graph.edges[1].path.startswith(f"M{b1.x + b1.w},{b1.mid_y} C") and graph.edges[1].path.endswith(
        f"{b2.x + b2.w},{b2.mid_y}"
    )
    assert graph.width >= b2.x + b2.w and graph.height >= b2.y + b2.h


STATES_PLAN = """\
initiative: {id: STATES-001, title: states}
phases:
  - id: A
    title: first
    tasks:
      - {id: A1, description: under way, state: '[P]'}
      - {id: A2, description: a prerequisite, state: '[ ]'}
      - {id: A3, description: waits, state: '[B]', reason: needs A2 and the GPU plan, waits_on: [A2, GPU-001, FAR-009]}
      - {id: A4, description: after A3, depends_on: [A3]}
"""
GPU_PLAN = """\
initiative: {id: GPU-001, title: a GPU}
phases:
  - {id: G, title: get one, tasks: [{id: G1, description: buy, state: '[D]'}]}
"""


def test_in_progress_and_blocked_tasks_show_in_counts_tables_and_graph(tmp_path, planctl):
    write(tmp_path / "plans" / "states.yaml", STATES_PLAN)
    write(tmp_path / "plans" / "gpu.yaml", GPU_PLAN)
    assert planctl("report", root=tmp_path).code == 0
    site = tmp_path / "reports" / "site"
    assert broken_links(site) == []  # the waits-on links included
    overview = (site / "index.html").read_text()
    assert "1/5 tasks closed · 1 in progress · 1 blocked" in overview
    for count, what in ((2, "ready"), (1, "in progress"), (1, "waiting"), (1, "blocked")):
        assert re.search(rf'<span class="n">{count}</span> {what}</li>', overview), what
    # The phase table of STATES-001 gets in-progress and blocked columns; GPU-001's does not.
    assert overview.count('<th class="num">In progress</th><th class="num">Blocked</th>') == 1
    assert (
        '<td class="num">0</td><td class="num">0</td><td class="num">1</td><td class="num">1</td><td class="num">2</td>'
        in overview
    )
    assert 'title="0 done, 0 skipped, 1 in progress, 1 blocked, 2 open"' in overview
    assert '<span class="bar in_progress" style="width: 25.00%">' in overview
    assert '<span class="bar blocked" style="width: 25.00%">' in overview

    page = (site / "states" / "index.html").read_text()
    rows = dict(re.findall(r'<tr id="task-(A\d)" class="([^"]+)">', page))
    assert rows == {"A1": "in_progress ready", "A2": "open ready", "A3": "blocked", "A4": "open waiting"}
    assert (
        '<span class="waits-on">waits on <a href="#task-A2">A2</a>, <a href="../gpu/index.html">GPU-001</a>, FAR-009'
        in page
    )
    assert '<g class="task blocked">' in page and '<g class="task in_progress ready">' in page
    assert page.count('class="edge waits"') == 1  # A2 -> A3; initiatives are not boxes
    assert "A3 [B] — waits — blocked: needs A2 and the GPU plan (waits on A2, GPU-001, FAR-009)" in page


def test_the_graph_draws_what_a_blocked_task_waits_on_in_its_plan():
    from ruamel.yaml import YAML

    plan = Plan.model_validate(YAML(typ="safe").load(STATES_PLAN))
    views = [
        TaskView(p, t, False, [], None, [], waits_on(plan, t, {"GPU-001": "../gpu/index.html"}))
        for p, t in plan.tasks()
    ]
    graph = layout(plan.phases, views)
    assert [e.css for e in graph.edges] == ["depends", "waits"]
    a2, a3 = graph.boxes[1], graph.boxes[2]
    assert graph.edges[1].path.startswith(f"M{a2.x + a2.w},{a2.mid_y} C") and graph.edges[1].path.endswith(
        f"{a3.x + a3.w},{a3.mid_y}"
    )
    assert [(w.id, w.href) for w in views[2].waits_on] == [
        ("A2", "#task-A2"),
        ("GPU-001", "../gpu/index.html"),
        ("FAR-009", None),
    ]
