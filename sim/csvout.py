"""CSV files of result tables, byte for byte what ``DataFrame.to_csv`` wrote, in half the time.

The results' convention (``index=False``, ``lineterminator="\\n"``, floats with six decimals as
``'%.6f'``, a missing value as an empty field, the csv module's minimal quoting) is written here
column by column, a block of rows at a time:

* a categorical column's texts are made once per category, and each row picks its text by code;
* integers are ``str`` (made once per value where values repeat), booleans ``True``/``False``,
  floats ``'%.6f'`` (NaN: empty);
* a text column's values are quoted only where the csv module would quote them (a ``,``, ``"``,
  ``\\r`` or ``\\n`` inside), through the csv module itself.

pandas' writer turns every block of rows into Python objects and passes them through
``csv.writer``; here a row is one ``",".join`` of ready-made texts. A table of another shape (one
column, a column of another type: dates, mixed objects, non-text categories, ...) is written by
pandas, so the output never depends on which path wrote it (``tests/test_csvout.py``).
"""
from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

#: Rows formatted at a time: bounds the memory of the texts (a block of 16,384 rows of 20 columns
#: is about 20 MB of strings, whatever the table's length; larger blocks are no faster).
BLOCK = 1 << 14
_SPECIAL = (",", '"', "\n", "\r")
_TEXTS = ("string", "empty")      # what infer_dtype says of only str values (or none)


def _fields(texts: list) -> list:
    """Each text as a field of a CSV row of several fields (pandas' dialect: minimal quoting)."""
    if not any(ch in "\x00".join(texts) for ch in _SPECIAL):
        return list(texts)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    out = []
    for s in texts:
        if any(ch in s for ch in _SPECIAL):
            buf.seek(0)
            buf.truncate()
            writer.writerow((s, ""))          # two fields: a lone empty field would be quoted
            out.append(buf.getvalue()[:-2])
        else:
            out.append(s)
    return out


def _floats(a: np.ndarray):
    def block(lo: int, hi: int) -> list:
        return ["" if v != v else "%.6f" % v for v in a[lo:hi].tolist()]
    return block


def _integers(a: np.ndarray):
    """Integers as ``str``. Where the column's range is no longer than the column (a try number, a
    task instance's id in the transitions: few values, each many times), each value's text is made
    once and the rows pick theirs (a third to a quarter of the time)."""
    if len(a):
        first, last = int(a.min()), int(a.max())
        if last - first < len(a) and -(1 << 62) < first and last < (1 << 62):
            texts = np.array([str(i) for i in range(first, last + 1)], dtype=object)
            return lambda lo, hi: texts[a[lo:hi].astype(np.int64) - first].tolist()
    return lambda lo, hi: list(map(str, a[lo:hi].tolist()))


def _column(series: pd.Series):
    """``block(lo, hi)``: the column's fields of rows lo:hi, as a list of str; None for a column
    this module does not write (pandas does)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # (checked and listed through NumPy: iterating a str Index goes element by element
        # through pandas, 0.3 s for a run's 200,000 pod names)
        if infer_dtype(dtype.categories, skipna=False) not in _TEXTS:
            return None
        categories = dtype.categories.to_numpy(dtype=object).tolist()
        lookup = np.array(_fields(categories) + [""], dtype=object)   # code -1 (missing) -> ""
        codes = series.cat.codes.to_numpy()
        return lambda lo, hi: lookup[codes[lo:hi]].tolist()
    if dtype == object or isinstance(dtype, pd.StringDtype):
        values = series.to_numpy(dtype=object, na_value="")
        if infer_dtype(values, skipna=False) not in _TEXTS:
            return None
        texts = np.array(_fields(values.tolist()), dtype=object)
        return lambda lo, hi: texts[lo:hi].tolist()
    if not isinstance(dtype, np.dtype):
        return None                      # nullable integers, dates, intervals, ...: pandas' own
    a = series.to_numpy()
    if dtype.kind in "iu":
        return _integers(a)
    if dtype.kind == "b":
        words = np.array(["False", "True"], dtype=object)
        return lambda lo, hi: words[a[lo:hi].view(np.uint8)].tolist()
    if dtype.kind == "f":
        return _floats(a)
    return None


def _pandas(df: pd.DataFrame, path, header: bool = True) -> None:
    """The same convention through pandas (the shapes this module does not write itself)."""
    floats = [c for c in df.columns if df[c].dtype.kind == "f"]
    if floats:
        df = df.copy(deep=False)
        for c in floats:
            df[c] = pd.array(["" if v != v else "%.6f" % v for v in df[c].tolist()], dtype=object)
    df.to_csv(path, index=False, lineterminator="\n", header=header)


def write_csv(df: pd.DataFrame, path) -> None:
    """``df`` as a CSV file: ``df.to_csv(path, index=False, lineterminator="\\n")`` with floats
    as ``'%.6f'`` and NaN as an empty field."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        append_csv(df, f, header=True)


def append_csv(df: pd.DataFrame, f, header: bool) -> None:
    """``df``'s rows (after its header line if ``header``) at the end of the open text file ``f``:
    a table written in parts, each with the same columns, is the file of the whole table."""
    names = list(df.columns)
    blocks = None
    if len(names) >= 2 and df.columns.is_unique and all(type(c) is str for c in names):
        blocks = [_column(df[c]) for c in names]
    if blocks is None or any(b is None for b in blocks):
        _pandas(df, f, header)
        return
    if header:
        f.write(",".join(_fields(names)) + "\n")
    n = len(df)
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        f.write("\n".join(map(",".join, zip(*[b(lo, hi) for b in blocks]))))
        f.write("\n")
