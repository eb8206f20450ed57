"""What a deployment costs: a price catalogue (every price with its source and date) and the
attribution of a run's machines and fees to executors (``summary.json``'s ``cost``)."""
from .model import cost_of_run, load_catalogue

__all__ = ["cost_of_run", "load_catalogue"]
