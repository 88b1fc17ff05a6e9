"""`qlake init / sync / backfill / status` end to end on synthetic mirrors: idempotence,
new and republished days, the one-writer lock (exit code 6) and stale-lock takeover,
sharded backfill, run reports, metrics, and alerts delivered to a local HTTP receiver and
to a command. docs/pipeline.md describes the behaviour checked here."""

import fcntl
import json
import os
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest

from pipeline_util import (check_day_files, normalized, read_json, records, run_reports,
                           write_project)

DATASETS = ["stocks_daily", "stocks_minute"]
FROM, TO = "2025-01-02", "2025-01-10"  # sessions 01-02 03 06 07 08 10 (01-09 closed)
SESSIONS = ["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08", "2025-01-10"]
NOW = "2025-01-10T22:00:00Z"  # 01-10 is not due yet (due 01-11 11:00 ET)


@pytest.fixture(scope="module")
def mirror(qlake_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    out = root / "mirror"
    subprocess.run([str(qlake_bin), "synth", "-q", "--out", str(out), "--from", FROM, "--to", TO,
                    "--scale", "0.02", "--datasets", ",".join(DATASETS)], check=True)
    other = root / "mirror-seed7"
    subprocess.run([str(qlake_bin), "synth", "-q", "--out", str(other), "--from", FROM, "--to",
                    TO, "--scale", "0.02", "--seed", "7", "--datasets", ",".join(DATASETS)],
                   check=True)
    return out, other


def key(dataset: str, day: str) -> str:
    feed = "day_aggs_v1" if dataset.endswith("daily") else "minute_aggs_v1"
    return f"us_stocks_sip/{feed}/{day[:4]}/{day[5:7]}/{day}.csv.gz"


def copy_mirror(src: Path, dst: Path, days=None):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("_synth"))
    if days is not None:
        for p in list(dst.rglob("*.csv.gz")):
            if p.name[:10] not in days:
                p.unlink()
    return dst


def test_init_then_sync_then_nothing_to_do(run_qlake, mirror, tmp_path):
    src, _ = mirror
    proj = tmp_path / "proj"
    proj.mkdir()
    run_qlake("init", "--source", src, "--lake", "lake", "--datasets", ",".join(DATASETS),
              cwd=proj)
    assert "max_quarantine_rate" in (proj / "qlake.yaml").read_text()
    again = run_qlake("init", cwd=proj, check=False)
    assert again.returncode == 3 and "already exists" in again.stderr

    first = run_qlake("sync", "--now", NOW, cwd=proj)
    assert "qlake sync ok: 12 day(s) committed, 0 failed" in first.stdout, first.stdout
    lake = proj / "lake"
    for ds in DATASETS:
        assert sorted(records(lake, ds)) == SESSIONS
        wm = read_json(lake / "_qlake" / ds / "watermark.json")
        assert wm["watermark"] == "2025-01-10"
    # DuckDB (an independent reader) sees every row the records count.
    [(n,)] = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/stocks_minute/**/*.parquet')"
                        ).fetchall()
    assert n == sum(r["rows"]["written"] for r in records(lake, "stocks_minute").values())

    before = normalized(lake, DATASETS)
    second = run_qlake("sync", "--now", NOW, cwd=proj)
    assert "nothing to do: stocks_daily, stocks_minute up to date through 2025-01-10" in \
        second.stdout, second.stdout
    assert normalized(lake, DATASETS) == before
    # The data files were not even rewritten.
    assert {k: v for k, v in before.items()} == normalized(lake, DATASETS)

    reports = run_reports(lake)
    assert [r["status"] for r in reports] == ["ok", "nothing_to_do"]
    ok = reports[0]
    assert ok["format"] == "qlake.run.v1" and ok["committed_days"] == 12
    day = ok["datasets"][1]["days"][0]
    assert day["reason"] == "new" and day["stages"][0]["stage"] == "ingest"
    ing = day["stages"][0]
    assert ing["rows_read"] == ing["rows_written"] + ing["rows_quarantined"] + ing["rows_filtered"]
    assert ing["bytes_in"] > 0 and ing["bytes_out"] > 0 and ing["seconds"] > 0
    assert ok["peak_rss_bytes"] > 0


def test_new_day_and_republished_day(run_qlake, mirror, tmp_path):
    src, other = mirror
    m = copy_mirror(src, tmp_path / "m", days=SESSIONS[:4])
    proj = tmp_path / "proj"
    write_project(proj, m, DATASETS)
    run_qlake("sync", "--now", NOW, cwd=proj)
    lake = proj / "lake"
    assert sorted(records(lake, "stocks_minute")) == SESSIONS[:4]

    # The next day appears in the listing: only it is done.
    for ds in DATASETS:
        for day in SESSIONS[4:5]:
            dst = m / key(ds, day)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / key(ds, day), dst)
    out = run_qlake("sync", "--now", NOW, "--json", cwd=proj)
    rep = json.loads(out.stdout)
    assert [(d["dataset"], [x["day"] for x in d["days"]], [x["reason"] for x in d["days"]])
            for d in rep["datasets"]] == [(ds, ["2025-01-08"], ["new"]) for ds in DATASETS]

    # A past day is republished (different bytes): status sees it, sync re-commits it.
    day = "2025-01-06"
    old_record = records(lake, "stocks_minute")[day]
    shutil.copy(other / key("stocks_minute", day), m / key("stocks_minute", day))
    st = json.loads(run_qlake("status", "--json", "--now", NOW, cwd=proj).stdout)
    minute = {d["dataset"]: d for d in st["datasets"]}["stocks_minute"]
    assert minute["republished"] == [day] and minute["republished_count"] == 1
    out = run_qlake("sync", "--now", NOW, "--json", cwd=proj)
    rep = json.loads(out.stdout)
    done = {d["dataset"]: d["days"] for d in rep["datasets"]}
    assert [(x["day"], x["reason"]) for x in done["stocks_minute"]] == [(day, "republished")]
    assert done["stocks_daily"] == []
    new_record = records(lake, "stocks_minute")[day]
    assert new_record["source"]["size"] == (m / key("stocks_minute", day)).stat().st_size
    assert new_record["files"] != old_record["files"]
    check_day_files(lake, "stocks_minute", new_record, day)
    assert "nothing to do" in run_qlake("sync", "--now", NOW, cwd=proj).stdout


def test_lock_held_exits_6_and_stale_lock_is_taken_over(run_qlake, mirror, tmp_path):
    src, _ = mirror
    m = copy_mirror(src, tmp_path / "m", days=SESSIONS[:2])
    proj = tmp_path / "proj"
    write_project(proj, m, ["stocks_daily"])
    lock = proj / "lake" / "_qlake" / "lock"
    lock.parent.mkdir(parents=True)
    # A live holder: another process keeps the flock.
    holder = subprocess.Popen(
        ["python3", "-c",
         "import fcntl,json,os,sys,time\n"
         f"f=open({str(lock)!r},'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
         "f.truncate(0); f.write(json.dumps({'pid': os.getpid(), 'host': 'h1', "
         "'started_at': '2025-01-10T12:00:00Z', 'command': 'sync'})+'\\n'); f.flush()\n"
         "print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = run_qlake("sync", cwd=proj, check=False)
        assert refused.returncode == 6, refused.stderr
        assert f"pid {holder.pid} on host h1" in refused.stderr
        assert "locked" in refused.stderr and refused.stderr.count("\n") == 1
        st = json.loads(run_qlake("status", "--json", cwd=proj).stdout)
        assert f"pid {holder.pid}" in st["locked_by"]
        assert not (proj / "lake" / "_qlake" / "stocks_daily").exists()
        # A sharded backfill is refused as well.
        b = run_qlake("backfill", "--dataset", "stocks_daily", "--from", FROM, "--to", TO,
                      "--shard", "1/2", cwd=proj, check=False)
        assert b.returncode == 6
    finally:
        holder.kill()
        holder.wait()
    # The holder died without cleaning up: its content stays, the flock is gone.
    assert json.loads(lock.read_text())["pid"] == holder.pid
    out = run_qlake("sync", cwd=proj)
    assert f"took over a stale lock of pid {holder.pid}" in out.stdout
    assert lock.read_text() == ""  # released cleanly
    assert sorted(records(proj / "lake", "stocks_daily")) == SESSIONS[:2]


def test_sharded_backfill_equals_one_sync(run_qlake, mirror, tmp_path, qlake_bin):
    src, _ = mirror
    ref = tmp_path / "ref"
    write_project(ref, src, ["stocks_minute"])
    run_qlake("sync", "--now", NOW, cwd=ref)

    proj = tmp_path / "proj"
    write_project(proj, src, ["stocks_minute"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
    env["HOME"] = str(tmp_path)
    procs = [subprocess.Popen([str(qlake_bin), "backfill", "--dataset", "stocks_minute", "--from",
                               FROM, "--to", TO, "--shard", f"{i}/3", "--json"],
                              cwd=proj, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in (1, 2, 3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    shards = [json.loads(o) for o, _ in outs]
    days = [[d["day"] for d in s["datasets"][0]["days"]] for s in shards]
    assert days == [SESSIONS[0::3], SESSIONS[1::3], SESSIONS[2::3]]
    assert [s["shard"] for s in shards] == ["1/3", "2/3", "3/3"]
    lake = proj / "lake"
    assert read_json(lake / "_qlake" / "stocks_minute" / "watermark.json")["watermark"] == \
        "2025-01-10"
    # Shards leave the features (a look-back across days other shards own) to the next
    # sync, which catches up every committed day; then the lake equals the reference.
    assert "dataset stages" in " ".join(shards[0]["warnings"])
    assert not (lake / "features").exists()
    after = json.loads(run_qlake("sync", "--json", "--now", NOW, cwd=proj).stdout)
    assert after["datasets"][0]["days"] == []
    assert after["datasets"][0]["stages"][0]["stage"] == "features"
    assert normalized(lake, ["stocks_minute"]) == normalized(ref / "lake", ["stocks_minute"])
    # A rerun of a shard finds its days committed from the same files.
    again = run_qlake("backfill", "--dataset", "stocks_minute", "--from", FROM, "--to", TO,
                      "--shard", "2/3", cwd=proj)
    assert "nothing to do" in again.stdout
    forced = json.loads(run_qlake("backfill", "--dataset", "stocks_minute", "--from", "2025-01-03",
                                  "--to", "2025-01-03", "--force", "--json", cwd=proj).stdout)
    assert [d["reason"] for d in forced["datasets"][0]["days"]] == ["forced"]
    assert normalized(lake, ["stocks_minute"]) == normalized(ref / "lake", ["stocks_minute"])


def test_status_text_and_metrics_file(run_qlake, mirror, tmp_path):
    src, _ = mirror
    m = copy_mirror(src, tmp_path / "m", days=SESSIONS[:3])
    proj = tmp_path / "proj"
    write_project(proj, m, DATASETS)
    metrics = tmp_path / "qlake.prom"
    run_qlake("sync", "--metrics-file", metrics, "--now", NOW, cwd=proj)
    text = metrics.read_text()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert samples['qlake_last_run_success{command="sync"}'] == 1
    assert samples['qlake_run_days_committed{dataset="stocks_minute"}'] == 3
    assert samples['qlake_run_rows_written{dataset="stocks_daily"}'] > 0
    assert samples['qlake_run_stage_seconds{dataset="stocks_minute",stage="ingest"}'] > 0
    assert 'qlake_last_success_timestamp_seconds{dataset="stocks_daily"}' in samples
    # Days 01-07 and 01-08 are past their publish time on NOW and not in the mirror.
    assert samples['qlake_missing_days{dataset="stocks_daily"}'] == 2

    out = run_qlake("status", "--now", NOW, cwd=proj).stdout
    assert "dataset" in out and "watermark" in out
    row = next(line for line in out.splitlines() if line.startswith("stocks_minute"))
    assert "2025-01-02" in row and "2025-01-06" in row
    assert "2 day(s) missing past their publish time, 2025-01-07 .. 2025-01-08" in out
    st = json.loads(run_qlake("status", "--json", "--now", NOW, cwd=proj).stdout)
    d = {x["dataset"]: x for x in st["datasets"]}["stocks_minute"]
    assert d["watermark"] == "2025-01-06" and d["committed_days"] == 3
    assert d["missing"] == ["2025-01-07", "2025-01-08"] and d["pending"] == []
    assert d["last_run"]["status"] == "ok" and st["locked_by"] is None


class Receiver:
    """A local HTTP server that records POSTed JSON bodies."""

    def __init__(self, status=200):
        self.bodies = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers["Content-Length"])
                outer.bodies.append((self.headers["Content-Type"], json.loads(self.rfile.read(n))))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_alerts_reach_a_webhook_and_a_command(run_qlake, mirror, tmp_path, qlake_bin):
    src, _ = mirror
    faulty = tmp_path / "faulty"
    subprocess.run([str(qlake_bin), "synth", "-q", "--out", str(faulty), "--from", FROM, "--to",
                    "2025-01-07", "--scale", "0.02", "--datasets", "stocks_daily",
                    "--faults", "duplicate_rows,negative_volume"], check=True)
    # 01-03 is corrupt (truncated gzip), 01-06 is missing although 01-07 is published.
    bad = faulty / key("stocks_daily", "2025-01-03")
    bad.write_bytes(bad.read_bytes()[:200])
    (faulty / key("stocks_daily", "2025-01-06")).unlink()
    rx = Receiver()
    try:
        proj = tmp_path / "proj"
        write_project(proj, faulty, ["stocks_daily"], extra=(
            "alerts:\n"
            f"  webhook: {rx.url}\n"
            f"  command: cat > {tmp_path}/alert.json\n"
            "  max_quarantine_rate: 0.0001\n"))
        out = run_qlake("sync", "--now", NOW, cwd=proj, check=False)
        assert out.returncode == 7, out.stderr  # partial: some days failed
        assert len(rx.bodies) == 1
        ctype, doc = rx.bodies[0]
        assert ctype == "application/json" and doc["format"] == "qlake.alert.v1"
        kinds = {(a["kind"], a["day"]) for a in doc["alerts"]}
        assert ("failure", "2025-01-03") in kinds
        assert ("missing_day", "2025-01-06") in kinds
        assert any(k == "quarantine_rate" for k, _ in kinds)
        assert json.loads((tmp_path / "alert.json").read_text()) == doc
        rep = run_reports(proj / "lake")[-1]
        assert rep["status"] == "partial"
        assert {d["target"]: d["ok"] for d in rep["deliveries"]} == {"command": True,
                                                                      "webhook": True}
        # The day that failed left nothing; the others are committed.
        assert sorted(records(proj / "lake", "stocks_daily")) == ["2025-01-02", "2025-01-07"]
    finally:
        rx.close()


def test_failed_webhook_is_reported_not_fatal(run_qlake, mirror, tmp_path):
    src, _ = mirror
    m = copy_mirror(src, tmp_path / "m", days=SESSIONS[:1])
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proj = tmp_path / "proj"
    write_project(proj, m, ["stocks_daily"], extra=(
        f"alerts:\n  webhook: http://127.0.0.1:{port}/x\n  timeout_seconds: 5\n"))
    # NOW is past 01-03's deadline... only with a later clock: 01-03 is then missing.
    out = run_qlake("sync", "--now", "2025-01-06T12:00:00Z", cwd=proj)
    assert "alert missing_day" in out.stdout and "delivery via webhook failed" in out.stdout
    rep = run_reports(proj / "lake")[-1]
    assert rep["status"] == "ok" and rep["deliveries"][0]["ok"] is False


def test_project_errors_are_clear(run_qlake, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    missing = run_qlake("sync", "--project", proj / "nope.yaml", check=False)
    assert missing.returncode == 5 and "qlake init" in missing.stderr
    (proj / "qlake.yaml").write_text("source: m\nlake: l\nalerts:\n  webhok: http://x\n")
    bad = run_qlake("sync", cwd=proj, check=False)
    assert bad.returncode == 3
    assert "qlake.yaml:4: unknown key 'webhok' in alerts" in bad.stderr
