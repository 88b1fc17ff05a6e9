"""`qlake calendar` against exchange_calendars' XNYS, day by day, plus CLI error handling.

exchange_calendars is an independent, rule-plus-data implementation of the NYSE calendar
(it encodes the NYSE's historical closings list). For 2000-01-01..2035-12-31 every session,
every early close and every open/close instant must agree with it.

Where XNYS and the real NYSE could disagree we checked the NYSE's own record:
  * 1999-12-31 (outside the compared range, but in qlake's): XNYS has a 13:00 early close,
    pandas_market_calendars marks it "disputed". The NYSE board approved the 13:00 close
    for the Y2K rollover (press coverage of the 1999-06-03 board meeting), so qlake and
    XNYS are right; test_y2k_early_close below pins it.
  * 2025-12-26 (the Friday after Christmas): US federal offices closed by executive order,
    the NYSE did not. XNYS and qlake both list a full session.
No day in 2000..2035 needed an exception: the comparison below is exact.
"""

import datetime as dt
import json
import os
import subprocess

import pandas as pd
import pytest

xcals = pytest.importorskip("exchange_calendars")

FIRST = "2000-01-01"
LAST = "2035-12-31"


def _utc(ts) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def xnys():
    return xcals.get_calendar("XNYS", start=FIRST, end=LAST)


@pytest.fixture(scope="module")
def ours(qlake_bin, tmp_path_factory):
    """Every day of the range from `qlake calendar --json --closed`, keyed by date.

    Module-scoped (one run for all comparisons), so it isolates the environment itself the
    way conftest's run_qlake does.
    """
    home = tmp_path_factory.mktemp("calendar-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "xdg"))
    proc = subprocess.run(
        [str(qlake_bin), "calendar", "--from", FIRST, "--to", LAST, "--json", "--closed"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=home,
    )
    rows = json.loads(proc.stdout)
    return {r["date"]: r for r in rows}


def _sessions(rows):
    return {d: r for d, r in rows.items() if r["trading"]}


def test_sessions_equal_xnys(ours, xnys):
    mine = set(_sessions(ours))
    theirs = {str(s.date()) for s in xnys.sessions}
    assert len(theirs) > 9000
    assert sorted(mine - theirs) == [], "sessions qlake has and XNYS does not"
    assert sorted(theirs - mine) == [], "sessions XNYS has and qlake does not"


def test_every_weekday_is_a_session_or_a_named_closure(ours):
    day = dt.date.fromisoformat(FIRST)
    end = dt.date.fromisoformat(LAST)
    while day <= end:
        key = day.isoformat()
        if day.weekday() < 5:
            assert key in ours, f"{key} missing from --closed output"
            if not ours[key]["trading"]:
                assert ours[key]["reason"], f"{key} closed without a reason"
        else:
            assert key not in ours, f"weekend day {key} listed"
        day += dt.timedelta(days=1)


def test_closed_weekdays_equal_xnys_holidays(ours, xnys):
    mine = {d for d, r in ours.items() if not r["trading"]}
    # Weekdays in range that XNYS does not trade on.
    weekdays = pd.bdate_range(FIRST, LAST)
    theirs = {str(d.date()) for d in weekdays} - {str(s.date()) for s in xnys.sessions}
    assert mine == theirs


def test_early_closes_equal_xnys(ours, xnys):
    mine = {d: r["close_utc"] for d, r in _sessions(ours).items() if r["early_close"]}
    theirs = {str(s.date()): _utc(xnys.session_close(s)) for s in xnys.early_closes}
    assert len(theirs) > 70  # about two or three a year
    assert mine == theirs


def test_open_close_utc_equal_xnys_for_every_session(ours, xnys):
    sessions = _sessions(ours)
    opens = xnys.opens
    closes = xnys.closes
    mismatches = []
    for s in xnys.sessions:
        key = str(s.date())
        want = (_utc(opens[s]), _utc(closes[s]))
        got = (sessions[key]["open_utc"], sessions[key]["close_utc"])
        if want != got:
            mismatches.append((key, got, want))
    assert mismatches == []


@pytest.mark.parametrize(
    "day,open_utc,close_utc",
    [
        ("2024-03-08", "2024-03-08T14:30:00Z", "2024-03-08T21:00:00Z"),  # EST
        ("2024-03-11", "2024-03-11T13:30:00Z", "2024-03-11T20:00:00Z"),  # EDT
        ("2024-07-03", "2024-07-03T13:30:00Z", "2024-07-03T17:00:00Z"),  # early, EDT
        ("2024-11-29", "2024-11-29T14:30:00Z", "2024-11-29T18:00:00Z"),  # early, EST
        ("2006-04-03", "2006-04-03T13:30:00Z", "2006-04-03T20:00:00Z"),  # old DST rule
        ("2007-03-12", "2007-03-12T13:30:00Z", "2007-03-12T20:00:00Z"),  # new DST rule
    ],
)
def test_sample_open_close_utc(ours, xnys, day, open_utc, close_utc):
    row = ours[day]
    assert (row["open_utc"], row["close_utc"]) == (open_utc, close_utc)
    assert (_utc(xnys.session_open(day)), _utc(xnys.session_close(day))) == (
        open_utc,
        close_utc,
    )
    et_close = "13:00" if row["early_close"] else "16:00"
    assert (row["open_et"], row["close_et"]) == ("09:30", et_close)


def test_y2k_early_close(run_qlake):
    rows = json.loads(
        run_qlake("calendar", "--from", "1999-12-31", "--to", "1999-12-31", "--json").stdout
    )
    assert rows == [
        {
            "date": "1999-12-31",
            "weekday": "Fri",
            "trading": True,
            "open_et": "09:30",
            "close_et": "13:00",
            "open_utc": "1999-12-31T14:30:00Z",
            "close_utc": "1999-12-31T18:00:00Z",
            "early_close": True,
        }
    ]


# ---- text output and defaults -------------------------------------------------------------


def test_text_table(run_qlake):
    out = run_qlake("calendar", "--from", "2024-07-01", "--to", "2024-07-08", "--closed").stdout
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["date", "day"]
    by_date = {line.split()[0]: line for line in lines[1:-1]}
    assert set(by_date) == {
        "2024-07-01",
        "2024-07-02",
        "2024-07-03",
        "2024-07-04",
        "2024-07-05",
        "2024-07-08",
    }
    assert "13:00" in by_date["2024-07-03"] and "early close" in by_date["2024-07-03"]
    assert "2024-07-03T17:00:00Z" in by_date["2024-07-03"]
    assert "closed" in by_date["2024-07-04"] and "Independence Day" in by_date["2024-07-04"]
    # Aligned: the UTC open and close start in the same columns on every session line.
    session_lines = [line for line in lines[1:-1] if "T13:30" in line]
    assert len(session_lines) == 5
    assert len({line.index("T13:30") for line in session_lines}) == 1
    assert len({line.index("Z  2024") for line in session_lines}) == 1
    assert lines[-1].startswith("5 sessions (1 early close), 1 closed weekday")


def test_without_closed_lists_only_sessions(run_qlake):
    rows = json.loads(
        run_qlake("calendar", "--from", "2024-12-23", "--to", "2024-12-27", "--json").stdout
    )
    assert [r["date"] for r in rows] == ["2024-12-23", "2024-12-24", "2024-12-26", "2024-12-27"]
    assert all(r["trading"] for r in rows)


def test_only_from_runs_to_end_of_that_year(run_qlake):
    rows = json.loads(run_qlake("calendar", "--from", "2024-12-20", "--json").stdout)
    assert rows[0]["date"] == "2024-12-20"
    assert rows[-1]["date"] == "2024-12-31"


def test_only_to_starts_at_beginning_of_that_year(run_qlake):
    rows = json.loads(run_qlake("calendar", "--to", "2024-01-10", "--json").stdout)
    assert [r["date"] for r in rows][:2] == ["2024-01-02", "2024-01-03"]
    assert rows[-1]["date"] == "2024-01-10"


def test_no_flags_lists_the_current_year(run_qlake):
    rows = json.loads(run_qlake("calendar", "--json").stdout)
    years = {r["date"][:4] for r in rows}
    # The current New York year; allow for a run that straddles midnight UTC on Dec 31.
    today = dt.datetime.now(dt.timezone.utc)
    assert years <= {str(today.year), str(today.year - 1), str(today.year + 1)}
    assert len(years) == 1
    assert 245 <= len(rows) <= 254


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--from", "2024-02-30"], "2024-02-30"),
        (["--from", "2024-01-01", "--to", "20240131"], "20240131"),
        (["--to", "yesterday"], "yesterday"),
        (["--from", "1989-12-29", "--to", "1990-01-05"], "1989-12-29"),
        (["--from", "2035-12-01", "--to", "2036-01-02"], "2036-01-02"),
    ],
)
def test_bad_dates_exit_3_naming_the_date(run_qlake, args, needle):
    proc = run_qlake("calendar", *args, check=False)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("qlake: error: ")
    assert needle in proc.stderr
    assert proc.stdout == ""


def test_out_of_range_names_the_supported_range(run_qlake):
    proc = run_qlake("calendar", "--from", "1989-12-29", check=False)
    assert proc.returncode == 3
    assert "1990-01-01..2035-12-31" in proc.stderr


def test_from_after_to_is_invalid(run_qlake):
    proc = run_qlake("calendar", "--from", "2024-05-01", "--to", "2024-04-01", check=False)
    assert proc.returncode == 3
    assert "2024-05-01" in proc.stderr and "2024-04-01" in proc.stderr
    assert proc.stdout == ""
