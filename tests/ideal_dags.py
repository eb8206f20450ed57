"""DAGs whose makespan on the ideal profile with unlimited slots is known exactly (their critical
path), shared by the validation and the Kubernetes tests. Not a test module itself."""
from sim import theory as th

# The seed-diamond DAG (T1 >> [T2, T3] >> T4) plus a longer branch T1 >> L1 >> L2 >> L3 >> T4.
DIAMOND_DEPS = ["T1 >> T2", "T1 >> T3", "T2 >> T4", "T3 >> T4",
                "T1 >> L1", "L1 >> L2", "L2 >> L3", "L3 >> T4"]
DIAMOND_CONSTANT = {"T1": 30, "T2": 60, "T3": 45, "T4": 10, "L1": 25, "L2": 25, "L3": 25}
DIAMOND_RANDOM = {"T1": 30, "T2": {"lognormal": {"mean": 60, "cv": 0.5}},
                  "T3": {"exponential": {"mean": 45}}, "T4": {"uniform": {"low": 5, "high": 15}},
                  "L1": {"exponential": {"mean": 25}}, "L2": {"lognormal": {"mean": 25, "cv": 1.0}},
                  "L3": {"uniform": {"low": 10, "high": 40}}}


def critical_path(dur: dict[str, float], deps: list[str]) -> float:
    """sim.theory's longest path, for edges written 'a >> b'."""
    return th.critical_path(dur, [tuple(s.strip() for s in e.split(">>")) for e in deps])
