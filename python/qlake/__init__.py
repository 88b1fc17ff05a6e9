"""qlake: the Massive flat-file lake, from Python.

Reads return ``pyarrow.Table`` objects that share memory with qlake's engine: the C++
result is handed over through the Arrow C stream interface, without copying a buffer.
The module uses the pyarrow it is installed beside (one Arrow library in the process).

    >>> import qlake
    >>> t = qlake.query("/data/lake", "stocks_minute", ["AAPL"], "2025-01-02", "2025-01-31",
    ...                 columns=["ticker", "window_start", "close"], where="volume > 1000")
    >>> t.to_pandas()

Errors raise ``ValueError`` (bad arguments, unknown dataset or column, bad condition),
``OSError`` (unreadable lake or file) or ``RuntimeError``, with the message the CLI prints.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import threading as _threading
from typing import Any, Iterable, Optional, Sequence, Union

import pyarrow as _pa  # loads the Arrow libraries the extension links against

from . import _qlake

__version__ = _qlake.__version__

DateLike = Union[str, _dt.date]
Symbols = Union[str, Iterable[str], None]

__all__ = [
    "Lake",
    "query",
    "ingest",
    "qlib_export",
    "sync",
    "cache_stats",
    "set_cache_bytes",
    "clear_cache",
    "memory_stats",
    "__version__",
]


def _date(value: DateLike, name: str) -> str:
    if isinstance(value, _dt.datetime):
        return value.date().isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"{name} must be a str 'YYYY-MM-DD' or a datetime.date, not {type(value).__name__}")


def _names(value: Symbols, name: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    out = []
    for v in value:
        if not isinstance(v, str):
            raise TypeError(f"{name} must hold str values, not {type(v).__name__}")
        out.append(v)
    return out


class _Stream:
    """Holds an ``arrow_array_stream`` capsule for ``__arrow_c_stream__`` consumers."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        if requested_schema is not None:
            raise NotImplementedError("qlake streams have a fixed schema")
        capsule, self._capsule = self._capsule, None
        if capsule is None:
            raise RuntimeError("the stream was already consumed")
        return capsule


class Lake:
    """A lake opened for reading (a folder, ``file://`` or ``s3://`` URI).

    Opening reads nothing; every ``read`` lists the commit records of its date range, so
    it sees days committed since. Lakes share one process-wide cache of decoded column
    chunks (see ``cache_stats``). Safe to use from several threads; the GIL is released
    while a query runs.
    """

    def __init__(self, uri: str) -> None:
        self._lake = _qlake.Lake(str(uri))
        self.last_stats: dict = {}
        self._last_addresses: list = []

    @property
    def uri(self) -> str:
        return self._lake.uri

    def datasets(self) -> list:
        """Datasets with committed days, sorted."""
        return self._lake.datasets()

    def read(
        self,
        dataset: str,
        symbols: Symbols,
        start: DateLike,
        end: DateLike,
        columns: Optional[Sequence[str]] = None,
        where: Optional[str] = None,
        session: Symbols = None,
    ) -> _pa.Table:
        """Rows of ``symbols`` (tickers; options datasets: underlyings; ``None`` or
        ``[]`` = all) between ``start`` and ``end`` inclusive, as a ``pyarrow.Table``.

        ``columns`` selects and orders the output columns (default: all).
        ``where`` is a condition such as ``"close > 100 and volume >= 1000"``
        (docs/query.md). ``session`` ("regular", "pre", "post", "outside", or a list)
        keeps those parts of the trading day in minute datasets. Rows are ordered by
        (symbol, time) when symbols are given, else by (day, ticker, time).

        Statistics of the read (pruning, bytes read, cache hits) are left in
        ``self.last_stats``.
        """
        capsule, stats, addresses = self._lake.read(
            str(dataset),
            _names(symbols, "symbols"),
            _date(start, "start"),
            _date(end, "end"),
            _names(columns, "columns"),
            where or "",
            _names(session, "session"),
        )
        self.last_stats = stats
        self._last_addresses = addresses
        return _pa.RecordBatchReader.from_stream(_Stream(capsule)).read_all()

    def __repr__(self) -> str:
        return f"qlake.Lake({self.uri!r})"


_lakes: dict = {}
_lakes_lock = _threading.Lock()


def _lake(uri: str) -> Lake:
    with _lakes_lock:
        lake = _lakes.get(uri)
        if lake is None:
            lake = _lakes[uri] = Lake(uri)
        return lake


def query(
    lake: str,
    dataset: str,
    symbols: Symbols,
    start: DateLike,
    end: DateLike,
    columns: Optional[Sequence[str]] = None,
    where: Optional[str] = None,
    session: Symbols = None,
) -> _pa.Table:
    """``Lake(lake).read(...)`` with the lake kept open between calls (same URI, same
    object), so repeated queries hit the cache. See ``Lake.read``."""
    return _lake(str(lake)).read(dataset, symbols, start, end, columns, where, session)


def ingest(
    dataset: str,
    start: DateLike,
    end: DateLike,
    source: Optional[str] = None,
    lake: Optional[str] = None,
    layout: str = "daily",
    symbols: Symbols = None,
    mode: Optional[str] = None,
    parallel: Optional[int] = None,
    reference_reader: bool = False,
    check: bool = True,
) -> dict:
    """Ingest flat files of ``dataset`` for ``start``..``end`` (inclusive) into the lake,
    like ``qlake ingest`` (same options and configuration: ``source``/``lake`` default to
    the config keys source.root / lake.root). Returns the report as a dict (per-day
    counts, failures). With ``check`` (default), a run where any day failed raises
    ``RuntimeError`` naming the failures, after the good days were committed."""
    report = _qlake.ingest(
        str(dataset),
        _date(start, "start"),
        _date(end, "end"),
        str(source or ""),
        str(lake or ""),
        str(layout),
        _names(symbols, "symbols"),
        str(mode or ""),
        int(parallel or 0),
        bool(reference_reader),
    )
    if check and not report["ok"]:
        failures = "; ".join(f"{d['date']}: {d['error']}" for d in report["days"] if not d["ok"])
        raise RuntimeError(f"{report['error']} ({failures})" if failures else report["error"])
    return report


def qlib_export(
    out: str,
    lake: Optional[str] = None,
    freq: str = "day",
    start: Optional[DateLike] = None,
    end: Optional[DateLike] = None,
    symbols: Symbols = None,
    market: Optional[str] = None,
    session: str = "regular",
    fields: Symbols = None,
    rebuild: bool = False,
    batch_mb: int = 256,
    fsync: bool = True,
    recommit_check: bool = True,
) -> dict:
    """Create or update the Qlib provider directory ``out`` from the lake, like
    ``qlake qlib export`` (docs/qlib.md), with the same options: ``lake`` (default: config
    lake.root), ``freq`` ("day" from stocks_daily, "1min" from stocks_minute), ``start`` /
    ``end`` (``--from``/``--to``; default: the store's first day and the lake's
    watermark), ``symbols``, ``market``, ``session`` ("regular"/"extended", 1min),
    ``fields`` (extra lake or feature columns), ``rebuild``, ``batch_mb``, ``fsync``
    (``--no-fsync`` is ``fsync=False``), ``recommit_check`` (``--no-recommit-check`` is
    ``recommit_check=False``). Returns the report (the keys of ``--json``).
    Raises ``ValueError`` for bad options or missing lake days, ``OSError`` for I/O."""
    return _qlake.qlib_export(
        str(out),
        str(lake or ""),
        str(freq),
        "" if start is None else _date(start, "start"),
        "" if end is None else _date(end, "end"),
        _names(symbols, "symbols"),
        str(market or ""),
        str(session),
        _names(fields, "fields"),
        bool(rebuild),
        int(batch_mb),
        bool(fsync),
        bool(recommit_check),
    )


def sync(
    project: Optional[str] = None,
    source: Optional[str] = None,
    lake: Optional[str] = None,
    cache: Optional[str] = None,
    datasets: Symbols = None,
    qlib: Symbols = None,
    metrics_file: Optional[str] = None,
    jobs: Optional[int] = None,
    now: Optional[str] = None,
    check: bool = True,
) -> dict:
    """Bring the lake up to the latest published day, like ``qlake sync`` (docs/pipeline.md),
    with the same options: ``project`` (default ./qlake.yaml if it exists), ``source``,
    ``lake``, ``cache`` (fetch each day into this local flat-file cache first), ``datasets``, ``qlib`` (stores "DIR[:day|1min[:dataset]]", a list),
    ``metrics_file``, ``jobs``, ``now`` (Unix seconds or "YYYY-MM-DDTHH:MM:SSZ"). Returns
    the run report (what ``qlake sync --json`` prints). Raises ``ValueError`` for bad
    options, ``RuntimeError`` when another run holds the lake's lock, and, with ``check``
    (default), the exception of the run's failure (the message the CLI prints) when a day
    failed; with ``check=False`` the report says so (``report["status"]``)."""
    import json as _json

    text, error = _qlake.sync(
        str(project or ""),
        str(source or ""),
        str(lake or ""),
        str(cache or ""),
        ",".join(_names(datasets, "datasets")),
        _names(qlib, "qlib") if not isinstance(qlib, str) else [qlib],
        str(metrics_file or ""),
        int(jobs or 0),
        str(now or ""),
        bool(check),
    )
    report = _json.loads(text)
    if error:
        report.setdefault("error", error)
    return report


def cache_stats() -> dict:
    """Counters of the process-wide decoded column-chunk cache: hits, misses, evictions,
    entries, bytes, capacity, hit_rate."""
    return _qlake.cache_stats()


def set_cache_bytes(n: int) -> None:
    """Sets the cache budget in bytes (default: config query.cache_bytes' default)."""
    _qlake.set_cache_bytes(int(n))


def clear_cache() -> None:
    """Drops every cached column chunk (counters are kept)."""
    _qlake.clear_cache()


def reset_cache_counters() -> None:
    """Sets the cache's hit, miss and eviction counters to zero."""
    _qlake.reset_cache_counters()


def memory_stats() -> dict:
    """The process's memory monitor, which shrinks the cache under memory pressure (half
    its budget at the warn tier, a quarter and emptied at critical; configuration keys
    memory.limit, memory.warn_fraction, memory.act_fraction, memory.sample_interval_ms):
    ``monitor`` (running or not), ``budget`` (bytes), ``error`` (why not running) and,
    when running, ``tier`` ("normal", "warn", "critical"), ``rss``, ``peak_rss``,
    ``pressure``, ``escalations``, ``samples``."""
    return _qlake.memory_stats()


atexit.register(_qlake._finalize)
