"""Calibration profiles: ready-made sets of Airflow settings and overhead timings (YAML files)."""
