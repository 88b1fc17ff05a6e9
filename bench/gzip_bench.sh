#!/usr/bin/env bash
# Compares inflate throughput on one ~100 MB flat-file-like .csv.gz (zlib level 6):
#   igzip -dc (ISA-L CLI, package `isal`), gzip -dc (zlib CLI), and gzip_bench's
#   GzipInputStream / GunzipBuffer (ISA-L) and Arrow CompressedInputStream (zlib).
# Wall-clock times, best of $RUNS; MB/s = 10^6 uncompressed bytes per second. The CLIs
# include process start and writing to /dev/null; gzip_bench decompresses from memory.
#
# Usage: bench/gzip_bench.sh [path/to/gzip_bench] [csv_mb]
#   default binary: build/bench/gzip_bench; default size: 100 MB of CSV.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bench=${1:-$here/../build/bench/gzip_bench}
csv_mb=${2:-100}
RUNS=${RUNS:-3}

[[ -x $bench ]] || { echo "gzip_bench not found at $bench (build target gzip_bench)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gz=$work/flatfile.csv.gz

line=$("$bench" --write_input="$gz" --csv_mb="$csv_mb")
echo "$line"
raw_bytes=$(sed -E 's/.* ([0-9]+) bytes uncompressed.*/\1/' <<<"$line")

# best_seconds CMD...: best wall time of $RUNS runs, stdout discarded.
best_seconds() {
  local best=""
  for ((i = 0; i < RUNS; i++)); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    local dt=$((t1 - t0))
    if [[ -z $best || $dt -lt $best ]]; then best=$dt; fi
  done
  awk -v ns="$best" 'BEGIN { printf "%.4f", ns / 1e9 }'
}

declare -A mbps
for tool in igzip gzip; do
  if command -v "$tool" >/dev/null; then
    # Check the tool decodes the file to the same size before timing it.
    n=$("$tool" -dc "$gz" | wc -c)
    [[ $n -eq $raw_bytes ]] || { echo "$tool -dc produced $n bytes, want $raw_bytes" >&2; exit 1; }
    s=$(best_seconds "$tool" -dc "$gz")
    mbps["$tool -dc"]=$(awk -v b="$raw_bytes" -v s="$s" 'BEGIN { printf "%.1f", b / s / 1e6 }')
  else
    echo "note: $tool not installed (Debian package: $([[ $tool == igzip ]] && echo isal || echo gzip))"
  fi
done

"$bench" --input="$gz" --benchmark_repetitions="$RUNS" >"$work/bench.txt" 2>&1
grep -E '^(corpus|summary):' "$work/bench.txt"
while read -r _ name rate _; do
  mbps[${name#BM_}]=$rate
done < <(grep '^summary:' "$work/bench.txt")

ref_gzip=${mbps["gzip -dc"]:-}
ref_igzip=${mbps["igzip -dc"]:-}
echo
printf '%-28s %10s %12s %12s\n' "decoder" "MB/s" "vs gzip -dc" "vs igzip -dc"
for name in "igzip -dc" "gzip -dc" GzipInputStream GunzipBuffer ArrowCompressedInputStream; do
  rate=${mbps[$name]:-}
  [[ -n $rate ]] || continue
  awk -v n="$name" -v r="$rate" -v g="$ref_gzip" -v i="$ref_igzip" 'BEGIN {
    printf "%-28s %10.1f %12s %12s\n", n, r,
           (g > 0 ? sprintf("x%.2f", r / g) : "-"), (i > 0 ? sprintf("x%.2f", r / i) : "-") }'
done
