"""Several schedulers (airflow-mechanics.md §1.13), the DAG processor inside the scheduler or
standalone, and the airflow-3 profile (§1.3, §2.6)."""
import pytest

from sim import DAG, At, Exponential, Interval, Scenario, run
from sim.errors import ScenarioError
from sim.model.durations import Constant
from sim.scenario import load_scenario, scenario_from_dict

BUSY_LOOP = {"scheduler_loop_base": 0.2, "scheduler_per_ti": 0.002, "scheduler_per_ti_examined": 0.002}


def burst(n_dags=20, width=100):
    """Many wide DAG runs due at once: the scheduler loop, not the slots, is the bottleneck."""
    dags = []
    for k in range(n_dags):
        d = DAG(f"d{k}", At((0.0,)))
        for i in range(width):
            d.task(f"t{i}", duration=1.0)
        dags.append(d)
    return dags


def finish(schedulers, overheads, executor="local"):
    kw = {"executor": executor}
    if executor == "celery":
        kw["executor_settings"] = {"worker_pools": [{"name": "w", "replicas": 16, "concurrency": 16}]}
    sc = Scenario.build(burst(), profile="airflow-2.10",
                        airflow={"parallelism": 128, "max_active_tasks_per_dag": 100, "schedulers": schedulers},
                        overheads=overheads, **kw)
    r = run(sc)
    assert r.summary["task_instances"]["by_state"] == {"success": 2000}
    return r.summary["simulated_seconds"], r


@pytest.mark.parametrize("executor", ["local", "celery"])
def test_two_schedulers_finish_a_scheduler_bound_workload_sooner(executor):
    one, r1 = finish(1, {**BUSY_LOOP, "db_query_time": 0.002, "db_connections": 15}, executor)
    two, r2 = finish(2, {**BUSY_LOOP, "db_query_time": 0.002, "db_connections": 15}, executor)
    assert one > 3 * 2000 / 128            # scheduler-bound: far slower than the slots allow
    assert two < 0.75 * one
    procs = r2.summary["scheduler"]["processes"]
    assert len(procs) == 2 and all(p["loops"] > 0 for p in procs)


def test_with_a_tiny_database_pool_a_second_scheduler_does_not_help():
    tiny = {"scheduler_loop_base": 0.02, "scheduler_per_ti": 0.0005, "scheduler_per_ti_examined": 0.0005,
            "db_query_time": 0.05, "db_connections": 1}
    one, _ = finish(1, tiny)
    two, r2 = finish(2, tiny)
    assert two >= 0.95 * one
    assert r2.summary["metadata_db"]["wait_seconds"] > 0


def test_only_one_scheduler_holds_the_critical_section():
    """With four schedulers contending, some loops find the critical section taken and skip it;
    and each scheduler's executor never exceeds its own parallelism."""
    _, r = finish(4, {**BUSY_LOOP, "db_query_time": 0.05, "db_connections": 15})
    procs = r.summary["scheduler"]["processes"]
    assert sum(p["critical_section_busy"] for p in procs) > 0
    t = r.task_instances
    # LocalExecutor per scheduler: every scheduler host runs at most `parallelism` tasks at once
    for host, g in t.groupby("host", observed=True):
        ends = g["released_at"].fillna(float("inf"))          # still counted when the run ended
        events = sorted([(s, 1) for s in g["queued_at"]] + [(e, -1) for e in ends])
        level = peak = 0
        for _, d in events:
            level += d
            peak = max(peak, level)
        assert peak <= 128
    assert t["host"].nunique() == 4


def test_one_scheduler_results_do_not_depend_on_the_several_scheduler_code():
    """schedulers: 1 is the plain loop: same bytes as a run that never mentions schedulers."""
    dag = DAG("diamond", Interval(60))
    a, b, c, d = (dag.task(n, duration=Exponential(10)) for n in "abcd")
    a >> [b, c] >> d
    r1 = run(Scenario.build([dag], profile="airflow-2.10", horizon=1800))
    r2 = run(Scenario.build([dag], profile="airflow-2.10", horizon=1800, airflow={"schedulers": 1}))
    assert r1.task_instances.equals(r2.task_instances)


def parse_load(standalone):
    dag = DAG("frequent", Interval(120))
    a = dag.task("a", duration=5, cpu_bound=True)
    a >> dag.task("b", duration=10) >> dag.task("c", duration=5, cpu_bound=True)
    r = run(Scenario.build([dag], profile="airflow-2.10", horizon=3600,
                           airflow={"standalone_dag_processor": standalone},
                           overheads={"extra_dag_files": 400, "dag_file_parse_time": 0.5,
                                      "scheduler_host_cores": 2, "dag_processor_host_cores": 2}))
    return r.summary


def test_parsing_inside_the_scheduler_competes_with_scheduling_standalone_does_not():
    inside, alone = parse_load(False), parse_load(True)
    assert inside["dag_processor"]["files"] == alone["dag_processor"]["files"] == 401
    assert inside["dag_processor"]["cpu_seconds"] > 1000           # parse load really happened
    assert alone["utilisation"]["scheduler_host_cpu"] < 0.2 < inside["utilisation"]["scheduler_host_cpu"]
    slow = inside["dag_runs"]["makespan_seconds"]["mean"]
    fast = alone["dag_runs"]["makespan_seconds"]["mean"]
    assert slow > 1.1 * fast
    # the standalone processor's own host does the work: the same parse CPU per cycle either way
    # (the runs last a little longer inside, hence a few more cycles)
    assert alone["dag_processor"]["cpu_seconds"] == pytest.approx(inside["dag_processor"]["cpu_seconds"], rel=0.1)


def test_each_scheduler_parses_unless_the_processor_is_standalone():
    dag = DAG("x", Interval(600))
    dag.task("t", duration=1)
    r = run(Scenario.build([dag], profile="airflow-2.10", horizon=1200, airflow={"schedulers": 3}))
    assert r.summary["dag_processor"]["processors"] == 3
    r = run(Scenario.build([dag], profile="airflow-2.10", horizon=1200,
                           airflow={"schedulers": 3, "standalone_dag_processor": True}))
    assert r.summary["dag_processor"]["processors"] == 1


# -- the airflow-3 profile ---------------------------------------------------------------------
def chain():
    dag = DAG("chain", At((0.0, 0.0)))
    prev = None
    for i in range(6):
        t = dag.task(f"c{i}", duration=20)
        if prev is not None:
            prev >> t
        prev = t
    return dag


def test_airflow3_has_no_mini_scheduler_and_tasks_heartbeat_through_the_api_server():
    r2 = run(Scenario.build([chain()], profile="airflow-2.10"))
    r3 = run(Scenario.build([chain()], profile="airflow-3"))
    c2 = set(r2.transitions["cause"].astype(str))
    c3 = set(r3.transitions["cause"].astype(str))
    assert "mini-scheduler" in c2 and "mini-scheduler" not in c3
    assert r3.scenario.airflow.max_active_tasks_scope == "dag_run"
    assert r3.summary["dag_processor"]["standalone"] is True
    # every running task heartbeats every 5 s: 2 runs x 6 tasks x 20 s = 240 task-seconds -> ~48,
    # plus Airflow's own work in each run (in 3.x the runner's start-up and parse are inside it)
    from sim.simulation import Simulation
    sim = Simulation(Scenario.build([chain()], profile="airflow-3"))
    sim.run()
    assert sim.api_server is not None and 40 <= sim.task_runner.heartbeats <= 56
    assert sim.api_server.queries >= sim.task_runner.heartbeats + 2 * 12   # + start and end of each task


def test_airflow3_counts_max_active_tasks_per_dag_run():
    dag = DAG("wide", At((0.0, 0.0)), max_active_tasks=2)
    for i in range(4):
        dag.task(f"t{i}", duration=100)
    def running_at(profile, t):
        tis = run(Scenario.build([dag], profile=profile, airflow={"parallelism": 32})).task_instances
        return int(((tis["started_at"] <= t) & (tis["ended_at"] > t)).sum())
    assert running_at("airflow-2.10", 50) == 2     # 2 for the DAG, over both runs
    assert running_at("airflow-3", 50) == 4        # 2 for each run


def test_airflow3_refuses_the_hybrid_executor_and_takes_several_executors():
    with pytest.raises(ScenarioError, match="removed in Airflow 3"):
        load_scenario("scenarios/hybrid-celery-kubernetes.yaml", profile="airflow-3")
    sc = load_scenario("scenarios/airflow3-multi-executor.yaml")
    assert sc.airflow.execution_api and sc.profile == "airflow-3"


def test_schedulers_sharing_celery_each_keep_to_their_own_parallelism():
    """Several schedulers' CeleryExecutors share the broker and workers: modelled as one executor
    with every scheduler's slots, each scheduler counting the tries it queued against its own
    parallelism, as each real scheduler's executor does."""
    from sim.simulation import Simulation
    sc = Scenario.build(burst(n_dags=6, width=40), profile="airflow-2.10", executor="celery",
                        executor_settings={"worker_pools": [{"name": "w", "replicas": 4, "concurrency": 16}]},
                        airflow={"parallelism": 8, "max_active_tasks_per_dag": 100, "schedulers": 2},
                        overheads=BUSY_LOOP)
    sim = Simulation(sc)
    procs, ex = sim.scheduler.procs, next(iter(sim.executors.values()))
    seen = {"peak_each": 0, "peak_total": 0}

    def watch():
        while True:
            assert all(0 <= p.occupied <= 8 for p in procs)
            assert sum(p.occupied for p in procs) == ex.slots_occupied
            seen["peak_each"] = max(seen["peak_each"], *(p.occupied for p in procs))
            seen["peak_total"] = max(seen["peak_total"], ex.slots_occupied)
            yield sim.env.timeout(0.05)
    sim.env.process(watch())
    r = sim.run()
    assert r.summary["task_instances"]["by_state"] == {"success": 240}
    assert seen["peak_each"] == 8 and seen["peak_total"] > 8     # each at its limit, together above it
    # at the end each scheduler's count still matches the executor's (the last exits may come
    # after the last run has ended, when nobody syncs any more)
    assert sum(p.occupied for p in procs) == ex.slots_occupied
