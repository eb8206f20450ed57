"""sim: a discrete-event simulator and benchmark of Apache Airflow executor architectures.

Python API in brief::

    from sim import DAG, Exponential, Interval, Scenario, run
    dag = DAG("diamond", Interval(600))
    t1, t2, t3, t4 = (dag.task(n, duration=Exponential(30)) for n in ("T1", "T2", "T3", "T4"))
    t1 >> [t2, t3] >> t4
    result = run(Scenario.build([dag], profile="airflow-2.10", airflow={"parallelism": 8}))
    result.task_instances      # one row per try (pandas DataFrame)
"""
from .errors import ScenarioError, SimError
from .model.dag import DAG, DagError, Deferral, Sensor, Task
from .model.durations import Constant, Empirical, Exponential, LogNormal, Uniform
from .model.schedules import At, Burst, CatchUp, Cron, Interval, Poisson
from .model.states import DagRunState, TaskInstanceState
from .scenario import ExecutorSpec, Scenario, load_scenario, scenario_from_dict
from .simulation import RunResult, Simulation, run

__version__ = "0.1.0"

__all__ = ["DAG", "Task", "Sensor", "Deferral", "DagError", "Constant", "Empirical", "Exponential", "LogNormal", "Uniform",
           "At", "Burst", "CatchUp", "Cron", "Interval", "Poisson", "DagRunState", "TaskInstanceState",
           "Scenario", "ExecutorSpec", "load_scenario", "scenario_from_dict", "Simulation", "run",
           "RunResult", "ScenarioError", "SimError", "__version__"]
