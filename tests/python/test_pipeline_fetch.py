"""`qlake sync` with the fetch stage: a project with `cache:` fetches each day from a real S3
server (moto, on 127.0.0.1) into the cache and ingests the cached file.

Checked against independent expectations: the lake equals one synced from the local mirror
(data bytes, commit records but for the source's LastModified, watermarks); the cache holds the
server's bytes (boto3) with the object's LastModified as mtime; a republished object is
downloaded again and its day re-committed, nothing else; a second sync does nothing; transient
S3 faults (injected by s3util.FaultProxy, each asserted to have fired) are retried inside the
day and counted in the run report, and a day whose faults outlast the retries fails alone and
is committed by the next sync. docs/pipeline.md section 2 describes the behaviour.
"""

import gzip
import hashlib
import itertools
import json
import subprocess
import time
from pathlib import Path

import pytest

from pipeline_util import normalized, read_json, records, run_reports, write_project
from s3util import SECRET_KEY, FaultProxy, key_for, qlake_s3_env

DATASETS = ["stocks_daily", "stocks_minute"]
FROM, TO = "2025-01-02", "2025-01-08"
SESSIONS = ["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08"]
NOW = "2025-01-10T22:00:00Z"
_bucket_ids = itertools.count()


@pytest.fixture(scope="module")
def mirrors(qlake_bin, tmp_path_factory):
    """The mirror, another seed's mirror (republished bodies), and a lake synced from the
    mirror (the reference)."""
    root = tmp_path_factory.mktemp("pipeline_fetch")
    out = {}
    for name, seed in (("mirror", None), ("other", "7")):
        args = [str(qlake_bin), "-q", "synth", "--out", str(root / name), "--from", FROM,
                "--to", TO, "--scale", "0.01", "--datasets", ",".join(DATASETS)]
        if seed:
            args += ["--seed", seed]
        subprocess.run(args, check=True, capture_output=True)
        out[name] = root / name
    ref = root / "ref"
    write_project(ref, out["mirror"], DATASETS, "features: false\n")
    subprocess.run([str(qlake_bin), "-q", "sync", "--now", NOW], cwd=ref, check=True,
                   capture_output=True, env={"HOME": str(root), "PATH": "/usr/bin:/bin"})
    out["ref_lake"] = ref / "lake"
    return out


@pytest.fixture
def bucket(s3, mirrors):
    name = f"flatfiles-{next(_bucket_ids)}"
    s3.create_bucket(name)
    s3.upload_tree(mirrors["mirror"], bucket=name)
    return name


def s3_project(folder: Path, bucket: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (f"source: s3://{bucket}\nlake: lake\ncache: cache\nfeatures: false\n"
            "datasets:\n" + "".join(f"  - {d}\n" for d in DATASETS) + extra)
    (folder / "qlake.yaml").write_text(text)
    return folder


def without_source_time(lake: Path) -> dict:
    """normalized() with each raw commit record's source LastModified set aside: a mirror
    file's mtime and the S3 object's LastModified legitimately differ."""
    out = normalized(lake, DATASETS)
    for rel, v in out.items():
        if isinstance(v, dict) and "/commits/" in rel:
            out[rel] = {**v, "source": {**v["source"], "last_modified": None}}
    return out


def manifest(cache: Path) -> list:
    path = cache / "_qlake" / "manifest.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def day_runs(report: dict, dataset: str) -> dict:
    [ds] = [d for d in report["datasets"] if d["dataset"] == dataset]
    return {d["day"]: d for d in ds["days"]}


def check_cache(s3, bucket, cache: Path, dataset: str, days):
    for day in days:
        k = key_for(dataset, day)
        body = s3.client.get_object(Bucket=bucket, Key=k)["Body"].read()
        head = s3.head(k, bucket)
        local = cache / k
        assert local.read_bytes() == body, k
        assert int(local.stat().st_mtime) == int(head["LastModified"].timestamp()), k
        gzip.decompress(body)
    assert not list(cache.rglob("*.qlake-part*"))


def test_sync_with_cache_equals_mirror_sync_then_nothing_to_do(run_qlake, s3, bucket,
                                                                mirrors, tmp_path):
    proj = s3_project(tmp_path / "proj", bucket)
    env = qlake_s3_env(s3.endpoint)
    first = run_qlake("sync", "-v", "--now", NOW, "--metrics-file", "metrics.prom", cwd=proj,
                      env=env)
    assert "qlake sync ok: 10 day(s) committed, 0 failed" in first.stdout, first.stdout
    assert "fetched" in first.stdout and "fetch " in first.stdout
    lake, cache = proj / "lake", proj / "cache"
    assert without_source_time(lake) == without_source_time(mirrors["ref_lake"])

    [report] = run_reports(lake)
    assert report["stages"][:2] == ["fetch", "ingest"]
    for ds in DATASETS:
        runs = day_runs(report, ds)
        assert sorted(runs) == SESSIONS
        recs = records(lake, ds)
        for day, d in runs.items():
            assert [s["stage"] for s in d["stages"]] == ["fetch", "ingest"]
            f = d["stages"][0]
            head = s3.head(key_for(ds, day), bucket)
            assert f["action"] == "downloaded" and f["retries"] == 0
            assert f["bytes_in"] == f["bytes_out"] == head["ContentLength"]
            # The commit record names the S3 object's version.
            src = recs[day]["source"]
            assert src["size"] == head["ContentLength"]
            assert int(src["last_modified"]) == int(head["LastModified"].timestamp())
        check_cache(s3, bucket, cache, ds, SESSIONS)
    lines = manifest(cache)
    assert sorted(e["key"] for e in lines) == sorted(key_for(ds, d) for ds in DATASETS
                                                      for d in SESSIONS)
    for e in lines:
        body = (cache / e["key"]).read_bytes()
        assert e["sha256"] == hashlib.sha256(body).hexdigest()
    metrics = (proj / "metrics.prom").read_text()
    assert 'qlake_run_stage_seconds{dataset="stocks_minute",stage="fetch"}' in metrics
    total = sum(s3.head(key_for("stocks_minute", d), bucket)["ContentLength"] for d in SESSIONS)
    assert f'qlake_run_fetch_bytes{{dataset="stocks_minute"}} {total}\n' in metrics
    assert 'qlake_run_fetch_retries{dataset="stocks_minute"} 0\n' in metrics
    # The secret never reaches output, reports, the manifest or the lake's metadata.
    texts = [first.stdout, first.stderr, metrics,
             (cache / "_qlake" / "manifest.jsonl").read_text()]
    texts += [p.read_text() for p in (lake / "_qlake").rglob("*.json*")]
    assert not any(SECRET_KEY in t for t in texts)

    before_lake = without_source_time(lake)
    before_cache = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    second = run_qlake("sync", "--now", NOW, cwd=proj, env=env)
    assert "nothing to do: stocks_daily, stocks_minute up to date through 2025-01-08" in \
        second.stdout, second.stdout
    assert without_source_time(lake) == before_lake
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == before_cache


def test_republished_object_is_refetched_and_recommitted(run_qlake, s3, bucket, mirrors,
                                                         tmp_path):
    proj = s3_project(tmp_path / "proj", bucket)
    env = qlake_s3_env(s3.endpoint)
    run_qlake("sync", "--now", NOW, cwd=proj, env=env)
    lake, cache = proj / "lake", proj / "cache"
    old = {ds: records(lake, ds) for ds in DATASETS}

    day = "2025-01-06"
    k = key_for("stocks_minute", day)
    new_body = (mirrors["other"] / k).read_bytes()
    assert new_body != (mirrors["mirror"] / k).read_bytes()
    time.sleep(1.1)  # a new LastModified second, as a real republish has
    s3.put(k, new_body, bucket)
    head = s3.head(k, bucket)

    status = json.loads(run_qlake("status", "--json", "--now", NOW, cwd=proj, env=env).stdout)
    [sm] = [d for d in status["datasets"] if d["dataset"] == "stocks_minute"]
    assert sm["republished"] == [day]

    p = run_qlake("sync", "--now", NOW, cwd=proj, env=env)
    assert "qlake sync ok: 1 day(s) committed" in p.stdout, p.stdout
    report = run_reports(lake)[-1]
    runs = day_runs(report, "stocks_minute")
    assert list(runs) == [day]
    assert runs[day]["reason"] == "republished"
    f = runs[day]["stages"][0]
    assert f["stage"] == "fetch" and f["action"] == "republished"
    assert f["bytes_in"] == len(new_body)
    assert day_runs(report, "stocks_daily") == {}
    # The cache holds the new bytes; the manifest's last line for the key says what it
    # replaced.
    assert (cache / k).read_bytes() == new_body
    last = [e for e in manifest(cache) if e["key"] == k][-1]
    assert last["size"] == len(new_body) and last["replaced"]["size"] != len(new_body)
    # Re-committed from the new object: its version, its rows; every other day untouched.
    new = {ds: records(lake, ds) for ds in DATASETS}
    rec = new["stocks_minute"][day]
    assert rec["source"]["size"] == head["ContentLength"]
    assert int(rec["source"]["last_modified"]) == int(head["LastModified"].timestamp())
    lines = gzip.decompress(new_body).decode().count("\n") - 1
    assert rec["rows"]["read"] == lines
    assert rec["txn"] != old["stocks_minute"][day]["txn"]
    for ds in DATASETS:
        for d in SESSIONS:
            if (ds, d) != ("stocks_minute", day):
                assert new[ds][d] == old[ds][d], (ds, d)

    again = run_qlake("sync", "--now", NOW, cwd=proj, env=env)
    assert "nothing to do" in again.stdout, again.stdout


def test_transient_faults_are_retried_and_a_failed_day_is_redone(run_qlake, s3, bucket,
                                                                  mirrors, tmp_path):
    proxy = FaultProxy(s3.port)
    try:
        proj = s3_project(tmp_path / "proj", bucket)
        # s3.retries=1: no retries inside the S3 client, so every fault is one of the fetch
        # stage's own attempts (fetch.retries) and shows in the run report.
        env = qlake_s3_env(proxy.endpoint, QLAKE_S3__RETRIES="1", QLAKE_FETCH__RETRIES="3")
        flaky, broken = "2025-01-03", "2025-01-07"
        proxy.add_rule(key_for("stocks_minute", flaky), [503, "reset"], method="GET")
        # (minute bars: no previous-day file is involved, unlike day bars)
        proxy.add_rule(key_for("stocks_minute", broken), [500], method="GET", repeat_last=True)
        p = run_qlake("sync", "--now", NOW, cwd=proj, env=env, check=False)
        assert p.returncode == 7, (p.stdout, p.stderr)  # partial: one day failed
        for action in (503, "reset", 500):
            assert proxy.hits(action), f"fault {action} was never injected"
        lake = proj / "lake"
        report = run_reports(lake)[-1]
        assert report["status"] == "partial"
        f = day_runs(report, "stocks_minute")[flaky]["stages"][0]
        # The 503 is one retried attempt; the reset may also be (or be absorbed by the
        # HTTP client reconnecting).
        assert f["action"] == "downloaded" and f["retries"] >= 1, f
        assert day_runs(report, "stocks_minute")[flaky]["status"] == "ok"
        bad = day_runs(report, "stocks_minute")[broken]
        assert bad["status"] == "failed"
        assert [s["stage"] for s in bad["stages"]] == ["fetch"]  # ingest never ran
        assert "gave up after 3 attempts" in bad["error"], bad["error"]
        assert broken not in records(lake, "stocks_minute")
        assert read_json(lake / "_qlake" / "stocks_minute" / "watermark.json")["watermark"] \
            == "2025-01-06"
        assert f"{broken} FAILED: fetch: " in p.stdout, p.stdout
        assert "metrics" not in p.stderr  # nothing unrelated failed
        assert SECRET_KEY not in p.stdout + p.stderr

        proxy.clear()
        again = run_qlake("sync", "--now", NOW, cwd=proj, env=env)
        assert "qlake sync ok: 1 day(s) committed" in again.stdout, again.stdout
        assert list(day_runs(run_reports(lake)[-1], "stocks_minute")) == [broken]
        assert without_source_time(lake) == without_source_time(mirrors["ref_lake"])
        check_cache(s3, bucket, proj / "cache", "stocks_minute", SESSIONS)
    finally:
        proxy.stop()


def test_backfill_with_cache_flag(run_qlake, s3, bucket, mirrors, tmp_path):
    """`backfill --cache DIR` (no project file): the same fetch stage, the same lake."""
    env = qlake_s3_env(s3.endpoint)
    lake, cache = tmp_path / "lake", tmp_path / "cache"
    args = ["--source", f"s3://{bucket}", "--lake", lake, "--cache", cache, "--now", NOW]
    run_qlake("backfill", "--dataset", "stocks_daily", "--from", FROM, "--to", TO, *args,
              env=env)
    report = run_reports(lake)[-1]
    runs = day_runs(report, "stocks_daily")
    assert sorted(runs) == SESSIONS
    assert all(d["stages"][0]["stage"] == "fetch" for d in runs.values())
    assert records(lake, "stocks_daily").keys() == records(mirrors["ref_lake"],
                                                           "stocks_daily").keys()
    for day, rec in records(lake, "stocks_daily").items():
        ref = records(mirrors["ref_lake"], "stocks_daily")[day]
        assert rec["rows"] == ref["rows"] and rec["files"] == ref["files"], day
    check_cache(s3, bucket, cache, "stocks_daily", SESSIONS)
    again = run_qlake("backfill", "--dataset", "stocks_daily", "--from", FROM, "--to", TO,
                      *args, "--json", env=env)
    assert json.loads(again.stdout)["committed_days"] == 0


def test_cache_in_use_is_refused_and_init_writes_the_key(run_qlake, s3, bucket, tmp_path):
    proj = s3_project(tmp_path / "proj", bucket)
    env = qlake_s3_env(s3.endpoint)
    # A `qlake fetch` holding the cache: the sync refuses it (exit 6), touching nothing.
    import fcntl

    (proj / "cache" / "_qlake").mkdir(parents=True)
    with open(proj / "cache" / "_qlake" / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = run_qlake("sync", "--now", NOW, cwd=proj, env=env, check=False)
        # A shard of a backfill is refused the same way (shards need one cache each).
        shard = run_qlake("backfill", "--dataset", "stocks_minute", "--from", FROM, "--to",
                          TO, "--shard", "1/2", "--now", NOW, cwd=proj, env=env, check=False)
    assert p.returncode == 6, (p.stdout, p.stderr)
    assert "cannot use the cache" in p.stderr and "its own cache folder" in p.stderr
    assert shard.returncode == 6 and "cannot use the cache" in shard.stderr, shard.stderr
    assert not (proj / "lake" / "stocks_daily").exists()
    assert not (proj / "lake" / "stocks_minute").exists()

    init = tmp_path / "init"
    init.mkdir()
    run_qlake("init", "--source", "s3://flatfiles", "--lake", "lake", "--cache", "flatfiles",
              cwd=init)
    assert "\ncache: flatfiles\n" in (init / "qlake.yaml").read_text()
    plain = tmp_path / "plain"
    plain.mkdir()
    run_qlake("init", cwd=plain)
    assert '\ncache: ""' in (plain / "qlake.yaml").read_text()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "qlake.yaml").write_text("source: s3://flatfiles\nlake: lake\ncache: s3://x/y\n")
    p = run_qlake("status", cwd=bad, check=False)
    assert p.returncode != 0 and "'cache' must be a local folder" in p.stderr
