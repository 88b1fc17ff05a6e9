"""`qlake sync` keeps the project's Qlib stores (day and 1min) up to date: the stores a sync
builds and appends to are byte-identical to a standalone `qlake qlib export` of the same lake
and load in real pyqlib with the lake's values; a second sync leaves them untouched and says
so; a republished day is re-committed and the stores are fixed up; a failing store fails the
run and is alerted. docs/pipeline.md ("Stages wired") describes the behaviour."""

import json
import shutil
import subprocess

import pytest

from pipeline_util import read_json, run_reports, write_project
from test_qlib import (QLIB_PY, assert_same_store, check_against_lake, day_calendar,
                       expected_day, expected_minute, minute_calendar, qlib_load, store_files)

pytestmark = pytest.mark.skipif(not QLIB_PY.exists(), reason=".venv-qlib missing")

DATASETS = ["stocks_daily", "stocks_minute"]
FROM, TO = "2025-01-02", "2025-01-10"
SESSIONS = ["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08", "2025-01-10"]
NOW = "2025-01-13T22:00:00Z"
STORES = "qlib:\n  - {path: qlib/day, freq: day}\n  - {path: qlib/min, freq: 1min}\n"


def key(dataset, day):
    feed = "day_aggs_v1" if dataset.endswith("daily") else "minute_aggs_v1"
    return f"us_stocks_sip/{feed}/{day[:4]}/{day[5:7]}/{day}.csv.gz"


@pytest.fixture(scope="module")
def mirrors(qlake_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("pqlib")
    for name, seed in (("mirror", "5"), ("other", "9")):
        subprocess.run([str(qlake_bin), "synth", "-q", "--out", str(root / name), "--from",
                        FROM, "--to", TO, "--scale", "0.02", "--seed", seed, "--datasets",
                        ",".join(DATASETS)], check=True)
    return root / "mirror", root / "other"


def standalone(run_qlake, lake, out, freq):
    if out.exists():
        shutil.rmtree(out)
    run_qlake("-q", "qlib", "export", "--lake", lake, "--out", out, "--freq", freq,
              "--no-fsync")


def qlib_stage(report):
    return {d["dataset"]: [s for s in d["stages"] if s["stage"] == "qlib"]
            for d in report["datasets"]}


def test_sync_builds_appends_and_fixes_qlib_stores(run_qlake, mirrors, tmp_path):
    src, other = mirrors
    m = tmp_path / "m"
    shutil.copytree(src, m, ignore=shutil.ignore_patterns("_synth"))
    for p in list(m.rglob("*.csv.gz")):
        if p.name[:10] not in SESSIONS[:4]:
            p.unlink()
    proj = tmp_path / "proj"
    write_project(proj, m, DATASETS, STORES)
    lake, day_store, min_store = proj / "lake", proj / "qlib/day", proj / "qlib/min"

    rep = json.loads(run_qlake("sync", "--now", NOW, "--json", cwd=proj).stdout)
    assert rep["status"] == "ok" and "qlib" in rep["stages"] and rep["stages_missing"] == []
    stages = qlib_stage(rep)
    assert [s["status"] for s in stages["stocks_daily"] + stages["stocks_minute"]] == ["ok"] * 2
    assert stages["stocks_daily"][0]["rows_written"] > 0
    assert stages["stocks_daily"][0]["bytes_out"] > 0
    assert "4 day(s) appended" in stages["stocks_minute"][0]["notes"][0]
    for store, freq in ((day_store, "day"), (min_store, "1min")):
        standalone(run_qlake, lake, tmp_path / f"ref-{freq}", freq)
        assert_same_store(tmp_path / f"ref-{freq}", store)

    # New days: appended by the next sync.
    for ds in DATASETS:
        for day in SESSIONS[4:]:
            shutil.copy2(src / key(ds, day), m / key(ds, day))
    rep = json.loads(run_qlake("sync", "--now", NOW, "--json", cwd=proj).stdout)
    assert rep["committed_days"] == 4
    assert "2 day(s) appended, 0 rewritten" in qlib_stage(rep)["stocks_daily"][0]["notes"][0]
    for store, freq in ((day_store, "day"), (min_store, "1min")):
        standalone(run_qlake, lake, tmp_path / f"ref-{freq}", freq)
        assert_same_store(tmp_path / f"ref-{freq}", store)
    got = qlib_load(day_store, "day", tmp_path / "day.npz")
    check_against_lake(got, expected_day(lake, TO), day_calendar(FROM, TO), "day")
    got = qlib_load(min_store, "1min", tmp_path / "min.npz")
    check_against_lake(got, expected_minute(lake, TO), minute_calendar(FROM, TO), "1min")

    # A second sync: nothing to do, the stores are not touched, and it says so.
    before = {s: store_files(s) for s in (day_store, min_store)}
    out = run_qlake("sync", "--now", NOW, cwd=proj).stdout
    assert "nothing to do" in out and "qlib: " in out and "up to date through 2025-01-10" in out
    last = run_reports(lake)[-1]
    assert last["status"] == "nothing_to_do" and len(last["notes"]) == 2
    assert all(qlib_stage(last)[ds] == [] for ds in DATASETS)
    assert {s: store_files(s) for s in (day_store, min_store)} == before

    # A past day is republished with other data: re-committed, and both stores fixed up.
    day = "2025-01-06"
    for ds in DATASETS:
        shutil.copy(other / key(ds, day), m / key(ds, day))
    rep = json.loads(run_qlake("sync", "--now", NOW, "--json", cwd=proj).stdout)
    assert [(d["dataset"], [(x["day"], x["reason"]) for x in d["days"]])
            for d in rep["datasets"]] == [(ds, [(day, "republished")]) for ds in DATASETS]
    for ds in DATASETS:
        assert "0 day(s) appended, 1 rewritten (1 re-committed" in \
            qlib_stage(rep)[ds][0]["notes"][0]
    for store, freq in ((day_store, "day"), (min_store, "1min")):
        standalone(run_qlake, lake, tmp_path / f"ref-{freq}", freq)
        assert_same_store(tmp_path / f"ref-{freq}", store)
    assert store_files(day_store) != before[day_store]
    got = qlib_load(day_store, "day", tmp_path / "day2.npz")
    check_against_lake(got, expected_day(lake, TO), day_calendar(FROM, TO), "day")
    assert "nothing to do" in run_qlake("sync", "--now", NOW, cwd=proj).stdout

    # status reports each store's calendar and instruments.
    st = json.loads(run_qlake("status", "--json", "--now", NOW, cwd=proj).stdout)
    q = {s["path"]: s for s in st["qlib"]}
    assert q[str(day_store)]["calendar_end"] == "2025-01-10"
    assert q[str(min_store)]["calendar_end"] == "2025-01-10 15:59:00"
    assert (q[str(min_store)]["calendar_days"], q[str(min_store)]["calendar_rows"]) == (6, 6 * 390)
    assert q[str(day_store)]["behind_days"] == q[str(min_store)]["behind_days"] == 0
    n = len((day_store / "instruments/all.txt").read_text().splitlines())
    assert q[str(day_store)]["symbols"] == n > 0


def test_backfill_updates_the_stores_and_a_failing_store_is_alerted(run_qlake, mirrors,
                                                                     tmp_path):
    src, _ = mirrors
    proj = tmp_path / "proj"
    log = tmp_path / "alerts.log"
    write_project(proj, src, DATASETS,
                  "qlib:\n  - {path: qlib/day, freq: day}\n  - {path: bad, freq: 1min}\n"
                  f"alerts: {{command: 'cat >> {log}'}}\n")
    (proj / "bad").mkdir()
    (proj / "bad" / "mine.txt").write_text("not a store")
    p = run_qlake("backfill", "--dataset", "stocks_daily", "--from", FROM, "--to", TO,
                  "--json", cwd=proj, check=False)
    rep = json.loads(p.stdout)
    # Only stocks_daily ran: the 1min store (stocks_minute) was not attempted.
    assert p.returncode == 0, p.stderr
    assert qlib_stage(rep)["stocks_daily"][0]["status"] == "ok"
    assert len((proj / "qlib/day/calendars/day.txt").read_text().split()) == 6

    p = run_qlake("backfill", "--dataset", "stocks_minute", "--from", FROM, "--to", TO,
                  "--json", cwd=proj, check=False)
    rep = json.loads(p.stdout)
    assert p.returncode == 7, p.stderr
    [stage] = qlib_stage(rep)["stocks_minute"]
    assert stage["status"] == "failed" and "not a qlake Qlib store" in stage["error"]
    assert rep["status"] == "partial"
    assert any(a["kind"] == "failure" and "qlib" in a["message"] for a in rep["alerts"])
    assert "stage qlib failed" in log.read_text()
    # The minute days were committed anyway, and the day store (vwap from the minute bars
    # committed after it was built) was fixed up by the same run.
    assert (proj / "bad" / "mine.txt").read_text() == "not a store"
    standalone(run_qlake, proj / "lake", tmp_path / "ref", "day")
    assert_same_store(tmp_path / "ref", proj / "qlib/day")
