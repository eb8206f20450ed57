"""sim.csvout writes the results' CSV files byte for byte as pandas' to_csv did (issue #13: the
writer is twice as fast; the files must not change)."""
import numpy as np
import pandas as pd
import pytest

from sim import csvout
from sim.csvout import write_csv

ODD = ["plain", "with,comma", 'with "quote"', "two\nlines", "carriage\rreturn", "", " spaced ", "é ü 日本"]


def _by_pandas(df, path):
    csvout._pandas(df, path)
    return path.read_bytes()


def _fast(df, path, monkeypatch):
    """write_csv, failing if it handed the table to pandas."""
    def refuse(*_):
        raise AssertionError("fell back to pandas")
    monkeypatch.setattr(csvout, "_pandas", refuse)
    write_csv(df, path)
    monkeypatch.undo()
    return path.read_bytes()


def _table(n=1000, seed=3):
    rng = np.random.default_rng(seed)
    floats = rng.exponential(1e4, n)
    floats[::7] = np.nan
    floats[1], floats[2], floats[3], floats[4] = np.inf, -np.inf, -0.0, -1e-9
    cat = pd.Categorical.from_codes(rng.integers(-1, len(ODD), n), categories=ODD)
    text = np.array([ODD[i % len(ODD)] for i in range(n)], dtype=object)
    text[::5] = None
    return pd.DataFrame({
        "cat": cat,
        "i": rng.integers(-10**12, 10**12, n),
        "i32": rng.integers(0, 100, n).astype(np.int32),
        "u8": rng.integers(0, 255, n).astype(np.uint8),
        # integers that repeat are written through a table of their texts: a range wider than
        # int8 holds, negatives, and values past the table's 2**62
        "i8": rng.integers(-100, 101, n).astype(np.int8),
        "neg": rng.integers(-5, 3, n),
        "u64": rng.integers(0, 100, n).astype(np.uint64) + np.uint64(2**63),
        "f": floats,
        "f32": floats.astype(np.float32),
        "b": rng.random(n) < 0.5,
        "obj": text,
        "str": pd.array([None if v is None else v for v in text], dtype="str"),
        "odd,name": np.arange(n),
    })


def test_every_column_kind_byte_identical_to_pandas(tmp_path, monkeypatch):
    df = _table()
    assert _fast(df, tmp_path / "fast.csv", monkeypatch) == _by_pandas(df, tmp_path / "pandas.csv")


@pytest.mark.parametrize("block", [1, 7, 1000, 1001])
def test_blocks_join_without_seams(tmp_path, monkeypatch, block):
    df = _table(1000)
    want = _by_pandas(df, tmp_path / "pandas.csv")
    monkeypatch.setattr(csvout, "BLOCK", block)
    assert _fast(df, tmp_path / "fast.csv", monkeypatch) == want


def test_empty_table_is_its_header(tmp_path, monkeypatch):
    df = _table().iloc[:0]
    got = _fast(df, tmp_path / "fast.csv", monkeypatch)
    assert got == _by_pandas(df, tmp_path / "pandas.csv")
    assert got.count(b"\n") == 1


@pytest.mark.parametrize("df", [
    pd.DataFrame({"only": ["", "a", None]}),                                        # one column
    pd.DataFrame({"cat": pd.Categorical([1, 2, None]), "x": [1, 2, 3]}),          # non-text categories
    pd.DataFrame({"mixed": ["a", 1, None], "x": [1.5, 2, 3]}),                     # objects not all text
    pd.DataFrame({"t": pd.to_datetime(["2026-01-01", None, "2026-01-02"]), "x": [1, 2, 3]}),
    pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"), "x": [1, 2, 3]}),   # nullable integers
    pd.DataFrame([[1, 2], [3, 4]], columns=[0, 1]),                                # names not text
], ids=["one-column", "int-categories", "mixed-objects", "dates", "nullable-int", "int-names"])
def test_other_shapes_are_written_by_pandas(tmp_path, df):
    write_csv(df, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == _by_pandas(df, tmp_path / "pandas.csv")


def test_floats_six_decimals_and_nan_empty(tmp_path, monkeypatch):
    df = pd.DataFrame({"a": [1.0, np.nan, 1 / 3], "b": ["x", "y", "z"]})
    assert _fast(df, tmp_path / "f.csv", monkeypatch) == b"a,b\n1.000000,x\n,y\n0.333333,z\n"
