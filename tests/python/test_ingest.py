"""`qlake ingest` end to end: synthetic flat files with injected faults -> Parquet lake.

Every expectation is derived independently of qlake: the source CSV is read with pyarrow (all
columns as strings), the lines the synth manifest lists as faults are dropped, the rest is
typed with DuckDB, and the derived columns (date, session, OCC fields, big-move flags) are
computed in Python (NYSE hours from exchange_calendars). The lake is read back with DuckDB and with
pyarrow.dataset, as any user would read it.
"""

import collections
import datetime
import gzip
import json
import os
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

DATASETS = ["stocks_daily", "stocks_minute", "options_daily", "options_minute"]
# Every row-level fault kind of docs/synth.md, and the quarantine reason it must produce.
REASON = {
    "bad_timestamp": "bad_timestamp",
    "non_numeric": "non_numeric",
    "negative_volume": "negative_volume",
    "duplicate_rows": "duplicate",
    "nan_inf": "nan_inf",
    "wrong_day": "wrong_day",
    "ohlc_inconsistent": "ohlc_inconsistent",
    "bad_occ": "bad_occ",
}
# Mon 12-23, Tue 12-24 (early close 13:00), Wed 12-25 (Christmas, no files), Thu 12-26.
FROM, TO = "2024-12-23", "2024-12-26"
SESSIONS = ["2024-12-23", "2024-12-24", "2024-12-26"]
SCALE = "0.02"
CSV_COLUMNS = ["ticker", "volume", "open", "close", "high", "low", "window_start",
               "transactions"]
PREFIX = {
    "stocks_daily": "us_stocks_sip/day_aggs_v1",
    "stocks_minute": "us_stocks_sip/minute_aggs_v1",
    "options_daily": "us_options_opra/day_aggs_v1",
    "options_minute": "us_options_opra/minute_aggs_v1",
}
EXIT_SOME_DAYS_FAILED = 7
NEW_YORK = ZoneInfo("America/New_York")


def is_minute(dataset: str) -> bool:
    return dataset.endswith("_minute")


def is_options(dataset: str) -> bool:
    return dataset.startswith("options_")


def source_key(dataset: str, day: str) -> str:
    return f"{PREFIX[dataset]}/{day[:4]}/{day[5:7]}/{day}.csv.gz"


# --------------------------------------------------------------------------- running qlake


class Qlake:
    """Runs the qlake binary with an isolated HOME/XDG (like conftest's run_qlake), usable
    from module-scoped fixtures."""

    def __init__(self, binary: Path, home: Path):
        self.binary = binary
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
        self.env["HOME"] = str(home / "home")
        self.env["XDG_CONFIG_HOME"] = str(home / "xdg")
        self.cwd = home

    def __call__(self, *args, check=True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.binary), *map(str, args)], capture_output=True,
                              text=True, env=self.env, cwd=self.cwd, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"qlake {' '.join(map(str, args))} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def synth(self, out: Path, frm: str, to: str, *, datasets=DATASETS, faults=(),
              scale=SCALE):
        args = ["synth", "--out", out, "--from", frm, "--to", to, "--scale", scale,
                "--datasets", ",".join(datasets)]
        if faults:
            args += ["--faults", ",".join(faults)]
        return self(*args)

    def ingest(self, dataset: str, mirror: Path, lake: Path, *extra, frm=FROM, to=TO,
               check=True) -> subprocess.CompletedProcess:
        return self("ingest", "--dataset", dataset, "--from", frm, "--to", to, "--source",
                    mirror, "--lake", lake, *extra, check=check)

    def ingest_json(self, dataset, mirror, lake, *extra, **kw) -> dict:
        return json.loads(self.ingest(dataset, mirror, lake, "--json", *extra, **kw).stdout)


@pytest.fixture(scope="module")
def qlake(qlake_bin, tmp_path_factory) -> Qlake:
    return Qlake(qlake_bin, tmp_path_factory.mktemp("qlake-home"))


# ------------------------------------------------------------------- the source and manifest


class Manifest:
    def __init__(self, mirror: Path):
        self.data = json.loads((mirror / "_synth" / "manifest.json").read_text())

    def file(self, key: str) -> dict:
        return next(f for f in self.data["files"] if f["key"] == key)

    def fault_kinds(self, key: str) -> dict[int, str]:
        """Row-level fault lines of one file -> fault kind."""
        return {f["line"]: f["kind"] for f in self.data["faults"]
                if f["key"] == key and f["level"] == "row"}


def read_source(path: Path) -> pa.Table:
    """A flat file with every column as a non-null string, plus `line`: the 1-based line
    number in the decompressed file (the header is line 1, so data row i is line i + 2)."""
    t = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in CSV_COLUMNS}, strings_can_be_null=False))
    assert t.column_names == CSV_COLUMNS
    return t.append_column("line", pa.array(range(2, t.num_rows + 2), pa.int64()))


def source_lines(path: Path) -> list[str]:
    """Line n of the decompressed file is element n - 1."""
    return gzip.decompress(path.read_bytes()).decode().split("\n")


def parse_occ(ticker: str):
    """O:<root><YYMMDD><C|P><strike x 1000, 8 digits>, parsed from the right (roots can
    contain digits and the letters C/P). None if not a valid OCC symbol."""
    if not ticker.startswith("O:") or len(ticker) < 2 + 16:
        return None
    body = ticker[2:]
    root, yymmdd, kind, strike = body[:-15], body[-15:-9], body[-9], body[-8:]
    if not (root and root.isalnum() and root.isupper() and root[0].isalpha()
            and yymmdd.isdigit() and kind in "CP" and strike.isdigit() and len(root) <= 6):
        return None
    try:
        expiry = datetime.date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError:
        return None
    if int(strike) == 0:
        return None
    return root, expiry, kind, int(strike) / 1000


_calendar = None


def close_minute_et(day: str) -> int:
    """Minute of the New York day at which the regular session of `day` closes."""
    global _calendar
    if _calendar is None:
        xcals = pytest.importorskip("exchange_calendars")
        _calendar = xcals.get_calendar("XNYS", start="2024-01-01", end="2025-12-31")
    close = _calendar.session_close(day).tz_convert("America/New_York")
    return close.hour * 60 + close.minute


def expected_rows(dataset: str, day: str, src: pa.Table, with_flags=False) -> pa.Table:
    """The lake rows of one day from the source rows that must be kept (`src`, already
    filtered): typed, sorted by (ticker, window_start), with date/session/OCC fields.

    with_flags adds `flags` as far as one file determines it: bit 0 set iff the close moved
    more than 50 % from the ticker's previous bar in the file; null for a ticker's first bar
    (whether that one is compared with an earlier day is the ingest stage's policy)."""
    con = duckdb.connect()
    con.register("src", src)
    t = con.sql("""
        WITH typed AS (
          SELECT ticker,
                 CAST(volume AS UBIGINT) AS volume,
                 CAST(CAST(open AS DOUBLE) AS FLOAT) AS open,
                 CAST(CAST(close AS DOUBLE) AS FLOAT) AS close,
                 CAST(CAST(high AS DOUBLE) AS FLOAT) AS high,
                 CAST(CAST(low AS DOUBLE) AS FLOAT) AS low,
                 CAST(window_start AS BIGINT) AS window_start,
                 CAST(transactions AS UINTEGER) AS transactions,
                 CAST(close AS DOUBLE) AS close_d
          FROM src)
        SELECT * EXCLUDE (close_d, prev_close),
               CAST(CASE WHEN prev_close IS NULL THEN NULL
                         WHEN abs(close_d / prev_close - 1) > 0.5 THEN 1 ELSE 0 END
                    AS UTINYINT) AS flags
        FROM (SELECT *, lag(close_d) OVER (PARTITION BY ticker ORDER BY window_start)
                          AS prev_close FROM typed)
        ORDER BY ticker, window_start""").to_arrow_table()
    flags = t["flags"]
    t = t.drop_columns(["flags"])
    n = t.num_rows
    t = t.append_column("date", pa.array([datetime.date.fromisoformat(day)] * n, pa.date32()))
    if is_minute(dataset):
        close = close_minute_et(day)

        def session(ws: int) -> str:
            local = datetime.datetime.fromtimestamp(ws // 10**9, NEW_YORK)
            assert local.date().isoformat() == day and ws % 10**9 == 0
            minute = local.hour * 60 + local.minute
            return "pre" if minute < 9 * 60 + 30 else "regular" if minute < close else "post"

        names = {ws: session(ws) for ws in pc.unique(t["window_start"]).to_pylist()}
        t = t.append_column("session", pa.array(
            [names[ws] for ws in t["window_start"].to_pylist()], pa.string()))
    if is_options(dataset):
        occ = {tk: parse_occ(tk) for tk in pc.unique(t["ticker"]).to_pylist()}
        assert all(occ.values()), "a kept row has an invalid OCC ticker"
        parsed = [occ[tk] for tk in t["ticker"].to_pylist()]
        t = t.append_column("underlying", pa.array([p[0] for p in parsed], pa.string()))
        t = t.append_column("expiration", pa.array([p[1] for p in parsed], pa.date32()))
        t = t.append_column("option_type", pa.array([p[2] for p in parsed], pa.string()))
        t = t.append_column("strike", pa.array([p[3] for p in parsed], pa.float64()))
    return t.append_column("flags", flags) if with_flags else t


def expected_clean_rows(dataset: str, day: str, mirror: Path, manifest: Manifest,
                        with_flags=False) -> pa.Table:
    key = source_key(dataset, day)
    src = read_source(mirror / key)
    faults = pa.array(sorted(manifest.fault_kinds(key)), pa.int64())
    return expected_rows(dataset, day, src.filter(pc.invert(pc.is_in(src["line"], faults))),
                         with_flags)


# ----------------------------------------------------------------------------- the lake


def lake_columns(dataset: str) -> list[str]:
    cols = CSV_COLUMNS + ["date"]
    if is_minute(dataset):
        cols.append("session")
    if is_options(dataset):
        cols += ["underlying", "expiration", "option_type", "strike"]
    return cols + ["flags"]


def duckdb_day(lake: Path, dataset: str, day: str) -> pa.Table:
    cols = ", ".join("epoch_ns(window_start) AS window_start" if c == "window_start" else c
                     for c in lake_columns(dataset))
    return duckdb.sql(
        f"SELECT {cols} FROM read_parquet('{lake}/{dataset}/**/*.parquet', "
        f"hive_partitioning=true) WHERE date = DATE '{day}' "
        "ORDER BY ticker, window_start").to_arrow_table()


def normalize(t: pa.Table, dataset: str) -> pa.Table:
    """Dictionary columns as plain strings, window_start as epoch ns, lake column order,
    sorted by (ticker, window_start)."""
    cols = []
    for name in lake_columns(dataset):
        c = t[name]
        if pa.types.is_dictionary(c.type):
            c = c.cast(c.type.value_type)
        elif pa.types.is_timestamp(c.type):
            c = c.cast(pa.int64())
        cols.append(c)
    return pa.table(cols, names=lake_columns(dataset)).sort_by(
        [("ticker", "ascending"), ("window_start", "ascending")])


def pyarrow_day(lake: Path, dataset: str, day: str, partitioning="hive") -> pa.Table:
    dset = ds.dataset(lake / dataset, format="parquet", partitioning=partitioning)
    # Plain hive partitioning infers a `date=` directory (original options_minute) as text.
    if pa.types.is_date(dset.schema.field("date").type):
        value = pa.scalar(datetime.date.fromisoformat(day), pa.date32())
    else:
        value = pa.scalar(day)
    return normalize(dset.to_table(filter=pc.field("date") == value), dataset)


def assert_same_rows(expected: pa.Table, actual: pa.Table, what: str):
    """Same rows in the same order, in every column of `expected`."""
    assert set(expected.column_names) <= set(actual.column_names), what
    assert actual.num_rows == expected.num_rows, f"{what}: row count"
    for name in expected.column_names:
        e = expected[name].combine_chunks()
        a = actual[name].combine_chunks()
        if a.type != e.type:
            a = a.cast(e.type)
        if not a.equals(e):
            diff = pc.indices_nonzero(pc.not_equal(a, e))
            i = diff[0].as_py()
            raise AssertionError(
                f"{what}: column {name} differs in {len(diff)} rows; first at row {i}:\n"
                f"expected {expected.slice(i, 1).to_pylist()}\n"
                f"actual   {actual.slice(i, 1).to_pylist()}")


def commit_record(lake: Path, dataset: str, day: str) -> dict:
    return json.loads((lake / "_qlake" / dataset / "commits" / f"{day}.json").read_text())


def quarantine_path(lake: Path, dataset: str, day: str) -> Path:
    return lake / "_quarantine" / dataset / f"{day}.parquet"


def tree_bytes(root: Path, pattern="**/*") -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob(pattern))
            if p.is_file()}


def parquet_files(lake: Path) -> dict[str, bytes]:
    """Every data and quarantine file of the lake (nothing staged can match)."""
    return tree_bytes(lake, "**/*.parquet")


def without_commit_time(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("committed_at", "txn")}


def assert_no_leftovers(lake: Path):
    staged = [p for p in (lake / "_staging").rglob("*") if p.is_file()]
    assert staged == [], f"files left under _staging: {staged}"
    tmp = [p for p in lake.rglob("*") if ".tmp" in p.name]
    assert tmp == [], f"temp files left: {tmp}"


# ----------------------------------------------------------------- the faulty mirror + lake


@dataclass
class Faulty:
    mirror: Path
    lake: Path
    manifest: Manifest
    reports: dict  # dataset -> the --json report of its ingest


@pytest.fixture(scope="module")
def faulty(qlake, tmp_path_factory) -> Faulty:
    """All four datasets over FROM..TO with every row-level fault, ingested into one lake."""
    root = tmp_path_factory.mktemp("faulty")
    mirror, lake = root / "mirror", root / "lake"
    qlake.synth(mirror, FROM, TO, faults=REASON)
    reports = {d: qlake.ingest_json(d, mirror, lake) for d in DATASETS}
    return Faulty(mirror, lake, Manifest(mirror), reports)


def test_fixture_mirror_has_every_fault_kind(faulty):
    kinds = {f["kind"] for f in faulty.manifest.data["faults"]}
    assert kinds == set(REASON)
    for d in DATASETS:
        assert [f["date"] for f in faulty.manifest.data["files"] if f["dataset"] == d] == SESSIONS


# ------------------------------------------------------------------ 1. correctness oracle


@pytest.mark.parametrize("dataset", DATASETS)
def test_lake_rows_equal_the_csv_minus_the_fault_lines(faulty, dataset):
    for day in SESSIONS:
        expected = expected_clean_rows(dataset, day, faulty.mirror, faulty.manifest)
        assert expected.num_rows > 0
        assert_same_rows(expected, duckdb_day(faulty.lake, dataset, day),
                         f"{dataset} {day} via DuckDB")
        assert_same_rows(expected, pyarrow_day(faulty.lake, dataset, day),
                         f"{dataset} {day} via pyarrow.dataset")


def test_derived_columns_cover_every_case(faulty):
    """The oracle above is only as good as the cases the data exercises: sessions pre,
    regular and post on a normal and on an early-close day, bars between 13:00 and 16:00 on
    the early close (must be post), OCC roots with digits and with C/P letters."""
    t = duckdb.sql(f"""
        SELECT date, session, count(*) AS n,
               count(*) FILTER (WHERE hour(window_start AT TIME ZONE 'America/New_York')
                                BETWEEN 13 AND 15) AS n_13_to_16
        FROM read_parquet('{faulty.lake}/stocks_minute/**/*.parquet', hive_partitioning=true)
        GROUP BY ALL""").fetchall()
    by = {(str(d), s): (n, n13) for d, s, n, n13 in t}
    for day in ("2024-12-23", "2024-12-24"):
        assert {s for d, s in by if d == day} == {"pre", "regular", "post"}
    assert by[("2024-12-24", "post")][1] > 0  # 13:00-16:00 on the early close is post
    assert by[("2024-12-24", "regular")][1] == 0
    assert by[("2024-12-23", "regular")][1] > 0
    roots = {r for (r,) in duckdb.sql(
        f"SELECT DISTINCT underlying FROM read_parquet('{faulty.lake}/options_minute/**/*.parquet')"
    ).fetchall()}
    assert {"AAPL1", "PCG", "C", "BRKB", "SPY"} <= roots


@pytest.mark.parametrize("dataset", DATASETS)
def test_big_move_flags_and_their_count(faulty, dataset):
    checked = flagged = 0
    for day in SESSIONS:
        expected = expected_clean_rows(dataset, day, faulty.mirror, faulty.manifest,
                                       with_flags=True)
        actual = duckdb_day(faulty.lake, dataset, day)["flags"]
        assert set(pc.unique(actual).to_pylist()) <= {0, 1}
        determined = pc.is_valid(expected["flags"])
        assert_same_rows(expected.filter(determined).select(["ticker", "window_start", "flags"]),
                         duckdb_day(faulty.lake, dataset, day).filter(determined),
                         f"{dataset} {day} flags")
        n = pc.sum(actual).as_py() or 0
        assert n == commit_record(faulty.lake, dataset, day)["validation"]["flagged_big_move"]
        assert n == faulty.reports[dataset]["days"][SESSIONS.index(day)]["flagged"]
        checked += pc.sum(determined).as_py() or 0
        flagged += n
    if is_minute(dataset):
        assert checked > 0
    if dataset == "options_minute":
        assert flagged > 0, "nothing exercises the big-move flag"


@pytest.mark.parametrize("dataset", DATASETS)
def test_lake_schema_and_daily_layout(faulty, dataset):
    ws_tz = "America/New_York" if is_minute(dataset) else "UTC"
    expect = {
        "ticker": pa.dictionary(pa.int32(), pa.string()),
        "volume": pa.uint64(),
        "open": pa.float32(), "close": pa.float32(), "high": pa.float32(), "low": pa.float32(),
        "window_start": pa.timestamp("ns", ws_tz),
        "transactions": pa.uint32(),
        "date": pa.date32(),
    }
    if is_minute(dataset):
        expect["session"] = pa.dictionary(pa.int8(), pa.string())
    if is_options(dataset):
        expect |= {"underlying": pa.dictionary(pa.int32(), pa.string()),
                   "expiration": pa.date32(),
                   "option_type": pa.dictionary(pa.int8(), pa.string()),
                   "strike": pa.float64()}
    expect["flags"] = pa.uint8()
    files = sorted(p.relative_to(faulty.lake / dataset).as_posix()
                   for p in (faulty.lake / dataset).rglob("*.parquet"))
    assert files == [f"year=2024/month=12/{d}.parquet" for d in SESSIONS]
    for f in files:
        t = pq.read_table(faulty.lake / dataset / f)
        assert {n: t.schema.field(n).type for n in t.column_names} == expect
        day = f[-18:-8]
        meta = {k.decode(): v.decode()
                for k, v in pq.read_metadata(faulty.lake / dataset / f).metadata.items()}
        rec = commit_record(faulty.lake, dataset, day)
        assert meta["qlake.dataset"] == dataset and meta["qlake.date"] == day
        assert meta["qlake.source.key"] == source_key(dataset, day)
        assert int(meta["qlake.source.size"]) == rec["source"]["size"]
        assert {k: int(meta[f"qlake.rows.{k}"]) for k in rec["rows"]} == rec["rows"]
        assert json.loads(meta["qlake.validation"]) == rec["validation"]
        # Physically sorted by (ticker, window_start), no duplicate keys.
        keys = list(zip(t["ticker"].to_pylist(), t["window_start"].cast(pa.int64()).to_pylist()))
        assert all(a < b for a, b in zip(keys, keys[1:])), f"{f} is not sorted/unique"


# ------------------------------------------------------ 2. quarantine, records and report


@pytest.mark.parametrize("dataset", DATASETS)
def test_quarantine_is_exactly_the_fault_rows(faulty, dataset):
    for day in SESSIONS:
        key = source_key(dataset, day)
        kinds = faulty.manifest.fault_kinds(key)
        assert kinds, "the fixture should have faults in every file"
        q = pq.read_table(quarantine_path(faulty.lake, dataset, day))
        assert q.column_names == ["line", "reason", "detail", "raw"]
        got = dict(zip(q["line"].to_pylist(), q["reason"].to_pylist()))
        assert len(got) == q.num_rows, "a line is quarantined twice"
        assert got == {line: REASON[k] for line, k in kinds.items()}, f"{dataset} {day}"
        assert q["line"].to_pylist() == sorted(kinds)
        lines = source_lines(faulty.mirror / key)
        for line, raw in zip(q["line"].to_pylist(), q["raw"].to_pylist()):
            assert raw == lines[line - 1], f"{dataset} {day} line {line}"
        assert all(q["detail"].to_pylist())


@pytest.mark.parametrize("dataset", DATASETS)
def test_commit_record_and_json_report_reconcile(faulty, dataset):
    report = faulty.reports[dataset]
    assert report["dataset"] == dataset and report["failed"] == 0
    assert [d["date"] for d in report["days"]] == SESSIONS
    assert report["skipped"] == ["2024-12-25"]
    for day, rep in zip(SESSIONS, report["days"]):
        key = source_key(dataset, day)
        source = faulty.mirror / key
        data_rows = read_source(source).num_rows
        kinds = faulty.manifest.fault_kinds(key)
        reasons = collections.Counter(REASON[k] for k in kinds.values())

        rec = commit_record(faulty.lake, dataset, day)
        assert rec["format"] == "qlake.commit.v1"
        assert (rec["dataset"], rec["day"]) == (dataset, day)
        rows = rec["rows"]
        assert rows == {"read": data_rows, "written": data_rows - len(kinds),
                        "quarantined": len(kinds), "filtered": 0}
        assert rows["read"] == rows["written"] + rows["quarantined"] + rows["filtered"]
        assert rec["source"]["key"] == key
        assert rec["source"]["size"] == source.stat().st_size
        assert rec["validation"]["rejected"] == reasons

        assert [f["path"] for f in rec["files"]] == [f"year=2024/month=12/{day}.parquet"]
        for f in rec["files"]:
            data = (faulty.lake / dataset / f["path"]).read_bytes()
            assert (f["size"], f["crc32"], f["rows"]) == (
                len(data), format(zlib.crc32(data), "08x"), rows["written"])
        q = rec["quarantine"]
        assert q["path"] == f"_quarantine/{dataset}/{day}.parquet"
        data = (faulty.lake / q["path"]).read_bytes()
        assert (q["size"], q["crc32"], q["rows"]) == (
            len(data), format(zlib.crc32(data), "08x"), len(kinds))

        assert rep["ok"] is True and rep["error"] == "" and rep["key"] == key
        assert {k: rep[k] for k in rows} == rows
        assert rep["rejected"] == reasons
        assert rep["files"] == len(rec["files"])
        assert rep["source_bytes"] == source.stat().st_size
        assert rep["output_bytes"] == sum(f["size"] for f in rec["files"])

    wm = json.loads((faulty.lake / "_qlake" / dataset / "watermark.json").read_text())
    assert (wm["first_day"], wm["watermark"]) == (SESSIONS[0], SESSIONS[-1])
    assert_no_leftovers(faulty.lake)


# ------------------------------------------------------------- 3. file-level failures


def snapshot(lake: Path) -> dict[str, bytes]:
    """Bytes of every file of the lake except the best-effort history log."""
    return {k: v for k, v in tree_bytes(lake).items() if not k.endswith("history.jsonl")}


def test_file_level_failure_fails_that_day_only_and_keeps_its_previous_state(qlake, tmp_path):
    mirror, lake = tmp_path / "mirror", tmp_path / "lake"
    datasets = ["stocks_daily", "stocks_minute"]
    qlake.synth(mirror, FROM, TO, datasets=datasets)
    for d in datasets:
        qlake.ingest(d, mirror, lake)
    before = snapshot(lake)

    # Regenerate the first session only, with both file-level faults (they target it).
    first = SESSIONS[0]
    qlake.synth(mirror, first, first, datasets=datasets,
                faults=["truncated_gzip", "changed_header"])
    manifest = Manifest(mirror)
    assert manifest.file(source_key("stocks_minute", first))["truncated"] is True
    assert manifest.file(source_key("stocks_daily", first))["changed_header"] is True

    what_is_wrong = {"stocks_minute": ["truncated"], "stocks_daily": ["header", "otc"]}
    for d in datasets:
        proc = qlake.ingest(d, mirror, lake, check=False)
        assert proc.returncode == EXIT_SOME_DAYS_FAILED, proc.stderr
        key = source_key(d, first)
        failure = [line for line in proc.stderr.splitlines() if key in line]
        assert failure, f"stderr does not name {key}:\n{proc.stderr}"
        for word in what_is_wrong[d]:
            assert any(word in line for line in failure), (word, proc.stderr)
        report = qlake.ingest_json(d, mirror, lake, check=False)
        assert [x["ok"] for x in report["days"]] == [False, True, True]
        assert key in report["days"][0]["error"]
        assert report["days"][0]["read"] == 0

    after = snapshot(lake)
    assert after.keys() == before.keys()
    for path, old in before.items():
        if "/commits/" in path and first not in path:
            new_rec, old_rec = json.loads(after[path]), json.loads(old)
            assert new_rec["txn"] != old_rec["txn"], f"{path} was not re-committed"
            assert without_commit_time(new_rec) == without_commit_time(old_rec), path
        elif path.endswith("watermark.json") or path.endswith("watermark.json.bak"):
            assert {**json.loads(after[path]), "updated_at": None} == {
                **json.loads(old), "updated_at": None}
        else:  # data files of every day; the failed day's record and files
            assert after[path] == old, f"{path} changed"
    assert any(first in p for p in before if "/commits/" in p)
    assert_no_leftovers(lake)


def test_missing_source_file_fails_that_day_naming_the_key(qlake, tmp_path):
    mirror = tmp_path / "mirror"
    qlake.synth(mirror, FROM, TO, datasets=["stocks_daily"])
    gone = SESSIONS[1]
    key = source_key("stocks_daily", gone)

    # Into a lake that has the day: it keeps it.
    lake = tmp_path / "lake"
    qlake.ingest("stocks_daily", mirror, lake)
    before = snapshot(lake)
    (mirror / key).rename(tmp_path / "aside.csv.gz")
    proc = qlake.ingest("stocks_daily", mirror, lake, check=False)
    assert proc.returncode == EXIT_SOME_DAYS_FAILED
    assert any(key in line and "no file" in line for line in proc.stderr.splitlines()), proc.stderr
    after = snapshot(lake)
    for path in before:
        if gone in path:
            assert after[path] == before[path], path

    # Into a new lake: the day has no record, no data, and the watermark stops before it.
    fresh = tmp_path / "fresh"
    report = qlake.ingest_json("stocks_daily", mirror, fresh, check=False)
    assert [(d["date"], d["ok"]) for d in report["days"]] == [
        (SESSIONS[0], True), (gone, False), (SESSIONS[2], True)]
    assert key in report["days"][1]["error"]
    assert not (fresh / "_qlake/stocks_daily/commits" / f"{gone}.json").exists()
    assert not list(fresh.rglob(f"{gone}*.parquet"))
    wm = json.loads((fresh / "_qlake/stocks_daily/watermark.json").read_text())
    assert wm["watermark"] == SESSIONS[0]
    assert_no_leftovers(fresh)


# ------------------------------------------------------------------------ 4. idempotent


def test_reingest_is_byte_identical(qlake, faulty, tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(faulty.lake, lake)
    for d in DATASETS:
        qlake.ingest(d, faulty.mirror, lake)
    assert parquet_files(lake) == parquet_files(faulty.lake)
    for d in DATASETS:
        for day in SESSIONS:
            again, first = commit_record(lake, d, day), commit_record(faulty.lake, d, day)
            assert again["txn"] != first["txn"], "the second run did not commit"
            assert without_commit_time(again) == without_commit_time(first)
    assert_no_leftovers(lake)


# ------------------------------------------------------------------- 5. original layout

ORIGINAL_DAY = "2024-12-24"
DICT = pa.dictionary(pa.int32(), pa.string())
# Partition schemas that match the files' own columns where a partition key repeats one.
ORIGINAL_PARTITIONING = {
    "stocks_daily": "hive",
    "stocks_minute": "hive",
    "options_daily": ds.partitioning(
        pa.schema([("underlying", DICT), ("year", pa.int32()), ("month", pa.int32())]),
        flavor="hive", dictionaries="infer"),
    "options_minute": ds.partitioning(
        pa.schema([("underlying", DICT), ("date", pa.date32())]),
        flavor="hive", dictionaries="infer"),
}
# (directory key, file column it must agree with). Options files carry no `underlying`
# column (the partition key lives in the path only): the OCC root of `ticker` is compared.
PARTITION_KEY = {"stocks_minute": ("symbol", "ticker"), "options_daily": ("underlying", "ticker"),
                 "options_minute": ("underlying", "ticker")}


@pytest.fixture(scope="module")
def original(qlake, faulty, tmp_path_factory) -> Path:
    lake = tmp_path_factory.mktemp("original") / "lake"
    for d in DATASETS:
        qlake.ingest(d, faulty.mirror, lake, "--layout", "original", frm=ORIGINAL_DAY,
                     to=ORIGINAL_DAY)
    return lake


@pytest.mark.parametrize("dataset", DATASETS)
def test_original_layout_has_the_same_rows(original, faulty, dataset):
    expected = duckdb_day(faulty.lake, dataset, ORIGINAL_DAY)
    assert expected.num_rows > 0
    assert_same_rows(expected, duckdb_day(original, dataset, ORIGINAL_DAY),
                     f"{dataset} original layout via DuckDB")
    assert_same_rows(expected, pyarrow_day(original, dataset, ORIGINAL_DAY,
                                           ORIGINAL_PARTITIONING[dataset]),
                     f"{dataset} original layout via pyarrow.dataset")
    rec = commit_record(original, dataset, ORIGINAL_DAY)
    assert sum(f["rows"] for f in rec["files"]) == rec["rows"]["written"] == expected.num_rows
    assert_no_leftovers(original)


@pytest.mark.parametrize("dataset", ["stocks_minute", "options_daily", "options_minute"])
def test_original_layout_directory_names_decode_to_the_ticker(original, dataset):
    key, column = PARTITION_KEY[dataset]
    dset = ds.dataset(original / dataset, format="parquet",
                      partitioning=ORIGINAL_PARTITIONING[dataset])
    seen = set()
    for frag in dset.get_fragments():
        value = ds.get_partition_keys(frag.partition_expression)[key]
        in_file = pc.unique(frag.to_table(columns=[column])[column].cast(pa.string()))
        if is_options(dataset):
            assert "underlying" not in frag.physical_schema.names, frag.path
            in_file = pa.array(sorted({parse_occ(t)[0] for t in in_file.to_pylist()}))
        assert in_file.to_pylist() == [value], frag.path
        assert value not in seen, f"two files for {value}"
        seen.add(value)
        rel = Path(frag.path).relative_to(original / dataset).parts
        if dataset == "options_minute":
            assert rel[1:] == (f"date={ORIGINAL_DAY}", f"{ORIGINAL_DAY}.parquet")
        else:
            assert rel[1:] == ("year=2024", "month=12", f"{ORIGINAL_DAY}.parquet")
    dirs = [p.name for p in (original / dataset).iterdir()]
    assert len(dirs) == len(seen)
    assert len({d.lower() for d in dirs}) == len(dirs), "names collide on a case-insensitive FS"
    assert all(d.startswith(f"{key}=") for d in dirs)
    if dataset == "stocks_minute":
        assert {"BRK.B", "CON", "NUL", "JPMpC", "NA", "TRUE"} <= seen
        for raw in ("CON", "NUL", "BRK.B", "JPMpC"):
            assert not (original / dataset / f"symbol={raw}").exists()
        for escaped in ("%43ON", "%4EUL", "BRK%2EB", "JPM%70C"):
            assert (original / dataset / f"symbol={escaped}").is_dir()
    else:
        assert {"AAPL1", "BRKB", "PCG", "C"} <= seen


@pytest.mark.parametrize("dataset", ["options_daily", "options_minute"])
def test_original_layout_reads_with_plain_hive_partitioning(original, faulty, dataset):
    assert_same_rows(duckdb_day(faulty.lake, dataset, ORIGINAL_DAY),
                     pyarrow_day(original, dataset, ORIGINAL_DAY, "hive"), dataset)


# --------------------------------------------------------------------- 6. --symbols


@pytest.mark.parametrize("dataset,symbols", [
    ("stocks_minute", ["AAPL", "BRK.B", "CON", "NA", "JPMpC"]),
    ("options_daily", ["SPY", "AAPL1", "BRKB", "C"]),
])
def test_symbols_filter_counts_other_rows_as_filtered(qlake, faulty, tmp_path, dataset, symbols):
    lake = tmp_path / "lake"
    report = qlake.ingest_json(dataset, faulty.mirror, lake, "--symbols", ",".join(symbols))
    for day, rep in zip(SESSIONS, report["days"]):
        key = source_key(dataset, day)
        src = read_source(faulty.mirror / key)
        kinds = faulty.manifest.fault_kinds(key)

        def selected(ticker):
            if is_options(dataset):
                occ = parse_occ(ticker)
                return occ is not None and occ[0] in symbols
            return ticker in symbols

        written, quarantined, filtered = [], [], []
        for line, ticker in zip(src["line"].to_pylist(), src["ticker"].to_pylist()):
            if kinds.get(line) == "bad_occ":  # no underlying to filter on
                quarantined.append(line)
            elif not selected(ticker):
                filtered.append(line)
            elif line in kinds:
                quarantined.append(line)
            else:
                written.append(line)
        assert written and filtered
        rec = commit_record(lake, dataset, day)
        rows = {"read": src.num_rows, "written": len(written),
                "quarantined": len(quarantined), "filtered": len(filtered)}
        assert rec["rows"] == rows
        assert rows["read"] == rows["written"] + rows["quarantined"] + rows["filtered"]
        assert {k: rep[k] for k in rows} == rows
        if quarantined:
            q = pq.read_table(quarantine_path(lake, dataset, day))
            assert q["line"].to_pylist() == quarantined
        else:
            assert rec["quarantine"] is None
            assert not quarantine_path(lake, dataset, day).exists()
        expected = expected_rows(dataset, day, src.filter(
            pc.is_in(src["line"], pa.array(written, pa.int64()))))
        assert_same_rows(expected, duckdb_day(lake, dataset, day), f"{dataset} {day} --symbols")


# --------------------------------------------------------------- 7. reference reader


def test_reference_reader_writes_byte_identical_parquet(qlake, faulty, tmp_path):
    lake = tmp_path / "lake"
    for d in DATASETS:
        qlake.ingest(d, faulty.mirror, lake, "--reference-reader")
    ref, fast = parquet_files(lake), parquet_files(faulty.lake)
    assert ref.keys() == fast.keys()
    differ = [p for p in ref if ref[p] != fast[p]]
    assert differ == []
