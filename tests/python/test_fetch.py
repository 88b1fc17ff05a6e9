"""`qlake fetch`, `qlake catalog` and `qlake ingest --source s3://` against a real S3 server.

The server is moto's S3 server (PyPI) started on 127.0.0.1 and a free port; the bucket holds a
`qlake synth` mirror under the real key layout. Fault tests put a small test-only HTTP proxy
(s3util.FaultProxy) between qlake and the server. Expectations come from the server itself
(boto3 HEAD: ETag, size, LastModified) and from the mirror's bytes, never from qlake.
"""

import gzip
import hashlib
import itertools
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from s3util import ACCESS_KEY, SECRET_KEY, FaultProxy, key_for, qlake_s3_env

FROM, TO = "2024-12-20", "2024-12-29"
# Fri 12-20, Mon 12-23, Tue 12-24 (early close), Thu 12-26, Fri 12-27; 12-25 is Christmas.
SESSIONS = ["2024-12-20", "2024-12-23", "2024-12-24", "2024-12-26", "2024-12-27"]
_bucket_ids = itertools.count()


@pytest.fixture(scope="module")
def mirror(qlake_bin, tmp_path_factory):
    import subprocess

    out = tmp_path_factory.mktemp("mirror")
    subprocess.run(
        [str(qlake_bin), "-q", "synth", "--out", str(out), "--from", FROM, "--to", TO,
         "--scale", "0.01", "--datasets", "stocks_daily,stocks_minute"],
        check=True, capture_output=True, env={**os.environ, "HOME": str(out)},
    )
    return out


@pytest.fixture
def bucket(s3, mirror):
    """A fresh bucket holding the mirror; returns its name."""
    name = f"flatfiles-{next(_bucket_ids)}"
    s3.create_bucket(name)
    s3.upload_tree(mirror, bucket=name)
    return name


def env_for(endpoint, bucket, **extra):
    return qlake_s3_env(endpoint, QLAKE_S3_BUCKET=bucket, **extra)


def fetch_json(run_qlake, env, *args, check=True):
    p = run_qlake("fetch", "--json", *args, env=env, check=check)
    return p, json.loads(p.stdout) if p.stdout.strip().startswith("{") else None


def manifest_lines(cache):
    path = Path(cache) / "_qlake" / "manifest.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def check_cache_against_server(s3, bucket, cache, mirror, dataset, days):
    """The cache holds exactly `days` with the server's bytes and a correct manifest."""
    cache = Path(cache)
    files = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")
                   if p.is_file() and not p.relative_to(cache).as_posix().startswith("_qlake"))
    assert files == sorted(key_for(dataset, d) for d in days), files
    latest = {}
    for e in manifest_lines(cache):
        latest[e["key"]] = e
    assert sorted(latest) == files
    for key in files:
        body = s3.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        head = s3.head(key, bucket)
        local = (cache / key).read_bytes()
        assert local == body
        e = latest[key]
        assert e["size"] == len(body) == head["ContentLength"]
        assert e["etag"] == head["ETag"]
        assert e["last_modified"] == head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert e["sha256"] == hashlib.sha256(body).hexdigest()
        assert int((cache / key).stat().st_mtime) == int(head["LastModified"].timestamp())
        gzip.decompress(local)  # a whole, valid gzip file
    assert not list(cache.rglob("*.qlake-part*"))


def test_catalog_datasets_lists_the_whole_bucket(run_qlake):
    p = run_qlake("catalog", "datasets", "--json")
    rows = {r["name"]: r for r in json.loads(p.stdout)}
    assert rows["stocks_minute"]["key_pattern"] == \
        "us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz"
    assert rows["stocks_minute"]["calendar"] == "nyse"
    assert rows["indices_minute"]["calendar"] == "nyse+holidays"
    assert rows["forex_quotes"]["calendar"] == "sunday-friday"
    assert rows["crypto_trades"]["calendar"] == "every-day"
    assert rows["futures_cme_session"]["prefix"] == "us_futures_cme/session_aggs_v1"
    assert rows["options_trades"]["columns"][-1] == "size"
    text = run_qlake("catalog", "datasets").stdout
    assert "global_crypto/day_aggs_v1" in text


def test_fetch_range_exact_files_manifest_and_rerun(run_qlake, s3, bucket, mirror, tmp_path):
    env = env_for(s3.endpoint, bucket)
    cache = tmp_path / "cache"
    p, r = fetch_json(run_qlake, env, "--dataset", "stocks_daily", "--from", FROM,
                      "--to", TO, "--cache", cache, "--jobs", "3")
    assert r["ok"], r
    status = {f["date"]: f["status"] for f in r["files"]}
    assert [d for d, s in status.items() if s == "downloaded"] == SESSIONS
    assert status["2024-12-25"] == "skipped"
    assert status["2024-12-21"] == "skipped"
    assert {f["date"]: f["message"] for f in r["files"]}["2024-12-25"] == "Christmas Day"
    check_cache_against_server(s3, bucket, cache, mirror, "stocks_daily", SESSIONS)

    # Unchanged files are not downloaded again.
    p, r2 = fetch_json(run_qlake, env, "--dataset", "stocks_daily", "--from", FROM,
                       "--to", TO, "--cache", cache)
    assert r2["counts"]["unchanged"] == 5 and r2["counts"]["downloaded"] == 0
    assert r2["bytes"] == 0
    assert len(manifest_lines(cache)) == 5


def test_catalog_days_expected_listed_and_lake(run_qlake, s3, bucket, tmp_path):
    env = env_for(s3.endpoint, bucket)
    lake = tmp_path / "lake"
    run_qlake("ingest", "--dataset", "stocks_daily", "--date", "2024-12-23",
              "--source", f"s3://{bucket}", "--lake", lake, env=env)
    p = run_qlake("catalog", "days", "--dataset", "stocks_daily", "--from", "2024-12-21",
                  "--to", "2024-12-26", "--lake", lake, "--json", env=env)
    days = {d["date"]: d for d in json.loads(p.stdout)["days"]}
    assert days["2024-12-21"]["expected"] == "not-expected"
    assert days["2024-12-21"]["reason"] == "weekend"
    assert days["2024-12-25"]["reason"] == "Christmas Day"
    assert days["2024-12-25"]["listed"] is None
    head = s3.head(key_for("stocks_daily", "2024-12-24"), bucket)
    listed = days["2024-12-24"]["listed"]
    assert listed["etag"] == head["ETag"] and listed["size"] == head["ContentLength"]
    assert listed["last_modified"] == head["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert days["2024-12-23"]["lake"] == "committed"
    assert days["2024-12-24"]["lake"] == "-"
    # Calendar and lake only: no bucket needed.
    p = run_qlake("catalog", "days", "--dataset", "crypto_daily", "--from", "2024-12-21",
                  "--to", "2024-12-22", "--no-listing", "--lake", lake, "--json")
    assert [d["expected"] for d in json.loads(p.stdout)["days"]] == ["expected"] * 2


def read_lake(lake, dataset):
    t = ds.dataset(Path(lake) / dataset, format="parquet").to_table()
    t = t.set_column(t.schema.get_field_index("ticker"), "ticker",
                     pc.cast(t.column("ticker"), pa.string()))
    return t.sort_by([("ticker", "ascending"), ("window_start", "ascending")])


def parquet_files(lake, dataset):
    root = Path(lake) / dataset
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.parquet")}


def test_ingest_streams_from_s3_like_from_the_mirror(run_qlake, s3, bucket, mirror, tmp_path):
    env = env_for(s3.endpoint, bucket)
    a, b = tmp_path / "lake_s3", tmp_path / "lake_local"
    args = ["ingest", "--dataset", "stocks_minute", "--from", "2024-12-23", "--to",
            "2024-12-24", "--json"]
    ra = json.loads(run_qlake(*args, "--source", f"s3://{bucket}", "--lake", a,
                              env=env).stdout)
    rb = json.loads(run_qlake(*args, "--source", mirror, "--lake", b).stdout)
    assert [d["ok"] for d in ra["days"]] == [True, True]
    assert [d["written"] for d in ra["days"]] == [d["written"] for d in rb["days"]]
    assert read_lake(a, "stocks_minute").equals(read_lake(b, "stocks_minute"))
    # Deterministic output: the same bytes whichever way the source was read.
    assert parquet_files(a, "stocks_minute") == parquet_files(b, "stocks_minute")
    # "s3://" alone is the configured bucket; --symbols filters while streaming.
    c = tmp_path / "lake_spy"
    rc = json.loads(run_qlake(*args, "--source", "s3://", "--lake", c, "--symbols",
                              "SPY,AAPL", env=env).stdout)
    t = read_lake(c, "stocks_minute")
    assert set(t.column("ticker").to_pylist()) == {"SPY", "AAPL"}
    assert all(d["filtered"] > 0 for d in rc["days"])


def test_faults_are_retried_to_the_exact_files(run_qlake, s3, bucket, mirror, tmp_path):
    proxy = FaultProxy(s3.port, stall_seconds=2.5)
    try:
        k = {d: key_for("stocks_minute", d) for d in SESSIONS}
        proxy.add_rule(k["2024-12-20"], [500], method="HEAD")
        proxy.add_rule(k["2024-12-23"], [503, 500], method="GET")
        proxy.add_rule(k["2024-12-24"], ["cut", "cut"], method="GET")
        proxy.add_rule(k["2024-12-26"], ["stall"], method="GET")
        proxy.add_rule(k["2024-12-27"], [403], method="HEAD")
        env = env_for(proxy.endpoint, bucket, QLAKE_FETCH__CHUNK_BYTES="64KiB")
        cache = tmp_path / "cache"
        p, r = fetch_json(run_qlake, env, "--dataset", "stocks_minute", "--from", FROM,
                          "--to", TO, "--cache", cache, "--jobs", "4")
        assert r["ok"], (r, p.stderr)
        assert r["counts"]["downloaded"] == 5
        check_cache_against_server(s3, bucket, cache, mirror, "stocks_minute", SESSIONS)
        for action in (500, 503, 403, "cut", "stall"):
            assert proxy.hits(action), f"fault {action} was never injected"
        files = {f["date"]: f for f in r["files"]}
        assert files["2024-12-27"]["attempts"] >= 2  # the 403 was retried by us
    finally:
        proxy.stop()


def test_permanent_faults_fail_with_a_clear_summary(run_qlake, s3, bucket, mirror, tmp_path):
    proxy = FaultProxy(s3.port)
    try:
        proxy.add_rule(key_for("stocks_daily", "2024-12-23"), [500], repeat_last=True)
        proxy.add_rule(key_for("stocks_daily", "2024-12-24"), [403], repeat_last=True)
        env = env_for(proxy.endpoint, bucket, QLAKE_FETCH__RETRIES="3",
                      QLAKE_S3__RETRIES="2")
        cache = tmp_path / "cache"
        p = run_qlake("fetch", "--dataset", "stocks_daily", "--from", FROM, "--to", TO,
                      "--cache", cache, env=env, check=False)
        assert p.returncode == 7, p.stderr  # partial: the other days are in the cache
        assert "2 of 5 stocks_daily files failed" in p.stderr
        assert "2024-12-23 failed: gave up after 3 attempts" in p.stderr
        assert "2024-12-24 failed: access denied (HTTP 403)" in p.stderr
        assert "not in your plan or bad credentials" in p.stderr
        ok = [d for d in SESSIONS if d not in ("2024-12-23", "2024-12-24")]
        check_cache_against_server(s3, bucket, cache, mirror, "stocks_daily", ok)
    finally:
        proxy.stop()


def test_not_published_yet_and_latest(run_qlake, s3, bucket, tmp_path):
    s3.delete(key_for("stocks_daily", "2024-12-27"), bucket)
    env = env_for(s3.endpoint, bucket)
    cache = tmp_path / "cache"
    p, r = fetch_json(run_qlake, env, "--dataset", "stocks_daily", "--date", "2024-12-27",
                      "--cache", cache, check=False)
    assert p.returncode == 5
    assert r["files"][0]["status"] == "not-published"
    assert "not published yet" in p.stderr
    # --latest: the newest expected day is late, which is fine; the newest listed one comes.
    p, r = fetch_json(run_qlake, env, "--dataset", "stocks_daily", "--latest",
                      "--as-of", "2024-12-28", "--cache", cache)
    st = {f["date"]: (f["status"], f["tolerated"]) for f in r["files"]}
    assert st["2024-12-27"] == ("not-published", True)
    assert st["2024-12-26"] == ("downloaded", False)
    assert "2024-12-23" not in st
    # --last 3 up to 12-27: 12-24, 12-26 (12-25 is a holiday) and the late 12-27.
    p, r = fetch_json(run_qlake, env, "--dataset", "stocks_daily", "--last", "3",
                      "--as-of", "2024-12-27", "--cache", cache)
    st = {f["date"]: f["status"] for f in r["files"]}
    assert st == {"2024-12-24": "downloaded", "2024-12-25": "skipped",
                  "2024-12-26": "unchanged", "2024-12-27": "not-published"}


def test_republished_file_is_refetched_and_reingested(run_qlake, s3, bucket, mirror,
                                                       tmp_path):
    env = env_for(s3.endpoint, bucket)
    cache, lake = tmp_path / "cache", tmp_path / "lake"
    fetch_json(run_qlake, env, "--dataset", "stocks_daily", "--from", FROM, "--to", TO,
               "--cache", cache)
    ing = ["ingest", "--dataset", "stocks_daily", "--from", FROM, "--to", TO,
           "--source", cache, "--lake", lake, "--json", "--changed-only"]
    first = json.loads(run_qlake(*ing).stdout)
    assert [d["unchanged"] for d in first["days"]] == [False] * 5

    # Republish 12-23 with one row less.
    key = key_for("stocks_daily", "2024-12-23")
    lines = gzip.decompress((mirror / key).read_bytes()).decode().splitlines(True)
    s3.put(key, gzip.compress("".join(lines[:-1]).encode()), bucket)
    head = s3.head(key, bucket)

    p, r = fetch_json(run_qlake, env, "--dataset", "stocks_daily", "--from", FROM, "--to",
                      TO, "--cache", cache)
    assert r["republished_days"] == ["2024-12-23"]
    assert r["counts"]["unchanged"] == 4
    f = {x["date"]: x for x in r["files"]}["2024-12-23"]
    assert f["replaced"]["size"] == (mirror / key).stat().st_size
    assert f["etag"] == head["ETag"]
    latest = [e for e in manifest_lines(cache) if e["key"] == key][-1]
    assert latest["size"] == head["ContentLength"] and "replaced" in latest

    # catalog days sees the lake's commit of 12-23 as stale...
    days = json.loads(run_qlake("catalog", "days", "--dataset", "stocks_daily", "--from",
                                "2024-12-23", "--to", "2024-12-24", "--lake", lake,
                                "--json", env=env).stdout)["days"]
    assert [d["lake"] for d in days] == ["stale", "committed"]
    # ... and ingest --changed-only re-commits exactly that day.
    second = json.loads(run_qlake(*ing).stdout)
    changed = [d["date"] for d in second["days"] if not d["unchanged"]]
    assert changed == ["2024-12-23"]
    d23 = {d["date"]: d for d in second["days"]}["2024-12-23"]
    assert d23["read"] == len(lines) - 2  # header and the dropped row
    record = json.loads((lake / "_qlake" / "stocks_daily" / "commits" /
                         "2024-12-23.json").read_text())
    assert record["source"]["size"] == head["ContentLength"]


def test_interrupted_download_resumes_or_restarts(run_qlake, s3, bucket, mirror, tmp_path):
    env = env_for(s3.endpoint, bucket, QLAKE_FETCH__CHUNK_BYTES="64KiB")
    cache = tmp_path / "cache"
    k1, k2 = key_for("stocks_minute", "2024-12-20"), key_for("stocks_minute", "2024-12-23")
    body1 = (mirror / k1).read_bytes()
    h1 = s3.head(k1, bucket)
    part1 = cache / (k1 + ".qlake-part")
    part1.parent.mkdir(parents=True)
    half = len(body1) // 2
    part1.write_bytes(body1[:half])
    Path(str(part1) + ".json").write_text(json.dumps({
        "key": k1, "size": len(body1), "etag": h1["ETag"],
        "last_modified": h1["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ")}))
    # A part file of another version (stale sidecar) must be thrown away, not resumed.
    part2 = cache / (k2 + ".qlake-part")
    part2.write_bytes(b"garbage" * 1000)
    Path(str(part2) + ".json").write_text(json.dumps({
        "key": k2, "size": 1, "etag": "\"old\"", "last_modified": "2020-01-01T00:00:00Z"}))
    p, r = fetch_json(run_qlake, env, "--dataset", "stocks_minute", "--from", "2024-12-20",
                      "--to", "2024-12-23", "--cache", cache)
    f = {x["date"]: x for x in r["files"]}
    assert f["2024-12-20"]["resumed"] and f["2024-12-20"]["bytes"] == len(body1) - half
    assert not f["2024-12-23"]["resumed"]
    check_cache_against_server(s3, bucket, cache, mirror, "stocks_minute",
                               ["2024-12-20", "2024-12-23"])


def test_secrets_never_appear_in_any_output(run_qlake, s3, bucket, tmp_path):
    proxy = FaultProxy(s3.port)
    try:
        proxy.add_rule(key_for("stocks_daily", "2024-12-24"), [403], repeat_last=True)
        env = env_for(proxy.endpoint, bucket, QLAKE_FETCH__FORBIDDEN_RETRIES="2")
        cache, lake = tmp_path / "cache", tmp_path / "lake"
        outs = []
        for args in (
            ["-vv", "fetch", "--dataset", "stocks_daily", "--from", FROM, "--to", TO,
             "--cache", cache],
            ["-vv", "fetch", "--json", "--dataset", "stocks_daily", "--from", FROM,
             "--to", TO, "--cache", cache],
            ["-vv", "--log-format", "json", "ingest", "--dataset", "stocks_daily",
             "--from", FROM, "--to", TO, "--source", f"s3://{bucket}", "--lake", lake],
            ["-vv", "catalog", "days", "--dataset", "stocks_daily", "--from", FROM,
             "--to", TO, "--lake", lake],
            ["config", "show"],
            ["config", "show", "--json"],
            ["-vv", "fetch", "--dataset", "stocks_daily", "--date", "2024-12-24",
             "--cache", cache, "--set", f"s3.secret_access_key={SECRET_KEY}"],
        ):
            p = run_qlake(*args, env=env, check=False)
            outs += [p.stdout, p.stderr]
        # A bad profile and half a key pair: errors must not echo the secret either.
        p = run_qlake("fetch", "--dataset", "stocks_daily", "--date", "2024-12-24",
                      "--cache", cache, check=False,
                      env={**env, "QLAKE_S3_ACCESS_KEY_ID": ""})
        outs += [p.stdout, p.stderr]
        assert any("****" in o for o in outs)  # config show masks it
        for o in outs:
            assert SECRET_KEY not in o
        for f in itertools.chain(cache.rglob("*"), lake.rglob("*")):
            if f.is_file() and f.suffix in (".json", ".jsonl", ".txt", ".log", ""):
                assert SECRET_KEY.encode() not in f.read_bytes(), f
    finally:
        proxy.stop()


def test_credentials_from_a_profile_file(run_qlake, s3, bucket, tmp_path):
    creds = tmp_path / "aws_credentials"
    creds.write_text(f"[massive]\naws_access_key_id = {ACCESS_KEY}\n"
                     f"aws_secret_access_key = {SECRET_KEY}\n")
    env = {"QLAKE_S3_ENDPOINT": s3.endpoint, "QLAKE_S3_BUCKET": bucket,
           "AWS_SHARED_CREDENTIALS_FILE": str(creds)}
    p = run_qlake("-v", "fetch", "--dataset", "stocks_daily", "--date", "2024-12-23",
                  "--cache", tmp_path / "c", "--profile", "massive", env=env)
    assert "credentials from profile 'massive'" in p.stderr
    assert SECRET_KEY not in p.stderr + p.stdout
    p = run_qlake("fetch", "--dataset", "stocks_daily", "--date", "2024-12-23",
                  "--cache", tmp_path / "c", "--profile", "nope", env=env, check=False)
    assert p.returncode == 3 and "profile 'nope' not found" in p.stderr


def test_fetch_help_documents_the_real_bucket(run_qlake):
    p = run_qlake("fetch", "--help")
    for s in ("QLAKE_S3_ACCESS_KEY_ID", "QLAKE_S3_SECRET_ACCESS_KEY", "--profile",
              "files.massive.com", "not the REST API key", "--latest"):
        assert s in p.stdout, s
