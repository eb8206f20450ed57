"""Executors: how and where queued task instances run. Each plugs into the scheduler through the
:class:`~sim.executors.base.BaseExecutor` contract, as Airflow's executors do."""
