"""Charts and reports of a run (matplotlib, written into the results folder)."""
from .charts import busy_slots, delay_breakdown, gantt, write_charts

__all__ = ["busy_slots", "delay_breakdown", "gantt", "write_charts"]
