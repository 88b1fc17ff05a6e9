"""qlake.qlib_export and qlake.sync: the Python wrappers do what the CLI does, with the same
options and the same error messages."""

import json
from pathlib import Path

import pytest

from pipeline_util import normalized

NOW = "2025-01-10T22:00:00Z"


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """The in-process module reads its configuration like the CLI: keep the developer's own
    config and QLAKE_* variables out, and run from an empty folder (no ./qlake.yaml)."""
    import os

    for k in list(os.environ):
        if k.startswith(("QLAKE_", "AWS_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return tmp_path


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("freq,extra_cli,extra_py", [
    ("day", [], {}),
    ("1min", ["--symbols", "AAPL,MSFT,SPY", "--market", "mine", "--session", "extended",
              "--from", "2025-01-03", "--to", "2025-01-07"],
     dict(symbols=["AAPL", "MSFT", "SPY"], market="mine", session="extended",
          start="2025-01-03", end="2025-01-07")),
])
def test_qlib_export_equals_the_cli_bytes(qlake_module, query_lakes, run_qlake, isolated,
                                          freq, extra_cli, extra_py):
    lake = query_lakes["daily"]
    cli_out, py_out = isolated / "cli", isolated / "py"
    proc = run_qlake("-q", "qlib", "export", "--lake", lake, "--out", cli_out, "--freq", freq,
                     "--no-fsync", "--json", *extra_cli)
    report = qlake_module.qlib_export(str(py_out), lake=str(lake), freq=freq, fsync=False,
                                      **extra_py)
    assert report["rebuilt"] and report["bars"] > 0 and report["symbols"] > 0
    cli_report = json.loads(proc.stdout)
    assert set(report) == set(cli_report)
    assert {k: v for k, v in report.items() if k not in ("out", "seconds")} == \
        {k: v for k, v in cli_report.items() if k not in ("out", "seconds")}
    cli, py = tree(cli_out), tree(py_out)
    assert any(k.startswith("features/") for k in py)
    assert set(py) == set(cli)
    differ = [k for k in py if py[k] != cli[k]]
    # The manifest records the output folder it was written to; all else is byte-equal.
    assert differ in ([], [".qlake/qlib.json"]), differ
    # A second export has nothing to append; days of an explicit range are exported again
    # in place (as the CLI documents).
    again = qlake_module.qlib_export(str(py_out), lake=str(lake), freq=freq, fsync=False,
                                     **extra_py)
    assert again["days_appended"] == 0
    assert again["days_rewritten"] == (3 if "start" in extra_py else 0)
    assert tree(py_out) == py


def test_qlib_export_errors_carry_the_cli_message(qlake_module, query_lakes, run_qlake,
                                                  isolated):
    lake = query_lakes["daily"]
    for cli_args, kwargs in (
        (["--market", "Bad-Market"], dict(market="Bad-Market")),
        (["--from", "2024-12-02", "--to", "2025-01-08"], dict(start="2024-12-02",
                                                              end="2025-01-08")),
        (["--fields", "nope"], dict(fields=["nope"])),
    ):
        with pytest.raises(ValueError) as info:
            qlake_module.qlib_export(str(isolated / "x"), lake=str(lake), **kwargs)
        proc = run_qlake("qlib", "export", "--lake", lake, "--out", isolated / "y",
                         *cli_args, check=False)
        assert proc.returncode != 0
        assert proc.stderr.strip().splitlines()[-1] == f"qlake: error: {info.value}"
    with pytest.raises(ValueError, match="freq"):
        qlake_module.qlib_export(str(isolated / "x"), lake=str(lake), freq="weekly")


def test_sync_equals_the_cli_and_then_has_nothing_to_do(qlake_module, query_lakes, run_qlake,
                                                        isolated):
    mirror = query_lakes["daily"].parent / "mirror"
    cli_lake, py_lake = isolated / "cli_lake", isolated / "py_lake"
    run_qlake("-q", "sync", "--source", mirror, "--lake", cli_lake, "--datasets",
              "stocks_daily,stocks_minute", "--now", NOW)
    report = qlake_module.sync(source=str(mirror), lake=str(py_lake),
                               datasets=["stocks_daily", "stocks_minute"], now=NOW, jobs=2)
    assert report["status"] == "ok" and report["committed_days"] == 10, report["status"]
    assert [d["dataset"] for d in report["datasets"]] == ["stocks_daily", "stocks_minute"]
    datasets = ["stocks_daily", "stocks_minute"]
    assert normalized(py_lake, datasets) == normalized(cli_lake, datasets)
    again = qlake_module.sync(source=str(mirror), lake=str(py_lake), datasets="stocks_daily",
                              now=NOW)
    assert again["status"] == "nothing_to_do"
    # The synced lake answers queries.
    t = qlake_module.query(str(py_lake), "stocks_daily", ["AAPL"], "2025-01-01", "2025-01-31")
    assert t.num_rows == 5


def test_sync_errors_carry_the_cli_message(qlake_module, query_lakes, run_qlake, isolated):
    mirror = query_lakes["daily"].parent / "mirror"
    for cli_args, kwargs, exc in (
        (["--now", "yesterday"], dict(now="yesterday"), ValueError),
        (["--qlib", f"{isolated}/q:weekly"], dict(qlib=[f"{isolated}/q:weekly"]), ValueError),
        ([], dict(source=str(isolated / "none")), OSError),
    ):
        call = dict(source=str(mirror), lake=str(isolated / "lake"), datasets="stocks_daily")
        call.update(kwargs)
        with pytest.raises(exc) as info:
            qlake_module.sync(**call)
        args = ["sync", "--source", call["source"], "--lake", call["lake"], "--datasets",
                "stocks_daily", *cli_args]
        proc = run_qlake(*args, check=False)
        assert proc.returncode != 0
        assert proc.stderr.strip().splitlines()[-1] == f"qlake: error: {info.value}"
