"""`qlake features` against an independent pandas computation of every feature.

Synthetic flat files (`qlake synth`, scale 0.01) are ingested into a lake; the test then
recomputes each feature from the raw lake rows with pandas (pivot over NYSE sessions, shift,
rolling windows, group-bys — written here, not shared with qlake) and compares with the
feature datasets qlake wrote. The range covers Thanksgiving 2024 (a holiday), the early close
on 2024-11-29, names that list and delist mid-range (NWCO, DLST), names that miss days, and
first days (NaN look-back). Also: a day missing from the lake and ingested later, a raw day
re-committed with other data, and computing days one at a time == the range at once.
"""

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

FROM, TO = "2024-10-28", "2024-12-03"
MINUTE_DAYS = ["2024-11-27", "2024-11-29"]  # a full day, and the early close after Thanksgiving
OPTION_MINUTE_DAYS = ["2024-11-29"]
GAP = "2024-11-12"  # left out of the gap lake at first, ingested later
RECOMMIT = "2024-11-20"  # re-committed with other data (another seed)
WINDOW, MIN_PERIODS, LIQUID, K = 20, 10, 1e6, 5
RTOL = 1e-9  # both sides compute in float64 from the same float32 values


class Env:
    def __init__(self, run_qlake, root: Path):
        self.run = run_qlake
        self.root = root
        self.mirror = root / "mirror"
        self.mirror2 = root / "mirror_seed7"

    def ingest(self, dataset, lake, frm, to=None, source=None):
        self.run("ingest", "--dataset", dataset, "--from", frm, "--to", to or frm, "--source",
                 source or self.mirror, "--lake", lake, "--json")

    def features(self, dataset, lake, *args, check=True):
        p = self.run("features", "--dataset", dataset, "--lake", lake, "--json", *args,
                     check=check)
        return json.loads(p.stdout)


@pytest.fixture(scope="module")
def env(qlake_bin, tmp_path_factory):
    import subprocess, os

    root = tmp_path_factory.mktemp("features")

    def run(*args, check=True):
        e = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
        e["HOME"] = str(root / "home")
        e["XDG_CONFIG_HOME"] = str(root / "xdg")
        p = subprocess.run([str(qlake_bin), *map(str, args)], capture_output=True, text=True,
                           env=e, timeout=600)
        if check and p.returncode != 0:
            raise AssertionError(f"qlake {args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    env = Env(run, root)
    for ds, days in [("stocks_daily,options_daily", [(FROM, TO)]),
                     ("stocks_minute", [(d, d) for d in MINUTE_DAYS]),
                     ("options_minute", [(d, d) for d in OPTION_MINUTE_DAYS])]:
        for frm, to in days:
            run("synth", "--out", env.mirror, "--from", frm, "--to", to, "--scale", "0.01",
                "--datasets", ds, "--jobs", "1")
    run("synth", "--out", env.mirror2, "--from", RECOMMIT, "--to", RECOMMIT, "--scale", "0.01",
        "--datasets", "stocks_daily", "--seed", "7", "--jobs", "1")
    env.lake = root / "lake"
    env.ingest("stocks_daily", env.lake, FROM, TO)
    env.ingest("options_daily", env.lake, FROM, TO)
    for d in MINUTE_DAYS:
        env.ingest("stocks_minute", env.lake, d)
    for d in OPTION_MINUTE_DAYS:
        env.ingest("options_minute", env.lake, d)
    cal = json.loads(run("calendar", "--from", "2024-01-01", "--to", "2030-12-31",
                         "--json").stdout)
    env.sessions = [c["date"] for c in cal if c["trading"]]
    return env


def copy_lake(env, name) -> Path:
    dst = env.root / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(env.lake, dst)
    return dst


# --- reading --------------------------------------------------------------------------

def read_dataset(path: Path, columns=None) -> pd.DataFrame:
    t = pq.read_table(path, partitioning="hive", columns=columns)
    df = t.to_pandas()
    for c in ("year", "month"):
        if c in df.columns and (columns is None or c not in columns):
            df = df.drop(columns=c)
    if "ticker" in df:
        df["ticker"] = df["ticker"].astype(str)
    if "window_start" in df:
        df["ws"] = t.column("window_start").cast(pa.int64()).to_numpy()
    if "date" in df:
        df["date"] = pd.to_datetime(df["date"]).dt.strftime("%Y-%m-%d")
    return df


def raw(lake: Path, dataset: str) -> pd.DataFrame:
    df = read_dataset(lake / dataset)
    for c in ("open", "high", "low", "close"):
        df[c] = df[c].astype("float64")
    df["volume"] = df["volume"].astype("float64")
    return df


def features(lake: Path, dataset: str) -> pd.DataFrame:
    return read_dataset(lake / "features" / dataset)


def compare(expected: pd.DataFrame, actual: pd.DataFrame, cols, keys=("ticker", "ws")):
    keys = list(keys)
    assert len(actual) == len(expected), (len(actual), len(expected))
    e = expected.sort_values(keys).reset_index(drop=True)
    a = actual.sort_values(keys).reset_index(drop=True)
    assert (e[keys].values == a[keys].values).all()
    for c in cols:
        ev = e[c].astype("float64").to_numpy()
        av = a[c].astype("float64").to_numpy()
        nan_e, nan_a = np.isnan(ev), np.isnan(av)
        bad = np.flatnonzero(nan_e != nan_a)
        assert bad.size == 0, f"{c}: NaN differs at {a.loc[bad[:5], keys].values.tolist()}"
        np.testing.assert_allclose(av[~nan_a], ev[~nan_e], rtol=RTOL, atol=1e-12, err_msg=c)


# --- oracles ---------------------------------------------------------------------------

def stocks_daily_oracle(lake: Path, sessions) -> pd.DataFrame:
    d = raw(lake, "stocks_daily")
    days = [s for s in sessions if FROM <= s <= TO]
    close = d.pivot(index="date", columns="ticker", values="close").reindex(days)
    vol = d.pivot(index="date", columns="ticker", values="volume").reindex(days)
    prev = close.shift(1)
    logret = np.log(close / prev)
    liquid = (close * vol) >= LIQUID
    market = logret.where(liquid).mean(axis=1)
    vol_mean = vol.shift(1).rolling(WINDOW, min_periods=MIN_PERIODS).mean()
    wide = {
        "daily_return": close / prev - 1,
        "log_return": logret,
        "alpha_daily": logret.sub(market, axis=0),
        "relative_volume": vol / vol_mean,
    }
    out = d[["ticker", "ws", "date", "open", "high", "low", "close", "volume"]].copy()
    for name, w in wide.items():
        s = w.stack(future_stack=True).rename(name)
        out = out.join(s, on=["date", "ticker"])
    out["intraday_return"] = out.close / out.open - 1
    out["price_range"] = (out.high - out.low) / out.close
    typical = (out.high + out.low + out.close) / 3
    mdir = lake / "stocks_minute"
    if mdir.exists():
        m = raw(lake, "stocks_minute")
        m["tv"] = (m.high + m.low + m.close) / 3 * m.volume
        agg = m.groupby(["date", "ticker"])[["tv", "volume"]].sum()
        mv = (agg.tv / agg.volume).rename("mvwap")
        out = out.join(mv, on=["date", "ticker"])
    else:
        out["mvwap"] = np.nan
    out["vwap"] = out.mvwap.where(out.mvwap.notna(), typical)
    out["vwap_source"] = np.where(out.mvwap.notna(), "minute", "day")
    return out


def stocks_minute_oracle(lake: Path, day: str) -> pd.DataFrame:
    m = raw(lake, "stocks_minute")
    m = m[m.date == day].sort_values(["ticker", "ws"]).reset_index(drop=True)
    g = m.groupby("ticker", sort=False)
    prev = g.close.shift(1)
    m["minute_return"] = m.close / prev - 1
    lag_c, lag_ws = g.close.shift(K), g.ws.shift(K)
    m["price_velocity"] = (m.close - lag_c) / ((m.ws - lag_ws) / 60e9)
    dollars = (m.close * m.volume).groupby(m.ticker).transform("sum")
    lr = np.log(m.close / prev)
    market = lr.where(dollars >= LIQUID).groupby(m.ws).mean()
    m["alpha_minute"] = lr - m.ws.map(market)
    return m


OCC = re.compile(r"^O:([A-Z0-9]+?)(\d{6})([CP])(\d{8})$")


def options_oracle(lake: Path, dataset: str, sessions, day=None) -> pd.DataFrame:
    o = raw(lake, dataset)
    if day:
        o = o[o.date == day]
    o = o.sort_values(["ticker", "ws"]).reset_index(drop=True)
    o["root"] = o.ticker.str.extract(OCC)[0]
    minute = dataset == "options_minute"
    s = raw(lake, "stocks_minute" if minute else "stocks_daily")
    if minute:
        o = o.merge(s[["ticker", "ws", "close"]].rename(
            columns={"ticker": "root", "close": "S"}), on=["root", "ws"], how="left")
    else:
        o = o.merge(s[["ticker", "date", "close"]].rename(
            columns={"ticker": "root", "close": "S"}), on=["root", "date"], how="left")
    o["moneyness"] = o.S / o.strike
    o["log_moneyness"] = np.log(o.S / o.strike)
    exp = pd.to_datetime(o.expiration)
    dt = pd.to_datetime(o.date)
    o["days_to_expiry"] = (exp - dt).dt.days
    sess = np.array(sessions, dtype="datetime64[D]")
    o["trading_days_to_expiry"] = (np.searchsorted(sess, exp.values.astype("datetime64[D]"),
                                                   side="right")
                                   - np.searchsorted(sess, dt.values.astype("datetime64[D]"),
                                                     side="right"))
    if minute:
        g = o.groupby("ticker", sort=False).volume
        mean = g.transform(lambda v: v.shift(1).rolling(WINDOW, min_periods=MIN_PERIODS).mean())
        o["relative_volume"] = o.volume / mean
    else:
        days = [x for x in sessions if FROM <= x <= TO]
        vol = o.pivot(index="date", columns="ticker", values="volume").reindex(days)
        rv = vol / vol.shift(1).rolling(WINDOW, min_periods=MIN_PERIODS).mean()
        o = o.join(rv.stack(future_stack=True).rename("relative_volume"), on=["date", "ticker"])
    o["bid_ask_spread"] = np.nan
    return o.sort_values(["ticker", "ws"]).reset_index(drop=True)


DAILY_COLS = ["daily_return", "intraday_return", "log_return", "alpha_daily", "price_range",
              "vwap", "relative_volume"]
MINUTE_COLS = ["minute_return", "price_velocity", "alpha_minute"]
OPTION_COLS = ["moneyness", "log_moneyness", "days_to_expiry", "trading_days_to_expiry",
               "relative_volume", "bid_ask_spread"]


# --- tests -----------------------------------------------------------------------------

def test_stocks_daily_matches_pandas(env):
    lake = copy_lake(env, "lake_sd")
    rep = env.features("stocks_daily", lake, "--from", FROM, "--to", TO)
    days = [s for s in env.sessions if FROM <= s <= TO]
    assert [d["date"] for d in rep["days"]] == days  # holidays and weekends skipped
    assert all(d["action"] == "computed" for d in rep["days"])
    exp = stocks_daily_oracle(lake, env.sessions)
    got = features(lake, "stocks_daily")
    compare(exp, got, DAILY_COLS)
    # The look-back is real: first day NaN returns, relative volume from day 11 on.
    assert got[got.date == FROM].daily_return.isna().all()
    assert got[got.date == days[9]].relative_volume.isna().all()
    assert got[got.date == days[10]].relative_volume.notna().any()
    # Names that appear mid-range have NaN returns on their first day.
    first = exp.sort_values("date").groupby("ticker").date.first()
    mid = first[first > FROM]
    assert len(mid) > 0
    for t, d in mid.items():
        assert math.isnan(got[(got.ticker == t) & (got.date == d)].daily_return.iloc[0])
    # vwap comes from minute bars on the minute days only, and says so.
    e = exp.sort_values(["ticker", "ws"]).reset_index(drop=True)
    g = got.sort_values(["ticker", "ws"]).reset_index(drop=True)
    assert (g.vwap_source.astype(str).values == e.vwap_source.values).all()
    assert set(g[g.vwap_source == "minute"].date) == set(MINUTE_DAYS)
    rec = json.loads((lake / "_qlake/features/stocks_daily/commits/2024-11-27.json").read_text())
    assert rec["validation"]["vwap_source"]["day"] == 0
    assert rec["validation"]["inputs"]["stocks_minute/2024-11-27"] is not None
    # Running again changes nothing.
    rep = env.features("stocks_daily", lake, "--from", FROM, "--to", TO)
    assert {d["action"] for d in rep["days"]} == {"up_to_date"}


def test_one_day_at_a_time_equals_the_range(env):
    a = copy_lake(env, "lake_range")
    b = copy_lake(env, "lake_days")
    for ds, days in [("stocks_daily", [s for s in env.sessions if "2024-11-18" <= s <= TO]),
                     ("stocks_minute", MINUTE_DAYS), ("options_minute", OPTION_MINUTE_DAYS)]:
        env.features(ds, a, "--from", days[0], "--to", days[-1], "--parallel", "3")
        for d in days:
            env.features(ds, b, "--date", d)
        fa = sorted((a / "features" / ds).rglob("*.parquet"))
        fb = sorted((b / "features" / ds).rglob("*.parquet"))
        assert [p.relative_to(a) for p in fa] == [p.relative_to(b) for p in fb]
        assert len(fa) == len([d for d in days if d in env.sessions])
        for x, y in zip(fa, fb):
            assert x.read_bytes() == y.read_bytes(), x


def test_stocks_minute_matches_pandas(env):
    lake = copy_lake(env, "lake_sm")
    env.features("stocks_minute", lake, "--from", MINUTE_DAYS[0], "--to", MINUTE_DAYS[-1])
    got = features(lake, "stocks_minute")
    for day in MINUTE_DAYS:
        exp = stocks_minute_oracle(lake, day)
        compare(exp, got[got.date == day], MINUTE_COLS)
        g = got[got.date == day]
        # First bar of every symbol: NaN return; the early close's post session ends at 17:00.
        assert g.sort_values("ws").groupby("ticker").head(1).minute_return.isna().all()
        if day == "2024-11-29":
            assert g.window_start.dt.tz_convert("America/New_York").dt.hour.max() < 17
        assert g.alpha_minute.notna().sum() > 0
    # The day between (Thanksgiving) is no session: nothing was written for it.
    assert not (lake / "features/stocks_minute/year=2024/month=11/2024-11-28.parquet").exists()


def test_options_match_pandas(env):
    lake = copy_lake(env, "lake_opt")
    env.features("options_daily", lake, "--from", FROM, "--to", TO)
    exp = options_oracle(lake, "options_daily", env.sessions)
    got = features(lake, "options_daily")
    compare(exp, got, OPTION_COLS)
    assert got.moneyness.notna().sum() > 0 and got.relative_volume.notna().sum() > 0
    # Roots that are not stock tickers (BRKB for BRK.B, the adjusted AAPL1) have no S.
    roots = got.ticker.str.extract(OCC)[0]
    assert got[roots == "AAPL1"].moneyness.isna().all()
    rec = json.loads((lake / "_qlake/features/options_daily/commits/2024-11-29.json").read_text())
    assert "quotes" in rec["validation"]["nan_reasons"]["bid_ask_spread"]

    env.features("options_minute", lake, "--date", OPTION_MINUTE_DAYS[0])
    exp = options_oracle(lake, "options_minute", env.sessions, OPTION_MINUTE_DAYS[0])
    got = features(lake, "options_minute")
    compare(exp, got, OPTION_COLS)
    assert got.moneyness.notna().sum() > 0 and got.relative_volume.notna().sum() > 0


def test_gap_then_ingest_and_recommit_recompute_dependents(env):
    lake = env.root / "lake_gap"
    days = [s for s in env.sessions if FROM <= s <= TO]
    before, after = [d for d in days if d < GAP], [d for d in days if d > GAP]
    env.ingest("stocks_daily", lake, before[0], before[-1])
    env.ingest("stocks_daily", lake, after[0], after[-1])
    # GAP fails (not ingested; exit code 7 for a partial failure), the other days are computed.
    rep = env.features("stocks_daily", lake, "--from", FROM, "--to", TO, check=False)
    assert [d["date"] for d in rep["days"] if not d["ok"]] == [GAP]
    got = features(lake, "stocks_daily")
    exp = stocks_daily_oracle(lake, env.sessions)
    compare(exp[exp.date != GAP], got, DAILY_COLS)
    nxt = after[0]
    assert got[got.date == nxt].daily_return.isna().all()  # t-1 is the missing day

    # Ingest the missing day; features for that day alone refresh the days after it whose
    # look-back (20 sessions) includes it, and only those.
    env.ingest("stocks_daily", lake, GAP)
    rep = env.features("stocks_daily", lake, "--date", GAP)
    computed = [d["date"] for d in rep["days"] if d["action"] == "computed"]
    assert computed == [GAP] + after[:WINDOW]
    compare(stocks_daily_oracle(lake, env.sessions), features(lake, "stocks_daily"),
            DAILY_COLS)

    # Re-commit a raw day with other data (another seed).
    env.ingest("stocks_daily", lake, RECOMMIT, source=env.mirror2)
    rep = env.features("stocks_daily", lake, "--date", RECOMMIT)
    computed = [d["date"] for d in rep["days"] if d["action"] == "computed"]
    following = [d for d in days if d > RECOMMIT][:WINDOW]
    assert computed == [RECOMMIT] + following
    compare(stocks_daily_oracle(lake, env.sessions), features(lake, "stocks_daily"),
            DAILY_COLS)


def test_bad_input_is_a_clear_error(env, tmp_path):
    p = env.run("features", "--dataset", "stocks_trades", "--date", "2024-11-29", "--lake",
                env.lake, check=False)
    assert p.returncode != 0 and "stocks_trades" in p.stderr
    p = env.run("features", "--dataset", "stocks_daily", "--date", "2024-11-29", "--lake",
                tmp_path / "nolake", check=False)
    assert p.returncode != 0
    lake = copy_lake(env, "lake_err")
    p = env.run("features", "--dataset", "stocks_minute", "--date", "2024-11-26", "--lake",
                lake, check=False)
    assert p.returncode != 0 and "qlake ingest" in p.stderr
