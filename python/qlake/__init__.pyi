"""Type stubs for qlake (see __init__.py for the documentation)."""

import datetime
from typing import Iterable, Optional, Sequence, Union

import pyarrow

DateLike = Union[str, datetime.date]
Symbols = Union[str, Iterable[str], None]

__version__: str

class Lake:
    last_stats: dict
    def __init__(self, uri: str) -> None: ...
    @property
    def uri(self) -> str: ...
    def datasets(self) -> list[str]: ...
    def read(
        self,
        dataset: str,
        symbols: Symbols,
        start: DateLike,
        end: DateLike,
        columns: Optional[Sequence[str]] = None,
        where: Optional[str] = None,
        session: Symbols = None,
    ) -> pyarrow.Table: ...

def query(
    lake: str,
    dataset: str,
    symbols: Symbols,
    start: DateLike,
    end: DateLike,
    columns: Optional[Sequence[str]] = None,
    where: Optional[str] = None,
    session: Symbols = None,
) -> pyarrow.Table: ...
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
) -> dict: ...
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
) -> dict: ...
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
) -> dict: ...
def cache_stats() -> dict: ...
def set_cache_bytes(n: int) -> None: ...
def clear_cache() -> None: ...
def reset_cache_counters() -> None: ...
def memory_stats() -> dict: ...
