"""Loads a Qlib provider directory with real pyqlib and saves what Qlib returns.

Runs under .venv-qlib (pyqlib 0.9.7, pandas 1.5, numpy 1.24), not the main venv:

    .venv-qlib/bin/python tests/python/qlib/qlib_load.py ROOT FREQ OUT.npz [--fields f1,f2]
        [--print N] [--market NAME] [--codes C1,C2]

Saves (numpy .npz, no pickles) the calendar, the instruments spans of market "all" as
D.list_instruments returns them, and D.features over the market pool for the given fields
(default $open $high $low $close $volume $vwap $factor $change): instrument codes,
datetimes (ISO strings) and a float32 value matrix. The pytest side compares all of it with
the lake read through pyarrow. --print N prints the first N rows (the demo uses it).
"""

import argparse

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("freq", choices=["day", "1min"])
    ap.add_argument("out", nargs="?")
    ap.add_argument("--fields", default="open,high,low,close,volume,vwap,factor,change")
    ap.add_argument("--print", type=int, default=0, dest="print_rows")
    ap.add_argument("--market", default="all")
    ap.add_argument("--codes", default="",
                    help="D.features over just these codes (comma-separated; both the "
                         "'pool' and the 'list' outputs); spans still cover the market")
    a = ap.parse_args()

    import qlib
    from qlib.data import D

    qlib.init(
        provider_uri=a.root,
        region="us",
        kernels=1,
        expression_cache=None,
        dataset_cache=None,
        logging_level="WARNING",
    )
    cal = D.calendar(freq=a.freq)
    pool = D.instruments(a.market)
    spans = D.list_instruments(pool, freq=a.freq)
    fields = ["$" + f for f in a.fields.split(",")]
    end = str(cal[-1]) if a.freq == "day" else cal[-1].strftime("%Y-%m-%d 23:59:59")
    if a.codes:
        df = D.features(a.codes.split(","), fields, start_time=str(cal[0]), end_time=end,
                        freq=a.freq)
        df_list = df
    else:
        df = D.features(pool, fields, start_time=str(cal[0]), end_time=end, freq=a.freq)
        # A plain list of codes too (spans are not applied then): must give the same rows.
        codes = sorted(spans)
        df_list = D.features(codes, fields, start_time=str(cal[0]), end_time=end,
                             freq=a.freq)

    if a.print_rows:
        import pandas as pd

        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(df.head(a.print_rows))
            print(f"... {len(df)} rows, {len(spans)} instruments, {len(cal)} calendar rows")
    if not a.out:
        return
    span_codes = sorted(spans)
    span_start, span_end = [], []
    for c in span_codes:
        (s, e), = spans[c]  # one span per code in all.txt
        span_start.append(str(s))
        span_end.append(str(e))
    def keys(frame):
        inst = np.asarray(frame.index.get_level_values("instrument").astype(str), dtype=str)
        dts = frame.index.get_level_values("datetime").strftime("%Y-%m-%d %H:%M:%S")
        return inst, np.asarray(dts, dtype=str)

    inst, dt = keys(df)
    inst_l, dt_l = keys(df_list)
    np.savez(
        a.out,
        calendar=np.array([c.strftime("%Y-%m-%d %H:%M:%S") for c in cal]),
        span_codes=np.array(span_codes),
        span_start=np.array(span_start),
        span_end=np.array(span_end),
        fields=np.array(a.fields.split(",")),
        inst=inst,
        dt=dt,
        values=df[fields].to_numpy(dtype=np.float32),
        inst_list=inst_l,
        dt_list=dt_l,
        values_list=df_list[fields].to_numpy(dtype=np.float32),
    )


if __name__ == "__main__":
    main()
