"""`qlake profile`: the machine profile checked against what Python sees of the same machine."""

import json
import os
import platform
import shutil
from pathlib import Path

GiB = 1 << 30


def profile_json(run_qlake, *args, env=None):
    return json.loads(run_qlake(*args, "profile", "--json", env=env).stdout)


def meminfo():
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def expected_mode(usable):
    if usable < 32 * GiB:
        return "streaming"
    if usable <= 64 * GiB:
        return "batch"
    return "parallel"


def test_json_cores_match_affinity(run_qlake):
    p = profile_json(run_qlake)["profile"]
    assert p["online_cpus"] == len(os.sched_getaffinity(0))
    assert p["online_cpus"] <= os.cpu_count()
    assert 1 <= p["usable_cores"] <= p["online_cpus"]
    if p["cgroup_cpu_quota"] == 0:
        assert p["usable_cores"] == p["online_cpus"]
    else:
        assert p["usable_cores"] <= max(1, -(-p["cgroup_cpu_quota"] // 1))


def test_json_memory_matches_proc_meminfo(run_qlake):
    p = profile_json(run_qlake)["profile"]
    mi = meminfo()
    assert p["total_memory"] == mi["MemTotal"]
    assert 0 < p["available_memory"] <= p["total_memory"]
    limit = p["cgroup_memory_limit"]
    assert p["usable_memory"] == (min(p["total_memory"], limit) if limit else p["total_memory"])
    assert p["cgroup_version"] in ("v1", "v2", "none")
    assert p["mode"] == expected_mode(p["usable_memory"])
    assert p["human"]["total_memory"].endswith("GiB")


def test_json_disk_and_os(run_qlake, tmp_path):
    p = profile_json(run_qlake)["profile"]
    # lake.root defaults to ./lake, which does not exist: its parent's file system counts.
    assert p["disk_path"] == str(tmp_path / "lake")
    assert not (tmp_path / "lake").exists()
    assert p["disk_total"] == shutil.disk_usage(tmp_path).total
    assert 0 < p["disk_free"] <= p["disk_total"]
    assert p["kernel"] == platform.release()
    assert p["arch"] == platform.machine()
    pretty = [l for l in Path("/etc/os-release").read_text().splitlines()
              if l.startswith("PRETTY_NAME=")]
    if pretty:
        assert p["os_name"] == pretty[0].split("=", 1)[1].strip('"')


def test_effective_defaults_follow_profile(run_qlake):
    j = profile_json(run_qlake)
    p, eff = j["profile"], j["effective"]
    assert eff["mode"]["setting"] == "auto"
    assert eff["mode"]["value"] == p["mode"]
    assert eff["mode"]["source"] == "default"
    assert eff["memory.limit"]["source"] == "profile"
    assert 0 < eff["memory.limit"]["value"] <= p["usable_memory"]
    assert eff["system.threads"]["setting"] == 0
    assert eff["system.threads"]["value"] == p["usable_cores"]


def test_effective_overrides_name_their_source(run_qlake):
    j = profile_json(run_qlake, "--set", "system.mode=batch", "--set", "memory.limit=2GiB",
                     "--set", "system.threads=3")
    eff = j["effective"]
    assert eff["mode"] == {"value": "batch", "source": "flag", "origin": "--set",
                           "setting": "batch"}
    assert eff["memory.limit"]["value"] == 2 * GiB
    assert eff["system.threads"]["value"] == 3

    eff = profile_json(run_qlake, env={"QLAKE_SYSTEM__MODE": "parallel"})["effective"]
    assert eff["mode"]["value"] == "parallel"
    assert eff["mode"]["source"] == "env"
    assert eff["mode"]["origin"] == "QLAKE_SYSTEM__MODE"


def test_text_mentions_mode_and_sources(run_qlake):
    p = profile_json(run_qlake)["profile"]
    out = run_qlake("profile").stdout
    assert f"mode    {p['mode']}" in out
    assert "in effect" in out
    assert "memory.limit" in out and "system.threads" in out
    out = run_qlake("profile", "--set", "system.mode=parallel").stdout
    assert "parallel" in out and "flag --set" in out


def test_bad_mode_is_invalid_config(run_qlake):
    r = run_qlake("profile", env={"QLAKE_SYSTEM__MODE": "turbo"}, check=False)
    assert r.returncode == 3
    assert r.stderr.startswith("qlake: error:")
    assert "system.mode" in r.stderr
