"""busy_slots.png of a long run: the step lines are thinned to a few points per column of the plot
(issue #13: 400,000 points a line at 200,000 tasks took a second and 190 MB to draw), keeping in
every column the counts the line passes through and the count it leaves with."""
import numpy as np
import pandas as pd
import pytest

from sim.report.charts import THIN_COLUMNS, _step, _thin, busy_slots


def _line(n, seed=0):
    rng = np.random.default_rng(seed)
    q = np.sort(rng.uniform(0, n, n))
    return _step(q, q + rng.exponential(20, n))


def test_a_short_line_is_drawn_as_it_is():
    t, c = _line(2 * THIN_COLUMNS - 1)          # two points a task, and the leading (0, 0)
    assert len(t) == 4 * THIN_COLUMNS - 1
    t2, c2 = _thin(t, c)
    assert t2 is t and c2 is c
    t, c = _line(2 * THIN_COLUMNS)
    assert len(_thin(t, c)[0]) < len(t)


@pytest.mark.parametrize("columns", [1, 7, 100])
def test_each_column_keeps_its_extremes_and_its_ends(columns):
    t, c = _line(5000)
    t2, c2 = _thin(t, c, columns)
    assert 2 <= len(t2) <= 4 * columns < len(t)
    assert np.all(np.diff(t2) >= 0) and t2[0] == t[0] and t2[-1] == t[-1] and c2[-1] == c[-1]
    assert np.isin(t2, t).all()                                   # the kept points are the line's own
    col = np.minimum(((t - t[0]) * (columns / (t[-1] - t[0]))).astype(int), columns - 1)
    col2 = np.minimum(((t2 - t[0]) * (columns / (t[-1] - t[0]))).astype(int), columns - 1)
    for k in np.unique(col):
        mine, theirs = c[col == k], c2[col2 == k]
        assert theirs.min() == mine.min() and theirs.max() == mine.max()
        assert theirs[0] == mine[0] and theirs[-1] == mine[-1]


def test_a_line_at_one_instant_is_thinned_without_dividing_by_zero():
    t = np.zeros(20001)
    c = np.arange(20001.0) % 5
    t2, c2 = _thin(t, c)
    assert len(t2) <= 4 and c2.min() == 0 and c2.max() == 4 and c2[-1] == c[-1]


def test_busy_slots_of_a_long_run_draws_the_thinned_lines():
    rng = np.random.default_rng(1)
    n = 50_000
    q = np.sort(rng.uniform(0, 3 * n, n))
    s = q + rng.exponential(2, n)
    e = s + rng.exponential(10, n)
    tis = pd.DataFrame({"scheduled_at": q - 1, "queued_at": q, "started_at": s, "ended_at": e, "released_at": e})
    ax = busy_slots(tis, 16).axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_drawstyle() == "steps-post"]
    assert len(lines) == 3 and all(len(ln.get_xdata()) <= 4 * THIN_COLUMNS for ln in lines)
    t, c = _step(q, e)
    assert lines[0].get_ydata().max() == c.max() and lines[0].get_ydata()[-1] == c[-1] == 0
