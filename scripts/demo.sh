#!/usr/bin/env bash
# The README's demo: runs every stage that exists so far on embedded synthetic data in
# ./demo/. Needs no credentials and no network beyond the package registries used by setup.
# Later stages (ingest, features, qlib export, query) append their steps here.
set -euo pipefail
cd "$(dirname "$0")/.."
Q=build/qlake
OUT=demo
FROM=2024-12-20   # spans the Christmas early close, Christmas Day and New Year's Day
TO=2025-01-03

step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

rm -rf "$OUT"
mkdir -p "$OUT"
step "Machine profile and the processing mode it selects" $Q profile
step "NYSE sessions in the demo range (early closes, holidays)" $Q calendar --from $FROM --to $TO --closed
step "Synthetic flat files: four aggregate datasets, real key layout, small scale" \
  $Q synth --out "$OUT/mirror" --from $FROM --to $TO --scale 0.02 --seed 7
step "What was written (the S3 key layout of the real bucket)" \
  bash -c "cd $OUT/mirror && find . -name '*.csv.gz' | sort | head -12 && echo ... && find . -name '*.csv.gz' | wc -l"
step "First rows of one stocks minute file" \
  bash -c "gzip -dc $OUT/mirror/us_stocks_sip/minute_aggs_v1/2024/12/2024-12-24.csv.gz | head -5"
for ds in stocks_daily stocks_minute options_daily options_minute; do
  step "Ingest $ds into the lake (validated, one atomic commit per trading day)" \
    $Q ingest --dataset $ds --from $FROM --to $TO --source "$OUT/mirror" --lake "$OUT/lake"
done
step "The lake as DuckDB/pyarrow see it (hive partitions, one file per day)" \
  bash -c "cd $OUT/lake && find stocks_minute -name '*.parquet' | sort | head -5 && ls _qlake/stocks_minute/commits | head -3"
step "Re-ingesting a day is idempotent: same input, same bytes" \
  bash -c "sha256sum $OUT/lake/stocks_minute/year=2024/month=12/2024-12-24.parquet && $Q -q ingest --dataset stocks_minute --date 2024-12-24 --source $OUT/mirror --lake $OUT/lake && sha256sum $OUT/lake/stocks_minute/year=2024/month=12/2024-12-24.parquet"
step "Nasty input: a mirror with injected faults; bad rows are quarantined with a reason, bad files fail only their day" \
  $Q synth --out "$OUT/faulty" --from 2024-12-23 --to 2024-12-24 --scale 0.02 --seed 7 \
  --datasets stocks_minute --faults bad_timestamp,non_numeric,duplicate_rows,wrong_day,truncated_gzip
set +e
$Q ingest --dataset stocks_minute --from 2024-12-23 --to 2024-12-24 --source "$OUT/faulty" --lake "$OUT/faulty-lake"
echo "(exit code $?: 7 means some days failed and the others are committed)"
set -e
step "Effective configuration" $Q config show
step "Export the lake as a Qlib store (day bars; \$vwap from the minute bars)" \
  $Q qlib export --lake "$OUT/lake" --out "$OUT/qlib_day" --freq day
step "Export minute bars too (regular session; the Christmas Eve early close has 210 rows)" \
  $Q qlib export --lake "$OUT/lake" --out "$OUT/qlib_1min" --freq 1min
step "Nasty tickers get safe, reversible Qlib codes (NA -> NA_, BRK.B -> BRK-B, JPMpC -> JPM_PC; CON -> features/_qlib_con)" \
  bash -c "grep -E '^(NA_|BRK-B|JPM_PC|CON)\s' $OUT/qlib_day/instruments/all.txt; ls $OUT/qlib_day/features | grep -E '^(_qlib_con|na_|brk-b)\$'"
if [ -x .venv-qlib/bin/python ]; then
  step "Load the day store with real pyqlib 0.9.7 (D.features over the market pool)" \
    .venv-qlib/bin/python tests/python/qlib/qlib_load.py "$OUT/qlib_day" day --print 8
  step "Load the 1min store with pyqlib" \
    .venv-qlib/bin/python tests/python/qlib/qlib_load.py "$OUT/qlib_1min" 1min --print 5
fi
printf '\ndemo: done. Synthetic mirror in %s/mirror\n' "$OUT"
