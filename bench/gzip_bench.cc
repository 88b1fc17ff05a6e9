// gzip_bench: inflate one ~100 MB flat-file-like CSV (gzip, zlib level 6, as the flat
// files most likely are) through
//   GzipInputStream            qlake, ISA-L, streaming
//   ArrowCompressedInputStream arrow::io::CompressedInputStream + GZIP codec (zlib)
//   GunzipBuffer               qlake, ISA-L, whole buffer
// all from memory (arrow::io::BufferReader), reading 1 MiB at a time like the CSV
// reader's default block size. Throughput counts uncompressed bytes; a summary with
// MB/s (10^6 bytes) and the ratio ours / Arrow is printed at the end. Wall-clock time:
// on a shared machine compare the CPU column too.
//
// Extra flags (before the Google Benchmark ones):
//   --input=PATH        use this .gz file instead of generating one
//   --write_input=PATH  generate the .gz file, write it to PATH and exit (see
//                       gzip_bench.sh, which times igzip -dc and gzip -dc on it)
//   --csv_mb=N          size of the generated CSV in MB (default 100)

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/io/compressed.h>
#include <arrow/io/memory.h>
#include <arrow/util/compression.h>
#include <zlib.h>

#include "qlake/ingest/gzip_stream.h"

namespace {

constexpr int64_t kReadSize = int64_t{1} << 20;

struct Flags {
  std::string input;
  std::string write_input;
  int64_t csv_mb = 100;
};

Flags& GetFlags() {
  static Flags flags;
  return flags;
}

// Rows like a day-aggregates flat file:
// ticker,volume,open,close,high,low,window_start,transactions
std::string MakeCsv(int64_t target_bytes) {
  std::mt19937_64 rng(20240102);
  std::vector<std::string> tickers;
  for (int i = 0; i < 5000; ++i) {
    std::string t;
    const int len = 1 + static_cast<int>(rng() % 5);
    for (int j = 0; j < len; ++j) t += static_cast<char>('A' + rng() % 26);
    tickers.push_back(std::move(t));
  }
  std::string csv = "ticker,volume,open,close,high,low,window_start,transactions\n";
  csv.reserve(static_cast<size_t>(target_bytes) + 256);
  char row[256];
  int64_t window_start = 1704205800000000000LL;
  while (static_cast<int64_t>(csv.size()) < target_bytes) {
    const std::string& ticker = tickers[rng() % tickers.size()];
    const double open = 1.0 + static_cast<double>(rng() % 50000) / 100.0;
    const double close =
        open + static_cast<double>(static_cast<int64_t>(rng() % 200) - 100) / 1000.0;
    const double high = std::max(open, close) + static_cast<double>(rng() % 50) / 1000.0;
    const double low = std::min(open, close) - static_cast<double>(rng() % 50) / 1000.0;
    if (rng() % 64 == 0) window_start += 60000000000LL;
    const int n =
        std::snprintf(row, sizeof(row), "%s,%llu,%.2f,%.2f,%.2f,%.2f,%lld,%llu\n",
                      ticker.c_str(), static_cast<unsigned long long>(rng() % 200000),
                      open, close, high, low, static_cast<long long>(window_start),
                      static_cast<unsigned long long>(1 + rng() % 900));
    csv.append(row, static_cast<size_t>(n));
  }
  return csv;
}

std::string ZlibGzip(const std::string& data, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    std::abort();
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

struct Corpus {
  std::shared_ptr<arrow::Buffer> gz;
  int64_t uncompressed_size = 0;
};

Corpus BuildCorpus() {
  Corpus c;
  if (!GetFlags().input.empty()) {
    std::ifstream f(GetFlags().input, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    if (!f) {
      std::cerr << "gzip_bench: cannot read " << GetFlags().input << "\n";
      std::exit(1);
    }
    c.gz = arrow::Buffer::FromString(ss.str());
  } else {
    const std::string csv = MakeCsv(GetFlags().csv_mb * 1000 * 1000);
    c.gz = arrow::Buffer::FromString(ZlibGzip(csv, 6));
  }
  auto out = qlake::ingest::GunzipBuffer(*c.gz, "corpus");
  if (!out.ok()) {
    std::cerr << "gzip_bench: " << out.status().ToString() << "\n";
    std::exit(1);
  }
  c.uncompressed_size = (*out)->size();
  return c;
}

const Corpus& GetCorpus() {
  static const Corpus corpus = BuildCorpus();
  return corpus;
}

void Check(const arrow::Status& st, benchmark::State& state) {
  if (!st.ok()) state.SkipWithError(st.ToString().c_str());
}

void Finish(benchmark::State& state, int64_t last_total) {
  const Corpus& c = GetCorpus();
  if (last_total != c.uncompressed_size) {
    state.SkipWithError("decompressed size differs from the corpus size");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * c.uncompressed_size);
  state.counters["ratio"] =
      static_cast<double>(c.uncompressed_size) / static_cast<double>(c.gz->size());
}

// Reads `stream` to the end in kReadSize pieces; returns the byte count.
arrow::Result<int64_t> Drain(arrow::io::InputStream& stream, std::vector<uint8_t>& buf) {
  int64_t total = 0;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(int64_t n, stream.Read(kReadSize, buf.data()));
    if (n == 0) return total;
    total += n;
  }
}

void BM_GzipInputStream(benchmark::State& state) {
  const Corpus& c = GetCorpus();
  std::vector<uint8_t> buf(kReadSize);
  int64_t total = 0;
  for (auto _ : state) {
    auto raw = std::make_shared<arrow::io::BufferReader>(c.gz);
    qlake::ingest::GzipStreamOptions options;
    options.source_name = "bench";
    auto in = qlake::ingest::GzipInputStream::Make(raw, options);
    if (!in.ok()) return Check(in.status(), state);
    auto n = Drain(**in, buf);
    if (!n.ok()) return Check(n.status(), state);
    total = *n;
  }
  Finish(state, total);
}

void BM_ArrowCompressedInputStream(benchmark::State& state) {
  const Corpus& c = GetCorpus();
  std::vector<uint8_t> buf(kReadSize);
  int64_t total = 0;
  auto codec = arrow::util::Codec::Create(arrow::Compression::GZIP);
  if (!codec.ok()) return Check(codec.status(), state);
  for (auto _ : state) {
    auto raw = std::make_shared<arrow::io::BufferReader>(c.gz);
    auto in = arrow::io::CompressedInputStream::Make(codec->get(), raw);
    if (!in.ok()) return Check(in.status(), state);
    auto n = Drain(**in, buf);
    if (!n.ok()) return Check(n.status(), state);
    total = *n;
  }
  Finish(state, total);
}

void BM_GunzipBuffer(benchmark::State& state) {
  const Corpus& c = GetCorpus();
  int64_t total = 0;
  for (auto _ : state) {
    auto out = qlake::ingest::GunzipBuffer(*c.gz, "bench");
    if (!out.ok()) return Check(out.status(), state);
    total = (*out)->size();
  }
  Finish(state, total);
}

BENCHMARK(BM_GzipInputStream)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ArrowCompressedInputStream)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GunzipBuffer)->Unit(benchmark::kMillisecond)->UseRealTime();

// Console output plus a summary in MB/s (best of the repetitions, as gzip_bench.sh takes
// the best of its CLI runs) and ratios against Arrow's zlib stream.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      auto it = run.counters.find("bytes_per_second");
      if (it == run.counters.end()) continue;
      double& best = rates_[run.run_name.function_name];
      best = std::max(best, it->second.value);
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void PrintSummary() const {
    const Corpus& c = GetCorpus();
    std::printf(
        "\ncorpus: %.1f MB csv, %.1f MB gz (ratio %.2f)\n",
        static_cast<double>(c.uncompressed_size) / 1e6,
        static_cast<double>(c.gz->size()) / 1e6,
        static_cast<double>(c.uncompressed_size) / static_cast<double>(c.gz->size()));
    const double arrow = Rate("BM_ArrowCompressedInputStream");
    for (const auto& [name, v] : rates_) {
      const double rate = Rate(name);
      std::printf("summary: %-32s %9.1f MB/s", name.c_str(), rate / 1e6);
      if (arrow > 0) std::printf("  x%.2f vs Arrow zlib", rate / arrow);
      std::printf("\n");
    }
  }

 private:
  double Rate(const std::string& name) const {
    auto it = rates_.find(name);
    return it == rates_.end() ? 0 : it->second;
  }
  std::map<std::string, double> rates_;  // best bytes/s over repetitions
};

bool TakeFlag(std::string_view arg, std::string_view name, std::string* value) {
  if (arg.substr(0, name.size()) != name) return false;
  *value = std::string(arg.substr(name.size()));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Strip our flags; leave the rest to Google Benchmark.
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string value;
    if (TakeFlag(argv[i], "--input=", &GetFlags().input) ||
        TakeFlag(argv[i], "--write_input=", &GetFlags().write_input)) {
      continue;
    }
    if (TakeFlag(argv[i], "--csv_mb=", &value)) {
      GetFlags().csv_mb = std::stoll(value);
      continue;
    }
    rest.push_back(argv[i]);
  }
  int rest_argc = static_cast<int>(rest.size());
  rest.push_back(nullptr);

  if (!GetFlags().write_input.empty()) {
    const Corpus& c = GetCorpus();
    std::ofstream out(GetFlags().write_input, std::ios::binary);
    out.write(reinterpret_cast<const char*>(c.gz->data()), c.gz->size());
    if (!out) {
      std::cerr << "gzip_bench: cannot write " << GetFlags().write_input << "\n";
      return 1;
    }
    std::printf("wrote %s: %lld bytes gzip, %lld bytes uncompressed\n",
                GetFlags().write_input.c_str(), static_cast<long long>(c.gz->size()),
                static_cast<long long>(c.uncompressed_size));
    return 0;
  }

  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  GetCorpus();  // build it before timing starts
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
