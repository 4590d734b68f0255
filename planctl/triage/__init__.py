"""Full-suite triage: the suite run in chunks, its failures grouped into clusters with stable ids,
and each run compared with the last.

    model.py          what is stored: a run's totals and chunks (in its attempt record), the clusters
    signature.py      a failure's signature: exception type, normalised message, innermost project frame
    pytest_plugin.py  loaded into every pytest process of a run; writes results as JSON lines
    junit.py          per-test outcomes from a junit XML file (for "cluster Cn passes" checks)
    chunks.py         collection into chunks, balanced by the durations of earlier runs
    results.py        a chunk's JSON lines read back: tests, outcomes, failures, how the chunk ended
    clusters.py       the registry: ids, new / persisting / resolved / returning, links to plans
    progress.py       the live display
    runner.py         one triage run: a new kind of attempt on the engine's reserve and record steps
    view.py           the clusters as the remediation tracker and `planctl triage show` present them
    link.py           `planctl triage link`: the plan YAML records which plan (and task) fixes a cluster

Only pytest_plugin.py runs inside pytest; it imports nothing from planctl but signature.py, which
needs only the standard library.
"""
