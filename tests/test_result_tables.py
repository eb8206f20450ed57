"""The helpers that build the results' categorical columns (sim/records.py): they keep a million
rows small (issue #13) and must give the same values as the plain columns they replace."""
import numpy as np
import pandas as pd

from sim.records import coded_categorical, drop_lookup, run_id_categorical


def test_coded_categorical_keeps_the_values_and_only_the_categories_used():
    values = ["t1", "node-1", "Succeeded", 0.5, "t2", "Failed"]
    codes = [4, 0, 4, 5, 0]
    cat = coded_categorical(codes, values)
    assert list(cat) == [values[c] for c in codes]
    assert list(cat.categories) == ["t1", "t2", "Failed"]          # the used ones, in code order


def test_coded_categorical_of_no_rows_is_empty():
    assert len(coded_categorical([], ["a"])) == 0


def test_run_id_categorical_looks_each_rows_run_up_and_shares_repeated_ids():
    run_ids = {(0, 0): "scheduled__1", (0, 1): "scheduled__2", (1, 0): "scheduled__1"}
    dag = np.array([1, 0, 0, 1, 0])
    run = np.array([0, 1, 0, 0, 7])                   # (0, 7) is no known run: ""
    cat = run_id_categorical(dag, run, run_ids)
    assert list(cat) == ["scheduled__1", "scheduled__2", "scheduled__1", "scheduled__1", ""]
    assert cat.categories.is_unique and len(cat.categories) == 3
    assert len(run_id_categorical(np.array([], dtype=np.int64), np.array([], dtype=np.int64), run_ids)) == 0


def test_dropping_the_lookup_table_leaves_lookups_working():
    index = pd.Index([f"pod-{i}" for i in range(1000)])
    assert index.is_unique                            # pandas builds its hash table here
    drop_lookup(index)
    if hasattr(index, "_cache"):                      # where pandas keeps it (pandas 1.x to 3.x)
        assert "_engine" not in index._cache
    assert list(index.get_indexer(["pod-7", "nope", "pod-999"])) == [7, -1, 999]
