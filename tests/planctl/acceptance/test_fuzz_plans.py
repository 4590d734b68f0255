"""Fuzzing the plan reader: any text gives a plan or located one-line problems, never an exception
or a hang; and the dependency graph copes with plans far larger than people write."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planctl.graph import Graph, ready_tasks, structure_problems
from planctl.parsecache import plain
from planctl.plainyaml import fast_load
from planctl.project import Project
from planctl.schema import Plan
from planctl.store import inspect_plan
from planctl.yamlio import make_yaml
from tests.planctl.planctl_testkit import RUN_PLAN, SMALL_PLAN

# Characters that change what YAML means, and fragments that reach every part of the reader:
# anchors and aliases, tags, directives, flow collections, block scalars, NUL and tabs.
YAML_BITS = [
    ":", ": ", "- ", "[", "]", "{", "}", ",", "'", '"', "#", "&a ", "*a", "!!binary ", "!!str ", "!!python/none",
    "%YAML 1.1\n---\n", "---\n", "...\n", "? ", "|\n", ">-\n", "\t", "\x00", "\\0", "\n", "  ", "~", "<<: *a",
    "state: [D]", "state: '[X]'", "depends_on: [A1]", "requires: [A]", "guard_env: {'A=B': x}", "timeout: -1",
    "command: \"a\\0b\"", "cwd: /etc", "artifacts: [../../x]", "limits: {read_bytes: lots}", "2024-01-01",
    "1e999", "0x1F", "null", "[" * 200, "{a: " * 50,
]  # fmt: skip
SEEDS = [SMALL_PLAN, RUN_PLAN]
FUZZ = settings(
    max_examples=150,
    deadline=5000,  # milliseconds: a reader that hangs fails here
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def read(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plans" / "fuzz.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    plan_file, problems = inspect_plan(Project(tmp_path), path)
    assert plan_file is not None or problems
    for problem in problems:
        line = str(problem)
        assert "\n" not in line and line.startswith("plans/fuzz.yaml:"), line
        assert problem.line >= 1 and problem.col >= 1


@FUZZ
@given(st.text(max_size=400))
def test_any_text_is_a_plan_or_a_clean_problem(tmp_path, text):
    read(tmp_path, text)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 12), st.sampled_from(YAML_BITS) | st.text(max_size=5)),
        min_size=1,
        max_size=6,
    ),
)
def test_a_damaged_plan_is_a_plan_or_a_clean_problem(tmp_path, seed, edits):
    read(tmp_path, damaged(seed, edits))


def damaged(text: str, edits: list[tuple[float, int, str]]) -> str:
    for where, cut, insert in edits:
        at = int(where * len(text))
        text = text[:at] + insert + text[at + cut :]
    return text


# Plain scalars whose type YAML 1.1 (PyYAML's default) and 1.2 (ruamel) disagree on, and their kin.
SCALARS = [
    "yes", "No", "on", "OFF", "y", "0777", "0o17", "0x1F", "-0x1f", "0b101", "1_000", "1e3", "1.0e+3", ".5", "5.",
    "+1", "-0", "1:20", "12:30:00", "2024-01-01", "2024-01-01 10:00:00", "~", "null", "Null", "=", ".inf", "-.Inf",
    ".NaN", "True", "tRUE", "1E-3", "0.1_2", "08", "0o", "0x", "1.2.3", "<<", "!!str 12", "!!int '7'", "'[D]'",
]  # fmt: skip


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 12), st.sampled_from(YAML_BITS + SCALARS) | st.text(max_size=5)),
        max_size=6,
    ),
    scalars=st.lists(st.sampled_from(SCALARS) | st.from_regex(r"[-+.0-9a-fA-FxobeE_:]{1,8}", fullmatch=True)),
)
def test_libyaml_reads_what_it_accepts_as_ruamel_does(seed, edits, scalars):
    """Plans are parsed by libyaml when it accepts the text, else by ruamel; both must mean the same."""
    text = damaged(seed, edits) + "".join(f"\nx{k}: {value}" for k, value in enumerate(scalars)) + "\n"
    fast = fast_load(text)
    if fast is None:
        return  # ruamel reads it, or says where it is wrong
    # repr: types count (1, 1.0 and True differ), key order counts, and NaN reads as nan.
    assert repr(plain(make_yaml().load(text), 10_000)) == repr(plain(fast[0], 10_000))


def chain(n: int, *, cycle: bool = False, phases: int = 1) -> Plan:
    per = n // phases
    return Plan.model_validate(
        {
            "initiative": {"id": "CHAIN-1", "title": "chain"},
            "phases": [
                {
                    "id": f"P{p}",
                    "title": f"phase {p}",
                    "requires": [f"P{p - 1}"] if p else [],
                    "tasks": [
                        {
                            "id": f"T{k}",
                            "description": f"task {k}",
                            "depends_on": [f"T{k - 1}"] if k else ([f"T{n - 1}"] if cycle else []),
                        }
                        for k in range(p * per, (p + 1) * per)
                    ],
                }
                for p in range(phases)
            ],
        }
    )


def test_a_ten_thousand_task_chain_works():
    plan = chain(10_000, phases=10)
    assert structure_problems(plan) == []
    assert [task.id for _, task in ready_tasks(plan)] == ["T0"]
    phase, last = plan.phases[-1], plan.phases[-1].tasks[-1]
    assert [t.id for t in Graph(plan).blockers(phase, last)][-1] == "T9998"
    assert len(Graph(plan).blockers(phase, last)) == 1001  # the 1,000 tasks of phase P8, then T9998


def test_a_ten_thousand_task_cycle_is_found_without_recursion():
    [(loc, message)] = structure_problems(chain(10_000, cycle=True))
    assert loc == ("phases", 0, "tasks", 0, "depends_on")
    assert message.startswith("dependency cycle: T0 -> T9999 -> T9998") and message.endswith("-> T1 -> T0")


def test_text_with_a_tab_is_left_to_ruamel():
    """libyaml reads '{q: keeps<TAB>going}'; ruamel refuses it, and a plan must load for editing too."""
    text = "vars: {question: Which fixture keeps \tgradients alive?, n: 1}\n"
    assert fast_load(text) is None
    assert fast_load(text.replace("\t", " ")) is not None
