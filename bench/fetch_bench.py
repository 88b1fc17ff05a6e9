#!/usr/bin/env python3
"""Fetch benchmark: the S3 path against the local-mirror path, in one run.

On the same synthetic stocks-minute days (`qlake synth`), uploaded under the real key layout to
a local S3 server (moto's server mode, the one the tests use), it times:

  a. `qlake ingest --source MIRROR`          the local path (the baseline)
  b. `qlake fetch` into a fresh cache         download MB/s
  c. `qlake ingest --source CACHE`            after b; b + c is the "fetch, then ingest" path
  d. `qlake ingest --source s3://bucket`      streaming from S3, no local copy
  e. boto3, N threads, `download_file`        the peer of b (the usual Python loop)
  f. `qlake fetch` again                      everything unchanged: listing cost only

and prints wall seconds (median of --runs, cases interleaved), gz MB/s and the overhead of the
S3 paths over (a). moto is a Python server, so the S3 numbers are bounded by it; the ratio of
qlake fetch to boto3 against the same server is the fair comparison for the downloader.

  .venv/bin/python bench/fetch_bench.py [--days 4] [--scale 0.5] [--runs 3] [--jobs 4]

Not a test: it never fails on a number, it reports it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
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
from s3util import ACCESS_KEY, BUCKET, SECRET_KEY, MotoS3, qlake_s3_env  # noqa: E402

DAYS = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09",
        "2024-01-10", "2024-01-11"]


def run(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr}")
    return dt, p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--scale", default="0.5")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--qlake", default=str(REPO / "build" / "qlake"))
    args = ap.parse_args()
    days = DAYS[: max(1, min(args.days, len(DAYS)))]
    qlake = args.qlake
    work = Path(tempfile.mkdtemp(prefix="qlake_fetch_bench_"))
    server = None
    try:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
        base_env["HOME"] = str(work)
        mirror = work / "mirror"
        run([qlake, "-q", "synth", "--out", mirror, "--from", days[0], "--to", days[-1],
             "--scale", args.scale, "--datasets", "stocks_minute"], base_env)
        files = sorted(p for p in mirror.rglob("*.csv.gz"))
        gz_bytes = sum(p.stat().st_size for p in files)
        server = MotoS3()
        server.create_bucket()
        keys = server.upload_tree(mirror)
        env = {**base_env, **qlake_s3_env(server.endpoint)}
        env["QLAKE_S3__REQUEST_TIMEOUT"] = "30"
        common = ["--dataset", "stocks_minute", "--from", days[0], "--to", days[-1]]

        def fresh(name):
            p = work / name
            shutil.rmtree(p, ignore_errors=True)
            return p

        def boto_download():
            out = fresh("boto")
            client = server.make_client()

            def one(key):
                dest = out / key
                dest.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(BUCKET, key, str(dest))

            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                list(pool.map(one, keys))
            return time.perf_counter() - t0

        cases = {
            "a ingest mirror": lambda: run([qlake, "-q", "ingest", *common, "--source", mirror,
                                           "--lake", fresh("lake_a")], env)[0],
            "b fetch": lambda: run([qlake, "-q", "fetch", *common, "--cache", fresh("cache"),
                                   "--jobs", args.jobs], env)[0],
            "c ingest cache": lambda: run([qlake, "-q", "ingest", *common, "--source",
                                          work / "cache", "--lake", fresh("lake_c")], env)[0],
            "d ingest s3://": lambda: run([qlake, "-q", "ingest", *common, "--source",
                                          f"s3://{BUCKET}", "--lake", fresh("lake_d")], env)[0],
            "e boto3 download": boto_download,
            "f fetch unchanged": lambda: run([qlake, "-q", "fetch", *common, "--cache",
                                             work / "cache", "--jobs", args.jobs], env)[0],
        }
        times = {k: [] for k in cases}
        for _ in range(args.runs):
            for name, fn in cases.items():  # interleaved, in order (c needs b's cache)
                times[name].append(fn())
        med = {k: statistics.median(v) for k, v in times.items()}
        mb = gz_bytes / 1e6
        load = os.getloadavg()
        print(f"stocks_minute, {len(days)} days at scale {args.scale}: {len(files)} files, "
              f"{mb:.1f} MB gz; jobs {args.jobs}; runs {args.runs}; "
              f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        print(f"{'case':<20} {'median s':>9} {'min s':>7} {'max s':>7} {'gz MB/s':>8}")
        for k, v in times.items():
            print(f"{k:<20} {med[k]:>9.2f} {min(v):>7.2f} {max(v):>7.2f} {mb / med[k]:>8.1f}")
        base = med["a ingest mirror"]
        result = {
            "gz_mb": mb,
            "days": len(days),
            "median_seconds": med,
            "fetch_mb_s": mb / med["b fetch"],
            "boto3_mb_s": mb / med["e boto3 download"],
            "fetch_vs_boto3": med["e boto3 download"] / med["b fetch"],
            "fetch_then_ingest_over_mirror": (med["b fetch"] + med["c ingest cache"]) / base,
            "ingest_s3_over_mirror": med["d ingest s3://"] / base,
        }
        print(f"qlake fetch {result['fetch_mb_s']:.1f} MB/s vs boto3 {result['boto3_mb_s']:.1f} "
              f"MB/s ({result['fetch_vs_boto3']:.2f}x)")
        print(f"fetch + ingest cache = {result['fetch_then_ingest_over_mirror']:.2f}x "
              f"ingest from the mirror; ingest s3:// = {result['ingest_s3_over_mirror']:.2f}x; "
              f"unchanged re-fetch {med['f fetch unchanged']:.2f}s")
        print(json.dumps(result))
        assert ACCESS_KEY and SECRET_KEY  # the test credentials the server accepts
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
