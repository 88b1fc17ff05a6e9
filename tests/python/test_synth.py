"""`qlake synth` end to end: the files it writes, read back with pyarrow, duckdb and pandas.

The mirror is checked against independent readers (pyarrow's CSV reader and gzip, duckdb,
exchange_calendars' XNYS for the trading days), not against qlake's own code.
"""

import datetime
import gzip
import hashlib
import json
import re
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

COLUMNS = ["ticker", "volume", "open", "close", "high", "low", "window_start", "transactions"]
TYPES = {
    "ticker": pa.string(),
    "volume": pa.int64(),
    "open": pa.float64(),
    "close": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "window_start": pa.int64(),
    "transactions": pa.int64(),
}
PREFIX = {
    "stocks_daily": "us_stocks_sip/day_aggs_v1",
    "stocks_minute": "us_stocks_sip/minute_aggs_v1",
    "options_daily": "us_options_opra/day_aggs_v1",
    "options_minute": "us_options_opra/minute_aggs_v1",
}
OCC = re.compile(r"^O:([A-Z0-9]+)(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")
FROM, TO = "2024-01-02", "2024-01-09"  # includes the weekend of 01-06/07


def valid_occ(ticker: str) -> bool:
    m = OCC.match(ticker)
    if not m:
        return False
    _, yy, mm, dd, _, strike = m.groups()
    try:
        datetime.date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        return False
    return int(strike) > 0


def key(dataset: str, day: str) -> str:
    return f"{PREFIX[dataset]}/{day[:4]}/{day[5:7]}/{day}.csv.gz"


def read(path: Path) -> pa.Table:
    # Default options: pyarrow must keep "NA", "NULL", "TRUE" as ticker strings.
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=TYPES))


def ny(ws: pd.Series) -> pd.Series:
    return pd.to_datetime(ws, unit="ns", utc=True).dt.tz_convert("America/New_York")


def tree_digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def mirror(run_qlake, tmp_path):
    out = tmp_path / "mirror"
    proc = run_qlake("synth", "--out", out, "--from", FROM, "--to", TO, "--scale", "0.01",
                     "--json")
    return out, json.loads(proc.stdout)


def sessions(start: str, end: str) -> list:
    xcals = pytest.importorskip("exchange_calendars")
    cal = xcals.get_calendar("XNYS", start="2020-01-01", end="2030-12-31")
    return [d.strftime("%Y-%m-%d") for d in cal.sessions_in_range(start, end)]


def test_layout_headers_and_row_counts(mirror):
    out, summary = mirror
    days = sessions(FROM, TO)
    assert "2024-01-06" not in days and len(days) == 6
    manifest = json.loads((out / "_synth" / "manifest.json").read_text())
    files = {f["key"]: f for f in manifest["files"]}
    expected = {key(d, day) for d in PREFIX for day in days}
    assert set(files) == expected
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*.csv.gz")}
    assert on_disk == expected, "files on weekends/holidays or missing sessions"
    assert summary["files"] == len(expected)
    assert summary["rows"] == sum(f["rows"] for f in files.values())
    for k, f in files.items():
        raw = (out / k).read_bytes()
        assert raw[:4] == b"\x1f\x8b\x08\x00" and raw[4:8] == b"\0\0\0\0", "gzip mtime must be 0"
        assert len(raw) == f["bytes"]
        with gzip.open(out / k, "rt") as fh:
            assert fh.readline().rstrip("\n") == ",".join(COLUMNS)
        t = read(out / k)
        assert t.column_names == COLUMNS
        assert t.num_rows == f["rows"] == f["valid_rows"]
        assert t.num_rows > 0


def test_day_bars_equal_the_aggregate_of_minute_bars(mirror):
    out, _ = mirror
    con = duckdb.connect()
    cols = "{" + ", ".join(
        f"'{c}': '{'VARCHAR' if c == 'ticker' else 'BIGINT' if c in ('volume', 'window_start', 'transactions') else 'DOUBLE'}'"
        for c in COLUMNS) + "}"
    for minute, daily in [("stocks_minute", "stocks_daily"), ("options_minute", "options_daily")]:
        for day in sessions(FROM, TO):
            m = out / key(minute, day)
            d = out / key(daily, day)
            n_daily, mismatches, unmatched = con.execute(f"""
                WITH m AS (SELECT * FROM read_csv('{m}', header=true, columns={cols})),
                     agg AS (
                       SELECT ticker, arg_min(open, window_start) AS open,
                              arg_max(close, window_start) AS close, max(high) AS high,
                              min(low) AS low, sum(volume) AS volume,
                              sum(transactions) AS transactions
                       FROM m GROUP BY ticker),
                     d AS (SELECT * FROM read_csv('{d}', header=true, columns={cols}))
                SELECT (SELECT count(*) FROM d),
                       (SELECT count(*) FROM d JOIN agg USING (ticker)
                        WHERE d.open <> agg.open OR d.close <> agg.close OR d.high <> agg.high
                           OR d.low <> agg.low OR d.volume <> agg.volume
                           OR d.transactions <> agg.transactions),
                       (SELECT count(*) FROM agg FULL JOIN d USING (ticker)
                        WHERE agg.ticker IS NULL OR d.ticker IS NULL)
            """).fetchone()
            assert n_daily > 0
            assert mismatches == 0, f"{daily} {day}: day bar != aggregate of minutes"
            assert unmatched == 0, f"{daily} {day}: tickers differ between minute and day"


def test_nasty_tickers_survive_a_default_csv_reader(mirror):
    out, _ = mirror
    tickers = set(read(out / key("stocks_daily", "2024-01-03")).column("ticker").to_pylist())
    for t in ["BRK.B", "BRK.A", "BF.B", "CON", "PRN", "NUL", "AUX", "COM1", "LPT1", "NA",
              "NULL", "NAN", "TRUE", "JPMpC", "BACpL", "PBR.A", "ACHR.WS", "BRACr", "SPY"]:
        assert t in tickers, t
    assert None not in tickers
    assert any(t.endswith(".WS") for t in tickers) or "ACHR.WS" in tickers
    assert any(c.islower() for t in tickers for c in t), "Polygon's lowercase suffixes"


def test_minute_windows_inside_extended_hours_on_the_files_date(mirror):
    out, _ = mirror
    for day in sessions(FROM, TO):
        df = read(out / key("stocks_minute", day)).to_pandas()
        assert (df["window_start"].astype(str).str.len() == 19).all()
        assert (df["window_start"] % 60_000_000_000 == 0).all()
        local = ny(df["window_start"])
        assert (local.dt.strftime("%Y-%m-%d") == day).all()
        minutes = local.dt.hour * 60 + local.dt.minute
        assert minutes.min() >= 4 * 60 and minutes.max() < 20 * 60
        # Pre- and post-market bars exist, and the regular session dominates.
        assert (minutes < 9 * 60 + 30).sum() > 0 and (minutes >= 16 * 60).sum() > 0
        # (At 0.01 the liquid named tickers, busy after hours too, weigh more than at 1.)
        assert ((minutes >= 9 * 60 + 30) & (minutes < 16 * 60)).mean() > 0.5
        # Sorted by ticker, then time; no duplicate (ticker, window_start).
        assert not df.duplicated(["ticker", "window_start"]).any()
        keys = list(zip(df["ticker"], df["window_start"]))
        assert keys == sorted(keys)
        # OHLC sane.
        assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
        assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
        assert (df["low"] > 0).all() and (df["volume"] >= df["transactions"]).all()
        # Day bars at New York midnight.
        daily = read(out / key("stocks_daily", day)).to_pandas()
        stamps = ny(daily["window_start"])
        assert (stamps.dt.strftime("%Y-%m-%d %H:%M") == f"{day} 00:00").all()


def test_option_tickers_are_valid_unexpired_occ_symbols(mirror):
    out, _ = mirror
    day = "2024-01-05"
    df = read(out / key("options_minute", day)).to_pandas()
    expiries = sessions("2024-01-01", "2027-12-31")
    roots = set()
    for t in df["ticker"].unique():
        m = OCC.match(t)
        assert m, t
        root, yy, mm, dd, cp, strike = m.groups()
        expiry = f"20{yy}-{mm}-{dd}"
        assert expiry >= day and expiry in expiries, f"{t}: expired or not a trading day"
        assert int(strike) > 0
        roots.add(root)
    assert {"SPY", "QQQ", "AAPL", "AAPL1", "PCG", "C", "BRKB"} <= roots
    minutes = ny(df["window_start"])
    mins = minutes.dt.hour * 60 + minutes.dt.minute
    assert mins.min() >= 9 * 60 + 30 and mins.max() < 16 * 60 + 15
    etf = df["ticker"].str.match(r"^O:(SPY|QQQ|IWM)\d")
    assert mins[~etf].max() < 16 * 60, "equity options trade until 16:00"


def test_early_close_day_stops_options_at_the_close(run_qlake, tmp_path):
    out = tmp_path / "m"
    run_qlake("synth", "--out", out, "--from", "2024-11-29", "--scale", "0.01",
              "--datasets", "options_minute,stocks_minute")
    df = read(out / key("options_minute", "2024-11-29")).to_pandas()
    local = ny(df["window_start"])
    assert (local.dt.hour * 60 + local.dt.minute).max() < 13 * 60 + 15
    stocks = read(out / key("stocks_minute", "2024-11-29")).to_pandas()
    local = ny(stocks["window_start"])
    assert (local.dt.hour * 60 + local.dt.minute).max() < 17 * 60


def test_reruns_are_byte_identical_whatever_the_jobs(run_qlake, tmp_path):
    args = ["--from", "2024-01-02", "--to", "2024-01-03", "--scale", "0.01", "--faults",
            "nan_inf,bad_occ,duplicate_rows"]
    run_qlake("synth", "--out", tmp_path / "a", "--jobs", "1", *args)
    run_qlake("synth", "--out", tmp_path / "b", "--jobs", "4", *args)
    run_qlake("synth", "--out", tmp_path / "c", "--jobs", "2", "--seed", "7", *args)
    a, b, c = (tree_digest(tmp_path / x) for x in "abc")
    assert a == b
    assert set(a) == set(c)
    changed = [k for k in a if k.endswith(".gz") and a[k] != c[k]]
    assert len(changed) == len([k for k in a if k.endswith(".gz")]), "seed must change every file"


def test_faults_are_exactly_where_the_manifest_says(run_qlake, tmp_path):
    out = tmp_path / "m"
    run_qlake("synth", "--out", out, "--from", "2024-01-02", "--to", "2024-01-03",
              "--scale", "0.01", "--faults", "all")
    manifest = json.loads((out / "_synth" / "manifest.json").read_text())
    faults = {}
    for f in manifest["faults"]:
        faults.setdefault(f["key"], []).append(f)
    assert {f["kind"] for fs in faults.values() for f in fs} == {
        "bad_timestamp", "non_numeric", "negative_volume", "duplicate_rows", "nan_inf",
        "wrong_day", "ohlc_inconsistent", "truncated_gzip", "changed_header", "bad_occ"}
    for f in manifest["files"]:
        path = out / f["key"]
        assert f["rows"] == f["valid_rows"] + f["fault_rows"]
        file_faults = faults.get(f["key"], [])
        if f["truncated"]:
            with pytest.raises(Exception):
                read(path)
            with pytest.raises(EOFError):
                gzip.decompress(path.read_bytes())
            continue
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        assert len(lines) - 1 == f["rows"]
        rows = [f for f in file_faults if f["level"] == "row"]
        assert len(rows) == f["fault_rows"]
        bad_lines = {r["line"] for r in rows}
        if f["changed_header"]:
            assert lines[0].split(",")[-1] == "otc"
            with pytest.raises(Exception):  # the declared types no longer fit the columns
                pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                    column_types=TYPES, include_columns=COLUMNS + ["vwap"]))
            continue
        # Dropping the listed lines leaves a file that reads cleanly with strict types and
        # passes the flat-file checks.
        good = "\n".join(l for i, l in enumerate(lines, start=1) if i not in bad_lines) + "\n"
        t = pacsv.read_csv(pa.BufferReader(good.encode()),
                           convert_options=pacsv.ConvertOptions(column_types=TYPES))
        assert t.num_rows == f["valid_rows"]
        df = t.to_pandas()
        assert not df.duplicated().any()
        assert (df["volume"] >= 0).all()
        assert (ny(df["window_start"]).dt.strftime("%Y-%m-%d") == f["date"]).all()
        assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
        if f["dataset"].startswith("options"):
            assert df["ticker"].map(valid_occ).all()
        # The listed lines are the damaged ones.
        for r in rows:
            line = lines[r["line"] - 1].split(",")
            if r["kind"] == "bad_timestamp":
                assert len(line[6]) == 17
            elif r["kind"] == "non_numeric":
                assert line[COLUMNS.index(r["column"])] == "abc"
            elif r["kind"] == "nan_inf":
                assert line[COLUMNS.index(r["column"])] in ("NaN", "inf", "-inf")
            elif r["kind"] == "negative_volume":
                assert int(line[1]) < 0
            elif r["kind"] == "duplicate_rows":
                assert lines[r["line"] - 1] == lines[r["source_line"] - 1]
            elif r["kind"] == "wrong_day":
                assert ny(pd.Series([int(line[6])])).dt.strftime("%Y-%m-%d")[0] > f["date"]
            elif r["kind"] == "ohlc_inconsistent":
                assert float(line[3]) > float(line[4])
            elif r["kind"] == "bad_occ":
                assert not valid_occ(line[0])


def test_bad_arguments_fail_with_clear_messages(run_qlake, tmp_path):
    p = run_qlake("synth", "--out", tmp_path / "x", "--from", "2024-01-02",
                  "--faults", "bad_timestamp,explode", check=False)
    assert p.returncode == 3
    assert "explode" in p.stderr and "truncated_gzip" in p.stderr
    p = run_qlake("synth", "--out", tmp_path / "x", "--from", "2024-01-02", "--scale", "0",
                  check=False)
    assert p.returncode == 3 and "--scale" in p.stderr
    p = run_qlake("synth", "--out", tmp_path / "x", "--from", "2024-01-05", "--to",
                  "2024-01-02", check=False)
    assert p.returncode == 3 and "after" in p.stderr
    p = run_qlake("synth", "--out", tmp_path / "x", "--from", "2024-02-30", check=False)
    assert p.returncode == 3 and "2024-02-30" in p.stderr
    p = run_qlake("synth", "--out", tmp_path / "x", "--from", "2024-01-02", "--datasets",
                  "stocks_hourly", check=False)
    assert p.returncode == 3 and "stocks_minute" in p.stderr
    p = run_qlake("synth", "--from", "2024-01-02", check=False)
    assert p.returncode == 2
    assert not (tmp_path / "x").exists()


def test_realistic_stocks_minute_day_at_scale_1(run_qlake, tmp_path):
    out = tmp_path / "m"
    t0 = time.monotonic()
    proc = run_qlake("synth", "--out", out, "--from", "2024-01-09", "--scale", "1",
                     "--datasets", "stocks_minute", "--json")
    elapsed = time.monotonic() - t0
    summary = json.loads(proc.stdout)
    con = duckdb.connect()
    path = out / key("stocks_minute", "2024-01-09")
    rows, tickers, liquid, sparse = con.execute(f"""
        WITH per AS (SELECT ticker, count(*) AS bars
                     FROM read_csv('{path}', header=true, columns={{'ticker': 'VARCHAR',
                       'volume': 'BIGINT', 'open': 'DOUBLE', 'close': 'DOUBLE',
                       'high': 'DOUBLE', 'low': 'DOUBLE', 'window_start': 'BIGINT',
                       'transactions': 'BIGINT'}})
                     GROUP BY ticker)
        SELECT sum(bars), count(*), count(*) FILTER (WHERE bars >= 380),
               count(*) FILTER (WHERE bars < 30) FROM per""").fetchone()
    assert rows == summary["rows"]
    assert 1_000_000 <= rows <= 3_000_000
    assert 9_000 <= tickers <= 12_500
    assert liquid >= 300, "a few hundred names trade nearly every regular minute"
    assert sparse >= 2_000, "most names trade sparsely"
    print(f"scale 1 stocks_minute: {rows} rows, {tickers} tickers, {elapsed:.2f} s, "
          f"{summary['rows_per_second'] / 1e6:.2f} M rows/s, {summary['mb_per_second']:.0f} MB/s")
    assert elapsed < 60
