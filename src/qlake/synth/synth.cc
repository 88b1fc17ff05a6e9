// GenerateMirror: plans one file per (session, dataset), splits each file into shards of
// tickers (or contracts) in output order, generates and deflates shards on a pool of
// workers, and stitches each file's segments into one gzip member (gzip.cc). Shard
// boundaries depend only on the data, never on the number of workers, so the bytes are
// the same for any --jobs.

#include "qlake/synth/synth.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "qlake/catalog/datasets.h"
#include "qlake/catalog/nyse_calendar.h"
#include "qlake/synth/synth_internal.h"

namespace qlake::synth {

using internal::Bar;
using internal::Contract;
using internal::DayContext;
using internal::DeflateSegment;
using internal::Universe;

namespace {

constexpr std::string_view kHeader =
    "ticker,volume,open,close,high,low,window_start,transactions";
// changed_header: an extra trailing column, as the REST API's `otc` flag.
constexpr std::string_view kChangedHeaderSuffix = ",otc";
constexpr std::string_view kChangedRowSuffix = ",false";

// Tickers (stocks) or contracts (options) per shard: a few MB of CSV each.
constexpr size_t kStockShard = 128;
constexpr size_t kOptionShard = 2048;
// Injected rows per row-level fault kind per file.
constexpr int kFaultsPerKind = 2;
// truncated_gzip keeps this share of the compressed bytes.
constexpr double kTruncateShare = 0.6;

constexpr int64_t kNsPerDay = int64_t{86400} * 1'000'000'000;

const Date kMinDate = Date{date::year{2000} / 1 / 1};
const Date kMaxDate = Date{date::year{2035} / 12 / 31};

struct DatasetInfo {
  Dataset dataset;
  std::string_view name;
  std::string_view prefix;
};
constexpr DatasetInfo kDatasetInfo[] = {
    {Dataset::kStocksDaily, "stocks_daily", "us_stocks_sip/day_aggs_v1"},
    {Dataset::kStocksMinute, "stocks_minute", "us_stocks_sip/minute_aggs_v1"},
    {Dataset::kOptionsDaily, "options_daily", "us_options_opra/day_aggs_v1"},
    {Dataset::kOptionsMinute, "options_minute", "us_options_opra/minute_aggs_v1"},
};

constexpr std::string_view kFaultNames[] = {
    "bad_timestamp", "non_numeric",       "negative_volume", "duplicate_rows", "nan_inf",
    "wrong_day",     "ohlc_inconsistent", "truncated_gzip",  "changed_header", "bad_occ"};

std::string JoinNames(std::span<const std::string_view> names) {
  std::string out;
  for (auto n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <typename F>
arrow::Status ForEachItem(std::string_view list, F&& f) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = Trim(list.substr(pos, comma - pos));
    if (!item.empty()) ARROW_RETURN_NOT_OK(f(item));
    pos = comma + 1;
  }
  return arrow::Status::OK();
}

// ---------------------------------------------------------------------------------------
// A LIFO-at-the-front work queue: file jobs are queued in order; a file job pushes its
// shard tasks to the front, so workers finish one file before starting the next and at
// most about `jobs` files are in memory.

class WorkQueue {
 public:
  void Push(std::vector<std::function<void()>> tasks, bool front) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ += static_cast<int64_t>(tasks.size());
    if (front) {
      for (auto it = tasks.rbegin(); it != tasks.rend(); ++it)
        q_.push_front(std::move(*it));
    } else {
      for (auto& t : tasks) q_.push_back(std::move(t));
    }
    cv_.notify_all();
  }

  void Run(int threads) {
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back([this] { Work(); });
    for (auto& t : pool) t.join();
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return !q_.empty() || pending_ == 0; });
      if (q_.empty()) return;
      auto task = std::move(q_.front());
      q_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      if (--pending_ == 0) cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  int64_t pending_ = 0;
};

// ---------------------------------------------------------------------------------------
// File planning and shard generation (shared by GenerateMirror and GenerateCsv).

struct FilePlan {
  Dataset dataset = Dataset::kStocksDaily;
  Date date{};
  std::string key;
  uint64_t key_hash = 0;
  bool changed_header = false;
  bool truncated = false;
  std::vector<Fault> row_faults;
  std::shared_ptr<const DayContext> day;
  std::shared_ptr<const std::vector<Contract>> contracts;  // options only
  int nshards = 1;
};

struct LocalFault {
  int64_t line = 0;    // 0-based data line within the shard
  int64_t source = 0;  // 0-based data line of the clean row it copies
  Fault kind = Fault::kBadTimestamp;
  std::string column;
};

struct ShardText {
  int64_t rows = 0;
  std::vector<LocalFault> faults;
};

bool AppliesTo(Fault f, Dataset d) {
  if (IsFileLevel(f)) return false;
  if (f == Fault::kBadOcc) return IsOptions(d);
  return true;
}

// Which dataset carries a file-level fault on the first session of the range.
Dataset FileFaultTarget(Fault f, const std::vector<Dataset>& datasets) {
  const Dataset preferred =
      f == Fault::kTruncatedGzip ? Dataset::kStocksMinute : Dataset::kStocksDaily;
  for (Dataset d : datasets) {
    if (d == preferred) return d;
  }
  return datasets.front();
}

bool HasFault(const std::vector<Fault>& faults, Fault f) {
  return std::find(faults.begin(), faults.end(), f) != faults.end();
}

FilePlan MakePlan(const SynthOptions& o, Dataset d, Date date, Date first_session,
                  std::shared_ptr<const DayContext> day) {
  FilePlan p;
  p.dataset = d;
  p.date = date;
  p.key = KeyFor(d, date);
  p.key_hash = internal::HashCombine(o.seed, internal::HashString(p.key));
  p.day = std::move(day);
  for (Fault f : o.faults) {
    if (AppliesTo(f, d)) p.row_faults.push_back(f);
  }
  std::sort(p.row_faults.begin(), p.row_faults.end());
  if (date == first_session) {
    p.changed_header = HasFault(o.faults, Fault::kChangedHeader) &&
                       FileFaultTarget(Fault::kChangedHeader, o.datasets) == d;
    p.truncated = HasFault(o.faults, Fault::kTruncatedGzip) &&
                  FileFaultTarget(Fault::kTruncatedGzip, o.datasets) == d;
  }
  return p;
}

void SetShardCount(const Universe& u, FilePlan* p) {
  const size_t items = IsOptions(p->dataset) ? p->contracts->size() : u.stocks.size();
  const size_t per = IsOptions(p->dataset) ? kOptionShard : kStockShard;
  p->nshards = static_cast<int>(std::max<size_t>(1, (items + per - 1) / per));
}

// A growable text buffer written through a raw cursor. Unlike std::string it never
// zero-fills, and it keeps its capacity across shards.
class TextBuffer {
 public:
  // A cursor with room for at least `n` bytes.
  char* Reserve(size_t n) {
    if (cap_ - size_ < n) Grow(size_ + n);
    return data_.get() + size_;
  }
  void Commit(char* end) { size_ = static_cast<size_t>(end - data_.get()); }
  void Append(std::string_view v) {
    char* o = Reserve(v.size());
    std::copy(v.begin(), v.end(), o);
    Commit(o + v.size());
  }
  void Clear() { size_ = 0; }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  void Grow(size_t need) {
    const size_t cap = std::max({need, cap_ * 2, size_t{1} << 20});
    auto data = std::make_unique_for_overwrite<char[]>(cap);
    if (size_ > 0) std::copy(data_.get(), data_.get() + size_, data.get());
    data_ = std::move(data);
    cap_ = cap;
  }

  std::unique_ptr<char[]> data_;
  size_t cap_ = 0;
  size_t size_ = 0;
};

// Per-thread buffers reused across shards (no page faults, no zero-filling per shard).
struct Scratch {
  std::vector<Bar> bars;
  std::vector<Bar> minutes;
  std::vector<double> path;
  std::vector<double> spots;
  TextBuffer csv;
};
Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// The bars of one shard, in output order: minute bars for minute datasets, day bars
// (aggregates of the minute bars) for daily ones. For minute datasets `day_bars`, when
// given, receives the day bars as well, so the daily file can be written from them.
void ShardBars(const Universe& u, const FilePlan& p, int shard, Scratch& sc,
               std::vector<Bar>* bars, std::vector<Bar>* day_bars) {
  const DayContext& day = *p.day;
  const bool minute = IsMinute(p.dataset);
  std::vector<Bar>* sink = minute ? bars : &sc.minutes;
  auto finish_item = [&](size_t first) {
    if (minute) {
      if (day_bars && sink->size() > first) {
        day_bars->push_back(internal::AggregateDay(
            std::span<const Bar>(sink->data() + first, sink->size() - first)));
      }
    } else {
      if (!sink->empty()) bars->push_back(internal::AggregateDay(*sink));
      sink->clear();
    }
  };
  if (!minute) sc.minutes.clear();
  if (!IsOptions(p.dataset)) {
    const size_t begin = static_cast<size_t>(shard) * kStockShard;
    const size_t end = std::min(u.stocks.size(), begin + kStockShard);
    for (size_t i = begin; i < end; ++i) {
      const size_t first = sink->size();
      internal::StockBars(u.stocks[i], static_cast<uint32_t>(i), day, &sc.path, sink);
      finish_item(first);
    }
    return;
  }
  const auto& contracts = *p.contracts;
  const size_t begin = static_cast<size_t>(shard) * kOptionShard;
  const size_t end = std::min(contracts.size(), begin + kOptionShard);
  uint32_t path_stock = UINT32_MAX;
  for (size_t i = begin; i < end; ++i) {
    const Contract& c = contracts[i];
    const uint32_t stock = u.underlyings[c.underlying].stock;
    if (stock != path_stock) {
      internal::LatentPath(u.stocks[stock], day, &sc.path);
      sc.spots.resize(sc.path.size());
      for (size_t k = 0; k < sc.path.size(); ++k) sc.spots[k] = std::exp(sc.path[k]);
      path_stock = stock;
    }
    const size_t first = sink->size();
    internal::OptionBars(c, static_cast<uint32_t>(i), u, sc.spots, day, sink);
    finish_item(first);
  }
}

struct FaultTarget {
  size_t row;
  Fault kind;
  int j;
  uint64_t h;
};

constexpr std::string_view kPriceColumns[] = {"open", "close", "high", "low"};

// The text of a faulty copy of `b` (slow path; a few lines per file).
std::string FaultLine(const FilePlan& p, const Bar& b, std::string_view ticker,
                      std::string_view ws, const FaultTarget& t, std::string* column) {
  char buf[32];
  auto num = [&](int64_t v) { return std::string(buf, internal::AppendInt(buf, v)); };
  auto price = [&](int64_t v) { return std::string(buf, internal::AppendPrice(buf, v)); };
  std::string f[8] = {std::string(ticker), num(b.volume),      price(b.open),
                      price(b.close),      price(b.high),      price(b.low),
                      std::string(ws),     num(b.transactions)};
  const int64_t ws_value =
      IsMinute(p.dataset)
          ? p.day->minute0_ns + int64_t{60'000'000'000} * (b.minute - 4 * 60)
          : p.day->midnight_ns;
  const size_t price_col = static_cast<size_t>((t.h >> 8) % 4);
  switch (t.kind) {
    case Fault::kBadTimestamp:
      f[6] = num(ws_value / 100);  // the 17-digit values of quantmini's sample file
      *column = "window_start";
      break;
    case Fault::kNonNumeric:
      f[2 + price_col] = "abc";
      *column = kPriceColumns[price_col];
      break;
    case Fault::kNegativeVolume:
      f[1] = num(-std::max<int64_t>(1, b.volume));
      *column = "volume";
      break;
    case Fault::kDuplicateRows:
      break;
    case Fault::kNanInf: {
      static constexpr std::string_view kValues[] = {"NaN", "inf", "-inf"};
      f[2 + price_col] = std::string(kValues[static_cast<size_t>(t.j) % 3]);
      *column = kPriceColumns[price_col];
      break;
    }
    case Fault::kWrongDay:
      f[6] = num(ws_value + kNsPerDay);
      *column = "window_start";
      break;
    case Fault::kOhlcInconsistent:
      // close above high (and so above the whole bar's range).
      f[3] = price(b.high + std::max<int64_t>(100, b.high / 50));
      *column = "close";
      break;
    case Fault::kBadOcc: {
      std::string s(ticker);
      switch ((t.h >> 12) % 4) {
        case 0:
          s.pop_back();  // 7-digit strike
          break;
        case 1:
          s[s.size() - 9] = 'X';  // type neither C nor P
          break;
        case 2:
          s[s.size() - 13] = '1';  // month 13
          s[s.size() - 12] = '3';
          break;
        default:
          s = s.substr(2);  // no "O:" prefix
          break;
      }
      f[0] = std::move(s);
      *column = "ticker";
      break;
    }
    case Fault::kTruncatedGzip:
    case Fault::kChangedHeader:
      break;
  }
  std::string line;
  for (int i = 0; i < 8; ++i) {
    if (i) line.push_back(',');
    line += f[i];
  }
  if (p.changed_header) line += kChangedRowSuffix;
  line.push_back('\n');
  return line;
}

// Formats the shard's rows (and injected fault rows) into *csv, replacing its content.
ShardText FormatShard(const Universe& u, const FilePlan& p, int shard,
                      const std::vector<Bar>& bars, TextBuffer* csv) {
  ShardText out;
  TextBuffer& buf = *csv;
  buf.Clear();
  if (shard == 0) {
    buf.Append(kHeader);
    if (p.changed_header) buf.Append(kChangedHeaderSuffix);
    buf.Append("\n");
  }
  std::vector<FaultTarget> targets;
  if (!bars.empty()) {
    for (Fault kind : p.row_faults) {
      for (int j = 0; j < kFaultsPerKind; ++j) {
        const uint64_t h = internal::HashCombine(p.key_hash, static_cast<uint64_t>(kind),
                                                 static_cast<uint64_t>(j));
        if (static_cast<int>(h % static_cast<uint64_t>(p.nshards)) != shard) continue;
        targets.push_back({static_cast<size_t>((h >> 24) % bars.size()), kind, j, h});
      }
    }
    std::sort(targets.begin(), targets.end(),
              [](const FaultTarget& a, const FaultTarget& b) {
                return std::tie(a.row, a.kind, a.j) < std::tie(b.row, b.kind, b.j);
              });
  }
  const bool options = IsOptions(p.dataset);
  const bool minute = IsMinute(p.dataset);
  const DayContext& day = *p.day;
  char day_ws[24];
  const std::string_view day_ws_text(
      day_ws, static_cast<size_t>(internal::AppendInt(day_ws, day.midnight_ns) - day_ws));
  size_t next_target = 0;
  int64_t line = 0;
  for (size_t r = 0; r < bars.size(); ++r) {
    const Bar& b = bars[r];
    const std::string_view ticker = options
                                        ? std::string_view((*p.contracts)[b.item].ticker)
                                        : u.stocks[b.item].ticker;
    const std::string_view ws =
        minute ? std::string_view(
                     day.ws_text.data() + static_cast<size_t>(b.minute - 4 * 60) *
                                              static_cast<size_t>(day.ws_len),
                     static_cast<size_t>(day.ws_len))
               : day_ws_text;
    char* o = buf.Reserve(ticker.size() + 8 * 24 + 16);
    o = std::copy(ticker.begin(), ticker.end(), o);
    *o++ = ',';
    o = internal::AppendInt(o, b.volume);
    *o++ = ',';
    o = internal::AppendPrice(o, b.open);
    *o++ = ',';
    o = internal::AppendPrice(o, b.close);
    *o++ = ',';
    o = internal::AppendPrice(o, b.high);
    *o++ = ',';
    o = internal::AppendPrice(o, b.low);
    *o++ = ',';
    o = std::copy(ws.begin(), ws.end(), o);
    *o++ = ',';
    o = internal::AppendInt(o, b.transactions);
    if (p.changed_header)
      o = std::copy(kChangedRowSuffix.begin(), kChangedRowSuffix.end(), o);
    *o++ = '\n';
    buf.Commit(o);
    const int64_t source = line++;
    while (next_target < targets.size() && targets[next_target].row == r) {
      LocalFault lf;
      lf.line = line++;
      lf.source = source;
      lf.kind = targets[next_target].kind;
      buf.Append(FaultLine(p, b, ticker, ws, targets[next_target], &lf.column));
      out.faults.push_back(std::move(lf));
      ++next_target;
    }
  }
  out.rows = line;
  return out;
}

// Generates shard `shard` of `p` into sc.csv; fills *day_bars (if given) for minute
// files.
ShardText GenerateShard(const Universe& u, const FilePlan& p, int shard, Scratch& sc,
                        std::vector<Bar>* day_bars) {
  sc.bars.clear();
  ShardBars(u, p, shard, sc, &sc.bars, day_bars);
  return FormatShard(u, p, shard, sc.bars, &sc.csv);
}

// Global 1-based line numbers: the header is line 1.
SynthFaultRecord ToRecord(const FilePlan& p, const LocalFault& f, int64_t rows_before) {
  SynthFaultRecord r;
  r.key = p.key;
  r.line = 2 + rows_before + f.line;
  r.source_line = 2 + rows_before + f.source;
  r.kind = f.kind;
  r.column = f.column;
  return r;
}

void AddFileFaults(const FilePlan& p, std::vector<SynthFaultRecord>* out) {
  if (p.changed_header) {
    out->push_back({p.key, 1, Fault::kChangedHeader, "otc", 0});
  }
  if (p.truncated) out->push_back({p.key, 0, Fault::kTruncatedGzip, "", 0});
}

arrow::Status WriteAtomically(const std::filesystem::path& path,
                              const std::vector<std::string_view>& pieces, size_t limit) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) {
    return arrow::Status::IOError("cannot create directory ", path.parent_path().string(),
                                  ": ", ec.message());
  }
  const std::string tmp = path.string() + ".synth-tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    return arrow::Status::IOError("cannot create ", tmp, ": ", std::strerror(errno));
  size_t written = 0;
  bool ok = true;
  for (auto piece : pieces) {
    const size_t n = std::min(piece.size(), limit - written);
    if (n > 0 && std::fwrite(piece.data(), 1, n, f) != n) ok = false;
    written += n;
    if (written >= limit) break;
  }
  if (std::fclose(f) != 0) ok = false;
  if (!ok) {
    std::filesystem::remove(tmp, ec);
    return arrow::Status::IOError("cannot write ", tmp, " (disk full?)");
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return arrow::Status::IOError("cannot rename ", tmp, " to ", path.string(), ": ",
                                  ec.message());
  }
  return arrow::Status::OK();
}

arrow::Status ValidateModelOptions(const SynthOptions& o) {
  if (o.from > o.to) {
    return arrow::Status::Invalid("synth: --from ", FormatDate(o.from), " is after --to ",
                                  FormatDate(o.to));
  }
  if (o.from < kMinDate || o.to > kMaxDate) {
    return arrow::Status::Invalid(
        "synth: dates must lie in 2000-01-01..2035-12-31 (OCC "
        "years are 20YY; the NYSE calendar ends in 2035), got ",
        FormatDate(o.from), "..", FormatDate(o.to));
  }
  if (!(o.scale > 0 && o.scale <= 10)) {
    return arrow::Status::Invalid("synth: --scale must be in (0, 10], got ", o.scale,
                                  " (0.01 for test-sized files, 1 for real-sized days)");
  }
  if (o.datasets.empty()) return arrow::Status::Invalid("synth: no datasets selected");
  if (o.jobs < 0)
    return arrow::Status::Invalid("synth: --jobs must be >= 0, got ", o.jobs);
  if (o.gzip_level < 0 || o.gzip_level > 3) {
    return arrow::Status::Invalid("synth: gzip level must be 0..3 (ISA-L), got ",
                                  o.gzip_level);
  }
  return arrow::Status::OK();
}

SynthOptions Canonical(const SynthOptions& o) {
  SynthOptions c = o;
  std::sort(c.datasets.begin(), c.datasets.end());
  c.datasets.erase(std::unique(c.datasets.begin(), c.datasets.end()), c.datasets.end());
  std::sort(c.faults.begin(), c.faults.end());
  c.faults.erase(std::unique(c.faults.begin(), c.faults.end()), c.faults.end());
  return c;
}

nlohmann::ordered_json FileJson(const SynthFileInfo& f) {
  nlohmann::ordered_json j;
  j["key"] = f.key;
  j["dataset"] = DatasetName(f.dataset);
  j["date"] = FormatDate(f.date);
  j["rows"] = f.rows;
  j["fault_rows"] = f.fault_rows;
  j["valid_rows"] = f.valid_rows();
  j["bytes"] = f.bytes;
  j["full_bytes"] = f.full_bytes;
  j["uncompressed_bytes"] = f.uncompressed_bytes;
  j["crc32"] = fmt::format("{:08x}", f.crc32);
  j["truncated"] = f.truncated;
  j["changed_header"] = f.changed_header;
  return j;
}

arrow::Status WriteManifest(const SynthOptions& o, const SynthSummary& s) {
  nlohmann::ordered_json j;
  j["format"] = "qlake-synth-manifest";
  j["version"] = 1;
  j["seed"] = o.seed;
  j["scale"] = o.scale;
  j["from"] = FormatDate(o.from);
  j["to"] = FormatDate(o.to);
  auto& ds = j["datasets"] = nlohmann::ordered_json::array();
  for (Dataset d : o.datasets) ds.push_back(DatasetName(d));
  auto& fr = j["faults_requested"] = nlohmann::ordered_json::array();
  for (Fault f : o.faults) fr.push_back(FaultName(f));
  j["line_numbers"] =
      "1-based lines of the decompressed file; line 1 is the header. Row-level fault "
      "rows "
      "are extra rows: dropping them leaves the clean data. truncated_gzip has line 0.";
  auto& files = j["files"] = nlohmann::ordered_json::array();
  for (const auto& f : s.files) files.push_back(FileJson(f));
  auto& faults = j["faults"] = nlohmann::ordered_json::array();
  for (const auto& f : s.faults) {
    nlohmann::ordered_json e;
    e["key"] = f.key;
    e["line"] = f.line;
    e["kind"] = FaultName(f.kind);
    e["level"] = IsFileLevel(f.kind) ? "file" : "row";
    e["column"] = f.column;
    e["source_line"] = f.source_line;
    faults.push_back(std::move(e));
  }
  nlohmann::ordered_json t;
  t["files"] = s.files.size();
  t["rows"] = s.rows;
  t["fault_rows"] = static_cast<int64_t>(
      std::count_if(s.faults.begin(), s.faults.end(),
                    [](const SynthFaultRecord& f) { return !IsFileLevel(f.kind); }));
  t["bytes"] = s.bytes;
  t["uncompressed_bytes"] = s.uncompressed_bytes;
  j["totals"] = std::move(t);
  const std::string text = j.dump(1) + "\n";
  const auto path = std::filesystem::path(o.out_dir) / "_synth" / "manifest.json";
  return WriteAtomically(path, {text}, text.size());
}

// Per-session state shared by the session's file jobs, built by the first job that needs
// it and dropped once every job of the session has taken its own reference (a long range
// keeps only the sessions in flight in memory).
struct DayShared {
  std::once_flag ctx_once;
  arrow::Status ctx_status;
  std::shared_ptr<const DayContext> ctx;
  std::once_flag chain_once;
  arrow::Status chain_status;
  std::shared_ptr<const std::vector<Contract>> chain;
  std::atomic<int> users{0};  // file jobs of the session that have not started yet
};

// The compressed shards of one file.
struct FileParts {
  std::vector<DeflateSegment> segments;
  std::vector<int64_t> rows;
  std::vector<std::vector<LocalFault>> faults;

  void Resize(size_t n) {
    segments.resize(n);
    rows.resize(n);
    faults.resize(n);
  }
};

// One minute (or standalone daily) file in flight. When the matching daily dataset is
// requested too, the shards also keep their day bars and the daily file is written from
// them once the minute file is done (same shard split, so the same bytes as generating it
// alone, at no extra generation cost).
struct FileState {
  FilePlan plan;
  FileParts parts;
  std::optional<FilePlan> daily;
  std::vector<std::vector<Bar>> day_bars;  // per shard, when `daily` is set
  std::atomic<int> remaining{0};
};

// Stitches the segments into one gzip member and writes it (cut short for
// truncated_gzip). Returns the file's info; appends its fault records to *faults.
arrow::Result<SynthFileInfo> WriteGzipFile(const std::filesystem::path& root,
                                           const FilePlan& p, const FileParts& parts,
                                           std::vector<SynthFaultRecord>* faults) {
  SynthFileInfo info;
  info.key = p.key;
  info.dataset = p.dataset;
  info.date = p.date;
  info.truncated = p.truncated;
  info.changed_header = p.changed_header;
  AddFileFaults(p, faults);
  std::vector<std::string_view> pieces;
  pieces.push_back(internal::GzipHeader());
  uint32_t crc = 0;
  uint64_t raw = 0;
  auto gz = static_cast<int64_t>(internal::GzipHeader().size());
  for (size_t s = 0; s < parts.segments.size(); ++s) {
    const auto& seg = parts.segments[s];
    for (const auto& f : parts.faults[s]) {
      faults->push_back(ToRecord(p, f, info.rows));
      ++info.fault_rows;
    }
    info.rows += parts.rows[s];
    crc = internal::Crc32Combine(crc, seg.crc, seg.raw_bytes);
    raw += seg.raw_bytes;
    gz += static_cast<int64_t>(seg.data.size());
    pieces.push_back(seg.data);
  }
  const std::string trailer = internal::GzipTrailer(crc, raw);
  pieces.push_back(trailer);
  gz += static_cast<int64_t>(trailer.size());
  info.full_bytes = gz;
  info.bytes =
      p.truncated ? static_cast<int64_t>(static_cast<double>(gz) * kTruncateShare) : gz;
  info.uncompressed_bytes = static_cast<int64_t>(raw);
  info.crc32 = crc;
  ARROW_RETURN_NOT_OK(
      WriteAtomically(root / p.key, pieces, static_cast<size_t>(info.bytes)));
  return info;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Names.

std::string_view DatasetName(Dataset d) {
  return kDatasetInfo[static_cast<size_t>(d)].name;
}
std::string_view DatasetPrefix(Dataset d) {
  return kDatasetInfo[static_cast<size_t>(d)].prefix;
}
bool IsOptions(Dataset d) {
  return d == Dataset::kOptionsDaily || d == Dataset::kOptionsMinute;
}
bool IsMinute(Dataset d) {
  return d == Dataset::kStocksMinute || d == Dataset::kOptionsMinute;
}

arrow::Result<Dataset> ParseDataset(std::string_view name) {
  for (const auto& i : kDatasetInfo) {
    if (i.name == name) return i.dataset;
  }
  std::vector<std::string_view> names;
  for (const auto& i : kDatasetInfo) names.push_back(i.name);
  return arrow::Status::Invalid("unknown dataset '", name,
                                "'; valid datasets: ", JoinNames(names));
}

arrow::Result<std::vector<Dataset>> ParseDatasetList(std::string_view list) {
  std::vector<Dataset> out;
  ARROW_RETURN_NOT_OK(ForEachItem(list, [&](std::string_view item) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto d, ParseDataset(item));
    out.push_back(d);
    return arrow::Status::OK();
  }));
  if (out.empty()) {
    return arrow::Status::Invalid(
        "empty dataset list; valid datasets: stocks_daily, "
        "stocks_minute, options_daily, options_minute");
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string KeyFor(Dataset d, Date date) {
  // The catalog's table is the one source of key layouts; it lists all four datasets
  // (synth_test checks that every synth dataset is there with the same prefix).
  return catalog::KeyFor(*catalog::FindDataset(DatasetName(d)).ValueOrDie(), date);
}

std::string_view FaultName(Fault f) { return kFaultNames[static_cast<size_t>(f)]; }
bool IsFileLevel(Fault f) {
  return f == Fault::kTruncatedGzip || f == Fault::kChangedHeader;
}

arrow::Result<Fault> ParseFault(std::string_view name) {
  for (Fault f : kAllFaults) {
    if (FaultName(f) == name) return f;
  }
  return arrow::Status::Invalid("unknown fault '", name,
                                "'; valid faults: ", JoinNames(kFaultNames),
                                " (or 'all', 'none')");
}

arrow::Result<std::vector<Fault>> ParseFaultList(std::string_view list) {
  std::vector<Fault> out;
  ARROW_RETURN_NOT_OK(ForEachItem(list, [&](std::string_view item) -> arrow::Status {
    if (item == "none") return arrow::Status::OK();
    if (item == "all") {
      out.insert(out.end(), std::begin(kAllFaults), std::end(kAllFaults));
      return arrow::Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(auto f, ParseFault(item));
    out.push_back(f);
    return arrow::Status::OK();
  }));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

arrow::Status SynthOptions::Validate() const {
  if (out_dir.empty()) return arrow::Status::Invalid("synth: --out DIR is required");
  return ValidateModelOptions(*this);
}

// ---------------------------------------------------------------------------------------
// Summary.

double SynthSummary::RowsPerSecond() const {
  return seconds > 0 ? static_cast<double>(rows) / seconds : 0;
}
double SynthSummary::MegabytesPerSecond() const {
  return seconds > 0 ? static_cast<double>(uncompressed_bytes) / 1e6 / seconds : 0;
}

namespace {
struct DatasetTotals {
  int64_t files = 0, rows = 0, bytes = 0, uncompressed = 0;
};
std::map<Dataset, DatasetTotals> Totals(const SynthSummary& s) {
  std::map<Dataset, DatasetTotals> t;
  for (const auto& f : s.files) {
    auto& d = t[f.dataset];
    ++d.files;
    d.rows += f.rows;
    d.bytes += f.bytes;
    d.uncompressed += f.uncompressed_bytes;
  }
  return t;
}
}  // namespace

std::string SynthSummary::ToText() const {
  std::string out = fmt::format(
      "synth: {} files, {} rows, {:.1f} MB gz, {:.1f} MB csv, {:.2f} s ({} jobs)\n"
      "speed: {:.2f} M rows/s, {:.1f} MB/s uncompressed\n",
      files.size(), rows, static_cast<double>(bytes) / 1e6,
      static_cast<double>(uncompressed_bytes) / 1e6, seconds, jobs, RowsPerSecond() / 1e6,
      MegabytesPerSecond());
  for (const auto& [d, t] : Totals(*this)) {
    out +=
        fmt::format("  {:<15} {:>4} files {:>12} rows {:>10.1f} MB gz {:>10.1f} MB csv\n",
                    DatasetName(d), t.files, t.rows, static_cast<double>(t.bytes) / 1e6,
                    static_cast<double>(t.uncompressed) / 1e6);
  }
  if (!faults.empty()) out += fmt::format("  faults injected: {}\n", faults.size());
  return out;
}

std::string SynthSummary::ToJson() const {
  nlohmann::ordered_json j;
  j["files"] = files.size();
  j["rows"] = rows;
  j["bytes"] = bytes;
  j["uncompressed_bytes"] = uncompressed_bytes;
  j["seconds"] = seconds;
  j["rows_per_second"] = RowsPerSecond();
  j["mb_per_second"] = MegabytesPerSecond();
  j["jobs"] = jobs;
  j["faults"] = faults.size();
  auto& per = j["datasets"] = nlohmann::ordered_json::object();
  for (const auto& [d, t] : Totals(*this)) {
    nlohmann::ordered_json e;
    e["files"] = t.files;
    e["rows"] = t.rows;
    e["bytes"] = t.bytes;
    e["uncompressed_bytes"] = t.uncompressed;
    per[std::string(DatasetName(d))] = std::move(e);
  }
  return j.dump(2) + "\n";
}

// ---------------------------------------------------------------------------------------
// Generation.

arrow::Result<SynthCsv> GenerateCsv(const SynthOptions& options, Dataset dataset,
                                    Date date) {
  ARROW_RETURN_NOT_OK(ValidateModelOptions(options));
  const SynthOptions o = Canonical(options);
  const auto& cal = catalog::NyseCalendar::Get();
  ARROW_ASSIGN_OR_RAISE(auto sessions, cal.Sessions(o.from, o.to));
  const Date first = sessions.empty() ? Date{} : sessions.front().date;
  ARROW_ASSIGN_OR_RAISE(auto ctx, internal::MakeDayContext(o.seed, date));
  const Universe u = internal::BuildUniverse(o.seed, o.scale);
  FilePlan p = MakePlan(o, dataset, date, first,
                        std::make_shared<const DayContext>(std::move(ctx)));
  p.truncated = false;
  if (IsOptions(dataset)) {
    ARROW_ASSIGN_OR_RAISE(auto chain, internal::OptionChain(u, *p.day));
    p.contracts = std::make_shared<const std::vector<Contract>>(std::move(chain));
  }
  SetShardCount(u, &p);
  SynthCsv out;
  out.key = p.key;
  AddFileFaults(p, &out.faults);
  Scratch sc;
  for (int s = 0; s < p.nshards; ++s) {
    ShardText t = GenerateShard(u, p, s, sc, nullptr);
    for (const auto& f : t.faults) out.faults.push_back(ToRecord(p, f, out.rows));
    out.rows += t.rows;
    out.csv += sc.csv.view();
  }
  return out;
}

arrow::Result<SynthSummary> GenerateMirror(const SynthOptions& options) {
  ARROW_RETURN_NOT_OK(options.Validate());
  const auto t0 = std::chrono::steady_clock::now();
  const SynthOptions o = Canonical(options);
  const auto& cal = catalog::NyseCalendar::Get();
  ARROW_ASSIGN_OR_RAISE(auto sessions, cal.Sessions(o.from, o.to));
  const int jobs =
      o.jobs > 0 ? o.jobs
                 : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  SynthSummary summary;
  summary.jobs = jobs;
  if (sessions.empty()) {
    if (o.write_manifest) ARROW_RETURN_NOT_OK(WriteManifest(o, summary));
    return summary;
  }
  const Universe universe = internal::BuildUniverse(o.seed, o.scale);
  const Date first = sessions.front().date;
  auto wanted = [&](Dataset d) {
    return std::find(o.datasets.begin(), o.datasets.end(), d) != o.datasets.end();
  };
  // A daily file is derived from its minute file's shards when both are requested.
  auto derived_from = [&](Dataset d) -> std::optional<Dataset> {
    if (d == Dataset::kStocksDaily && wanted(Dataset::kStocksMinute)) {
      return Dataset::kStocksMinute;
    }
    if (d == Dataset::kOptionsDaily && wanted(Dataset::kOptionsMinute)) {
      return Dataset::kOptionsMinute;
    }
    return std::nullopt;
  };
  auto daily_of = [](Dataset minute) {
    return minute == Dataset::kStocksMinute ? Dataset::kStocksDaily
                                            : Dataset::kOptionsDaily;
  };
  const int jobs_per_day = static_cast<int>(std::count_if(
      o.datasets.begin(), o.datasets.end(), [&](Dataset d) { return !derived_from(d); }));

  std::vector<std::unique_ptr<DayShared>> days;
  for (size_t i = 0; i < sessions.size(); ++i) {
    days.push_back(std::make_unique<DayShared>());
    days.back()->users = jobs_per_day;
  }

  WorkQueue queue;
  std::mutex mu;  // guards status and summary
  arrow::Status status;
  std::atomic<bool> failed{false};
  auto fail = [&](const arrow::Status& st) {
    std::lock_guard<std::mutex> lock(mu);
    if (status.ok()) status = st;
    failed = true;
  };
  auto record = [&](SynthFileInfo info, std::vector<SynthFaultRecord> faults) {
    std::lock_guard<std::mutex> lock(mu);
    summary.rows += info.rows;
    summary.bytes += info.bytes;
    summary.uncompressed_bytes += info.uncompressed_bytes;
    summary.files.push_back(std::move(info));
    for (auto& f : faults) summary.faults.push_back(std::move(f));
  };
  const std::filesystem::path root(o.out_dir);

  auto write = [&](const FilePlan& plan, const FileParts& parts) -> arrow::Status {
    std::vector<SynthFaultRecord> faults;
    ARROW_ASSIGN_OR_RAISE(auto info, WriteGzipFile(root, plan, parts, &faults));
    record(std::move(info), std::move(faults));
    return arrow::Status::OK();
  };

  auto finish_file = [&](FileState* fs) -> arrow::Status {
    ARROW_RETURN_NOT_OK(write(fs->plan, fs->parts));
    fs->parts = FileParts{};
    if (!fs->daily) return arrow::Status::OK();
    // The daily file from the day bars the minute shards kept (small: one row per
    // ticker).
    FileParts daily;
    daily.Resize(fs->day_bars.size());
    TextBuffer& csv = ThreadScratch().csv;
    for (size_t s = 0; s < fs->day_bars.size(); ++s) {
      ShardText t =
          FormatShard(universe, *fs->daily, static_cast<int>(s), fs->day_bars[s], &csv);
      ARROW_ASSIGN_OR_RAISE(daily.segments[s],
                            internal::DeflateFlushed(csv.view(), o.gzip_level));
      daily.rows[s] = t.rows;
      daily.faults[s] = std::move(t.faults);
    }
    return write(*fs->daily, daily);
  };

  std::vector<std::function<void()>> file_jobs;
  for (size_t di = 0; di < sessions.size(); ++di) {
    for (Dataset d : o.datasets) {
      if (derived_from(d)) continue;  // written by its minute file's job
      file_jobs.push_back([&, di, d] {
        if (failed) return;
        DayShared& day = *days[di];
        std::call_once(day.ctx_once, [&] {
          auto ctx = internal::MakeDayContext(o.seed, sessions[di].date);
          if (ctx.ok()) {
            day.ctx = std::make_shared<const DayContext>(std::move(*ctx));
          } else {
            day.ctx_status = ctx.status();
          }
        });
        if (IsOptions(d)) {
          std::call_once(day.chain_once, [&] {
            if (!day.ctx) return;
            auto chain = internal::OptionChain(universe, *day.ctx);
            if (chain.ok()) {
              day.chain =
                  std::make_shared<const std::vector<Contract>>(std::move(*chain));
            } else {
              day.chain_status = chain.status();
            }
          });
        }
        const std::shared_ptr<const DayContext> ctx = day.ctx;
        const std::shared_ptr<const std::vector<Contract>> chain = day.chain;
        if (--day.users == 0) {
          day.ctx.reset();
          day.chain.reset();
        }
        if (!day.ctx_status.ok()) return fail(day.ctx_status);
        if (!day.chain_status.ok()) return fail(day.chain_status);
        auto fs = std::make_shared<FileState>();
        fs->plan = MakePlan(o, d, sessions[di].date, first, ctx);
        fs->plan.contracts = chain;
        SetShardCount(universe, &fs->plan);
        const auto n = static_cast<size_t>(fs->plan.nshards);
        fs->parts.Resize(n);
        if (IsMinute(d) && wanted(daily_of(d))) {
          fs->daily = MakePlan(o, daily_of(d), sessions[di].date, first, ctx);
          fs->daily->contracts = fs->plan.contracts;
          SetShardCount(universe, &*fs->daily);
          fs->day_bars.resize(n);
        }
        fs->remaining = fs->plan.nshards;
        std::vector<std::function<void()>> shards;
        for (int s = 0; s < fs->plan.nshards; ++s) {
          shards.push_back([&, fs, s] {
            if (failed) return;
            const auto su = static_cast<size_t>(s);
            Scratch& sc = ThreadScratch();
            ShardText text = GenerateShard(universe, fs->plan, s, sc,
                                           fs->daily ? &fs->day_bars[su] : nullptr);
            auto seg = internal::DeflateFlushed(sc.csv.view(), o.gzip_level);
            if (!seg.ok()) return fail(seg.status());
            fs->parts.segments[su] = std::move(*seg);
            fs->parts.rows[su] = text.rows;
            fs->parts.faults[su] = std::move(text.faults);
            if (--fs->remaining == 0) {
              auto st = finish_file(fs.get());
              if (!st.ok()) fail(st);
            }
          });
        }
        queue.Push(std::move(shards), /*front=*/true);
      });
    }
  }
  queue.Push(std::move(file_jobs), /*front=*/false);
  queue.Run(jobs);
  ARROW_RETURN_NOT_OK(status);

  auto file_order = [](const SynthFileInfo& a, const SynthFileInfo& b) {
    return std::tie(a.date, a.dataset) < std::tie(b.date, b.dataset);
  };
  std::sort(summary.files.begin(), summary.files.end(), file_order);
  std::map<std::string, size_t> rank;
  for (size_t i = 0; i < summary.files.size(); ++i) rank[summary.files[i].key] = i;
  std::sort(summary.faults.begin(), summary.faults.end(),
            [&](const SynthFaultRecord& a, const SynthFaultRecord& b) {
              return std::make_pair(rank[a.key], a.line) <
                     std::make_pair(rank[b.key], b.line);
            });
  if (o.write_manifest) ARROW_RETURN_NOT_OK(WriteManifest(o, summary));
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace qlake::synth
