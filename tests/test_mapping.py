"""Dynamic task mapping (airflow-mechanics.md §1.12)."""

from sim import DAG, At, Constant, Scenario, Uniform, run


def mapped(count, limit=1024, per_run=None, n_runs=1):
    dag = DAG("m", At(tuple(float(i) for i in range(n_runs))))
    a = dag.task("list", duration=1)
    p = dag.task("process", duration=Uniform(5, 15), expand=count, max_active_tis_per_dagrun=per_run)
    z = dag.task("summarise", duration=1)
    a >> p >> z
    return run(Scenario.build([dag], profile="ideal", horizon=10,
                              airflow={"max_map_length": limit, "parallelism": 64,
                                       "max_active_tasks_per_dag": 64}))


def rows(r, task):
    t = r.task_instances
    return t[t["task_id"] == task]


def test_expands_to_the_drawn_count_with_map_indexes():
    r = mapped(Constant(37))
    p = rows(r, "process")
    assert sorted(p["map_index"]) == list(range(37))
    assert set(p["state"]) == {"success"}
    s = rows(r, "summarise")
    assert s["state"].iloc[0] == "success"
    assert s["started_at"].iloc[0] >= p["ended_at"].max()      # waits for every element


def test_never_more_than_max_map_length():
    for seed_count in (Uniform(50, 300),):
        r = mapped(seed_count, limit=150, n_runs=8)
        for run_id, g in rows(r, "process").groupby("run_id"):
            if (g["state"] == "upstream_failed").any():
                assert len(g) == 1 and g["map_index"].iloc[0] == -1   # the expansion failed
            else:
                assert 50 <= len(g) <= 150


def test_too_long_fails_and_zero_skips():
    r = mapped(Constant(2000), limit=1024)
    assert rows(r, "process")["state"].tolist() == ["upstream_failed"]
    assert rows(r, "summarise")["state"].tolist() == ["upstream_failed"]
    assert r.dag_runs["state"].iloc[0] == "failed"
    r0 = mapped(Constant(0))
    assert rows(r0, "process")["state"].tolist() == ["skipped"]


def test_max_active_tis_per_dagrun_is_honoured():
    r = mapped(Constant(60), per_run=8)
    p = rows(r, "process")
    events = sorted([(t, 1) for t in p["queued_at"]] + [(t, -1) for t in p["released_at"]],
                    key=lambda e: (e[0], e[1]))
    n = peak = 0
    for _, d in events:
        n += d
        peak = max(peak, n)
    assert peak == 8
