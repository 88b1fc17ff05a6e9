#!/usr/bin/env python3
"""qlake qlib export versus Qlib's own scripts/dump_bin.py (dump_all), same data, same run.

    .venv/bin/python bench/qlib_bench.py --qlib-src QLIB_CHECKOUT [--work DIR]
        [--day-from 2024-01-02 --day-to 2024-12-31 --day-scale 1]
        [--min-from 2024-01-02 --min-to 2024-01-31 --min-scale 0.1]
        [--workers 2] [--skip-day] [--skip-min] [--skip-append]

QLIB_CHECKOUT is a local checkout of microsoft/qlib (only scripts/dump_bin.py is used; it is
never copied into this repository). dump_bin runs under .venv-qlib (pyqlib 0.9.7, made by
scripts/setup.sh). Steps:

1. `qlake synth` + `qlake ingest` build a lake (stocks_daily over the day range;
   stocks_minute over the minute range).
2. The lake is written as dump_bin's input: one CSV per symbol (dump_bin takes the symbol from
   the file name), with the same eight fields qlake writes (open high low close volume vwap
   factor change, computed with pandas the way docs/qlib.md defines them; minute bars of the
   regular session only). This preparation is not timed.
3. Timed, each in a fresh output folder: `dump_bin.py dump_all` (--max_workers = --workers)
   and `qlake qlib export`. Wall time, peak RSS of the whole process tree (sampled from
   /proc every 50 ms), and feature bytes written are reported, with the ratio.
4. Append cost: a store holding 1 week and one holding the whole day range get one more day
   appended (`qlake qlib export` with the next --to); median of 5 interleaved runs each.

Prints a Markdown table (append it to docs/benchmarks.md).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

REPO = Path(__file__).resolve().parents[1]
QLAKE = Path(os.environ.get("QLAKE_BIN", REPO / "build" / "qlake"))
QLIB_PY = REPO / ".venv-qlib" / "bin" / "python"

sys.path.insert(0, str(REPO / "tests" / "python" / "qlib"))
from qlib_codes import code_of  # noqa: E402  (docs/qlib.md's mapping; names dump_bin's CSVs)


def tree_rss(pid):
    """Sum of VmRSS (bytes) over pid and its descendants."""
    children = {}
    rss = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/statm") as f:
                rss[int(d)] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            children.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def timed(cmd, **kw):
    """Runs cmd; returns (seconds, peak tree RSS bytes, CPU seconds of the tree).

    CPU = user + system time of the process and every descendant it waited for (dump_bin's
    process pool included): unlike wall time it hardly depends on the machine's load.
    Logs the 1-minute load average."""
    print(f"# {time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}: {Path(cmd[1]).name} "
          f"{' '.join(cmd[2:4])}", file=sys.stderr)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(p.pid))
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    th.join()
    if p.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({p.returncode}):\n{out[-3000:]}")
    return secs, peak[0], ru.ru_utime + ru.ru_stime


def run(*args):
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL)


def feature_bytes(root):
    return sum(p.stat().st_size for p in (Path(root) / "features").rglob("*.bin"))


def build_lake(work, dataset, frm, to, scale):
    lake = work / f"lake-{dataset}-{scale}"
    if (lake / "_qlake" / dataset).exists():
        return lake
    mirror = work / f"mirror-{dataset}-{scale}"
    print(f"# building {dataset} {frm}..{to} scale {scale}", file=sys.stderr)
    run(QLAKE, "-q", "synth", "--out", mirror, "--from", frm, "--to", to, "--scale", scale,
        "--datasets", dataset)
    run(QLAKE, "-q", "ingest", "--dataset", dataset, "--from", frm, "--to", to, "--source",
        mirror, "--lake", lake)
    shutil.rmtree(mirror)
    return lake


def read_lake(lake, dataset, cols):
    t = ds.dataset(lake / dataset, format="parquet", partitioning="hive").to_table(columns=cols)
    return t.set_column(t.schema.get_field_index("ticker"), "ticker",
                        pc.cast(t["ticker"], pa.string())).to_pandas()


def write_csvs(df, out, date_fmt):
    """One CSV per symbol, the eight qlake fields; returns the number of files."""
    out.mkdir(parents=True)
    df = df.sort_values(["ticker", "dt"])
    df["vwap"] = ((df["high"].astype(np.float64) + df["low"] + df["close"]) / 3).astype(
        np.float32)
    df["factor"] = np.float32(1.0)
    prev = df.groupby("ticker")["close"].shift(1).astype(np.float64)
    df["change"] = (df["close"].astype(np.float64) / prev - 1).astype(np.float32)
    df["date"] = df["dt"].dt.strftime(date_fmt)
    cols = ["date", "symbol", "open", "high", "low", "close", "volume", "vwap", "factor",
            "change"]
    n = 0
    for ticker, g in df.groupby("ticker", sort=False):
        code = code_of(ticker)
        g = g.assign(symbol=code)
        g[cols].to_csv(out / f"{code}.csv", index=False)
        n += 1
    return n


def compare(name, lake, freq, csv_dir, work, workers, dump_bin, extra=()):
    qd = work / f"out-dumpbin-{name}"
    qq = work / f"out-qlake-{name}"
    for d in (qd, qq):
        shutil.rmtree(d, ignore_errors=True)
    t_d, r_d, c_d = timed([str(QLIB_PY), str(dump_bin), "dump_all", "--data_path", str(csv_dir),
                      "--qlib_dir", str(qd), "--freq", freq, "--date_field_name", "date",
                      "--symbol_field_name", "symbol", "--exclude_fields", "symbol",
                      "--max_workers", str(workers)])
    t_q, r_q, c_q = timed([str(QLAKE), "-q", "qlib", "export", "--lake", str(lake), "--out", str(qq),
                      "--freq", freq, *extra])
    load = os.getloadavg()[1]  # 5-minute average: over both runs for all but the longest
    b_d, b_q = feature_bytes(qd), feature_bytes(qq)
    n_d = sum(1 for _ in (qd / "features").iterdir())
    n_q = sum(1 for _ in (qq / "features").iterdir())
    r = dict(name=name, t_d=t_d, r_d=r_d, t_q=t_q, r_q=r_q, b_d=b_d, b_q=b_q, n_d=n_d,
             n_q=n_q, load=load, c_d=c_d, c_q=c_q)
    print(f"# {r}", file=sys.stderr)
    return r


def append_costs(lake, work, histories, runs=5):
    """Seconds to append the last day of each `days` list to a store holding `days[:-1]`.

    histories: {label: days}. The runs of the labels are interleaved (so a change in the
    machine's load hits all alike); returns {label: [seconds per run]}.
    """
    bases = {}
    for label, days in histories.items():
        base = work / f"append-base-{label}"
        shutil.rmtree(base, ignore_errors=True)
        run(QLAKE, "-q", "qlib", "export", "--lake", lake, "--out", base, "--freq", "day",
            "--from", days[0], "--to", days[-2])
        bases[label] = base
    times = {label: [] for label in histories}
    for _ in range(runs):
        for label, days in histories.items():
            tgt = work / f"append-{label}"
            shutil.rmtree(tgt, ignore_errors=True)
            shutil.copytree(bases[label], tgt)
            # Flush the copy first: qlake's commit ends with a syncfs, which would otherwise
            # write back the whole copied store (96k files for a year) on the append's clock.
            os.sync()
            t, _, _ = timed([str(QLAKE), "-q", "qlib", "export", "--lake", str(lake), "--out",
                          str(tgt), "--freq", "day", "--to", days[-1]])
            times[label].append(t)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qlib-src", required=True, help="local checkout of microsoft/qlib")
    ap.add_argument("--work", default="/tmp/qlake-qlib-bench")
    ap.add_argument("--day-from", default="2024-01-02")
    ap.add_argument("--day-to", default="2024-12-31")
    ap.add_argument("--day-scale", default="1")
    ap.add_argument("--min-from", default="2024-01-02")
    ap.add_argument("--min-to", default="2024-01-31")
    ap.add_argument("--min-scale", default="0.1")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--skip-day", action="store_true")
    ap.add_argument("--skip-min", action="store_true")
    ap.add_argument("--skip-append", action="store_true")
    a = ap.parse_args()
    dump_bin = Path(a.qlib_src) / "scripts" / "dump_bin.py"
    if not dump_bin.exists():
        raise SystemExit(f"{dump_bin} not found: pass --qlib-src a microsoft/qlib checkout")
    if not QLIB_PY.exists():
        raise SystemExit(".venv-qlib missing: run scripts/setup.sh")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    if not a.skip_day or not a.skip_append:
        day_lake = build_lake(work, "stocks_daily", a.day_from, a.day_to, a.day_scale)
    if not a.skip_day:
        df = read_lake(day_lake, "stocks_daily",
                       ["ticker", "open", "high", "low", "close", "volume", "date"])
        df["dt"] = df["date"].astype("datetime64[ns]")
        csv = work / "csv-day"
        shutil.rmtree(csv, ignore_errors=True)
        nfiles = write_csvs(df, csv, "%Y-%m-%d")
        print(f"# day: {len(df)} bars, {nfiles} symbols", file=sys.stderr)
        r = compare(f"day {a.day_from}..{a.day_to}, scale {a.day_scale} ({len(df):,} bars, "
                    f"{nfiles:,} symbols)", day_lake, "day", csv, work, a.workers, dump_bin)
        rows.append(r)
    if not a.skip_min:
        min_lake = build_lake(work, "stocks_minute", a.min_from, a.min_to, a.min_scale)
        df = read_lake(min_lake, "stocks_minute", ["ticker", "open", "high", "low", "close",
                                                   "volume", "window_start", "session"])
        df = df[df["session"].astype(str) == "regular"].drop(columns=["session"])
        df["dt"] = df["window_start"].dt.tz_convert("America/New_York").dt.tz_localize(None)
        csv = work / "csv-min"
        shutil.rmtree(csv, ignore_errors=True)
        nfiles = write_csvs(df, csv, "%Y-%m-%d %H:%M:%S")
        print(f"# 1min: {len(df)} bars, {nfiles} symbols", file=sys.stderr)
        r = compare(f"1min {a.min_from}..{a.min_to}, scale {a.min_scale} ({len(df):,} bars, "
                    f"{nfiles:,} symbols)", min_lake, "1min", csv, work, a.workers, dump_bin)
        rows.append(r)

    mb = 1 << 20
    print(f"\nqlib export vs dump_bin.py dump_all (max_workers={a.workers}), "
          f"{os.cpu_count()} cores\n")
    print("| data | dump_bin s | qlake s | speed-up | CPU s d/q | CPU ratio | dump_bin peak RSS "
          "| qlake peak RSS | dump_bin MB | qlake MB | instruments d/q | load (5 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['t_d']:.1f} | {r['t_q']:.2f} | **{r['t_d'] / r['t_q']:.0f}x** "
              f"| {r['c_d']:.0f}/{r['c_q']:.1f} | {r['c_d'] / r['c_q']:.0f}x "
              f"| {r['r_d'] / mb:.0f} MiB | {r['r_q'] / mb:.0f} MiB | {r['b_d'] / 1e6:.1f} "
              f"| {r['b_q'] / 1e6:.1f} | {r['n_d']}/{r['n_q']} | {r['load']:.1f} |")
    if not a.skip_append:
        import exchange_calendars as xc

        sess = [str(d.date()) for d in
                xc.get_calendar("XNYS").sessions_in_range(a.day_from, a.day_to)]
        t = append_costs(day_lake, work, {"week": sess[-6:], "year": sess})
        week, year = statistics.median(t["week"]), statistics.median(t["year"])
        print(f"\nappend one day ({sess[-1]}) to a day store, median of {len(t['week'])} "
              f"interleaved runs (load average {os.getloadavg()[0]:.1f}): 1 week of history "
              f"{week:.3f}s (runs {', '.join(f'{x:.3f}' for x in t['week'])}), "
              f"{len(sess) - 1} days of history {year:.3f}s "
              f"(runs {', '.join(f'{x:.3f}' for x in t['year'])}); year/week = "
              f"{year / week:.2f}")


if __name__ == "__main__":
    main()
