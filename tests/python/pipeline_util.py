"""Helpers shared by the pipeline tests: a project folder, lake snapshots, and comparisons
that ignore what legitimately differs between two runs (commit times, transaction ids,
run reports, the best-effort history log)."""

import json
import zlib
from pathlib import Path


def write_project(folder: Path, mirror: Path, datasets, extra: str = "") -> Path:
    """qlake.yaml in `folder` with the lake at folder/lake."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (f"source: {mirror}\nlake: lake\ndatasets:\n"
            + "".join(f"  - {d}\n" for d in datasets) + extra)
    path = folder / "qlake.yaml"
    path.write_text(text)
    return path


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def records(lake: Path, dataset: str) -> dict:
    commits = lake / "_qlake" / dataset / "commits"
    return {p.stem: read_json(p) for p in sorted(commits.glob("*.json"))}


def without_commit_time(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("committed_at", "txn")}


def comparable_record(record: dict) -> dict:
    """A commit record without what differs between two equal runs: its own time and
    transaction id and, for feature days, the transaction ids of the raw days they read
    (kept as present / absent)."""
    out = without_commit_time(record)
    if str(out.get("dataset", "")).startswith("features/"):
        out["source"] = {**out["source"], "etag": "<txn>"}
        v = dict(out.get("validation", {}))
        if isinstance(v.get("inputs"), dict):
            v["inputs"] = {k: (None if t is None else "<txn>") for k, t in v["inputs"].items()}
        out["validation"] = v
    return out


def run_reports(lake: Path) -> list:
    return [read_json(p) for p in sorted((lake / "_qlake" / "runs").glob("*.json"))]


def data_files(lake: Path) -> dict:
    """Every file of the lake that a run must reproduce exactly: data, quarantine, records,
    watermarks. Not: run reports and pipeline state (they describe runs), the lock file,
    history.jsonl (best effort, may repeat lines after recovery)."""
    out = {}
    for p in sorted(lake.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(lake)
        parts = rel.parts
        if parts[0] == "_qlake" and (parts[1] in ("runs", "pipeline") or parts[1].startswith("lock")):
            continue
        if p.name == "history.jsonl":
            continue
        out[str(rel)] = p.read_bytes()
    return out


def normalized(lake: Path, datasets) -> dict:
    """Lake content with commit records and watermarks reduced to their comparable parts."""
    files = data_files(lake)
    out = {}
    for rel, data in files.items():
        name = Path(rel).name
        if rel.startswith("_qlake/") and "/commits/" in rel:
            out[rel] = comparable_record(json.loads(data))
        elif name.startswith("watermark.json"):
            out[rel] = {**json.loads(data), "updated_at": None}
        else:
            out[rel] = data
    return out


def check_day_files(lake: Path, dataset: str, record: dict, what: str):
    for f in record["files"]:
        path = lake / dataset / f["path"]
        assert path.is_file(), f"{what}: {path} missing"
        data = path.read_bytes()
        assert len(data) == f["size"] and format(zlib.crc32(data), "08x") == f["crc32"], (
            f"{what}: {path} does not match its record")
    if record.get("quarantine"):
        q = record["quarantine"]
        data = (lake / q["path"]).read_bytes()
        assert len(data) == q["size"] and format(zlib.crc32(data), "08x") == q["crc32"]
