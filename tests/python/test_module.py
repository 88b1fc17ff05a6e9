"""The Python module: zero-copy hand-off, conversions, errors, wrappers, threads.

Correctness of the rows against DuckDB is in test_query.py (test_module_matches_golden).
"""

import datetime
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest

REPO = Path(__file__).resolve().parents[2]
ARGS = ("stocks_minute", ["AAPL", "MSFT"], "2025-01-02", "2025-01-08")


def test_read_is_zero_copy(qlake_module, query_lakes):
    lake = qlake_module.Lake(str(query_lakes["daily"]))
    t = lake.read(*ARGS, columns=["ticker", "close", "volume", "window_start"])
    assert t.num_rows > 1000
    # The addresses of the C++ result's buffers are those pyarrow sees: nothing was copied.
    native = lake._last_addresses
    assert len(native) == t.num_columns
    for i in range(t.num_columns):
        assert t.column(i).chunk(0).buffers()[1].address == native[i], t.schema.field(i)
    # A warm read slices the cached column chunks: the very same memory again.
    again = lake.read(*ARGS, columns=["ticker", "close", "volume", "window_start"])
    for name in ("close", "volume", "window_start"):
        assert (again.column(name).chunk(0).buffers()[1].address
                == t.column(name).chunk(0).buffers()[1].address)
    assert lake.last_stats["cache_misses"] == 0 and lake.last_stats["cache_hits"] > 0
    assert lake.last_stats["bytes_read"] == 0


def test_types_dates_and_equivalent_entry_points(qlake_module, query_lakes):
    uri = str(query_lakes["daily"])
    t1 = qlake_module.query(uri, *ARGS)
    t2 = qlake_module.Lake(uri).read("stocks_minute", "AAPL,MSFT", datetime.date(2025, 1, 2),
                                     datetime.datetime(2025, 1, 8, 12, 0))
    assert t1.equals(t2)
    assert t1.schema.field("ticker").type == pa.dictionary(pa.int32(), pa.utf8())
    assert t1.schema.field("window_start").type == pa.timestamp("ns", tz="America/New_York")
    assert t1.schema.field("close").type == pa.float32()
    tickers = t1.column("ticker").to_pylist()
    assert tickers == sorted(tickers) and set(tickers) == {"AAPL", "MSFT"}
    with pytest.raises(TypeError, match="start must be a str"):
        qlake_module.query(uri, "stocks_minute", ["AAPL"], 20250102, "2025-01-08")


def test_pandas_and_polars(qlake_module, query_lakes):
    t = qlake_module.query(str(query_lakes["daily"]), *ARGS, columns=["ticker", "window_start",
                                                                      "close", "volume"])
    df = t.to_pandas()
    assert len(df) == t.num_rows
    assert str(df["window_start"].dt.tz) == "America/New_York"
    assert df["close"].dtype == "float32"
    polars = pytest.importorskip("polars")
    pl_df = polars.from_arrow(t)
    assert pl_df.height == t.num_rows
    assert pl_df["close"].sum() == pytest.approx(float(df["close"].sum()), rel=1e-5)


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(where="close >>> 3"), ValueError, "where: expected a column, number or string at 8"),
    (dict(columns=["nope"]), ValueError, "unknown column 'nope' of stocks_minute"),
    (dict(session="lunch"), ValueError, "unknown session 'lunch'"),
    (dict(dataset="stocks_weekly"), ValueError, "stocks_weekly"),
    (dict(start="2025-13-01"), ValueError, "2025-13-01"),
])
def test_errors_carry_the_cli_message(qlake_module, query_lakes, run_qlake, kwargs, exc,
                                      message):
    call = dict(dataset="stocks_minute", symbols=["AAPL"], start="2025-01-02",
                end="2025-01-08")
    call.update(kwargs)
    with pytest.raises(exc) as info:
        qlake_module.query(str(query_lakes["daily"]), **call)
    assert message in str(info.value)
    # The CLI says the same after its prefix.
    args = ["query", "--lake", query_lakes["daily"], "--dataset", call["dataset"], "--symbols",
            "AAPL", "--from", call["start"], "--to", call["end"], "--format", "csv"]
    if "where" in call:
        args += ["--where", call["where"]]
    if "columns" in call:
        args += ["--columns", ",".join(call["columns"])]
    if "session" in call:
        args += ["--session", call["session"]]
    proc = run_qlake(*args, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"qlake: error: {info.value}"


def test_missing_lake_is_oserror(qlake_module, tmp_path):
    with pytest.raises((OSError, ValueError)):
        qlake_module.query(str(tmp_path / "no" / "lake"), *ARGS)


def test_concurrent_readers_agree(qlake_module, query_lakes):
    uri = str(query_lakes["daily"])
    qlake_module.clear_cache()
    want = qlake_module.Lake(uri).read(*ARGS)
    results, errors = [], []

    def work():
        try:
            lake = qlake_module.Lake(uri)
            for _ in range(5):
                results.append(lake.read(*ARGS))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(results) == 20 and all(r.equals(want) for r in results)
    stats = qlake_module.cache_stats()
    assert stats["hits"] > 0 and 0 < stats["hit_rate"] <= 1 and stats["bytes"] > 0


def test_ingest_wrapper_then_query(qlake_module, query_lakes, tmp_path):
    mirror = query_lakes["daily"].parent / "mirror"
    lake = tmp_path / "lake"
    report = qlake_module.ingest("stocks_daily", "2025-01-02", datetime.date(2025, 1, 3),
                                 source=str(mirror), lake=str(lake))
    assert report["ok"] and [d["date"] for d in report["days"]] == ["2025-01-02", "2025-01-03"]
    assert all(d["written"] > 0 for d in report["days"])
    t = qlake_module.query(str(lake), "stocks_daily", ["AAPL"], "2025-01-01", "2025-01-31")
    assert t.num_rows == 2
    with pytest.raises(ValueError, match="unknown layout"):
        qlake_module.ingest("stocks_daily", "2025-01-02", "2025-01-02", source=str(mirror),
                            lake=str(lake), layout="weird")
    with pytest.raises(OSError, match="is not a folder"):
        qlake_module.ingest("stocks_daily", "2025-01-02", "2025-01-02",
                            source=str(tmp_path / "nowhere"), lake=str(lake))
    (tmp_path / "empty").mkdir()
    bad = qlake_module.ingest("stocks_daily", "2025-01-02", "2025-01-02",
                              source=str(tmp_path / "empty"), lake=str(lake), check=False)
    assert not bad["ok"] and bad["days"][0]["error"]
    with pytest.raises(RuntimeError, match="2025-01-02"):
        qlake_module.ingest("stocks_daily", "2025-01-02", "2025-01-02",
                            source=str(tmp_path / "empty"), lake=str(lake))


def test_stubs_cover_the_public_api(qlake_module):
    stub = (Path(qlake_module.__file__).parent / "__init__.pyi").read_text()
    for name in qlake_module.__all__:
        if name != "__version__":
            assert f"def {name}(" in stub or f"class {name}" in stub, name
            assert getattr(qlake_module, name).__doc__, name


PIP_TEST = os.environ.get("QLAKE_PIP_TEST", "0") == "1"


@pytest.mark.skipif(not PIP_TEST, reason="slow (a full compile in a new venv): QLAKE_PIP_TEST=1")
def test_pip_install_in_fresh_venv(tmp_path, query_lakes):
    """`pip install .` in a new virtualenv builds the module (scikit-build-core + nanobind,
    against the pyarrow it installs) and it works there. The slowest test: it compiles the
    libraries again (ccache helps on reruns)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = dict(os.environ)
    if shutil.which("ccache"):
        env.setdefault("CMAKE_CXX_COMPILER_LAUNCHER", "ccache")
    env["CCACHE_BASEDIR"] = str(REPO)
    env["CCACHE_NOHASHDIR"] = "1"
    env["CMAKE_BUILD_PARALLEL_LEVEL"] = env.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           str(REPO)], capture_output=True, text=True, env=env, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    code = (
        "import qlake, pyarrow as pa, sys\n"
        f"t = qlake.query({str(query_lakes['daily'])!r}, 'stocks_daily', ['AAPL'], "
        "'2025-01-02', '2025-01-08')\n"
        "assert isinstance(t, pa.Table) and t.num_rows == 5, t\n"
        "assert qlake.__file__.startswith(sys.prefix), qlake.__file__\n"
        "print('ok', qlake.__version__)\n"
    )
    run = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.startswith("ok"), run.stdout + run.stderr


def _cache_under_memory_limit(qlake_module, lake, home, limit):
    """Runs a read in a new process whose memory.limit is `limit`; returns what it saw."""
    code = (
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(Path(qlake_module.__file__).parents[1])!r})\n"
        "import qlake\n"
        f"t = qlake.query({str(lake)!r}, 'stocks_minute', ['AAPL', 'MSFT'], '2025-01-02', "
        "'2025-01-08')\n"
        "time.sleep(0.5)\n"
        "print(json.dumps(dict(rows=t.num_rows, cache=qlake.cache_stats(), "
        "memory=qlake.memory_stats())))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLAKE_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "xdg"),
               QLAKE_MEMORY__LIMIT=limit, QLAKE_MEMORY__SAMPLE_INTERVAL_MS="10",
               QLAKE_QUERY__CACHE_BYTES="256MiB")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cache_shrinks_under_memory_pressure(qlake_module, query_lakes, tmp_path):
    """The process-wide cache obeys the memory monitor: with a budget the interpreter
    alone exceeds (64 MiB) the tier is critical and the cache keeps at most a quarter of
    query.cache_bytes; with a roomy budget it keeps what it read."""
    tight = _cache_under_memory_limit(qlake_module, query_lakes["daily"], tmp_path, "64MiB")
    assert tight["memory"]["monitor"] and tight["memory"]["budget"] == 64 << 20
    assert tight["memory"]["tier"] == "critical" and tight["memory"]["escalations"] >= 1
    assert tight["cache"]["capacity"] == (256 << 20) // 4
    roomy = _cache_under_memory_limit(qlake_module, query_lakes["daily"], tmp_path, "64GiB")
    assert roomy["rows"] == tight["rows"] > 0
    assert roomy["memory"]["tier"] == "normal"
    assert roomy["cache"]["capacity"] == 256 << 20 and roomy["cache"]["entries"] > 0
