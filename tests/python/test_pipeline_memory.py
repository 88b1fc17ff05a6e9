"""A backfill under a low memory.limit stays under it: small chunks keep each day's ingest
bounded, and the pipeline's memory monitor drops to one day in flight from the warn tier on
and computes features one chunk at a time once the warn tier was reached (the tier reached
is reported, not asserted). The floor at this size (~0.55 M minute rows per day) is the
features stage's one-day working set, ~270 MiB, which the monitor cannot shrink further.
The measured peak RSS (VmHWM, recorded in the run report) is printed (pytest -s) and
recorded as a test property."""

import json

LIMIT_MIB = 320


def test_low_memory_backfill_stays_under_the_limit(run_qlake, tmp_path, record_property):
    mirror = tmp_path / "mirror"
    run_qlake("synth", "-q", "--out", mirror, "--from", "2025-01-02", "--to", "2025-01-06",
              "--scale", "0.3", "--datasets", "stocks_minute")
    common = ["backfill", "--dataset", "stocks_minute", "--from", "2025-01-02", "--to",
              "2025-01-06", "--source", mirror, "--jobs", "2", "--json",
              "--set", "ingest.chunk_rows=50000", "--set", "ingest.row_group_rows=50000"]
    low = json.loads(run_qlake(*common, "--lake", tmp_path / "low",
                               "--set", f"memory.limit={LIMIT_MIB}MiB").stdout)
    high = json.loads(run_qlake(*common, "--lake", tmp_path / "high",
                                "--set", "memory.limit=8GiB").stdout)
    for r in (low, high):
        assert r["status"] == "ok" and r["committed_days"] == 3
        rows = sum(d["stages"][0]["rows_written"] for d in r["datasets"][0]["days"])
        assert rows > 1_500_000
    peak_low = low["peak_rss_bytes"] / 2**20
    peak_high = high["peak_rss_bytes"] / 2**20
    summary = (f"peak RSS {peak_low:.0f} MiB under memory.limit={LIMIT_MIB}MiB "
               f"(monitor tier reached: {low['max_memory_tier']}); {peak_high:.0f} MiB with "
               f"8GiB, {rows} rows over 3 days, 2 jobs")
    print(summary)
    record_property("summary", summary)
    assert low["memory_budget_bytes"] == LIMIT_MIB * 2**20
    assert low["peak_rss_bytes"] < LIMIT_MIB * 2**20, summary
