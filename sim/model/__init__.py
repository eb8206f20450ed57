"""The workload model: DAGs, tasks, schedules, duration distributions and states.

Nothing here imports SimPy: these are plain objects that the engine drives, so Airflow's
rules (dependencies, trigger rules, priority weights, state transitions) are testable alone.
"""
