"""Queries of a lake stored in S3 (a real moto S3 server): the CLI and the Python module give
the same rows as the same data ingested into a local lake."""

import json
import os
import subprocess
import sys

import pytest

from s3util import MotoS3, qlake_s3_env

FROM, TO = "2025-01-02", "2025-01-08"
BUCKET = "lakes"

QUERIES = [
    # (dataset, symbols, from, to, where)
    ("stocks_minute", "AAPL,MSFT", FROM, TO, "volume > 100"),
    ("stocks_daily", "", FROM, TO, ""),
    ("stocks_daily", "SPY,ZZZZ,AAPL", "2025-01-03", "2025-01-07", "close > 0"),
]


@pytest.fixture(scope="module")
def s3():
    server = MotoS3()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lakes(s3, qlake_bin, query_lakes, tmp_path_factory):
    """The same days ingested into s3://lakes/lake and into a local folder."""
    mirror = query_lakes["daily"].parent / "mirror"
    root = tmp_path_factory.mktemp("s3query")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
    env.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "xdg"),
               **qlake_s3_env(s3.endpoint))
    local = root / "lake"
    for ds in ("stocks_daily", "stocks_minute"):
        for lake in (f"s3://{BUCKET}/lake", str(local)):
            subprocess.run([str(qlake_bin), "-q", "ingest", "--dataset", ds, "--from", FROM,
                            "--to", TO, "--source", str(mirror), "--lake", lake],
                           check=True, env=env, capture_output=True, timeout=600)
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(k.startswith("lake/stocks_minute/") and k.endswith(".parquet") for k in keys)
    assert any(k.startswith("lake/_qlake/stocks_daily/commits/") for k in keys)
    return dict(s3=f"s3://{BUCKET}/lake", local=str(local), env=env)


def cli_query(qlake_bin, env, lake, dataset, symbols, start, end, where):
    args = [str(qlake_bin), "query", "--lake", lake, "--dataset", dataset, "--from", start,
            "--to", end, "--format", "csv", "--stats"]
    if symbols:
        args += ["--symbols", symbols]
    if where:
        args += ["--where", where]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("query", QUERIES)
def test_cli_query_of_s3_lake_equals_local(qlake_bin, lakes, query):
    s3 = cli_query(qlake_bin, lakes["env"], lakes["s3"], *query)
    local = cli_query(qlake_bin, lakes["env"], lakes["local"], *query)
    assert s3.stdout == local.stdout
    assert s3.stdout.count("\n") > 1, s3.stdout[:200]
    assert "bytes read" in s3.stderr and " 0 bytes read" not in s3.stderr


def test_module_query_of_s3_lake_equals_local(qlake_module, lakes):
    # A new process: the module reads its S3 settings (the environment) on first use.
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.dirname(qlake_module.__file__))!r})\n"
        "import qlake, pyarrow as pa\n"
        "queries, s3, local = json.loads(sys.argv[1])\n"
        "out = []\n"
        "for ds, syms, a, b, where in queries:\n"
        "    remote = qlake.Lake(s3)\n"
        "    t1 = remote.read(ds, syms or None, a, b, where=where or None)\n"
        "    cold = dict(remote.last_stats)\n"
        "    t1b = remote.read(ds, syms or None, a, b, where=where or None)\n"
        "    warm = dict(remote.last_stats)\n"
        "    t2 = qlake.query(local, ds, syms or None, a, b, where=where or None)\n"
        "    out.append(dict(rows=t1.num_rows, equal=t1.equals(t2) and t1b.equals(t2),\n"
        "                    cold_bytes=cold['bytes_read'], warm_bytes=warm['bytes_read'],\n"
        "                    warm_misses=warm['cache_misses']))\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps([QUERIES, lakes["s3"], lakes["local"]])],
        capture_output=True, text=True, env=lakes["env"], timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for q, r in zip(QUERIES, results):
        assert r["rows"] > 0 and r["equal"], (q, r)
        assert r["cold_bytes"] > 0 and r["warm_bytes"] == 0 and r["warm_misses"] == 0, (q, r)


def test_missing_s3_lake_is_an_error(qlake_bin, lakes):
    proc = subprocess.run(
        [str(qlake_bin), "query", "--lake", f"s3://{BUCKET}/nolake", "--dataset",
         "stocks_daily", "--from", FROM, "--to", TO], capture_output=True, text=True,
        env=lakes["env"], timeout=300)
    assert proc.returncode != 0
    assert f"no lake at 's3://{BUCKET}/nolake'" in proc.stderr
