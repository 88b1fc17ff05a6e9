"""qlake qlib export, checked by loading the store with real pyqlib 0.9.7.

The store is loaded in .venv-qlib (tests/python/qlib/qlib_load.py, made by scripts/setup.sh)
and what Qlib returns (calendar, instrument spans, D.features over the market pool and over a
plain list of codes) is compared with an independent oracle computed here from the lake with
pyarrow, the NYSE calendar from exchange_calendars, and a Python copy of the documented
symbol mapping (tests/python/qlib/qlib_codes.py, shared with bench/qlib_bench.py).
Incremental exports (several appends, a re-export of past days, interrupted runs) must give
bins byte-identical to one full export of the same range.
"""

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from conftest import REPO

sys.path.insert(0, str(Path(__file__).parent / "qlib"))
from qlib_codes import code_of, dir_of  # noqa: E402  (docs/qlib.md's mapping, in Python)

QLIB_PY = REPO / ".venv-qlib" / "bin" / "python"
LOADER = Path(__file__).parent / "qlib" / "qlib_load.py"
FROM, TO = "2024-12-20", "2025-01-03"  # Christmas early close, two holidays
FIELDS = ["open", "high", "low", "close", "volume", "vwap", "factor", "change"]

pytestmark = pytest.mark.skipif(
    not QLIB_PY.exists(), reason=".venv-qlib missing: run scripts/setup.sh"
)


def qlake(qlake_bin, *args, env=None, check=True):
    e = {k: v for k, v in os.environ.items() if not k.startswith("QLAKE_")}
    e.update(env or {})
    p = subprocess.run([str(qlake_bin), *map(str, args)], capture_output=True, text=True, env=e)
    if check and p.returncode != 0:
        raise AssertionError(f"qlake {args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def export(qlake_bin, lake, out, freq, *extra, env=None, check=True):
    return qlake(
        qlake_bin, "-q", "qlib", "export", "--lake", lake, "--out", out, "--freq", freq,
        "--no-fsync", *extra, env=env, check=check,
    )


def qlib_load(root, freq, out, fields=FIELDS, codes=()):
    p = subprocess.run(
        [str(QLIB_PY), str(LOADER), str(root), freq, str(out), "--fields", ",".join(fields),
         *(["--codes", ",".join(codes)] if codes else [])],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return dict(np.load(out))


# ---- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lake(qlake_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("qlib")
    qlake(qlake_bin, "-q", "synth", "--out", root / "mirror", "--from", FROM, "--to", TO,
          "--scale", "0.02", "--seed", "11", "--datasets", "stocks_daily,stocks_minute")
    for d in ("stocks_daily", "stocks_minute"):
        qlake(qlake_bin, "-q", "ingest", "--dataset", d, "--from", FROM, "--to", TO,
              "--source", root / "mirror", "--lake", root / "lake")
    return root / "lake"


def read_lake(lake, dataset, columns):
    t = ds.dataset(lake / dataset, format="parquet", partitioning="hive").to_table(
        columns=columns)
    t = t.set_column(t.schema.get_field_index("ticker"), "ticker",
                     pc.cast(t["ticker"], pa.string()))
    return t.to_pandas()


def sessions(frm=FROM, to=TO):
    import exchange_calendars as xc

    cal = xc.get_calendar("XNYS")
    s = cal.sessions_in_range(frm, to)
    return s, cal


def expected_day(lake, to=TO):
    d = read_lake(lake, "stocks_daily",
                  ["ticker", "open", "high", "low", "close", "volume", "transactions", "date"])
    d = d[d["date"].astype(str) <= to]
    m = read_lake(lake, "stocks_minute", ["ticker", "high", "low", "close", "volume", "date"])
    tp = (m["high"].astype(np.float64) + m["low"] + m["close"]) / 3
    m["pv"] = tp * m["volume"].astype(np.float64)
    m["v"] = m["volume"].astype(np.float64)
    g = m.groupby(["ticker", "date"])[["pv", "v"]].sum()
    vw = (g["pv"] / g["v"]).astype(np.float32).rename("mvwap").reset_index()
    d = d.merge(vw, on=["ticker", "date"], how="left")
    tp_day = ((d["high"].astype(np.float64) + d["low"] + d["close"]) / 3).astype(np.float32)
    d["vwap"] = np.where(d["mvwap"].notna(), d["mvwap"], tp_day).astype(np.float32)
    d["dt"] = d["date"].astype(str) + " 00:00:00"
    return d


def expected_minute(lake, to=TO):
    m = read_lake(lake, "stocks_minute",
                  ["ticker", "open", "high", "low", "close", "volume", "window_start",
                   "session", "date"])
    m = m[(m["session"].astype(str) == "regular") & (m["date"].astype(str) <= to)]
    ny = m["window_start"].dt.tz_convert("America/New_York")
    m["dt"] = ny.dt.strftime("%Y-%m-%d %H:%M:%S")
    m["vwap"] = ((m["high"].astype(np.float64) + m["low"] + m["close"]) / 3).astype(np.float32)
    return m


def check_against_lake(got, exp, calendar, freq, fields=FIELDS, only=None):
    """Compares the qlib_load output with the oracle frame `exp` (one row per bar).

    only: the codes qlib_load was limited to (--codes); spans are checked for all."""
    exp = exp.copy()
    exp["code"] = exp["ticker"].map(code_of)
    exp = exp.sort_values(["code", "dt"])
    cal_index = {c: i for i, c in enumerate(calendar)}
    assert list(got["calendar"]) == calendar

    # Spans: first/last day of each code.
    firsts = exp.groupby("code")["dt"].min().str[:10]
    lasts = exp.groupby("code")["dt"].max().str[:10]
    assert list(got["span_codes"]) == sorted(firsts.index)
    end_time = " 00:00:00" if freq == "day" else " 23:59:59"
    # D.list_instruments clips spans to the calendar's first and last row.
    assert list(got["span_start"]) == [
        max(firsts[c] + " 00:00:00", calendar[0]) for c in got["span_codes"]]
    assert list(got["span_end"]) == [
        min(lasts[c] + end_time, calendar[-1]) for c in got["span_codes"]]

    # Expected dense matrix: every calendar row from each code's first to last bar.
    exp["row"] = exp["dt"].map(cal_index)
    assert exp["row"].notna().all(), "a lake bar falls outside the exported calendar"
    change = np.full(len(exp), np.nan, dtype=np.float32)
    close = exp["close"].to_numpy(np.float32)
    codes = exp["code"].to_numpy()
    same = np.r_[False, codes[1:] == codes[:-1]]
    change[same] = (close[1:].astype(np.float64)[same[1:]]
                    / close[:-1].astype(np.float64)[same[1:]] - 1).astype(np.float32)
    exp["change"] = change
    exp["factor"] = np.float32(1.0)
    want_keys, want_vals = [], []
    rows_of = exp if only is None else exp[exp["code"].isin(only)]
    for code, grp in rows_of.groupby("code", sort=True):
        rows = grp["row"].to_numpy(int)
        dense = np.full((rows[-1] - rows[0] + 1, len(fields)), np.nan, dtype=np.float32)
        for k, f in enumerate(fields):
            dense[rows - rows[0], k] = grp[f].to_numpy().astype(np.float32)
        for r in range(rows[0], rows[-1] + 1):
            want_keys.append((code, calendar[r]))
        want_vals.append(dense)
    want_vals = np.concatenate(want_vals)
    for suffix in ("", "_list"):
        keys = list(zip(got["inst" + suffix], got["dt" + suffix]))
        assert keys == want_keys, f"rows differ ({suffix or 'market pool'})"
        vals = got["values" + suffix]
        for k, f in enumerate(fields):
            a, b = vals[:, k], want_vals[:, k]
            assert np.array_equal(np.isnan(a), np.isnan(b)), f"NaN pattern of ${f}"
            if f == "vwap":
                np.testing.assert_allclose(a, b, rtol=2e-7, equal_nan=True, err_msg=f)
            else:
                assert np.array_equal(a, b, equal_nan=True), f"values of ${f}"
    return exp


def assert_same_store(a, b):
    """Byte-identical calendars, instruments and bins."""
    for sub in ("calendars", "instruments"):
        cmp = filecmp.dircmp(a / sub, b / sub)
        assert not cmp.left_only and not cmp.right_only, (cmp.left_only, cmp.right_only)
        for f in cmp.common_files:
            assert (a / sub / f).read_bytes() == (b / sub / f).read_bytes(), f
    fa = sorted(p.relative_to(a) for p in (a / "features").rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in (b / "features").rglob("*") if p.is_file())
    assert fa == fb
    for p in fa:
        assert (a / p).read_bytes() == (b / p).read_bytes(), p


def day_calendar(frm=FROM, to=TO):
    s, _ = sessions(frm, to)
    return [str(d.date()) + " 00:00:00" for d in s]


def minute_calendar(frm=FROM, to=TO):
    s, cal = sessions(frm, to)
    out = []
    for d in s:
        op = cal.session_open(d).tz_convert("America/New_York")
        cl = cal.session_close(d).tz_convert("America/New_York")
        t = op
        while t < cl:
            out.append(t.strftime("%Y-%m-%d %H:%M:%S"))
            t += np.timedelta64(1, "m")
    return out


# ---- tests ----------------------------------------------------------------------------


def test_day_full_and_incremental_match_lake_in_qlib(qlake_bin, lake, tmp_path):
    full, inc = tmp_path / "full", tmp_path / "inc"
    extra = ["--fields", "transactions"]
    export(qlake_bin, lake, full, "day", *extra)
    export(qlake_bin, lake, inc, "day", "--to", "2024-12-23", *extra)
    export(qlake_bin, lake, inc, "day", "--to", "2024-12-27", *extra)
    export(qlake_bin, lake, inc, "day", *extra)
    assert_same_store(full, inc)
    # Re-exporting past days rewrites them in place: still identical.
    export(qlake_bin, lake, inc, "day", "--from", "2024-12-24", "--to", "2024-12-27", *extra)
    assert_same_store(full, inc)
    # Nothing new: a no-op.
    p = qlake(qlake_bin, "qlib", "export", "--lake", lake, "--out", inc, "--freq", "day",
              *extra)
    assert "up to date" in p.stdout

    fields = FIELDS + ["transactions"]
    got = qlib_load(inc, "day", tmp_path / "day.npz", fields)
    exp = check_against_lake(got, expected_day(lake), day_calendar(), "day", fields)
    # The nasty tickers are there under their documented codes and directories.
    codes = set(got["span_codes"])
    for t in ("NA", "NULL", "NAN", "CON", "PRN", "NUL", "AUX", "LPT1", "BRK.B", "JPMpC",
              "BRACr", "BRACR", "ACAH.U"):
        assert code_of(t) in codes, t
        assert (inc / "features" / dir_of(code_of(t)) / "close.day.bin").exists(), t
    assert "NA_" in codes and "BRK-B" in codes and (inc / "features" / "_qlib_con").is_dir()
    # Gaps exist in this data (names that list/delist or skip days), so NaN rows were tested.
    assert np.isnan(got["values"][:, 3]).any()
    # Day bars with and without minute bars: vwap from minutes for most.
    assert exp["mvwap"].notna().mean() > 0.5


def test_minute_full_and_incremental_match_lake_in_qlib(qlake_bin, lake, tmp_path):
    full, inc = tmp_path / "full", tmp_path / "inc"
    export(qlake_bin, lake, full, "1min")
    export(qlake_bin, lake, inc, "1min", "--to", "2024-12-24", "--batch-mb", "1")
    export(qlake_bin, lake, inc, "1min", "--to", "2024-12-31")
    export(qlake_bin, lake, inc, "1min")
    assert_same_store(full, inc)
    export(qlake_bin, lake, inc, "1min", "--from", "2024-12-24", "--to", "2024-12-26")
    assert_same_store(full, inc)
    cal = minute_calendar()
    assert sum(c.startswith("2024-12-24") for c in cal) == 210  # early close
    got = qlib_load(inc, "1min", tmp_path / "min.npz")
    check_against_lake(got, expected_minute(lake), cal, "1min")


def test_extended_session_calendar(qlake_bin, lake, tmp_path):
    out = tmp_path / "ext"
    export(qlake_bin, lake, out, "1min", "--session", "extended", "--to", "2024-12-23")
    lines = (out / "calendars" / "1min.txt").read_text().splitlines()
    assert len(lines) == 2 * 960
    assert lines[0] == "2024-12-20 04:00:00" and lines[-1] == "2024-12-23 19:59:00"
    # Changing the session of an existing store needs --rebuild.
    p = export(qlake_bin, lake, out, "1min", check=False)
    assert p.returncode != 0 and "--rebuild" in p.stderr
    export(qlake_bin, lake, out, "1min", "--rebuild", "--to", "2024-12-23")
    assert len((out / "calendars" / "1min.txt").read_text().splitlines()) == 2 * 390


@pytest.mark.parametrize("where", ["before_commit", "after_commit"])
def test_interrupted_append_leaves_old_store_and_rerun_completes(qlake_bin, lake, tmp_path,
                                                                 where):
    full, inc = tmp_path / "full", tmp_path / "inc"
    export(qlake_bin, lake, full, "day")
    export(qlake_bin, lake, inc, "day", "--to", "2024-12-26")
    before = {p.relative_to(inc): p.read_bytes() for p in inc.rglob("*") if p.is_file()}
    p = export(qlake_bin, lake, inc, "day", env={"QLAKE_QLIB_CRASH": where}, check=False)
    assert p.returncode == 86, p.stderr
    cal = (inc / "calendars" / "day.txt").read_text()
    if where == "before_commit":
        # The visible store is the old one: same calendar and instruments; bins only grew
        # past the calendar's end, which Qlib never reads.
        assert cal == before[Path("calendars/day.txt")].decode()
        assert (inc / "instruments/all.txt").read_bytes() == before[Path("instruments/all.txt")]
        got = qlib_load(inc, "day", tmp_path / "crashed.npz")
        assert list(got["calendar"])[-1] == "2024-12-26 00:00:00"
        assert not np.isnan(got["values"][:, 3]).all()
    export(qlake_bin, lake, inc, "day")
    assert not (inc / ".qlake" / "journal.json").exists()
    assert_same_store(full, inc)


def test_market_symbols_and_errors(qlake_bin, lake, tmp_path):
    out = tmp_path / "m"
    export(qlake_bin, lake, out, "day", "--symbols", "AAPL,BRK.B,NA", "--market", "mine",
           "--to", "2024-12-27")
    all_txt = (out / "instruments" / "all.txt").read_text()
    assert [line.split("\t")[0] for line in all_txt.splitlines()] == ["AAPL", "BRK-B", "NA_"]
    assert (out / "instruments" / "mine.txt").read_text() == all_txt
    export(qlake_bin, lake, out, "day", "--symbols", "AAPL,BRK.B,NA")
    assert "2025-01-03" in (out / "instruments" / "mine.txt").read_text()
    # The calendar's start cannot move without --rebuild.
    p = export(qlake_bin, lake, out, "day", "--from", "2024-12-19", check=False)
    assert p.returncode != 0 and "--rebuild" in p.stderr
    # Days the lake lacks: a clear error, nothing written.
    p = export(qlake_bin, lake, tmp_path / "x", "day", "--to", "2025-01-10", check=False)
    assert p.returncode != 0 and "lacks" in p.stderr and "2025-01-06" in p.stderr
    assert not (tmp_path / "x").exists()
    # A foreign non-empty folder is never overwritten.
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    p = export(qlake_bin, lake, tmp_path / "foreign", "day", check=False)
    assert p.returncode != 0 and "not a qlake Qlib store" in p.stderr
    # Fields must match the store; bad names are refused.
    p = export(qlake_bin, lake, out, "day", "--fields", "transactions", check=False)
    assert p.returncode != 0 and "--rebuild" in p.stderr
    p = export(qlake_bin, lake, tmp_path / "y", "day", "--fields", "Bad-Name", check=False)
    assert p.returncode != 0
    p = export(qlake_bin, lake, tmp_path / "z", "day", "--fields", "no_such_col", check=False)
    assert p.returncode != 0 and "no_such_col" in p.stderr


def read_bin(path):
    a = np.fromfile(path, dtype="<f4")
    return int(a[0]), a[1:]


def test_feature_columns_come_from_the_features_dataset(qlake_bin, lake, tmp_path):
    qlake(qlake_bin, "-q", "features", "--dataset", "stocks_daily", "--from", FROM, "--to", TO,
          "--lake", lake)
    out = tmp_path / "f"
    export(qlake_bin, lake, out, "day", "--fields", "transactions,daily_return")
    f = read_lake(lake, "features/stocks_daily", ["ticker", "date", "daily_return"])
    cal = [c[:10] for c in day_calendar()]
    for ticker in ("AAPL", "BRK.B", "NA"):
        g = f[f["ticker"] == ticker].sort_values("date")
        start, vals = read_bin(out / "features" / dir_of(code_of(ticker)) / "daily_return.day.bin")
        rows = [cal.index(str(d)) - start for d in g["date"]]
        want = g["daily_return"].to_numpy().astype(np.float32)
        assert np.array_equal(vals[rows], want, equal_nan=True), ticker
    # A name that is neither a lake nor a feature column fails clearly.
    p = export(qlake_bin, lake, tmp_path / "g", "day", "--fields", "nope", check=False)
    assert p.returncode != 0 and "nope" in p.stderr


def export_json(qlake_bin, lake, out, freq, *extra):
    import json

    return json.loads(export(qlake_bin, lake, out, freq, "--json", *extra).stdout)


def store_files(root):
    """Bytes and mtimes of everything Qlib reads."""
    return {p.relative_to(root): (p.read_bytes(), p.stat().st_mtime_ns)
            for sub in ("calendars", "instruments", "features")
            for p in (root / sub).rglob("*") if p.is_file()}


def test_recommitted_lake_day_is_rewritten_by_a_plain_export(qlake_bin, tmp_path):
    """A day re-ingested with different data is found from the store's record of the lake
    commits it was built from (.qlake/inputs.json): a plain export rewrites exactly that day,
    giving the bytes of a fresh export; an unchanged lake rewrites nothing."""
    mirror, lake = tmp_path / "mirror", tmp_path / "lake"
    qlake(qlake_bin, "-q", "synth", "--out", mirror, "--from", FROM, "--to", TO, "--scale",
          "0.02", "--seed", "11", "--datasets", "stocks_daily,stocks_minute")
    for d in ("stocks_daily", "stocks_minute"):
        qlake(qlake_bin, "-q", "ingest", "--dataset", d, "--from", FROM, "--to", TO,
              "--source", mirror, "--lake", lake)
    stores = {"day": tmp_path / "day", "1min": tmp_path / "min"}
    for freq, out in stores.items():
        export(qlake_bin, lake, out, freq)
        r = export_json(qlake_bin, lake, out, freq)
        assert (r["days_appended"], r["days_rewritten"]) == (0, 0)
    before = {freq: store_files(out) for freq, out in stores.items()}

    # The same day republished with other data (another seed), re-ingested.
    day = "2024-12-26"
    other = tmp_path / "other"
    qlake(qlake_bin, "-q", "synth", "--out", other, "--from", day, "--to", day, "--scale", "0.02",
          "--seed", "12", "--datasets", "stocks_daily,stocks_minute")
    for d, feed in (("stocks_daily", "day_aggs_v1"), ("stocks_minute", "minute_aggs_v1")):
        rel = f"us_stocks_sip/{feed}/2024/12/{day}.csv.gz"
        shutil.copy(other / rel, mirror / rel)
        qlake(qlake_bin, "-q", "ingest", "--dataset", d, "--date", day, "--source", mirror,
              "--lake", lake)
    for freq, out in stores.items():
        r = export_json(qlake_bin, lake, out, freq)
        assert (r["days_appended"], r["days_rewritten"], r["days_recommitted"]) == (0, 1, 1), r
        assert r["recommitted_days"] == [day]
        fresh = tmp_path / f"fresh-{freq}"
        export(qlake_bin, lake, fresh, freq)
        assert_same_store(fresh, out)
        assert (out / ".qlake/inputs.json").read_bytes() == (
            fresh / ".qlake/inputs.json").read_bytes()
        # Only that day's values changed; the files of symbols without bars around it kept
        # their bytes.
        after = store_files(out)
        assert any(after[p][0] != before[freq][p][0] for p in after if p in before[freq])
        # Unchanged lake: nothing is rewritten, not even touched.
        r = export_json(qlake_bin, lake, out, freq)
        assert (r["days_appended"], r["days_rewritten"], r["bytes_written"]) == (0, 0, 0), r
        assert store_files(out) == after
    got = qlib_load(stores["day"], "day", tmp_path / "day.npz")
    check_against_lake(got, expected_day(lake), day_calendar(), "day")
    got = qlib_load(stores["1min"], "1min", tmp_path / "min.npz")
    check_against_lake(got, expected_minute(lake), minute_calendar(), "1min")

    # Only the minute bars of a day re-committed: the day store's vwap reads them.
    day = "2024-12-30"
    qlake(qlake_bin, "-q", "synth", "--out", tmp_path / "o2", "--from", day, "--to", day,
          "--scale", "0.02", "--seed", "13", "--datasets", "stocks_minute")
    rel = f"us_stocks_sip/minute_aggs_v1/2024/12/{day}.csv.gz"
    shutil.copy(tmp_path / "o2" / rel, mirror / rel)
    qlake(qlake_bin, "-q", "ingest", "--dataset", "stocks_minute", "--date", day, "--source",
          mirror, "--lake", lake)
    r = export_json(qlake_bin, lake, stores["day"], "day")
    assert (r["days_rewritten"], r["recommitted_days"]) == (1, [day]), r
    shutil.rmtree(tmp_path / "fresh-day")
    export(qlake_bin, lake, tmp_path / "fresh-day", "day")
    assert_same_store(tmp_path / "fresh-day", stores["day"])
    # --no-recommit-check leaves such days alone.
    qlake(qlake_bin, "-q", "ingest", "--dataset", "stocks_daily", "--date", day, "--source",
          mirror, "--lake", lake)
    r = export_json(qlake_bin, lake, stores["day"], "day", "--no-recommit-check")
    assert r["days_rewritten"] == 0
    r = export_json(qlake_bin, lake, stores["day"], "day")
    assert (r["days_rewritten"], r["recommitted_days"]) == (1, [day]), r


def test_store_without_inputs_record_adopts_the_lake_commits(qlake_bin, lake, tmp_path):
    """A store written before .qlake/inputs.json existed is not rewritten: the lake's current
    commits are recorded once."""
    out = tmp_path / "s"
    export(qlake_bin, lake, out, "day")
    inputs = (out / ".qlake/inputs.json").read_bytes()
    (out / ".qlake/inputs.json").unlink()
    files = store_files(out)
    r = export_json(qlake_bin, lake, out, "day")
    assert (r["days_rewritten"], r["bytes_written"]) == (0, 0)
    assert store_files(out) == files
    assert (out / ".qlake/inputs.json").read_bytes() == inputs


def test_damaged_inputs_record_is_a_clear_error_and_the_store_is_untouched(qlake_bin, lake,
                                                                          tmp_path):
    """A damaged .qlake/inputs.json stops the export with an error naming the file; no bin,
    calendar or instrument file is changed."""
    out = tmp_path / "s"
    export(qlake_bin, lake, out, "day")
    (out / ".qlake/inputs.json").write_text("{broken")
    files = store_files(out)
    p = export(qlake_bin, lake, out, "day", check=False)
    assert p.returncode != 0
    assert "inputs.json" in p.stderr and "damaged" in p.stderr, p.stderr
    assert store_files(out) == files


# ---- more than 1024 new symbols in one day (regression: commit 9ab5512) ---------------
# The exporter buffers bars per symbol in a table sized before each day with room for 1024
# new symbols; a day adding more (a new store's first day at full scale, or a store that
# so far held a few symbols) wrote past its end. Scale 0.15 gives ~1,800 tickers a day.

WIDE_DAYS = ("2024-03-04", "2024-03-05")
WIDE_FEW = ("AAPL", "MSFT")  # the store holds only these before the wide day


@pytest.fixture(scope="module")
def wide_lake(qlake_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("qlib_wide")
    a, b = WIDE_DAYS
    qlake(qlake_bin, "-q", "synth", "--out", root / "mirror", "--from", a, "--to", b,
          "--scale", "0.15", "--seed", "5", "--datasets", "stocks_daily,stocks_minute")
    for d in ("stocks_daily", "stocks_minute"):
        qlake(qlake_bin, "-q", "ingest", "--dataset", d, "--from", a, "--to", b,
              "--source", root / "mirror", "--lake", root / "lake")
    return root / "lake"


@pytest.mark.parametrize("freq", ["day", "1min"])
def test_more_than_1024_new_symbols_in_one_day(qlake_bin, wide_lake, tmp_path, freq):
    a, b = WIDE_DAYS
    if freq == "day":
        lake = read_lake(wide_lake, "stocks_daily",
                         ["ticker", "open", "high", "low", "close", "volume", "date"])
        lake["dt"] = lake["date"].astype(str) + " 00:00:00"
        calendar = [f"{a} 00:00:00", f"{b} 00:00:00"]
    else:
        lake = read_lake(wide_lake, "stocks_minute",
                         ["ticker", "open", "high", "low", "close", "volume", "window_start",
                          "session", "date"])
        lake = lake[lake["session"].astype(str) == "regular"]
        ny = lake["window_start"].dt.tz_convert("America/New_York")
        lake["dt"] = ny.dt.strftime("%Y-%m-%d %H:%M:%S")
        calendar = [f"{d} {m // 60:02}:{m % 60:02}:00" for d in WIDE_DAYS
                    for m in range(9 * 60 + 30, 16 * 60)]
    day = lake["date"].astype(str)
    n_first = lake.loc[day == a, "ticker"].nunique()
    assert n_first > 1024, n_first  # the first day alone adds them to a new store
    # Incremental: a store holding two symbols gets a day adding every other one.
    inc = tmp_path / "inc"
    export(qlake_bin, wide_lake, inc, freq, "--to", a, "--symbols", ",".join(WIDE_FEW))
    export(qlake_bin, wide_lake, inc, freq, "--to", b)
    exp = lake[(day == b) | lake["ticker"].isin(WIDE_FEW)]
    new = sorted(set(exp["ticker"]) - set(WIDE_FEW))
    assert len(new) > 1024, len(new)
    # Qlib sees every instrument; values are compared for a sample (D.features over ~1,800
    # codes would dominate the test's time): the two old symbols, nasty names, and new ones
    # spread over the list, the last one included (ids past the first 1024).
    sample = [*WIDE_FEW, "BRK.B", "NA", "CON", *new[::len(new) // 5], new[-1]]
    codes = sorted({code_of(t) for t in sample})
    fields = ["close", "volume"]
    got = qlib_load(inc, freq, tmp_path / "inc.npz", fields, codes)
    assert len(got["span_codes"]) == len(new) + len(WIDE_FEW)
    assert sorted(set(got["inst"])) == codes
    check_against_lake(got, exp, calendar, freq, fields, only=codes)
    # A new store whose first day holds them all.
    full = tmp_path / "full"
    export(qlake_bin, wide_lake, full, freq)
    got = qlib_load(full, freq, tmp_path / "full.npz", fields, codes)
    assert len(got["span_codes"]) == lake["ticker"].nunique()
    check_against_lake(got, lake, calendar, freq, fields, only=codes)


def scale_prices(path, factor):
    """Rewrites a flat file with every price scaled: same symbols, other values (a
    corrected republication)."""
    import csv
    import gzip
    import io

    rows = list(csv.reader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))
    head = rows[0]
    for r in rows[1:]:
        for c in ("open", "high", "low", "close"):
            i = head.index(c)
            r[i] = repr(float(r[i]) * factor)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_bytes(gzip.compress(out.getvalue().encode()))


@pytest.mark.parametrize("where", ["none", "before_commit", "after_commit"])
def test_recommitted_day_with_same_symbols_is_patched_in_place(qlake_bin, tmp_path, where):
    """A re-committed day whose symbols keep their spans changes values in place (a redo log
    in the journal, applied after the commit point): bytes equal a fresh export, only the
    changed values are written, and a crash before or after the commit point leaves the old
    store or finishes the new one."""
    mirror, lake, out = tmp_path / "mirror", tmp_path / "lake", tmp_path / "s"
    qlake(qlake_bin, "-q", "synth", "--out", mirror, "--from", FROM, "--to", TO, "--scale",
          "0.02", "--seed", "11", "--datasets", "stocks_daily")
    qlake(qlake_bin, "-q", "ingest", "--dataset", "stocks_daily", "--from", FROM, "--to", TO,
          "--source", mirror, "--lake", lake)
    export(qlake_bin, lake, out, "day")
    day = "2024-12-27"
    scale_prices(mirror / f"us_stocks_sip/day_aggs_v1/2024/12/{day}.csv.gz", 1.1)
    qlake(qlake_bin, "-q", "ingest", "--dataset", "stocks_daily", "--date", day, "--source",
          mirror, "--lake", lake)
    before = store_files(out)
    inodes = {p: p.stat().st_ino for p in (out / "features").rglob("*.bin")}
    if where != "none":
        p = export(qlake_bin, lake, out, "day", env={"QLAKE_QLIB_CRASH": where}, check=False)
        assert p.returncode == 86, p.stderr
        journal = json.loads((out / ".qlake/journal.json").read_text())
        assert journal["patched"] and journal["replaced"] == []
        if where == "before_commit":  # every file Qlib reads is as it was (temps aside)
            now = store_files(out)
            assert {k: now[k][0] for k in before} == {k: v[0] for k, v in before.items()}
    r = export_json(qlake_bin, lake, out, "day")
    if where == "none":
        assert (r["days_rewritten"], r["recommitted_days"]) == (1, [day])
        # Per symbol with a bar that day: o h l c vwap, that day's change and the next
        # bar's, 4 bytes each; replacing the symbols' bins whole would write about all of the
        # (9-day) store.
        assert 0 < r["bytes_written"] < sum(len(v[0]) for v in before.values()) / 8
    assert not (out / ".qlake/journal.json").exists()
    fresh = tmp_path / "fresh"
    export(qlake_bin, lake, fresh, "day")
    assert_same_store(fresh, out)
    # Every bin kept its inode (written in place, not replaced).
    assert {p: p.stat().st_ino for p in (out / "features").rglob("*.bin")} == inodes
