"""Real inputs: workflow traces and Airflow's own history, turned into the simulator's DAGs.

- :func:`load_wfcommons`: a WfCommons WfFormat trace (JSON) as a DAG with each task's recorded
  runtime, core count and memory;
- :func:`read_task_instances`, :func:`read_dag_runs`: exports of Airflow's ``task_instance`` and
  ``dag_run`` tables (CSV), checked and typed;
- :func:`read_rest_tasks`: a DAG's structure from Airflow's REST API (``GET /dags/{id}/tasks``);
- :func:`dag_from_export`: a DAG whose tasks resample the durations of their successful tries;
- :func:`observed_runs`, :func:`observed_dag_runs`: the recorded runs' delays and makespans, to
  compare with a simulation;
- :func:`load_airflow_dags`: real Airflow DAG files read by Airflow's DagBag (needs apache-airflow,
  the ``[airflow]`` extra; Airflow is imported only when it is called).

A scenario file names them in a DAG entry with ``wfcommons: PATH`` or
``airflow_export: {task_instances: PATH, structure: PATH}``.
"""
from .airflow_export import (DagStructure, RestTask, dag_from_export, observed_dag_runs, observed_runs,
                             read_dag_runs, read_rest_tasks, read_task_instances)
from .airflow_dag_files import load_airflow_dags
from .wfcommons import load_wfcommons, wfcommons_edges

__all__ = ["load_wfcommons", "wfcommons_edges", "read_task_instances", "read_dag_runs",
           "read_rest_tasks", "dag_from_export", "observed_runs", "observed_dag_runs",
           "DagStructure", "RestTask", "load_airflow_dags"]
