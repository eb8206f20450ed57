"""The overheads a calibration may fit: for each, its search range (lower, upper), the executors
whose measurements inform it, and what it is."""
from __future__ import annotations

#: Parameters calibration can fit: dotted key -> (lower, upper bound, executors it matters to,
#: what it stands for in Airflow).
PARAMETERS = {
    "overheads.scheduler_loop_base": (0.001, 1.0, ("local", "celery"),
                                      "CPU of one scheduler loop's fixed part, after the executor heartbeat"),
    "overheads.scheduler_per_ti": (1e-5, 0.01, ("local", "celery"),
                                   "scheduler CPU per task instance queued or reported"),
    "overheads.scheduler_per_run": (1e-5, 0.1, ("local", "celery"),
                                    "scheduler CPU per running DAG run examined, every loop"),
    "overheads.scheduler_per_ti_examined": (1e-5, 0.01, ("local", "celery"),
                                            "scheduler CPU per not-yet-scheduled task instance of a DAG run "
                                            "examined, every loop"),
    "overheads.db_query_time": (1e-4, 0.01, ("local", "celery"), "one metadata-DB query"),
    "overheads.process_start_fork": (0.005, 3.0, ("local", "celery"),
                                     "task process start: fork, `airflow tasks run` set-up, up to start_date "
                                     "(besides dag_file_parse_time)"),
    "overheads.process_start_interpreter": (0.05, 10.0, ("local", "celery"),
                                            "task process start in a fresh interpreter"),
    "overheads.task_run_cpu": (0.001, 3.0, ("local", "celery"),
                               "Airflow's CPU work inside a task's run (raw task process, templates, operator set-up)"),
    "overheads.task_exit_cpu": (0.001, 3.0, ("local", "celery"),
                                "CPU work after the outcome: handle_task_exit, mini-scheduler, process exit"),
    "overheads.task_background_cpu": (0.001, 3.0, ("local", "celery"),
                                      "CPU a try costs other processes on its host, off its own path "
                                      "(once the executor has its outcome)"),
    "overheads.process_start_latency": (0.001, 3.0, ("local", "celery"),
                                        "task process start: waiting, not computing (DB round trips, fork)"),
    "overheads.task_run_latency": (0.001, 3.0, ("local", "celery"),
                                   "waiting inside a task's run besides its own work (DB round trips, subprocess)"),
    "overheads.task_exit_latency": (0.001, 5.0, ("local", "celery"),
                                    "waiting after the outcome until the process exits (the job polling its child)"),
    "overheads.scheduler_host_cores": (1.0, 64.0, ("local", "celery"), "cores of the scheduler's host"),
    "overheads.api_request_time": (1e-4, 0.5, ("local", "celery"),
                                   "Airflow 3: one Execution API request, besides its DB query"),
    "celery.publish_time": (1e-4, 0.5, ("celery",), "one apply_async to the broker"),
    "celery.delivery_time": (1e-4, 1.0, ("celery",), "broker -> worker hop"),
    "celery.send_pool_startup": (1e-3, 3.0, ("celery",),
                                 "starting the process pool that publishes several tasks in parallel"),
    "celery.fetch_per_task": (1e-5, 0.2, ("celery",),
                              "sync()'s bulk result fetch, per running task (BulkStateFetcher)"),
}
