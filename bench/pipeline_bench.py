#!/usr/bin/env python3
"""Pipeline benchmark (issue 7): one realistic day of all four aggregate datasets from a local
S3 server through `qlake sync` to the Qlib stores.

Writes one synthetic day (`qlake synth --scale 1`: ~1.7 M stock-minute rows, ~1.7 M
option-minute rows, plus both daily files; 41 MB of csv.gz), uploads it to a local S3 server (moto's server
mode, the one the tests use: a Python process, so it bounds every S3 number), and times, in
one run, on fresh lakes:

  mirror    `qlake sync` with `source: MIRROR` (local folder; no S3)
  s3        `qlake sync` with `source: s3://flatfiles` (ingest streams each object)
  s3+cache  `qlake sync` with `source: s3://flatfiles` and `cache:` (fetch stage downloads
            each object into the cache, ingest reads it)
  noop      `qlake sync` again on the s3+cache project (nothing to do)
  duckdb    the peer: DuckDB `COPY (read_csv(file)) TO parquet` (zstd) of the same four files
            from the mirror, one after the other: the bare conversion, without validation,
            sorting, quarantine, features, Qlib or commit protocol

Every sync runs every stage the build wires: fetch (s3+cache), ingest, features, and the Qlib
export into two stores (day from stocks_daily, 1min from stocks_minute) when this build has
the qlib stage (otherwise the run report lists it as missing and this script says so). It
prints wall seconds, per-stage seconds per dataset from the run report, rows, peak RSS (the
run report's VmHWM and /usr/bin/time's max RSS), the ratio to DuckDB and the target
(< 60 s on 2 cores). Not a test: a missed target is reported.

  .venv/bin/python bench/pipeline_bench.py [--scale 1] [--date 2024-01-17] [--runs 1]
      [--jobs 2] [--cases mirror,s3,s3+cache,noop,duckdb] [--no-qlib] [--keep DIR]
      [--json-out FILE]
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
sys.path.insert(0, str(REPO / "tests" / "python"))
from s3util import BUCKET, MotoS3, qlake_s3_env  # noqa: E402

DATASETS = ["stocks_daily", "stocks_minute", "options_daily", "options_minute"]
KEYS = {
    "stocks_minute": "us_stocks_sip/minute_aggs_v1",
    "stocks_daily": "us_stocks_sip/day_aggs_v1",
    "options_minute": "us_options_opra/minute_aggs_v1",
    "options_daily": "us_options_opra/day_aggs_v1",
}
ALL_CASES = ["mirror", "s3", "s3+cache", "noop", "duckdb"]
STAGES = ["fetch", "ingest", "features", "qlib"]


def timed(cmd, cwd=None, env=None):
    """(seconds, max RSS bytes or 0, stdout)."""
    gnu = Path("/usr/bin/time").exists()
    full = (["/usr/bin/time", "-f", "MAXRSS %M"] if gnu else []) + [str(c) for c in cmd]
    t0 = time.monotonic()
    p = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stdout[-3000:]}\n"
                 f"{p.stderr[-3000:]}")
    rss = 0
    for line in p.stderr.splitlines():
        if line.startswith("MAXRSS "):
            rss = int(line.split()[1]) * 1024
    return dt, rss, p.stdout


def stage_seconds(report):
    """{(dataset, stage): seconds} summed over the run report's days and dataset stages."""
    out = {}
    for ds in report["datasets"]:
        for day in ds["days"]:
            for s in day["stages"]:
                k = (ds["dataset"], s["stage"])
                out[k] = out.get(k, 0) + s["seconds"]
        for s in ds["stages"]:
            k = (ds["dataset"], s["stage"])
            out[k] = out.get(k, 0) + s["seconds"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qlake", default=str(REPO / "build" / "qlake"))
    ap.add_argument("--scale", default="1")
    ap.add_argument("--date", default="2024-01-17")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="days/datasets in flight (sync --jobs)")
    ap.add_argument("--cases", default=",".join(ALL_CASES))
    ap.add_argument("--no-qlib", action="store_true", help="no Qlib stores in the project")
    ap.add_argument("--keep", help="keep the mirror, caches and lakes here")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    cases = [c for c in a.cases.split(",") if c]
    bad = set(cases) - set(ALL_CASES)
    if bad:
        sys.exit(f"unknown cases {bad}; known: {ALL_CASES}")
    import duckdb  # the project's venv has it

    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="qlake-pipeline-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    mirror = root / "mirror"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
    base_env["HOME"] = str(root)
    if not mirror.exists():
        t0 = time.monotonic()
        subprocess.run([a.qlake, "synth", "-q", "--out", mirror, "--from", a.date, "--to", a.date,
                        "--scale", a.scale, "--datasets", ",".join(DATASETS)], check=True,
                       env=base_env)
        print(f"synth --scale {a.scale} {a.date}: {time.monotonic() - t0:.1f}s")
    files = {d: mirror / KEYS[d] / a.date[:4] / a.date[5:7] / f"{a.date}.csv.gz" for d in DATASETS}
    gz_mb = sum(f.stat().st_size for f in files.values()) / 1e6

    server = None
    if any(c.startswith("s3") or c == "noop" for c in cases):
        server = MotoS3()
        server.create_bucket()
        t0 = time.monotonic()
        server.upload_tree(mirror)
        print(f"uploaded {gz_mb:.1f} MB to the local S3 server ({server.endpoint}) in "
              f"{time.monotonic() - t0:.1f}s")
    s3_env = dict(base_env)
    if server:
        s3_env.update(qlake_s3_env(server.endpoint))
        s3_env["QLAKE_S3__REQUEST_TIMEOUT"] = "60"  # moto answers big objects slowly
        s3_env["QLAKE_S3__CONNECT_TIMEOUT"] = "10"
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores; "
          f"{gz_mb:.1f} MB gz in 4 files; jobs {a.jobs}; runs {a.runs}")

    qlib_yaml = "" if a.no_qlib else (
        "qlib:\n  - {path: qlib/day, freq: day, dataset: stocks_daily}\n"
        "  - {path: qlib/1min, freq: 1min, dataset: stocks_minute}\n")

    def project(name, source, cache):
        proj = root / name
        shutil.rmtree(proj, ignore_errors=True)
        proj.mkdir()
        (proj / "qlake.yaml").write_text(
            f"source: {source}\nlake: lake\n" + (f"cache: {cache}\n" if cache else "")
            + f"datasets: [{', '.join(DATASETS)}]\n" + qlib_yaml)
        return proj

    results = {c: [] for c in cases}  # case -> [(seconds, time_rss, report_rss, report)]
    for run in range(a.runs):
        for case in cases:  # interleaved across runs
            if case == "duckdb":
                out_dir = root / f"duck{run}"
                shutil.rmtree(out_dir, ignore_errors=True)
                out_dir.mkdir()
                t0 = time.monotonic()
                con = duckdb.connect()
                for d, f in files.items():
                    con.execute(f"COPY (SELECT * FROM read_csv('{f}')) TO '{out_dir}/{d}.parquet' "
                                "(FORMAT parquet, COMPRESSION zstd)")
                con.close()
                results[case].append((time.monotonic() - t0, 0, 0, None))
                continue
            if case == "noop":
                proj = root / f"s3+cache{run}"
                if not proj.exists():
                    sys.exit("the noop case needs the s3+cache case before it")
                env = s3_env
            elif case == "mirror":
                proj, env = project(f"mirror{run}", mirror, None), base_env
            elif case == "s3":
                proj, env = project(f"s3{run}", f"s3://{BUCKET}", None), s3_env
            else:
                proj, env = project(f"s3+cache{run}", f"s3://{BUCKET}", "cache"), s3_env
            dt, rss, out = timed([a.qlake, "sync", "--json", "--jobs", a.jobs], cwd=proj, env=env)
            rep = json.loads(out)
            want = "nothing_to_do" if case == "noop" else "ok"
            assert rep["status"] == want, (case, rep["status"], rep.get("error"))
            if case != "noop":
                assert rep["committed_days"] == 4, (case, rep["committed_days"])
            if case != "noop" and "qlib" in rep["stages"]:
                # The stores really hold the day (calendar) and the symbols.
                for freq in ("day", "1min"):
                    cal = (proj / "qlib" / freq / "calendars" / f"{freq}.txt").read_text()
                    assert a.date in cal, (case, freq, cal[:200])
                    assert (proj / "qlib" / freq / "instruments" / "all.txt").stat().st_size
            results[case].append((dt, rss, rep["peak_rss_bytes"], rep))

    server and server.stop()
    med = {c: statistics.median(x[0] for x in v) for c, v in results.items()}
    print()
    summary = {}
    for case in cases:
        if case in ("duckdb", "noop"):
            continue
        rep = results[case][-1][3]
        st = stage_seconds(rep)
        rows = {}
        fetched = 0
        for ds in rep["datasets"]:
            for day in ds["days"]:
                for s in day["stages"]:
                    if s["stage"] == "ingest":
                        rows[ds["dataset"]] = s["rows_read"]
                    if s["stage"] == "fetch":
                        fetched += s["bytes_in"]
        shown = [s for s in STAGES if any(k[1] == s for k in st)]
        peak_rep = max(x[2] for x in results[case])
        peak_time = max(x[1] for x in results[case])
        print(f"== {case}: qlake sync {med[case]:.2f}s wall (median of {a.runs}), peak RSS "
              f"{peak_rep / 2**20:.0f} MiB (run report VmHWM) / {peak_time / 2**20:.0f} MiB "
              f"(/usr/bin/time); run report {rep['seconds']:.2f}s"
              + (f"; fetched {fetched / 1e6:.1f} MB" if fetched else ""))
        print(f"   {'dataset':<16}{'rows':>12}  " + "  ".join(f"{s:>9}" for s in shown))
        for d in DATASETS:
            print(f"   {d:<16}{rows.get(d, 0):>12,}  " +
                  "  ".join(f"{st.get((d, s), 0):>8.2f}s" for s in shown))
        totals = {s: sum(v for (d, x), v in st.items() if x == s) for s in shown}
        print("   stage totals (sum over datasets; with --jobs > 1 day stages overlap): " +
              ", ".join(f"{s} {v:.2f}s" for s, v in totals.items()))
        print(f"   stages wired: {', '.join(rep['stages'])}; missing: "
              f"{'; '.join(rep['stages_missing']) or 'none'}")
        summary[case] = {
            "seconds": med[case], "peak_rss_bytes": peak_rep, "time_max_rss_bytes": peak_time,
            "stage_seconds": {f"{d}/{s}": v for (d, s), v in st.items()},
            "stage_totals": totals, "rows": rows, "fetched_bytes": fetched,
            "stages": rep["stages"], "stages_missing": rep["stages_missing"]}
    print()
    if "noop" in med:
        print(f"qlake sync again (nothing to do, s3+cache): {med['noop']:.2f}s")
        summary["noop"] = {"seconds": med["noop"]}
    if "duckdb" in med:
        print(f"DuckDB COPY read_csv -> parquet of the same 4 files (local): {med['duckdb']:.2f}s")
        summary["duckdb"] = {"seconds": med["duckdb"]}
        for case in ("mirror", "s3", "s3+cache"):
            if case in med:
                extra = ", exports Qlib" if "qlib" in summary[case]["stages"] else ""
                print(f"  qlake sync {case} / DuckDB = {med[case] / med['duckdb']:.2f}x "
                      f"(qlake also validates, sorts, quarantines, computes features{extra}, "
                      "commits)")
    target = 60.0
    for case in ("s3+cache", "s3", "mirror"):
        if case in med:
            print(f"target < {target:.0f}s on 2 cores ({case}): "
                  f"{'met' if med[case] < target else 'MISSED'} ({med[case]:.1f}s)")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({
            "scale": a.scale, "date": a.date, "jobs": a.jobs, "runs": a.runs, "gz_mb": gz_mb,
            "cases": summary}, indent=2))
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
