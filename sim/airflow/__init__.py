"""The Airflow side: configuration, metadata database, the scheduler loop and its limits."""
