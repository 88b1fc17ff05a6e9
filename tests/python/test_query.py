"""`qlake query` and qlake.query against DuckDB over the same synthetic lakes.

Golden cases live in tests/golden/query/cases.json with their expected rows in
<name>.csv. The expected rows come from DuckDB reading the lake's Parquet files
(read_parquet with hive partitioning), never from qlake: each test checks both that the
golden file still equals DuckDB's answer and that qlake (CLI, every output format, and the
Python module) returns the same rows, for the `daily` and the `original` layout.
QLAKE_UPDATE_GOLDEN=1 rewrites the golden files from DuckDB.
"""

import io
import json
import math
import os
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "query"
CASES = json.loads((GOLDEN / "cases.json").read_text())["cases"]
LAYOUTS = ["daily", "original"]
NY = "America/New_York"


def is_options(dataset):
    return dataset.startswith("options")


def output_columns(case, con, lake):
    if case.get("columns"):
        return case["columns"]
    # All lake columns, in the file schema's order (the daily layout has every column).
    files = sorted((lake / case["dataset"]).rglob("*.parquet"))
    return [f.name for f in pq.read_schema(files[0])]


def duckdb_rows(case, lake: Path) -> pd.DataFrame:
    """The expected answer, from DuckDB over the lake's files."""
    ds = case["dataset"]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = output_columns(case, con, lake)
    src = f"read_parquet('{lake}/{ds}/**/*.parquet', hive_partitioning = true, union_by_name = true)"
    sym_col = "underlying" if is_options(ds) else "ticker"
    conds = [f"date BETWEEN DATE '{case['from']}' AND DATE '{case['to']}'"]
    if case["symbols"]:
        conds.append(f"{sym_col} IN ({', '.join(repr(s) for s in case['symbols'])})")
    if case.get("session"):
        conds.append(f"session IN ({', '.join(repr(s) for s in case['session'])})")
    if case.get("where"):
        conds.append(f"({case.get('sql_where', case['where'])})")
    if case["symbols"] and not is_options(ds):
        order = "ticker, window_start"
    else:
        order = "date, ticker, window_start"
    select = ", ".join(f'"{c}"' for c in cols)
    sql = f"SELECT {select} FROM {src} WHERE {' AND '.join(conds)} ORDER BY {order}"
    return con.execute(sql).fetch_df()


def canonical(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Values in a form both sides agree on: times as UTC ISO strings, floats as float32,
    categoricals as strings, dates as ISO strings."""
    out = pd.DataFrame()
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(str)
        if c == "window_start":
            s = pd.to_datetime(s, utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif c in ("date", "expiration"):
            s = pd.to_datetime(s).dt.strftime("%Y-%m-%d")
        elif c in ("open", "close", "high", "low"):
            s = s.astype("float32").astype("float64").round(6)
        elif c == "strike":
            s = s.astype("float64").round(6)
        elif c in ("volume", "transactions", "flags"):
            s = s.astype("int64")
        else:
            s = s.astype(str)
        out[c] = s.reset_index(drop=True)
    return out


def read_golden(name) -> pd.DataFrame:
    return pd.read_csv(GOLDEN / f"{name}.csv", dtype=str, keep_default_na=False)


def text_frame(df: pd.DataFrame, dataset) -> pd.DataFrame:
    """A CSV read as strings, typed back for canonical()."""
    out = df.copy()
    for c in out.columns:
        if c in ("open", "close", "high", "low", "strike"):
            out[c] = out[c].astype("float64")
        elif c in ("volume", "transactions", "flags"):
            out[c] = out[c].astype("int64")
    return canonical(out, dataset)


def assert_same(got: pd.DataFrame, want: pd.DataFrame, what: str):
    assert list(got.columns) == list(want.columns), what
    assert len(got) == len(want), f"{what}: {len(got)} rows, expected {len(want)}"
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True),
                                  check_dtype=False, obj=what)


def cli_args(case, lake, fmt):
    args = ["query", "--lake", lake, "--dataset", case["dataset"], "--from", case["from"],
            "--to", case["to"], "--format", fmt]
    if case["symbols"]:
        args += ["--symbols", ",".join(case["symbols"])]
    if case.get("columns"):
        args += ["--columns", ",".join(case["columns"])]
    if case.get("where"):
        args += ["--where", case["where"]]
    if case.get("session"):
        args += ["--session", ",".join(case["session"])]
    return args


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_file_matches_duckdb(case, query_lakes):
    want = canonical(duckdb_rows(case, query_lakes["daily"]), case["dataset"])
    path = GOLDEN / f"{case['name']}.csv"
    if os.environ.get("QLAKE_UPDATE_GOLDEN") == "1":
        want.to_csv(path, index=False)
    assert path.exists(), f"{path} missing: run with QLAKE_UPDATE_GOLDEN=1"
    assert_same(text_frame(read_golden(case["name"]), case["dataset"]), want,
                f"{path.name} vs DuckDB")
    if case["name"] != "unknown_symbol_is_empty":
        assert len(want) > 0, f"case {case['name']} selects nothing: make it meaningful"
    # The original layout holds the same rows.
    other = canonical(duckdb_rows(case, query_lakes["original"]), case["dataset"])
    assert_same(other, want, "DuckDB original vs daily layout")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_cli_csv_matches_golden(case, layout, query_lakes, run_qlake):
    lake = query_lakes[layout]
    proc = run_qlake(*cli_args(case, lake, "csv"))
    got = pd.read_csv(io.StringIO(proc.stdout), dtype=str, keep_default_na=False)
    want = text_frame(read_golden(case["name"]), case["dataset"])
    assert_same(text_frame(got, case["dataset"]), want, f"qlake query ({layout})")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_module_matches_golden(case, layout, query_lakes, qlake_module):
    t = qlake_module.query(str(query_lakes[layout]), case["dataset"], case["symbols"],
                           case["from"], case["to"], columns=case.get("columns"),
                           where=case.get("where"), session=case.get("session"))
    assert isinstance(t, pa.Table)
    want = text_frame(read_golden(case["name"]), case["dataset"])
    if not case.get("columns"):
        t = t.select(list(want.columns))
    assert_same(canonical(t.to_pandas(), case["dataset"]), want, f"qlake.query ({layout})")


def test_other_formats_agree(query_lakes, run_qlake, tmp_path):
    case = next(c for c in CASES if c["name"] == "minute_regular_session")
    lake = query_lakes["daily"]
    want = text_frame(read_golden(case["name"]), case["dataset"])
    # JSON: an array of row objects with numbers as numbers.
    rows = json.loads(run_qlake(*cli_args(case, lake, "json")).stdout)
    assert isinstance(rows[0]["close"], float | int) and isinstance(rows[0]["ticker"], str)
    got = pd.DataFrame(rows).astype({"volume": "int64"})
    assert_same(canonical(got, case["dataset"]), want, "json")
    # Parquet file.
    out = tmp_path / "q.parquet"
    run_qlake(*cli_args(case, lake, "parquet"), "--out", out)
    assert_same(canonical(pq.read_table(out).to_pandas(), case["dataset"]), want, "parquet")
    # Table: header, rule, one line per row, row count.
    text = run_qlake(*cli_args(case, lake, "table")).stdout.splitlines()
    assert text[0].split() == case["columns"]
    assert set(text[1].replace(" ", "")) == {"-"}
    assert text[-1] == f"({len(want)} rows)"
    assert len(text) == len(want) + 3
    # CSV to a file with --out.
    out_csv = tmp_path / "q.csv"
    run_qlake(*cli_args(case, lake, "csv"), "--out", out_csv)
    got = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
    assert_same(text_frame(got, case["dataset"]), want, "csv --out")


def test_stats_show_pruning_and_cache(query_lakes, run_qlake):
    proc = run_qlake("query", "--lake", query_lakes["daily"], "--dataset", "stocks_minute",
                     "--symbols", "AAPL", "--from", "2025-01-02", "--to", "2025-01-08",
                     "--columns", "close", "--format", "csv", "--stats")
    line = proc.stderr.strip().splitlines()[-1]
    assert "5 days, 5 files (0 pruned)" in line, line
    n_rg = int(line.split(" row groups (")[0].split()[-1])
    pruned = int(line.split(" row groups (")[1].split(" pruned")[0])
    assert n_rg > 5 and pruned >= n_rg - 10, line  # one or two row groups per day read
    proc = run_qlake("query", "--lake", query_lakes["original"], "--dataset", "stocks_minute",
                     "--symbols", "AAPL", "--from", "2025-01-02", "--to", "2025-01-08",
                     "--columns", "close", "--format", "csv", "--stats")
    line = proc.stderr.strip().splitlines()[-1]
    files = int(line.split(" files (")[0].split()[-1])
    pruned = int(line.split(" files (")[1].split(" pruned")[0])
    assert files > 100 and pruned == files - 5, line  # one file per symbol and day


@pytest.mark.parametrize("args,message", [
    (["--where", "clse > 1"], "where: unknown column 'clse' at 1"),
    (["--where", "close >"], "where: expected a column, number or string at 8"),
    (["--columns", "ticker,nope"], "unknown column 'nope' of stocks_daily"),
    (["--session", "regular"], "--session needs a minute dataset"),
    (["--format", "parquet"], "--format parquet needs --out FILE"),
])
def test_cli_errors(args, message, query_lakes, run_qlake):
    proc = run_qlake("query", "--lake", query_lakes["daily"], "--dataset", "stocks_daily",
                     "--symbols", "AAPL", "--from", "2025-01-02", "--to", "2025-01-08",
                     *args, check=False)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("qlake: error: ") and message in proc.stderr, proc.stderr


def test_cli_bad_range_and_missing_lake(run_qlake, tmp_path, query_lakes):
    proc = run_qlake("query", "--lake", query_lakes["daily"], "--dataset", "stocks_daily",
                     "--from", "2025-01-08", "--to", "2025-01-02", check=False)
    assert proc.returncode == 3 and "is after --to" in proc.stderr
    # A lake without the dataset: an empty result, not an error.
    empty = tmp_path / "empty_lake"
    empty.mkdir()
    proc = run_qlake("query", "--lake", empty, "--dataset", "stocks_daily", "--from",
                     "2025-01-02", "--to", "2025-01-08", "--format", "csv")
    assert proc.stdout.splitlines() == [
        "ticker,volume,open,close,high,low,window_start,transactions,date,flags"]


def test_feature_dataset(query_lakes, run_qlake, qlake_module):
    """features/stocks_daily (qlake features) is queried like a raw dataset; DuckDB agrees."""
    lake = query_lakes["daily"]
    run_qlake("-q", "features", "--dataset", "stocks_daily", "--from", "2025-01-02", "--to",
              "2025-01-08", "--lake", lake)
    files = sorted((lake / "features" / "stocks_daily").rglob("*.parquet"))
    cols = [f.name for f in pq.read_schema(files[0])]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    want = con.execute(
        f"SELECT {', '.join(cols)} FROM read_parquet('{lake}/features/stocks_daily/**/*.parquet',"
        " hive_partitioning = true) WHERE ticker IN ('AAPL', 'MSFT') AND date BETWEEN "
        "DATE '2025-01-03' AND DATE '2025-01-07' ORDER BY ticker, window_start").fetch_df()
    assert len(want) == 6
    t = qlake_module.query(str(lake), "features/stocks_daily", ["MSFT", "AAPL"], "2025-01-03",
                           "2025-01-07")
    assert t.column_names == cols
    got = t.to_pandas()
    for c in cols:
        if c in ("ticker",):
            assert got[c].astype(str).tolist() == want[c].astype(str).tolist()
        elif c == "window_start":
            assert (pd.to_datetime(got[c], utc=True) == pd.to_datetime(want[c], utc=True)).all()
        elif pd.api.types.is_numeric_dtype(want[c]):
            pd.testing.assert_series_equal(got[c].astype("float64"), want[c].astype("float64"),
                                           check_names=False)
    proc = run_qlake("query", "--lake", lake, "--dataset", "features/stocks_daily", "--symbols",
                     "AAPL", "--from", "2025-01-03", "--to", "2025-01-07", "--format", "csv")
    assert len(proc.stdout.splitlines()) == 4
