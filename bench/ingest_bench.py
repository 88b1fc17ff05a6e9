#!/usr/bin/env python3
"""Ingest benchmark: `qlake ingest` of one stocks-minute day against its peers, in one run.

Compares, on the same synthetic flat file (`qlake synth`, one day):

  a. `igzip -dc file > /dev/null`                     decompression alone (the floor)
  b. DuckDB `COPY (read_csv) TO parquet`, zstd        sorted by (ticker, window_start) and not
  c. DuckDB, PARTITION_BY (ticker, year, month)       the peer of the original layout
  d. `qlake ingest --layout daily`, zstd and snappy   fresh lake and re-ingest (replace)
  e. `qlake ingest --layout original`, zstd           fresh and replace
  f. the CSV size, for the "Parquet <= 25 % of the CSV" target

and prints median wall seconds, rows/s, gz MB/s, output bytes and peak RSS of each, the
ratios of DESIGN.md section 7, a perf profile of where `qlake ingest` spends its time, and
(unless --big-gb 0) peak RSS of `qlake ingest --mode streaming` on a >= BIG_GB GB file.

Run it with the project's venv (it needs duckdb):

  .venv/bin/python bench/ingest_bench.py [--scale 1] [--date 2024-01-17] [--runs 3]
                                         [--keep DIR] [--big-gb 5] [--json-out FILE]

Numbers are wall-clock medians of --runs runs, cases interleaved run by run so that load
from other processes spreads over all of them. Every tool runs in its own process under
`/usr/bin/time` (peak RSS = its max RSS; fallback: os.wait4's rusage). The benchmark is not
a test: it never fails on a missed target, it reports it.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_QLAKE = REPO / "build" / "qlake"
GNU_TIME = "/usr/bin/time"

KEYS = {
    "stocks_minute": "us_stocks_sip/minute_aggs_v1",
    "stocks_daily": "us_stocks_sip/day_aggs_v1",
    "options_minute": "us_options_opra/minute_aggs_v1",
    "options_daily": "us_options_opra/day_aggs_v1",
}

# DuckDB reads the flat file with explicit types (no sniffing) and casts to the lake's
# column types, as in DESIGN.md section 7.
DUCK_COLUMNS = (
    "{'ticker': 'VARCHAR', 'volume': 'DOUBLE', 'open': 'DOUBLE', 'close': 'DOUBLE', "
    "'high': 'DOUBLE', 'low': 'DOUBLE', 'window_start': 'BIGINT', 'transactions': 'BIGINT'}"
)
DUCK_SELECT = (
    "ticker, volume::UBIGINT AS volume, open::FLOAT AS open, close::FLOAT AS close, "
    "high::FLOAT AS high, low::FLOAT AS low, window_start, "
    "transactions::UINTEGER AS transactions"
)
# New York year/month of window_start (Unix ns UTC).
DUCK_NY = "timezone('America/New_York', timezone('UTC', make_timestamp(window_start // 1000)))"

# Runs in a fresh `python -c` so DuckDB's RSS is its own. Prints the query's seconds.
DUCK_SCRIPT = r"""
import json, sys, time
import duckdb
sql = sys.argv[1]
con = duckdb.connect()
t = time.perf_counter()
con.execute(sql)
s = time.perf_counter() - t
print(json.dumps({"seconds": s, "threads": con.execute("SELECT current_setting('threads')").fetchone()[0]}))
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def key_path(mirror: Path, dataset: str, date: str) -> Path:
    y, m, _ = date.split("-")
    return mirror / KEYS[dataset] / y / m / f"{date}.csv.gz"


def dir_bytes(path: Path, suffix: str = ".parquet") -> tuple[int, int]:
    """(total bytes, files) of files ending in `suffix` under `path`."""
    total = files = 0
    if path.is_file():
        return path.stat().st_size, 1
    for root, _, names in os.walk(path):
        for n in names:
            if n.endswith(suffix):
                total += os.stat(os.path.join(root, n)).st_size
                files += 1
    return total, files


# --------------------------------------------------------------------------------------
# Running and measuring one process


class Measured(dict):
    pass


def find_child(ppid: int) -> int:
    """The first child process of ppid (scan of /proc; no /proc/PID/task/TID/children here)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == ppid:
            return int(d)
    return 0


def run_measured(cmd, *, stdout=subprocess.DEVNULL, cwd=None, rss_cap_kb=0) -> Measured:
    """Runs cmd; returns wall seconds, user/sys CPU seconds, peak RSS (KiB), stdout.

    With GNU time, %M is the peak RSS of the command. Without it, os.wait4 gives the same
    rusage for the direct child. rss_cap_kb > 0: a watchdog kills the process tree when
    the measured process's RSS exceeds it (so a runaway benchmark cannot take the machine).
    """
    use_time = os.access(GNU_TIME, os.X_OK)
    tfile = None
    full = list(map(str, cmd))
    if use_time:
        fd, tfile = tempfile.mkstemp(prefix="qlake-bench-time-")
        os.close(fd)
        full = [GNU_TIME, "-f", "%e %U %S %M", "-o", tfile] + full
    out_file = None
    if stdout is subprocess.PIPE:
        out_file = tempfile.TemporaryFile()
        stdout = out_file
    t0 = time.perf_counter()
    err_file = tempfile.TemporaryFile()
    p = subprocess.Popen(full, stdout=stdout, stderr=err_file, cwd=cwd,
                         start_new_session=True)
    killed = {"flag": False, "max_rss_kb": 0}
    child_pid: dict = {}
    stop = threading.Event()

    def watchdog():
        # Samples the RSS of the measured process (the child of GNU time, or p itself).
        while not stop.wait(0.25):
            pid = p.pid
            if use_time:
                pid = child_pid.get("pid") or find_child(p.pid)
                if not pid:
                    continue
                child_pid["pid"] = pid
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            m = re.search(r"VmRSS:\s+(\d+) kB", status)
            if m:
                rss = int(m.group(1))
                killed["max_rss_kb"] = max(killed["max_rss_kb"], rss)
                if rss_cap_kb and rss > rss_cap_kb:
                    killed["flag"] = True
                    os.killpg(p.pid, signal.SIGKILL)
                    return

    th = threading.Thread(target=watchdog, daemon=True)
    th.start()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    err_file.seek(0)
    err = err_file.read().decode(errors="replace")
    err_file.close()
    res = Measured(wall=wall, rc=p.returncode, stderr=err, killed=killed["flag"],
                   sampled_rss_kb=killed["max_rss_kb"])
    if use_time:
        fields = Path(tfile).read_text().strip().splitlines()
        os.unlink(tfile)
        last = fields[-1].split() if fields else []
        if len(last) == 4:
            res.update(user=float(last[1]), sys=float(last[2]), rss_kb=int(last[3]))
        else:  # killed before time could write
            res.update(user=ru.ru_utime, sys=ru.ru_stime, rss_kb=killed["max_rss_kb"])
    else:
        res.update(user=ru.ru_utime, sys=ru.ru_stime, rss_kb=ru.ru_maxrss)
    if out_file is not None:
        out_file.seek(0)
        res["stdout"] = out_file.read().decode(errors="replace")
        out_file.close()
    return res


# --------------------------------------------------------------------------------------
# Inputs


def synth_day(qlake: Path, out: Path, date: str, scale: float, datasets: str) -> dict:
    """Writes (or reuses) a `qlake synth` mirror of one day; returns its manifest."""
    manifest = out / "_synth" / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        want = set(datasets.split(","))
        have = {f["dataset"] for f in m["files"]}
        if (m.get("scale") == scale and m.get("from") == date and m.get("to") == date
                and want <= have
                and all((out / f["key"]).exists() for f in m["files"])):
            log(f"reusing synth mirror {out}")
            return m
        shutil.rmtree(out)
    log(f"qlake synth --scale {scale} --datasets {datasets} for {date} -> {out}")
    t = time.perf_counter()
    subprocess.run([str(qlake), "-q", "synth", "--out", str(out), "--from", date, "--to", date,
                    "--scale", str(scale), "--datasets", datasets,
                    "--jobs", str(os.cpu_count() or 1)], check=True,
                   stdout=subprocess.DEVNULL)
    log(f"  synth took {time.perf_counter() - t:.1f}s")
    return json.loads(manifest.read_text())


def manifest_file(m: dict, dataset: str) -> dict:
    return next(f for f in m["files"] if f["dataset"] == dataset)


def make_big_file(qlake: Path, work: Path, date: str, big_bytes: int) -> dict:
    """A stocks_minute file for `date` with >= big_bytes uncompressed bytes.

    Source: `qlake synth --scale 10` (the largest scale, ~1 GB of CSV a day), repeated k
    times. Copy i prefixes every ticker with the same letter(s) (A, B, C, ...; fixed width),
    which keeps each copy's rows valid and distinct and the whole file sorted by (ticker,
    window_start) in byte order, with no duplicate keys: exactly the properties of a real
    file, only with more tickers.
    """
    mirror = work / "big_mirror"
    dest = key_path(mirror, "stocks_minute", date)
    info_path = work / "big_file.json"
    if dest.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        if info["uncompressed_bytes"] >= big_bytes and info["date"] == date:
            log(f"reusing big file {dest} ({info['uncompressed_bytes'] / 1e9:.2f} GB CSV)")
            return info
    src_mirror = work / "big_src_scale10"
    m = synth_day(qlake, src_mirror, date, 10.0, "stocks_minute")
    src = manifest_file(m, "stocks_minute")
    src_path = src_mirror / src["key"]
    body = src["uncompressed_bytes"]
    copies = -(-big_bytes // body)
    width = 1 if copies <= 26 else 2
    prefixes = []
    for i in range(copies):
        s, x = "", i
        for _ in range(width):
            s = chr(ord("A") + x % 26) + s
            x //= 26
        prefixes.append(s.encode())
    log(f"writing big file: {copies} prefixed copies of the scale-10 day "
        f"({src['rows']} rows, {body / 1e9:.2f} GB CSV) -> {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    t = time.perf_counter()
    total = rows = 0
    with open(tmp, "wb") as f_out:
        gz = subprocess.Popen(["igzip", "-1", "-c"], stdin=subprocess.PIPE, stdout=f_out)
        for ci, prefix in enumerate(prefixes):
            dec = subprocess.Popen(["igzip", "-dc", str(src_path)], stdout=subprocess.PIPE)
            header = dec.stdout.readline()
            if ci == 0:
                gz.stdin.write(header)
                total += len(header)
            carry = b""
            nl_prefix = b"\n" + prefix
            while True:
                chunk = dec.stdout.read(16 << 20)
                if not chunk:
                    break
                chunk = carry + chunk
                cut = chunk.rfind(b"\n") + 1
                carry = chunk[cut:]
                body_lines = chunk[:cut]
                if not body_lines:
                    continue
                out = prefix + body_lines[:-1].replace(b"\n", nl_prefix) + b"\n"
                rows += body_lines.count(b"\n")
                gz.stdin.write(out)
                total += len(out)
            if carry:
                raise RuntimeError("scale-10 file does not end in a newline")
            if dec.wait() != 0:
                raise RuntimeError("igzip -dc failed on the scale-10 file")
        gz.stdin.close()
        if gz.wait() != 0:
            raise RuntimeError("igzip -c failed")
    os.replace(tmp, dest)
    info = {"date": date, "path": str(dest), "mirror": str(mirror), "copies": copies,
            "rows": rows, "uncompressed_bytes": total, "gz_bytes": dest.stat().st_size,
            "source_rows": src["rows"], "seconds_to_write": time.perf_counter() - t}
    info_path.write_text(json.dumps(info, indent=1))
    shutil.rmtree(src_mirror)  # 100+ MB gz, only needed to build the big file
    log(f"  big file: {rows} rows, {total / 1e9:.2f} GB CSV, {info['gz_bytes'] / 1e9:.2f} GB gz"
        f" in {info['seconds_to_write']:.0f}s")
    return info


# --------------------------------------------------------------------------------------
# Cases


class Case:
    """One thing to time. setup() runs untimed before every run; output() -> bytes, files."""

    def __init__(self, name, cmd, *, group, setup=None, output=None, parse=None, note=""):
        self.name, self.cmd, self.group = name, cmd, group
        self.setup, self.output, self.parse, self.note = setup, output, parse, note
        self.runs: list[Measured] = []

    def run_once(self):
        if self.setup:
            self.setup()
        r = run_measured(self.cmd, stdout=subprocess.PIPE)
        if r["rc"] != 0:
            raise RuntimeError(f"{self.name}: exit {r['rc']}\n{r['stderr'][-3000:]}")
        if self.output:
            r["out_bytes"], r["out_files"] = self.output()
        if self.parse:
            r.update(self.parse(r["stdout"]))
        r.pop("stdout", None)
        self.runs.append(r)
        return r

    def med(self, key):
        vals = [r[key] for r in self.runs if key in r]
        return statistics.median(vals) if vals else None

    def summary(self):
        walls = [r["wall"] for r in self.runs]
        s = {"name": self.name, "group": self.group, "runs": len(self.runs),
             "wall_median": statistics.median(walls), "wall_min": min(walls),
             "wall_max": max(walls), "user_median": self.med("user"),
             "sys_median": self.med("sys"), "rss_kb_max": max(r["rss_kb"] for r in self.runs),
             "out_bytes": self.runs[-1].get("out_bytes"),
             "out_files": self.runs[-1].get("out_files"),
             "cmd": " ".join(map(str, self.cmd)) if not isinstance(self.cmd, str) else self.cmd,
             "note": self.note}
        for k in ("query_seconds", "qlake_seconds", "rows_written"):
            v = self.med(k)
            if v is not None:
                s[k + "_median"] = v
        # The time the ratios use: DuckDB's query time inside the process (without Python
        # and DuckDB start-up, ~0.3 s, in DuckDB's favour); everything else: process wall.
        s["seconds"] = s.get("query_seconds_median", s["wall_median"])
        per_run = [r.get("query_seconds", r["wall"]) for r in self.runs]
        s["seconds_min"] = min(per_run)
        s["per_run"] = [{k: v for k, v in r.items() if k != "stderr"} for r in self.runs]
        return s


def duck_case(name, csv_gz: Path, out: Path, *, order: bool, partition: bool, group):
    sql = f"COPY (SELECT {DUCK_SELECT}"
    if partition:
        sql += f", year({DUCK_NY}) AS year, month({DUCK_NY}) AS month"
    sql += f" FROM read_csv('{csv_gz}', header=true, columns={DUCK_COLUMNS})"
    if order:
        sql += " ORDER BY ticker, window_start"
    sql += f") TO '{out}' (FORMAT parquet, COMPRESSION zstd"
    if partition:
        sql += ", PARTITION_BY (ticker, year, month)"
    sql += ")"

    def setup():
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()

    def parse(stdout):
        j = json.loads(stdout.strip().splitlines()[-1])
        return {"query_seconds": j["seconds"], "duck_threads": j["threads"]}

    c = Case(name, [sys.executable, "-c", DUCK_SCRIPT, sql], group=group, setup=setup,
             output=lambda: dir_bytes(out), parse=parse)
    c.sql = sql
    return c


def qlake_cmd(qlake, dataset, date, mirror, lake, layout, compression, extra=()):
    """extra: flags of the ingest subcommand (e.g. --mode parallel)."""
    return [str(qlake), "-q", "--set", f"ingest.compression={compression}", "ingest",
            "--dataset", dataset, "--date", date, "--source", str(mirror), "--lake", str(lake),
            "--layout", layout, "--json", *extra]


def qlake_case(name, qlake, dataset, date, mirror, lake: Path, layout, compression, *,
               replace: bool, group, extra=()):
    cmd = qlake_cmd(qlake, dataset, date, mirror, lake, layout, compression, extra)

    def setup():
        if not replace:
            shutil.rmtree(lake, ignore_errors=True)
        elif not (lake / "_qlake" / dataset / "commits" / f"{date}.json").exists():
            # Replace: the day must be committed already (untimed first ingest).
            shutil.rmtree(lake, ignore_errors=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def parse(stdout):
        j = json.loads(stdout)
        d = j["days"][0]
        if not d["ok"]:
            raise RuntimeError(f"{name}: {d['error']}")
        return {"qlake_seconds": j["seconds"], "rows_written": d["written"],
                "rows_read": d["read"], "report_out_bytes": d["output_bytes"]}

    return Case(name, cmd, group=group, setup=setup,
                output=lambda: dir_bytes(lake / dataset), parse=parse,
                note="replace: re-ingest of a committed day" if replace else "fresh lake")


def check_same_rows(paths: dict[str, Path], expect: int) -> list[str]:
    """Row counts of the Parquet outputs (pyarrow metadata), to be sure all did the work."""
    import pyarrow.dataset as ds
    problems = []
    for name, p in paths.items():
        try:
            n = ds.dataset(str(p), format="parquet", exclude_invalid_files=False).count_rows()
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            problems.append(f"{name}: could not count rows ({e})")
            continue
        if n != expect:
            problems.append(f"{name}: {n} rows, expected {expect}")
    return problems


def parquet_columns(path: Path) -> dict:
    """Compressed bytes per column (all files under path) and the ticker dictionary pages."""
    import pyarrow.parquet as pq
    cols: dict[str, int] = collections.Counter()
    dict_pages, row_groups, files = [], 0, 0
    paths = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    for f in paths:
        md = pq.ParquetFile(f).metadata
        files += 1
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            row_groups += 1
            for j in range(rg.num_columns):
                c = rg.column(j)
                cols[c.path_in_schema] += c.total_compressed_size
                if c.path_in_schema == "ticker" and c.has_dictionary_page:
                    dict_pages.append(c.data_page_offset - c.dictionary_page_offset)
    return {"columns": dict(cols), "row_groups": row_groups, "files": files,
            "ticker_dict_bytes_total": sum(dict_pages),
            "ticker_dict_bytes_first": dict_pages[0] if dict_pages else 0,
            "ticker_dict_bytes_last": dict_pages[-1] if dict_pages else 0,
            "ticker_dict_bytes_max": max(dict_pages) if dict_pages else 0}


def print_columns(breakdowns: dict[str, dict]) -> None:
    names = []
    for b in breakdowns.values():
        names += [n for n in b["columns"] if n not in names]
    rows = []
    for n in names:
        rows.append([n] + [f"{b['columns'][n] / 1e6:.2f} MB" if n in b["columns"] else "-"
                           for b in breakdowns.values()])
    rows.append(["(row groups)"] + [str(b["row_groups"]) for b in breakdowns.values()])
    rows.append(["(ticker dictionary pages: total, max)"] + [
        f"{fmt_bytes(b['ticker_dict_bytes_total'])}, {b['ticker_dict_bytes_max'] / 1e3:.0f} kB"
        for b in breakdowns.values()])
    print(table(rows, ["column (compressed bytes)", *breakdowns]))


# --------------------------------------------------------------------------------------
# Profile


def short_sym(sym: str) -> str:
    """Drops template arguments and parameter lists: readable function names."""
    out, depth_t, depth_p = [], 0, 0
    i = 0
    while i < len(sym):
        ch = sym[i]
        if sym.startswith("operator()", i):
            if depth_t == 0 and depth_p == 0:
                out.append("operator()")
            i += len("operator()")
            continue
        if ch == "<" and not sym.startswith("<lambda", i):
            depth_t += 1
        elif ch == ">" and depth_t > 0:
            depth_t -= 1
        elif ch == "(" and depth_t == 0:
            depth_p += 1
        elif ch == ")" and depth_t == 0 and depth_p > 0:
            depth_p -= 1
        elif depth_t == 0 and depth_p == 0:
            out.append(ch)
        i += 1
    s = "".join(out).replace("{lambda#1}", "{lambda}").replace("{lambda#2}", "{lambda}")
    s = re.sub(r"\s+", " ", s).strip()
    s = s.replace("::::", "::")
    return s[:110]


# Phase of a CPU sample: the innermost frame of its stack that belongs to a known group
# (so a memset, a page fault or a write syscall is charged to the qlake code that caused
# it, on whatever thread it ran: reading, parsing and Parquet encoding run on different
# threads). Groups are matched per frame in this order.
def _is_compress(sym, dso):
    return sym.startswith(("ZSTD_", "HUF_", "FSE_", "ZSTDMT_", "LZ4")) or "snappy::" in sym


PHASE_GROUPS = [
    ("file I/O: write, open, mkdir, fsync (arrow::io / arrow::fs, qlake::lake)",
     lambda sym, dso: "arrow::io::" in sym or "arrow::fs::" in sym
     or any(k in sym for k in ("arrow::internal::FileWrite", "arrow::internal::FileOpen",
                               "arrow::internal::CreateDir", "arrow::internal::FileSync",
                               "arrow::internal::FileClose"))),
    ("gzip inflate (ISA-L)", lambda sym, dso: "libisal" in dso or "GzipInputStream" in sym
     or sym.startswith("isal_")),
    ("Parquet page compression (zstd/snappy)", _is_compress),
    ("Parquet encode: dictionary, stats, pages (libparquet, ParquetStreamWriter)",
     lambda sym, dso: "libparquet" in dso or "parquet::" in sym
     or "ParquetStreamWriter" in sym or "WriteParquet" in sym),
    ("sort + build Arrow chunks (AggDayBuilder Finish/BuildChunk/TakeChunk)",
     lambda sym, dso: ("AggDayBuilder" in sym and any(k in sym for k in (
         "Finish", "BuildChunk", "TakeChunk", "BuildQuarantine")))
     or any(k in sym for k in ("MakeDictionary", "MakeStringArray", "VectorBuffer"))),
    ("split day into files (PartitionDay)", lambda sym, dso: "PartitionDay" in sym),
    ("lake: staging files, commit, fsync (qlake::lake)", lambda sym, dso: "qlake::lake::" in sym),
    ("CSV split + parse + validate (AddRow, SplitCsvLine, Parse*)",
     lambda sym, dso: any(k in sym for k in (
         "AddRow", "SplitCsvLine", "ParseDecimal", "ParseInt64", "ParseWholeNumber",
         "ReadFast", "ReadAggDay", "NewTicker", "ValidTickerText", "AggDayBuilder"))),
]
# Only when no frame of the stack matches a group above: generic Arrow code (arrays,
# memory pool, thread pool) is charged to the qlake code that called it.
FALLBACK_GROUPS = [
    ("other qlake code", lambda sym, dso: "qlake::" in sym),
    ("Arrow (arrays, memory pool, thread pool) not under a phase above",
     lambda sym, dso: "libarrow" in dso or "arrow::" in sym),
]
OTHER_PHASE = "process start-up / exit, other"


def classify(frames) -> str:
    for groups in (PHASE_GROUPS, FALLBACK_GROUPS):
        for sym, dso in frames:
            for name, pred in groups:
                if pred(sym, dso):
                    return name
    return OTHER_PHASE


def parse_perf_script(text: str):
    """Yields (leaf (sym, dso), [(sym, dso)...]) per sample of `perf script` output."""
    frames, header = [], None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if header is not None and frames:
                # Self = the innermost real (not inlined) frame, as perf report counts it.
                leaf = next((f for f in frames if f[1] != "inlined"), frames[0])
                yield leaf, frames
            frames, header = [], None
            continue
        if header is None and not line.startswith(("\t", " ")):
            header = line
            continue
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
        if m:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            frames.append((sym, os.path.basename(m.group(2))))


def perf_profile(cmd, setup, freq: int, label: str, workdir: Path) -> dict:
    """perf stat + perf record --call-graph dwarf of one run of cmd."""
    res = {"label": label, "cmd": " ".join(map(str, cmd))}
    setup()
    t = time.perf_counter()
    stat = subprocess.run(["perf", "stat", "-x", ",", "-e", "task-clock,page-faults",
                           "--", *map(str, cmd)], capture_output=True, text=True)
    res["stat_wall_s"] = time.perf_counter() - t
    for line in stat.stderr.splitlines():
        parts = line.split(",")
        if len(parts) > 3 and parts[2] == "task-clock":
            res["task_clock_s"] = float(parts[0]) / 1e3
        if len(parts) > 3 and parts[2] == "page-faults":
            res["page_faults"] = int(float(parts[0]))
    setup()
    data = workdir / f"perf.{label}.data"
    t = time.perf_counter()
    subprocess.run(["perf", "record", "-q", "-F", str(freq), "--call-graph", "dwarf,16384",
                    "-o", str(data), "--", *map(str, cmd)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res["recorded_wall_s"] = time.perf_counter() - t
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "comm,tid,sym,dso,ip"],
                            capture_output=True, text=True, errors="replace").stdout
    data.unlink()
    leaf_counts = collections.Counter()
    phase_counts = collections.Counter()
    kernel_counts = collections.Counter()
    n = 0
    for leaf, frames in parse_perf_script(script):
        n += 1
        dso = leaf[1]
        dso = "kernel" if "kernel" in dso or dso.startswith("[") else dso
        leaf_counts[(short_sym(leaf[0]) or "?", dso)] += 1
        phase = classify(frames)
        phase_counts[phase] += 1
        if dso == "kernel":
            kernel_counts[phase] += 1
    res["samples"] = n
    res["phases"] = ([(k, v / n, kernel_counts[k] / n) for k, v in phase_counts.most_common()]
                     if n else [])
    res["top"] = [(s, d, v / n) for (s, d), v in leaf_counts.most_common(25)] if n else []
    return res


def strace_io(cmd, setup) -> dict:
    """Wall time inside file-system syscalls (strace -c -w) of one run."""
    setup()
    p = subprocess.run(["strace", "-f", "-c", "-w", "-e",
                        "trace=fsync,fdatasync,openat,mkdir,rename,renameat,renameat2,unlink,"
                        "unlinkat,write,close", "--", *map(str, cmd)],
                       capture_output=True, text=True)
    out = {}
    for line in p.stderr.splitlines():
        m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$", line)
        if m and m.group(6) != "total":
            out[m.group(6)] = {"seconds": float(m.group(2)), "calls": int(m.group(4))}
    return out


# --------------------------------------------------------------------------------------
# Reporting


def fmt_bytes(b):
    return "-" if b is None else f"{b / 1e6:,.1f} MB"


def table(rows, headers):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join([line, sep, *body])


def case_rows(cases, rows_in, gz_bytes, csv_bytes):
    out = []
    for c in cases:
        s = c.summary()
        sec = s["seconds"]
        out.append([
            s["name"],
            f"{sec:.3f}" + ("" if "query_seconds_median" not in s
                            else f" (wall {s['wall_median']:.2f})"),
            f"{s['wall_min']:.2f}–{s['wall_max']:.2f}",
            f"{(s['user_median'] or 0) + (s['sys_median'] or 0):.2f}",
            f"{rows_in / sec / 1e6:.2f} M",
            f"{gz_bytes / sec / 1e6:.0f}",
            fmt_bytes(s["out_bytes"]) + ("" if not s["out_files"] or s["out_files"] == 1
                                         else f" / {s['out_files']} files"),
            f"{s['rss_kb_max'] / 1024:.0f}",
        ])
    return out


HEADERS = ["case", "median s", "min–max wall s", "CPU s (user+sys)", "rows/s", "gz MB/s",
           "output", "peak RSS MiB"]


def verdict(value, target, higher_is_better):
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "MISSED"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="qlake synth --scale (default 1)")
    ap.add_argument("--date", default="2024-01-17", help="the benchmark day (a NYSE session)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per case (median)")
    ap.add_argument("--keep", type=Path, help="work folder to keep and reuse (synth mirror, "
                    "big file); default: a temporary folder, deleted at the end")
    ap.add_argument("--big-gb", type=float, default=5.0,
                    help="streaming test: file of >= this many GB (10^9 bytes) of CSV; 0 skips")
    ap.add_argument("--big-rss-cap-gb", type=float, default=14.0,
                    help="kill the streaming run if its RSS passes this (GiB); it is reported")
    ap.add_argument("--qlake", type=Path, default=DEFAULT_QLAKE,
                    help="qlake binary (copied first, so a rebuild during the run is harmless)")
    ap.add_argument("--no-partitioned", action="store_true",
                    help="skip the partitioned cases (DuckDB PARTITION_BY, qlake original): "
                    "the slow part, 25-70 s a run each at scale 1")
    ap.add_argument("--no-other-datasets", action="store_true",
                    help="skip qlake vs DuckDB on the other three datasets of the day")
    ap.add_argument("--no-profile", action="store_true", help="skip perf / strace profiling")
    ap.add_argument("--json-out", type=Path, help="write all numbers as JSON here")
    args = ap.parse_args()

    if not shutil.which("igzip"):
        sys.exit("igzip not found (Debian package: isal)")
    try:
        import duckdb  # noqa: F401
    except ImportError:
        sys.exit("duckdb not importable: run with the project's venv (.venv/bin/python)")

    tmp = None
    if args.keep:
        work = args.keep.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="qlake-ingest-bench-")
        work = Path(tmp)
    try:
        run(args, work)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, work: Path):
    import duckdb

    results: dict = {"started": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    # Snapshot the binary: another engineer may rebuild build/qlake during the run.
    qlake = work / "qlake.bench-copy"
    shutil.copy2(args.qlake, qlake)
    version = subprocess.run([str(qlake), "--version"], capture_output=True,
                             text=True).stdout.strip()
    sha = hashlib.sha256(qlake.read_bytes()).hexdigest()[:12]
    try:
        head = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        head = "?"
    cfg = subprocess.run([str(qlake), "config", "show"], capture_output=True, text=True).stdout
    ingest_cfg = [ln.strip() for ln in cfg.splitlines()
                  if ln.startswith(("ingest.", "system.mode"))]
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    igzip_v = subprocess.run(["igzip", "--version"], capture_output=True,
                             text=True).stdout.split("\n")[0].strip()
    env = {
        "nproc": os.cpu_count(), "cpu": cpu.group(1) if cpu else platform.processor(),
        "ram_gib": round(mem_kb / 2**20, 1), "kernel": platform.release(),
        "qlake": version, "qlake_sha256": sha, "qlake_binary": str(args.qlake),
        "qlake_binary_mtime": dt.datetime.fromtimestamp(
            args.qlake.stat().st_mtime).astimezone().isoformat(timespec="seconds"),
        "git_head": head, "duckdb": duckdb.__version__, "igzip": igzip_v,
        "python": platform.python_version(), "ingest_config": ingest_cfg,
        "loadavg_start": os.getloadavg(),
    }
    try:
        import pyarrow
        env["pyarrow"] = pyarrow.__version__
    except ImportError:
        pass
    results["env"] = env
    results["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    print(f"# qlake ingest benchmark — {args.date}, synth scale {args.scale}, {args.runs} runs")
    print(f"machine: {env['nproc']} cores ({env['cpu']}), {env['ram_gib']} GiB RAM, "
          f"kernel {env['kernel']}; load average at start {env['loadavg_start'][0]:.2f}")
    print(f"{version} (binary sha256 {sha}, built {env['qlake_binary_mtime']}; source HEAD "
          f"{head}); DuckDB {env['duckdb']}; {igzip_v}")
    print("qlake config in effect: " + "; ".join(ingest_cfg))
    print()

    # ---- 1. input
    datasets = "stocks_minute" if args.no_other_datasets else \
        "stocks_daily,stocks_minute,options_daily,options_minute"
    mirror = work / f"mirror_scale{args.scale:g}"
    manifest = synth_day(qlake, mirror, args.date, args.scale, datasets)
    sm = manifest_file(manifest, "stocks_minute")
    csv_gz = mirror / sm["key"]
    rows_in, gz_bytes, csv_bytes = sm["rows"], sm["bytes"], sm["uncompressed_bytes"]
    # Check the CSV size by decompressing (f), and warm the page cache for everyone.
    n = 0
    with subprocess.Popen(["igzip", "-dc", str(csv_gz)], stdout=subprocess.PIPE) as p:
        while chunk := p.stdout.read(1 << 22):
            n += len(chunk)
    assert n == csv_bytes, (n, csv_bytes)
    results["input"] = {"file": str(csv_gz), "rows": rows_in, "gz_bytes": gz_bytes,
                        "csv_bytes": csv_bytes}
    print(f"input: {sm['key']}: {rows_in:,} rows, {gz_bytes / 1e6:.1f} MB gz, "
          f"{csv_bytes / 1e6:.1f} MB CSV")

    # ---- 2. cases
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    D = args.date
    cases = [
        Case("igzip -dc > /dev/null", ["igzip", "-dc", str(csv_gz)], group="single"),
        duck_case("DuckDB COPY, ORDER BY, zstd", csv_gz, out / "duck_sorted.parquet",
                  order=True, partition=False, group="single"),
        duck_case("DuckDB COPY, no ORDER BY, zstd", csv_gz, out / "duck_unsorted.parquet",
                  order=False, partition=False, group="single"),
        qlake_case("qlake daily zstd (fresh)", qlake, "stocks_minute", D, mirror,
                   out / "lake_daily_zstd", "daily", "zstd", replace=False, group="single"),
        qlake_case("qlake daily zstd (replace)", qlake, "stocks_minute", D, mirror,
                   out / "lake_daily_zstd_r", "daily", "zstd", replace=True, group="single"),
        qlake_case("qlake daily snappy (fresh)", qlake, "stocks_minute", D, mirror,
                   out / "lake_daily_snappy", "daily", "snappy", replace=False,
                   group="single"),
        qlake_case("qlake daily snappy (replace)", qlake, "stocks_minute", D, mirror,
                   out / "lake_daily_snappy_r", "daily", "snappy", replace=True,
                   group="single"),
        qlake_case("qlake daily zstd --mode parallel (fresh)", qlake, "stocks_minute", D,
                   mirror, out / "lake_daily_zstd_par", "daily", "zstd", replace=False,
                   group="single", extra=["--mode", "parallel"]),
    ]
    if not args.no_partitioned:
        cases += [
            duck_case("DuckDB PARTITION_BY (ticker, year, month), zstd", csv_gz,
                      out / "duck_partitioned", order=True, partition=True,
                      group="partitioned"),
            qlake_case("qlake original zstd (fresh)", qlake, "stocks_minute", D, mirror,
                       out / "lake_orig", "original", "zstd", replace=False,
                       group="partitioned"),
            qlake_case("qlake original zstd (replace)", qlake, "stocks_minute", D, mirror,
                       out / "lake_orig_r", "original", "zstd", replace=True,
                       group="partitioned"),
        ]
    other = []
    if not args.no_other_datasets:
        for ds in ("stocks_daily", "options_daily", "options_minute"):
            f = manifest_file(manifest, ds)
            p = mirror / f["key"]
            other.append((ds, f, [
                Case(f"{ds}: igzip -dc", ["igzip", "-dc", str(p)], group=ds),
                duck_case(f"{ds}: DuckDB COPY, ORDER BY, zstd", p, out / f"duck_{ds}.parquet",
                          order=True, partition=False, group=ds),
                qlake_case(f"{ds}: qlake daily zstd (fresh)", qlake, ds, D, mirror,
                           out / f"lake_{ds}", "daily", "zstd", replace=False, group=ds),
            ]))
    all_cases = cases + [c for _, _, cs in other for c in cs]
    for i in range(args.runs):
        log(f"run {i + 1}/{args.runs}")
        for c in all_cases:
            r = c.run_once()
            log(f"  {c.name}: {r.get('query_seconds', r['wall']):.3f}s, "
                f"{r['rss_kb'] / 1024:.0f} MiB")
    env["loadavg_end"] = os.getloadavg()

    problems = check_same_rows({
        "DuckDB sorted": out / "duck_sorted.parquet",
        "DuckDB unsorted": out / "duck_unsorted.parquet",
        "qlake daily zstd": out / "lake_daily_zstd" / "stocks_minute",
        **({"DuckDB partitioned": out / "duck_partitioned",
            "qlake original": out / "lake_orig" / "stocks_minute"}
           if not args.no_partitioned else {}),
    }, rows_in)
    results["row_count_problems"] = problems

    by = {c.name: c.summary() for c in all_cases}
    results["cases"] = list(by.values())
    results["duck_sql"] = {c.name: c.sql for c in all_cases if hasattr(c, "sql")}

    print()
    print(f"## stocks_minute {D}: {rows_in:,} rows, {gz_bytes / 1e6:.1f} MB gz, "
          f"{csv_bytes / 1e6:.1f} MB CSV (f)")
    print("DuckDB: seconds = query time inside its process (start-up excluded); others: "
          "process wall time. rows/s and gz MB/s from that time.")
    print(table(case_rows(cases, rows_in, gz_bytes, csv_bytes), HEADERS))
    if problems:
        print("ROW COUNT PROBLEMS: " + "; ".join(problems))
    else:
        print(f"(every Parquet output checked: {rows_in:,} rows)")

    # ---- ratios
    ratios = time_ratios(by, "seconds", args) + size_ratios(by, csv_bytes, args)
    best = {n: v for n, v, *_ in time_ratios(by, "seconds_min", args)}
    print()
    print("## ratios vs DESIGN.md section 7 targets (times: medians; best-of-runs alongside)")
    rrows = []
    for name, v, target, hib, unit in ratios:
        b = best.get(name)
        rrows.append([name, f"{v:.2f}{unit and ' ' + unit}",
                      "" if b is None else f"{b:.2f}",
                      ("≥ " if hib else "≤ ") + f"{target}", verdict(v, target, hib)])
    print(table(rrows, ["ratio", "value (medians)", "best-of-runs", "target", ""]))
    results["ratios"] = [{"name": n, "value": v, "value_best": best.get(n), "target": t,
                          "higher_is_better": h, "met": verdict(v, t, h) == "met"}
                         for n, v, t, h, _ in ratios]
    breakdown = {
        "qlake daily zstd": parquet_columns(out / "lake_daily_zstd" / "stocks_minute"),
        "qlake zstd --mode parallel": parquet_columns(out / "lake_daily_zstd_par"
                                                      / "stocks_minute"),
        "DuckDB ORDER BY zstd": parquet_columns(out / "duck_sorted.parquet"),
    }
    results["columns"] = breakdown
    print()
    print("## Parquet bytes by column (stocks_minute, one day)")
    print_columns(breakdown)
    print_other(other)

    # ---- profile
    if not args.no_profile:
        results["profile"] = profile_section(args, qlake, mirror, out, D, work)

    # ---- 3. streaming memory
    if args.big_gb > 0:
        results["streaming"] = streaming_section(args, qlake, work, D)

    print()
    print(f"load average at start {env['loadavg_start'][0]:.2f}, at end "
          f"{env['loadavg_end'][0]:.2f} (2 shared cores: expect ±10-20 % run to run)")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1, default=str))
        log(f"wrote {args.json_out}")
    shutil.rmtree(out, ignore_errors=True)


def time_ratios(by, key, args):
    s = lambda name: by[name][key]  # noqa: E731
    q_daily = s("qlake daily zstd (fresh)")
    duck_fast = min(s("DuckDB COPY, ORDER BY, zstd"), s("DuckDB COPY, no ORDER BY, zstd"))
    ratios = [
        ("DuckDB single file (faster variant) / qlake daily zstd", duck_fast / q_daily, 5, True,
         "x faster"),
        ("DuckDB single file ORDER BY / qlake daily zstd",
         s("DuckDB COPY, ORDER BY, zstd") / q_daily, 5, True, "x faster"),
        ("DuckDB single file / qlake daily zstd (replace)",
         duck_fast / s("qlake daily zstd (replace)"), 5, True, "x faster"),
    ]
    if not args.no_partitioned:
        dp = s("DuckDB PARTITION_BY (ticker, year, month), zstd")
        ratios += [
            ("DuckDB PARTITION_BY / qlake original (fresh)",
             dp / s("qlake original zstd (fresh)"), 10, True, "x faster"),
            ("DuckDB PARTITION_BY / qlake original (replace)",
             dp / s("qlake original zstd (replace)"), 10, True, "x faster"),
        ]
    ig = s("igzip -dc > /dev/null")
    ratios += [
        ("qlake daily zstd / igzip -dc alone", q_daily / ig, 3, False, "x the time"),
        ("qlake daily snappy / igzip -dc alone", s("qlake daily snappy (fresh)") / ig, 3, False,
         "x the time"),
    ]
    return ratios


def size_ratios(by, csv_bytes, args):
    ratios = [
        ("qlake zstd bytes / DuckDB zstd bytes (sorted)",
         by["qlake daily zstd (fresh)"]["out_bytes"] / by["DuckDB COPY, ORDER BY, zstd"]["out_bytes"],
         1, False, ""),
        ("qlake zstd bytes / DuckDB zstd bytes (unsorted)",
         by["qlake daily zstd (fresh)"]["out_bytes"]
         / by["DuckDB COPY, no ORDER BY, zstd"]["out_bytes"], 1, False, ""),
        ("qlake zstd --mode parallel (1M-row groups) bytes / DuckDB zstd bytes (sorted)",
         by["qlake daily zstd --mode parallel (fresh)"]["out_bytes"]
         / by["DuckDB COPY, ORDER BY, zstd"]["out_bytes"], 1, False, ""),
        ("qlake zstd bytes / CSV bytes", by["qlake daily zstd (fresh)"]["out_bytes"] / csv_bytes,
         0.25, False, ""),
        ("qlake snappy bytes / CSV bytes",
         by["qlake daily snappy (fresh)"]["out_bytes"] / csv_bytes, 0.25, False, ""),
    ]
    if not args.no_partitioned:
        ratios.append(("qlake original bytes / DuckDB partitioned bytes",
                       by["qlake original zstd (fresh)"]["out_bytes"]
                       / by["DuckDB PARTITION_BY (ticker, year, month), zstd"]["out_bytes"],
                       1, False, ""))
    return ratios


def print_other(other):
    if not other:
        return
    print()
    print("## the other datasets of the day (qlake daily zstd vs DuckDB COPY ORDER BY zstd)")
    orows = []
    for ds, f, cs in other:
        ig_s, du, ql = (c.summary() for c in cs)
        orows.append([ds, f"{f['rows']:,}", f"{f['bytes'] / 1e6:.1f}",
                      f"{f['uncompressed_bytes'] / 1e6:.1f}", f"{ig_s['seconds']:.3f}",
                      f"{du['seconds']:.3f}", f"{ql['seconds']:.3f}",
                      f"{du['seconds'] / ql['seconds']:.2f}",
                      f"{ql['seconds'] / ig_s['seconds']:.1f}",
                      f"{ql['out_bytes'] / du['out_bytes']:.2f}",
                      f"{ql['out_bytes'] / f['uncompressed_bytes']:.3f}",
                      f"{du['rss_kb_max'] / 1024:.0f} / {ql['rss_kb_max'] / 1024:.0f}"])
    print(table(orows, ["dataset", "rows", "gz MB", "CSV MB", "igzip s", "DuckDB s",
                        "qlake s", "DuckDB/qlake", "qlake/igzip", "bytes q/D",
                        "bytes q/CSV", "RSS MiB D / q"]))


def profile_section(args, qlake, mirror, out, D, work) -> dict:
    res = {}
    if not shutil.which("perf"):
        print("\nperf not installed (apt-get install linux-perf): no profile")
        return res
    print()
    print("## where qlake ingest spends its time (perf record --call-graph dwarf; "
          "self samples by phase of the stack)")
    daily_lake = out / "prof_daily"
    cmd = qlake_cmd(qlake, "stocks_minute", D, mirror, daily_lake, "daily", "zstd")
    fresh = lambda: shutil.rmtree(daily_lake, ignore_errors=True)  # noqa: E731
    prof = perf_profile(cmd, fresh, 999, "daily_zstd", work)
    res["daily"] = prof
    profiles = [("daily zstd", prof)]
    if not args.no_partitioned:
        orig_lake = out / "prof_orig"
        cmd_o = qlake_cmd(qlake, "stocks_minute", D, mirror, orig_lake, "original", "zstd")
        fresh_o = lambda: shutil.rmtree(orig_lake, ignore_errors=True)  # noqa: E731
        prof_o = perf_profile(cmd_o, fresh_o, 49, "original_zstd", work)
        res["original"] = prof_o
        profiles.append(("original zstd", prof_o))
        if shutil.which("strace"):
            res["original_syscalls"] = strace_io(cmd_o, fresh_o)
    for label, p in profiles:
        wall = p["recorded_wall_s"]
        print(f"\n### qlake ingest --layout {label.split()[0]} ({p['samples']} samples; "
              f"perf stat: {p.get('task_clock_s', 0):.2f} s CPU in {p['stat_wall_s']:.2f} s wall = "
              f"{p.get('task_clock_s', 0) / p['stat_wall_s']:.2f} cores busy, "
              f"{p.get('page_faults', 0):,} page faults; wall under perf {wall:.1f} s)")
        print(table([[k, f"{v * 100:.1f} %", f"{kv * 100:.1f} %"] for k, v, kv in p["phases"]],
                    ["phase (innermost known frame)", "CPU samples", "of which in kernel"]))
        print()
        print(table([[s, d, f"{v * 100:.1f} %"] for s, d, v in p["top"][:15]],
                    ["top functions (self)", "dso", "samples"]))
    if "original_syscalls" in res:
        sc = res["original_syscalls"]
        print("\n### original layout: wall time inside file-system syscalls (strace -f -c -w, "
              "one run; strace slows syscalls)")
        print(table([[k, v["calls"], f"{v['seconds']:.2f}"]
                     for k, v in sorted(sc.items(), key=lambda kv: -kv[1]["seconds"])],
                    ["syscall", "calls", "seconds"]))
    return res


def streaming_section(args, qlake, work, D) -> dict:
    big_bytes = int(args.big_gb * 1e9)
    info = make_big_file(qlake, work, D, big_bytes)
    lake = work / "big_lake"
    shutil.rmtree(lake, ignore_errors=True)
    cmd = [str(qlake), "-q", "ingest", "--mode", "streaming", "--dataset", "stocks_minute",
           "--date", D, "--source", info["mirror"], "--lake", str(lake), "--json"]
    log(f"streaming ingest of the big file: {' '.join(cmd)}")
    cap_kb = int(args.big_rss_cap_gb * 2**20)
    r = run_measured(cmd, stdout=subprocess.PIPE, rss_cap_kb=cap_kb)
    res = {"file": info, "cmd": " ".join(cmd), "wall": r["wall"], "rc": r["rc"],
           "user": r.get("user"), "sys": r.get("sys"), "rss_kb": r["rss_kb"],
           "killed_at_cap": r["killed"], "cap_kb": cap_kb}
    ok = r["rc"] == 0
    if ok:
        j = json.loads(r["stdout"])
        d = j["days"][0]
        res.update(ok=d["ok"], read=d["read"], written=d["written"],
                   output_bytes=d["output_bytes"], qlake_seconds=j["seconds"])
        ok = d["ok"]
        if ok:
            res["columns"] = parquet_columns(lake / "stocks_minute")
    else:
        res["stderr"] = r["stderr"][-2000:]
    shutil.rmtree(lake, ignore_errors=True)
    print()
    print(f"## streaming: qlake ingest --mode streaming on one {info['uncompressed_bytes'] / 1e9:.2f} GB "
          f"(CSV) stocks_minute file")
    print(f"file: {info['rows']:,} rows, {info['gz_bytes'] / 1e9:.2f} GB gz "
          f"({info['copies']} ticker-prefixed copies of the scale-10 day)")
    rss_mib = r["rss_kb"] / 1024
    status = ("ok" if ok else
              f"KILLED at the {args.big_rss_cap_gb:g} GiB RSS cap" if r["killed"] else
              f"FAILED (exit {r['rc']}): {r['stderr'].strip()[-300:]}")
    rows = [["status", status], ["wall s", f"{r['wall']:.1f}"],
            ["CPU s (user+sys)", f"{(r.get('user') or 0) + (r.get('sys') or 0):.1f}"],
            ["peak RSS", f"{rss_mib:,.0f} MiB"],
            ["target", "< 512 MiB: " + ("met" if ok and rss_mib < 512 else "MISSED")]]
    if ok:
        rows.insert(2, ["rows/s", f"{res['read'] / r['wall'] / 1e6:.2f} M"])
        rows.insert(3, ["CSV MB/s", f"{info['uncompressed_bytes'] / r['wall'] / 1e6:.0f}"])
        rows.append(["output", fmt_bytes(res["output_bytes"])])
    print(table(rows, ["streaming", "value"]))
    if "columns" in res:
        b = res["columns"]
        print(f"output by column: " + ", ".join(
            f"{k} {v / 1e6:,.0f} MB" for k, v in sorted(b["columns"].items(),
                                                        key=lambda kv: -kv[1])[:4])
              + f"; {b['row_groups']} row groups; ticker dictionary pages "
              f"{b['ticker_dict_bytes_total'] / 1e6:,.0f} MB in total, "
              f"{b['ticker_dict_bytes_first'] / 1e3:,.0f} kB in the first row group, "
              f"{b['ticker_dict_bytes_last'] / 1e3:,.0f} kB in the last")
    return res


if __name__ == "__main__":
    main()
