"""SIGKILL `qlake sync` (and concurrent sharded `qlake backfill` workers) at random moments,
then run `qlake sync` once more without interruption: the lake (data and quarantine files,
commit records, watermarks) and the project's Qlib stores (day and 1min: calendars,
instruments and bins, byte for byte) must equal those built by one uninterrupted sync, and no
run report may ever call a day ok that had no commit record at that moment.

The default run does 4 trials (CI); QLAKE_SLOW=1 runs 50 (or QLAKE_PIPELINE_CRASH_TRIALS=N).
A second test kills syncs of a project with `cache:` (fetch stage): 2 trials in CI, 20 with
QLAKE_SLOW=1 (or QLAKE_PIPELINE_CRASH_CACHE_TRIALS=N).
Kill delays are spread evenly (with seeded jitter) over 0..1.2x a clean run's duration.
"""

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline_util import check_day_files, normalized, records, run_reports, write_project

DATASETS = ["stocks_daily", "stocks_minute"]
FROM, TO = "2024-12-23", "2024-12-31"  # 6 sessions (12-25 closed)
SCALE = "0.05"
FAULTS = "duplicate_rows,bad_timestamp,negative_volume"
SEED = 20241223
STORES = "qlib:\n  - {path: qlib/day, freq: day}\n  - {path: qlib/min, freq: 1min}\n"
TRIALS = int(os.environ.get("QLAKE_PIPELINE_CRASH_TRIALS",
                            "50" if os.environ.get("QLAKE_SLOW") == "1" else "4"))


def env_for(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / "xdg")
    return env


def qlib_files(proj: Path) -> dict:
    """What Qlib reads of the project's stores (not .qlake/: it names this run's lake and
    transaction ids)."""
    return {str(p.relative_to(proj)): p.read_bytes()
            for store in ("qlib/day", "qlib/min")
            for sub in ("calendars", "instruments", "features")
            for p in sorted((proj / store / sub).rglob("*")) if p.is_file()}


def check_reports_never_claim_uncommitted_days(lake: Path):
    """Every day a run report (finished or cut short) calls ok has a complete record now."""
    for rep in run_reports(lake):
        for ds in rep["datasets"]:
            recs = records(lake, ds["dataset"])
            for day in ds["days"]:
                if day["status"] == "ok":
                    assert day["day"] in recs, (
                        f"run {rep['run_id']} calls {ds['dataset']} {day['day']} ok but it "
                        f"has no commit record")
                    check_day_files(lake, ds["dataset"], recs[day["day"]], day["day"])


@pytest.fixture(scope="module")
def setup(qlake_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("pcrash")
    env = env_for(root)
    mirror = root / "mirror"
    subprocess.run([str(qlake_bin), "synth", "-q", "--out", str(mirror), "--from", FROM, "--to",
                    TO, "--scale", SCALE, "--datasets", ",".join(DATASETS), "--faults", FAULTS],
                   check=True, env=env)
    ref = root / "ref"
    write_project(ref, mirror, DATASETS, STORES)
    start = time.monotonic()
    subprocess.run([str(qlake_bin), "sync", "-q"], cwd=ref, env=env, check=True)
    duration = time.monotonic() - start
    assert len(records(ref / "lake", "stocks_minute")) == 6
    qlib_ref = qlib_files(ref)
    assert "qlib/min/calendars/1min.txt" in qlib_ref and len(qlib_ref) > 100
    return mirror, (normalized(ref / "lake", DATASETS), qlib_ref), duration, env


def test_sigkill_sync_and_shards_then_rerun_equals_uninterrupted(setup, qlake_bin, tmp_path,
                                                                 record_property):
    mirror, (reference, qlib_reference), duration, env = setup
    rng = random.Random(SEED)
    killed = finished = interrupted_reports = recovered = 0
    for trial in range(TRIALS):
        proj = tmp_path / f"t{trial}"
        write_project(proj, mirror, DATASETS, STORES)
        delay = 1.2 * duration * (trial + rng.random()) / TRIALS
        if trial % 2 == 0:
            cmds = [["sync", "-q"]]
        else:  # two shard workers of a backfill, killed together
            cmds = [["backfill", "-q", "--dataset", "stocks_minute", "--from", FROM, "--to", TO,
                     "--shard", f"{i}/2"] for i in (1, 2)]
        procs = [subprocess.Popen([str(qlake_bin), *c], cwd=proj, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for c in cmds]
        time.sleep(delay)
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            _, err = p.communicate(timeout=120)
            if p.returncode == -signal.SIGKILL:
                killed += 1
            else:
                assert p.returncode == 0, err.decode()
                finished += 1
        lake = proj / "lake"
        if lake.exists():
            check_reports_never_claim_uncommitted_days(lake)
        subprocess.run([str(qlake_bin), "sync", "-q"], cwd=proj, env=env, check=True)
        check_reports_never_claim_uncommitted_days(lake)
        final = run_reports(lake)[-1]
        assert final["status"] in ("ok", "nothing_to_do") and final["failed_days"] == 0
        recovered += final["recovery"]["rolled_forward"] + final["recovery"]["rolled_back"]
        interrupted_reports += sum(r["status"] == "interrupted" for r in run_reports(lake))
        assert [r["run_id"] for r in run_reports(lake) if r["status"] == "running"] == []
        got = normalized(lake, DATASETS)
        assert sorted(got) == sorted(reference), "files differ from the uninterrupted run"
        assert [p for p in reference if got[p] != reference[p]] == []
        assert not any((lake / "_staging").rglob("*.tmp")), "staged files left behind"
        got_qlib = qlib_files(proj)
        assert sorted(got_qlib) == sorted(qlib_reference), "Qlib store files differ"
        assert [p for p in qlib_reference if got_qlib[p] != qlib_reference[p]] == []
        assert not list((proj / "qlib").glob(".*")), "Qlib build or swap folders left behind"
        assert not (proj / "qlib/day/.qlake/journal.json").exists()

    summary = (f"{TRIALS} trials over a {duration:.2f} s sync: {killed} processes killed "
               f"mid-run, {finished} finished first; {recovered} interrupted commits "
               f"recovered, {interrupted_reports} run reports marked interrupted")
    print(summary)
    record_property("summary", summary)


CACHE_TRIALS = int(os.environ.get("QLAKE_PIPELINE_CRASH_CACHE_TRIALS",
                                  "20" if os.environ.get("QLAKE_SLOW") == "1" else "2"))


def test_sigkill_sync_with_cache_then_rerun_equals_uninterrupted(setup, qlake_bin, tmp_path,
                                                                 record_property):
    """The same with `cache:` (fetch stage from the mirror into the cache): a kill mid-fetch
    leaves a part file or an unrecorded download; the rerun resumes or redoes it, and the
    lake still equals the uninterrupted (cache-less) one, the cache the mirror."""
    mirror, (reference, _), duration, env = setup
    rng = random.Random(SEED + 1)
    killed = 0
    for trial in range(CACHE_TRIALS):
        proj = tmp_path / f"c{trial}"
        write_project(proj, mirror, DATASETS, "cache: cache\n")
        delay = 1.2 * duration * (trial + rng.random()) / CACHE_TRIALS
        p = subprocess.Popen([str(qlake_bin), "sync", "-q"], cwd=proj, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        if p.poll() is None:
            p.kill()
        _, err = p.communicate(timeout=120)
        if p.returncode == -signal.SIGKILL:
            killed += 1
        else:
            assert p.returncode == 0, err.decode()
        lake = proj / "lake"
        if lake.exists():
            check_reports_never_claim_uncommitted_days(lake)
        subprocess.run([str(qlake_bin), "sync", "-q"], cwd=proj, env=env, check=True)
        check_reports_never_claim_uncommitted_days(lake)
        got = normalized(lake, DATASETS)
        assert sorted(got) == sorted(reference)
        assert [k for k in reference if got[k] != reference[k]] == []
        cache = proj / "cache"
        assert not list(cache.rglob("*.qlake-part*")), "part files left behind"
        for f in mirror.rglob("*.csv.gz"):
            assert (cache / f.relative_to(mirror)).read_bytes() == f.read_bytes()
    summary = f"{CACHE_TRIALS} trials with cache: {killed} syncs killed mid-run"
    print(summary)
    record_property("summary_cache", summary)
