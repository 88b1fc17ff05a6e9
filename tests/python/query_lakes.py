"""Synthetic lakes for the query tests: one synth mirror, ingested into a `daily` and an
`original` layout lake with small row groups (so that pruning has something to prune).
Built once per test session (a few seconds at scale 0.01)."""

import os
import subprocess
from pathlib import Path

FROM, TO = "2025-01-02", "2025-01-08"  # five sessions
DATASETS = ["stocks_daily", "stocks_minute", "options_daily", "options_minute"]
SCALE = "0.01"
ROW_GROUP_ROWS = "4096"


def run(qlake_bin, *args, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLAKE_", "AWS_"))}
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / "xdg")
    proc = subprocess.run([str(qlake_bin), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"qlake {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def build_lakes(qlake_bin, root: Path) -> dict:
    mirror = root / "mirror"
    run(qlake_bin, "synth", "--out", mirror, "--from", FROM, "--to", TO, "--scale", SCALE,
        "--datasets", ",".join(DATASETS), home=root)
    lakes = {}
    for layout in ("daily", "original"):
        lake = root / f"lake_{layout}"
        for ds in DATASETS:
            run(qlake_bin, "--set", f"ingest.row_group_rows={ROW_GROUP_ROWS}", "-q", "ingest",
                "--dataset", ds, "--from", FROM, "--to", TO, "--source", mirror,
                "--lake", lake, "--layout", layout, home=root)
        lakes[layout] = lake
    return lakes
