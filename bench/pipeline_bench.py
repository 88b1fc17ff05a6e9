#!/usr/bin/env python3
"""Pipeline benchmark: one realistic day of all four aggregate datasets through `qlake sync`.

Writes one synthetic day (`qlake synth --scale 1`: ~1.8 M stock-minute rows, ~1.9 M
option-minute rows, plus both daily files) into a mirror, a project file pointing at it,
and times:

  a. `qlake sync` into a fresh lake: every stage this build wires (ingest, features; fetch
     and Qlib export once they land: docs/pipeline.md), one run report
  b. `qlake sync` again right after (nothing to do: the idempotence cost)
  c. the peer in the same run: DuckDB `COPY (read_csv(file)) TO parquet` (zstd) of the same
     four files, one after the other: the bare conversion, without validation, sorting,
     quarantine, features or commit protocol

and prints total wall seconds, seconds per stage and dataset (from the run report), rows,
peak RSS (the run report's VmHWM and /usr/bin/time's max RSS), the ratio to DuckDB and the
DESIGN.md target (< 60 s on 2 cores for the daily run). The source is a local mirror: the
fetch stage (local S3 server) is not wired yet. Not a test: a missed target is reported.

  .venv/bin/python bench/pipeline_bench.py [--scale 1] [--date 2024-01-17] [--runs 1]
                                           [--jobs 2] [--keep DIR] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["stocks_daily", "stocks_minute", "options_daily", "options_minute"]
KEYS = {
    "stocks_minute": "us_stocks_sip/minute_aggs_v1",
    "stocks_daily": "us_stocks_sip/day_aggs_v1",
    "options_minute": "us_options_opra/minute_aggs_v1",
    "options_daily": "us_options_opra/day_aggs_v1",
}


def timed(cmd, cwd=None, env=None):
    """(seconds, max RSS bytes or 0, stdout)."""
    gnu = shutil.which("time") and Path("/usr/bin/time").exists()
    full = (["/usr/bin/time", "-f", "MAXRSS %M"] if gnu else []) + [str(c) for c in cmd]
    t0 = time.monotonic()
    p = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stderr[-3000:]}")
    rss = 0
    for line in p.stderr.splitlines():
        if line.startswith("MAXRSS "):
            rss = int(line.split()[1]) * 1024
    return dt, rss, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qlake", default=str(REPO / "build" / "qlake"))
    ap.add_argument("--scale", default="1")
    ap.add_argument("--date", default="2024-01-17")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="days/datasets in flight (sync --jobs)")
    ap.add_argument("--keep", help="keep the mirror and lakes here")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    import duckdb  # the project's venv has it

    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="qlake-pipeline-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    mirror = root / "mirror"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLAKE_")}
    if not mirror.exists():
        t0 = time.monotonic()
        subprocess.run([a.qlake, "synth", "-q", "--out", mirror, "--from", a.date, "--to", a.date,
                        "--scale", a.scale, "--datasets", ",".join(DATASETS)], check=True, env=env)
        print(f"synth --scale {a.scale} {a.date}: {time.monotonic() - t0:.1f}s")
    files = {d: mirror / KEYS[d] / a.date[:4] / a.date[5:7] / f"{a.date}.csv.gz" for d in DATASETS}
    gz_mb = sum(f.stat().st_size for f in files.values()) / 1e6
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores; "
          f"{gz_mb:.1f} MB gz in 4 files")

    results = {"sync": [], "noop": [], "duckdb": []}
    last_report = None
    for run in range(a.runs):
        proj = root / f"proj{run}"
        shutil.rmtree(proj, ignore_errors=True)
        proj.mkdir()
        (proj / "qlake.yaml").write_text(
            f"source: {mirror}\nlake: lake\ndatasets: [{', '.join(DATASETS)}]\n")
        dt, rss, out = timed([a.qlake, "sync", "--json", "--jobs", a.jobs], cwd=proj, env=env)
        rep = json.loads(out)
        assert rep["status"] == "ok" and rep["committed_days"] == 4, rep["status"]
        results["sync"].append((dt, rss, rep["peak_rss_bytes"]))
        last_report = rep
        dt2, rss2, out2 = timed([a.qlake, "sync", "--json"], cwd=proj, env=env)
        assert json.loads(out2)["status"] == "nothing_to_do"
        results["noop"].append((dt2, rss2, 0))
        out_dir = root / f"duck{run}"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir()
        t0 = time.monotonic()
        con = duckdb.connect()
        for d, f in files.items():
            con.execute(f"COPY (SELECT * FROM read_csv('{f}')) TO '{out_dir}/{d}.parquet' "
                        "(FORMAT parquet, COMPRESSION zstd)")
        con.close()
        results["duckdb"].append((time.monotonic() - t0, 0, 0))

    med = {k: statistics.median(x[0] for x in v) for k, v in results.items()}
    peak = max(x[2] for x in results["sync"])
    peak_time = max(x[1] for x in results["sync"])
    stage = {}
    rows = {}
    for ds in last_report["datasets"]:
        for day in ds["days"]:
            for s in day["stages"]:
                stage[(ds["dataset"], s["stage"])] = stage.get((ds["dataset"], s["stage"]), 0) + s["seconds"]
                if s["stage"] == "ingest":
                    rows[ds["dataset"]] = s["rows_read"]
        for s in ds["stages"]:
            stage[(ds["dataset"], s["stage"])] = stage.get((ds["dataset"], s["stage"]), 0) + s["seconds"]
    print()
    print(f"{'dataset':<16}{'rows':>12}  " + "  ".join(f"{s:>9}" for s in ("ingest", "features")))
    for d in DATASETS:
        print(f"{d:<16}{rows.get(d, 0):>12,}  " +
              "  ".join(f"{stage.get((d, s), 0):>8.2f}s" for s in ("ingest", "features")))
    per_stage = {}
    for (d, s), v in stage.items():
        per_stage[s] = per_stage.get(s, 0) + v
    print("stage totals (sum over datasets; with --jobs > 1 they overlap): " +
          ", ".join(f"{s} {v:.2f}s" for s, v in sorted(per_stage.items())))
    print()
    print(f"qlake sync, 4 datasets, 1 day:  {med['sync']:.2f}s wall (median of {a.runs}), "
          f"peak RSS {peak / 2**20:.0f} MiB (run report) / {peak_time / 2**20:.0f} MiB (time)")
    print(f"qlake sync again (nothing to do): {med['noop']:.2f}s")
    print(f"DuckDB COPY read_csv -> parquet of the same 4 files: {med['duckdb']:.2f}s; "
          f"qlake sync / DuckDB = {med['sync'] / med['duckdb']:.2f}x "
          f"(qlake also validates, sorts, quarantines, computes features, commits)")
    target = 60.0
    print(f"target < {target:.0f}s on 2 cores: {'met' if med['sync'] < target else 'MISSED'} "
          f"({med['sync']:.1f}s); stages wired: {', '.join(last_report['stages'])}; "
          f"missing: {'; '.join(last_report['stages_missing']) or 'none'}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({
            "sync_seconds": med["sync"], "noop_seconds": med["noop"],
            "duckdb_seconds": med["duckdb"], "peak_rss_bytes": peak,
            "stage_seconds": {f"{d}/{s}": v for (d, s), v in stage.items()},
            "rows": rows, "stages": last_report["stages"]}, indent=2))
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
