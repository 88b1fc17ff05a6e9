#!/usr/bin/env python3
"""Features benchmark: `qlake features` against the same computation in DuckDB, in one run.

Two workloads on a lake built from synthetic flat files (`qlake synth` + `qlake ingest`):

  minute  one stocks-minute day (scale 1, ~1.8 M bars): minute_return, price_velocity (k = 5,
          time-aware), alpha_minute (liquid = day dollar volume >= $1M)
  daily   one year of stocks daily (scale 1, ~11 k symbols x ~252 sessions): daily_return,
          intraday_return, log_return, alpha_daily, price_range, vwap (minute vwap where the
          minute lake has the day, else the typical price), relative_volume (previous 20
          sessions, >= 10 with a bar)

Both sides get the same threads (--threads: DuckDB's `threads`, qlake's --parallel, which
splits the days into contiguous chunks). Each side reads the lake's Parquet, computes the features and writes Parquet (qlake: one
committed file per day in features/<set>; DuckDB: one COPY ... TO file, zstd). DuckDB uses
window functions over a sessions table (previous *session*, not previous row, so gaps are
handled the same way). Every case runs in its own process under /usr/bin/time (wall seconds
-- for DuckDB its query time, start-up excluded --, CPU seconds, peak RSS); medians of --runs runs, cases interleaved. The two outputs are compared (row count
and non-NaN counts per feature) so the ratio is for the same work.

  .venv/bin/python bench/features_bench.py [--scale 1] [--minute-date 2024-03-13]
                                           [--year 2024] [--runs 3] [--keep DIR]

Not a test: it reports, it never fails on a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GNU_TIME = "/usr/bin/time"

DUCK_SCRIPT = r"""
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET threads TO " + sys.argv[2])
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute(sys.argv[1])
print(time.perf_counter() - t)
"""

MINUTE_SQL = """
COPY (
  WITH m AS (
    SELECT ticker, window_start, epoch_ns(window_start) AS ws, close::DOUBLE AS close,
           volume::DOUBLE AS volume
    FROM read_parquet('{day_file}')),
  w AS (
    SELECT *,
      LAG(close) OVER t AS prev_close,
      LAG(close, {k}) OVER t AS lag_close,
      LAG(ws, {k}) OVER t AS lag_ws,
      SUM(close * volume) OVER (PARTITION BY ticker) AS dollars
    FROM m WINDOW t AS (PARTITION BY ticker ORDER BY ws)),
  r AS (
    SELECT *, ln(close / prev_close) AS lr FROM w),
  mk AS (
    SELECT ws, AVG(lr) AS market FROM r WHERE dollars >= {liquid} AND lr IS NOT NULL
    GROUP BY ws)
  SELECT r.ticker, r.window_start, close / prev_close - 1 AS minute_return,
         (close - lag_close) / ((r.ws - lag_ws) / 60e9) AS price_velocity,
         lr - market AS alpha_minute
  FROM r LEFT JOIN mk USING (ws)
  ORDER BY ticker, window_start
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
"""

DAILY_SQL = """
COPY (
  WITH sessions AS (
    SELECT d::DATE AS date, row_number() OVER (ORDER BY d) AS s
    FROM (SELECT unnest({sessions}) AS d)),
  d AS (
    SELECT ticker, window_start, date, open::DOUBLE AS open, high::DOUBLE AS high,
           low::DOUBLE AS low, close::DOUBLE AS close, volume::DOUBLE AS volume
    FROM read_parquet('{lake}/stocks_daily/**/*.parquet', hive_partitioning = false)),
  ds AS (SELECT d.*, s FROM d JOIN sessions USING (date)),
  w AS (
    SELECT *,
      -- previous session's close: only if the symbol had a bar exactly one session back
      CASE WHEN LAG(s) OVER t = s - 1 THEN LAG(close) OVER t END AS prev_close,
      AVG(volume) OVER r20 AS vol_mean,
      COUNT(volume) OVER r20 AS vol_n
    FROM ds
    WINDOW t AS (PARTITION BY ticker ORDER BY s),
           r20 AS (PARTITION BY ticker ORDER BY s
                   RANGE BETWEEN {window} PRECEDING AND 1 PRECEDING)),
  lr AS (SELECT *, ln(close / prev_close) AS log_return FROM w),
  mk AS (
    SELECT date, AVG(log_return) AS market FROM lr
    WHERE close * volume >= {liquid} AND log_return IS NOT NULL GROUP BY date),
  mv AS (
    SELECT ticker, date, SUM((high + low + close) / 3 * volume) / SUM(volume) AS mvwap
    FROM (SELECT ticker, date, high::DOUBLE AS high, low::DOUBLE AS low,
                 close::DOUBLE AS close, volume::DOUBLE AS volume
          FROM read_parquet('{lake}/stocks_minute/**/*.parquet', hive_partitioning = false))
    GROUP BY ticker, date)
  SELECT lr.ticker, lr.window_start, lr.date,
         close / prev_close - 1 AS daily_return,
         close / open - 1 AS intraday_return,
         log_return,
         log_return - market AS alpha_daily,
         (high - low) / close AS price_range,
         coalesce(mvwap, (high + low + close) / 3) AS vwap,
         CASE WHEN vol_n >= {min_periods} THEN volume / vol_mean END AS relative_volume
  FROM lr LEFT JOIN mk USING (date) LEFT JOIN mv USING (ticker, date)
  ORDER BY date, ticker
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
"""


def sh(args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True,
                          **kw)


def timed(args) -> tuple[float, int, float, float]:
    """(seconds, peak RSS bytes, CPU seconds user + sys, process wall seconds) of one
    process. Seconds: the query time a DuckDB script prints (its Python and DuckDB start-up,
    ~0.3 s idle and up to 2 s on a loaded machine, excluded: in DuckDB's favour), else the
    process wall time."""
    p = subprocess.run([GNU_TIME, "-f", "QLAKE_TIME %e %M %U %S", *map(str, args)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{p.stdout}\n{p.stderr[-3000:]}")
    line = [x for x in p.stderr.splitlines() if x.startswith("QLAKE_TIME")][-1]
    _, wall, kb, user, system = line.split()
    seconds = float(p.stdout.split()[-1]) if args[0] == sys.executable else float(wall)
    return seconds, int(kb) * 1024, float(user) + float(system), float(wall)


def parquet_stats(path: Path, columns) -> dict:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=columns)
    out = {"rows": t.num_rows}
    for c in columns:
        col = pc.cast(t.column(c), "float64")
        out[c] = t.num_rows - col.null_count - pc.sum(pc.is_nan(col).cast("int64")).as_py()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qlake", default=str(REPO / "build" / "qlake"))
    ap.add_argument("--scale", default="1")
    ap.add_argument("--minute-date", default="2024-03-13")
    ap.add_argument("--year", default="2024")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="threads of both: DuckDB's threads, qlake's --parallel")
    ap.add_argument("--keep", help="mirror + lake folder to reuse between runs")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    q = a.qlake
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="qlake_featbench_"))
    work.mkdir(parents=True, exist_ok=True)
    mirror, lake = work / "mirror", work / "lake"
    frm, to = f"{a.year}-01-01", f"{a.year}-12-31"
    jobs = str(os.cpu_count() or 1)

    stamp = work / f"ready-{a.scale}-{a.year}-{a.minute_date}"
    if not stamp.exists():
        shutil.rmtree(lake, ignore_errors=True)
        print(f"synth + ingest into {work} (once; --keep reuses it)", file=sys.stderr)
        sh([q, "synth", "--out", mirror, "--from", frm, "--to", to, "--scale", a.scale,
            "--datasets", "stocks_daily", "--jobs", jobs])
        sh([q, "synth", "--out", mirror, "--from", a.minute_date, "--to", a.minute_date,
            "--scale", a.scale, "--datasets", "stocks_minute", "--jobs", jobs])
        sh([q, "ingest", "--dataset", "stocks_daily", "--from", frm, "--to", to, "--source",
            mirror, "--lake", lake, "-q"])
        sh([q, "ingest", "--dataset", "stocks_minute", "--date", a.minute_date, "--source",
            mirror, "--lake", lake, "-q"])
        stamp.touch()

    cal = json.loads(sh([q, "calendar", "--from", frm, "--to", to, "--json"]).stdout)
    sessions = [c["date"] for c in cal if c["trading"]]
    y, m = a.minute_date[:4], a.minute_date[5:7]
    minute_file = lake / f"stocks_minute/year={y}/month={m}/{a.minute_date}.parquet"
    minute_rows = parquet_stats(minute_file, [])["rows"]
    import pyarrow.parquet as pq
    daily_rows = pq.read_table(lake / "stocks_daily", columns=["close"]).num_rows
    duck_out = work / "duck_out.parquet"

    cases = {
        "minute/qlake": [q, "features", "--dataset", "stocks_minute", "--date", a.minute_date,
                         "--lake", lake, "--force", "-q", "--parallel", a.threads],
        "minute/duckdb": [sys.executable, "-c", DUCK_SCRIPT,
                          MINUTE_SQL.format(day_file=minute_file, k=5, liquid=1e6,
                                            out=duck_out), a.threads],
        "daily/qlake": [q, "features", "--dataset", "stocks_daily", "--from", frm, "--to", to,
                        "--lake", lake, "--force", "--no-dependents", "-q", "--parallel",
                        a.threads],
        "daily/duckdb": [sys.executable, "-c", DUCK_SCRIPT,
                         DAILY_SQL.format(sessions=sessions, lake=lake, window=20,
                                          min_periods=10, liquid=1e6, out=duck_out),
                         a.threads],
    }
    rows = {"minute": minute_rows, "daily": daily_rows}
    results = {k: [] for k in cases}
    for _ in range(a.runs):
        for name, args in cases.items():
            results[name].append(timed(args))

    # Same work: compare the outputs' row and non-NaN counts.
    checks = {}
    sh(cases["minute/qlake"])
    sh(cases["minute/duckdb"])
    mcols = ["minute_return", "price_velocity", "alpha_minute"]
    checks["minute"] = (parquet_stats(
        lake / f"features/stocks_minute/year={y}/month={m}/{a.minute_date}.parquet", mcols),
        parquet_stats(duck_out, mcols))
    sh(cases["daily/duckdb"])
    dcols = ["daily_return", "intraday_return", "log_return", "alpha_daily", "price_range",
             "vwap", "relative_volume"]
    checks["daily"] = (parquet_stats(lake / "features" / "stocks_daily", dcols),
                       parquet_stats(duck_out, dcols))

    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "scale": a.scale, "minute_date": a.minute_date, "year": a.year, "runs": a.runs,
              "duckdb_threads": a.threads, "cases": {}, "checks": checks}
    print(f"{'case':<15} {'rows':>10} {'median s':>9} {'rows/s':>12} {'CPU s':>7} "
          f"{'peak RSS MB':>12}")
    for name, rs in results.items():
        wall = statistics.median(r[0] for r in rs)
        rss = max(r[1] for r in rs)
        cpu = statistics.median(r[2] for r in rs)
        n = rows[name.split("/")[0]]
        report["cases"][name] = {"rows": n, "seconds": wall, "rows_per_s": n / wall,
                                 "cpu_seconds": cpu, "peak_rss": rss,
                                 "all_seconds": [r[0] for r in rs],
                                 "process_seconds": [r[3] for r in rs]}
        print(f"{name:<15} {n:>10} {wall:>9.3f} {n / wall:>12,.0f} {cpu:>7.2f} "
              f"{rss / 1e6:>12.1f}")
    for w in ("minute", "daily"):
        qk, dk = report["cases"][f"{w}/qlake"], report["cases"][f"{w}/duckdb"]
        print(f"{w}: DuckDB / qlake wall time = {dk['seconds'] / qk['seconds']:.2f}x, "
              f"CPU time = {dk['cpu_seconds'] / qk['cpu_seconds']:.2f}x, "
              f"peak RSS qlake / DuckDB = {qk['peak_rss'] / dk['peak_rss']:.2f}")
        mine, theirs = checks[w]
        same = mine == theirs
        print(f"{w}: outputs agree on rows and non-NaN counts: {same}"
              + ("" if same else f"\n  qlake  {mine}\n  duckdb {theirs}"))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(report, indent=2))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
