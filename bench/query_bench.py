#!/usr/bin/env python3
"""Query benchmark: qlake (Python module, Arrow C stream) against DuckDB read_parquet over the
same lake, in the same run.

Cases (DESIGN.md section 7 / issue 9):

  A. one symbol x one month of minute bars   (stocks_minute, AAPL, every column)
  B. ten symbols x one year of daily bars    (stocks_daily, 10 tickers, every column)

each measured
  * cold: the first read in a new process (interpreter start and imports excluded; the OS
    page cache is NOT dropped: that needs root and would hurt the other users of a shared
    machine), --cold-runs processes per engine;
  * warm: the same read repeated --warm-runs times in one process.

DuckDB reads `read_parquet('<lake>/<dataset>/**/*.parquet', hive_partitioning = true)` with
the same symbol and date filters and returns an Arrow table (to_arrow_table), so both
sides hand the caller the same thing. For qlake it reports bytes read from storage (cold)
and the column-chunk cache hit rate (warm).

  .venv/bin/python bench/query_bench.py [--scale 0.1] [--month 2025-01] [--year 2024]
        [--keep DIR] [--cold-runs 5] [--warm-runs 50] [--json-out FILE]

Needs build/qlake and the module at build/python (cmake --build build). Not a test: it
reports missed targets, it never fails on them.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QLAKE = REPO / "build" / "qlake"
PYPATH = REPO / "build" / "python"
TEN = ["AAPL", "MSFT", "NVDA", "TSLA", "SPY", "QQQ", "AMZN", "META", "GOOGL", "JPM"]


def sh(*args, **kw):
    t = time.perf_counter()
    subprocess.run([str(a) for a in args], check=True, **kw)
    return time.perf_counter() - t


def build_lake(work: Path, scale: str, month: str, year: str) -> Path:
    mirror, lake = work / "mirror", work / "lake"
    stamp = work / f"done-{scale}-{month}-{year}"
    if stamp.exists():
        return lake
    y, m = map(int, month.split("-"))
    m_from, m_to = f"{month}-01", f"{month}-{calendar.monthrange(y, m)[1]:02d}"
    y_from, y_to = f"{year}-01-01", f"{year}-12-31"
    t = sh(QLAKE, "-q", "synth", "--out", mirror, "--from", m_from, "--to", m_to, "--scale",
           scale, "--datasets", "stocks_minute")
    print(f"synth stocks_minute {month} scale {scale}: {t:.1f}s", flush=True)
    t = sh(QLAKE, "-q", "synth", "--out", mirror, "--from", y_from, "--to", y_to, "--scale",
           scale, "--datasets", "stocks_daily")
    print(f"synth stocks_daily {year} scale {scale}: {t:.1f}s", flush=True)
    for ds, a, b in (("stocks_minute", m_from, m_to), ("stocks_daily", y_from, y_to)):
        t = sh(QLAKE, "-q", "ingest", "--dataset", ds, "--from", a, "--to", b, "--source",
               mirror, "--lake", lake)
        print(f"ingest {ds}: {t:.1f}s", flush=True)
    stamp.touch()
    return lake


# The child programs time only the query call (after imports and connection set-up).
QLAKE_CHILD = r"""
import json, sys, time
sys.path.insert(0, {pypath!r})
import qlake
args = json.loads({args!r})
lake = qlake.Lake(args["lake"])
t = time.perf_counter()
tab = lake.read(args["dataset"], args["symbols"], args["from"], args["to"])
dt = time.perf_counter() - t
times = []
for _ in range(args["warm"]):
    t = time.perf_counter()
    tab2 = lake.read(args["dataset"], args["symbols"], args["from"], args["to"])
    times.append(time.perf_counter() - t)
    assert tab2.num_rows == tab.num_rows
first = dict(lake.last_stats)
print(json.dumps(dict(cold=dt, warm=times, rows=tab.num_rows, cold_stats=STATS, warm_stats=first,
                      cache=qlake.cache_stats())))
"""

DUCK_CHILD = r"""
import json, time
import duckdb
args = json.loads({args!r})
con = duckdb.connect()
syms = ", ".join(repr(s) for s in args["symbols"])
sql = (f"SELECT * FROM read_parquet('{{args['lake']}}/{{args['dataset']}}/**/*.parquet', "
       f"hive_partitioning = true) WHERE ticker IN ({{syms}}) "
       f"AND date BETWEEN DATE '{{args['from']}}' AND DATE '{{args['to']}}' "
       f"ORDER BY ticker, window_start")
t = time.perf_counter()
tab = con.execute(sql).to_arrow_table()
dt = time.perf_counter() - t
times = []
for _ in range(args["warm"]):
    t = time.perf_counter()
    tab2 = con.execute(sql).to_arrow_table()
    times.append(time.perf_counter() - t)
    assert tab2.num_rows == tab.num_rows
print(json.dumps(dict(cold=dt, warm=times, rows=tab.num_rows)))
"""


def child(engine: str, args: dict) -> dict:
    if engine == "qlake":
        code = QLAKE_CHILD.format(pypath=str(PYPATH), args=json.dumps(args))
        # The cold read's statistics: captured right after the first read.
        code = code.replace("dt = time.perf_counter() - t\n",
                            "dt = time.perf_counter() - t\nSTATS = dict(lake.last_stats)\n", 1)
    else:
        code = DUCK_CHILD.format(args=json.dumps(args))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="0.1")
    ap.add_argument("--month", default="2025-01")
    ap.add_argument("--year", default="2024")
    ap.add_argument("--keep", default="/tmp/qlake_query_bench")
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--warm-runs", type=int, default=50)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    work = Path(a.keep)
    work.mkdir(parents=True, exist_ok=True)
    lake = build_lake(work, a.scale, a.month, a.year)
    y, m = map(int, a.month.split("-"))
    cases = {
        "A: 1 symbol x 1 month, minute": dict(
            lake=str(lake), dataset="stocks_minute", symbols=["AAPL"],
            **{"from": f"{a.month}-01", "to": f"{a.month}-{calendar.monthrange(y, m)[1]:02d}"}),
        "B: 10 symbols x 1 year, daily": dict(
            lake=str(lake), dataset="stocks_daily", symbols=TEN,
            **{"from": f"{a.year}-01-01", "to": f"{a.year}-12-31"}),
    }
    results = {}
    for name, args in cases.items():
        res = {"qlake": {"cold": [], "warm": []}, "duckdb": {"cold": [], "warm": []}}
        for i in range(a.cold_runs):
            for engine in ("qlake", "duckdb"):  # interleaved: load spreads over both
                r = child(engine, dict(args, warm=a.warm_runs if i == 0 else 0))
                res[engine]["cold"].append(r["cold"])
                res[engine]["warm"] += r["warm"]
                res[engine]["rows"] = r["rows"]
                if engine == "qlake" and i == 0:
                    res["qlake"]["cold_stats"] = r["cold_stats"]
                    res["qlake"]["warm_stats"] = r["warm_stats"]
                    res["qlake"]["cache"] = r["cache"]
        assert res["qlake"]["rows"] == res["duckdb"]["rows"], res
        results[name] = res

    print(f"\nqlake query benchmark: scale {a.scale}, month {a.month}, year {a.year}, "
          f"{a.cold_runs} cold processes, {a.warm_runs} warm reads; lake {lake}")
    print(f"{'case':34} {'engine':7} {'rows':>7} {'cold p50':>10} {'cold p95':>10} "
          f"{'warm p50':>10} {'warm p95':>10}")
    for name, res in results.items():
        for engine in ("qlake", "duckdb"):
            r = res[engine]
            print(f"{name:34} {engine:7} {r['rows']:>7} {pct(r['cold'], 50)*1e3:>8.2f}ms "
                  f"{pct(r['cold'], 95)*1e3:>8.2f}ms {pct(r['warm'], 50)*1e3:>8.2f}ms "
                  f"{pct(r['warm'], 95)*1e3:>8.2f}ms")
        q, d = res["qlake"], res["duckdb"]
        cs, cache = q["cold_stats"], q["cache"]
        print(f"{'':34} ratio DuckDB/qlake: cold {pct(d['cold'], 50)/pct(q['cold'], 50):.1f}x, "
              f"warm {pct(d['warm'], 50)/pct(q['warm'], 50):.1f}x")
        print(f"{'':34} qlake cold read: {cs['bytes_read']/1e6:.2f} MB from storage, "
              f"{cs['files']} files, {cs['row_groups']} row groups "
              f"({cs['row_groups_pruned']} pruned), {cs['rows_scanned']} rows scanned; warm "
              f"cache hit rate {cache['hit_rate']:.3f} "
              f"({cache['hits']} hits, {cache['misses']} misses, {cache['bytes']/1e6:.1f} MB held)")
    target = pct(results["A: 1 symbol x 1 month, minute"]["qlake"]["warm"], 50) * 1e3
    print(f"\ntarget A warm p50 < 20 ms: {target:.2f} ms -> {'met' if target < 20 else 'MISSED'}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
