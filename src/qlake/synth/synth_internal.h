// File: qlake/synth/synth_internal.h
//
// Building blocks of `qlake synth`, exposed for synth_test.cc and for colleagues who need
// the same primitives (OCC formatting/parsing, gzip of independently compressed
// segments). Not a stable API: the model constants may change with the model
// (docs/synth.md).
//
// Everything here is a pure function of its arguments (no global state besides the NYSE
// calendar singleton), so it is safe to call concurrently.

#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>

#include "qlake/catalog/nyse_calendar.h"
#include "qlake/core/dates.h"

namespace qlake::synth::internal {

// ---------------------------------------------------------------------------------------
// Counter-based randomness. Every random quantity is derived from a key built by hashing
// (seed, entity, day, purpose), so any value can be computed without sequential state.

inline constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

/// The splitmix64 finalizer: a bijective 64-bit mixer.
inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
/// Order-sensitive combination of two keys.
inline uint64_t HashCombine(uint64_t a, uint64_t b) {
  return Mix64(a + kGolden + Mix64(b ^ 0x632be59bd9b4e019ULL));
}
inline uint64_t HashCombine(uint64_t a, uint64_t b, uint64_t c) {
  return HashCombine(HashCombine(a, b), c);
}
/// FNV-1a over the bytes, then mixed.
uint64_t HashString(std::string_view s);
/// [0, 1) from the top 53 bits.
inline double ToUnit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }
/// A standard normal variate from one hash (Box-Muller on two 32-bit halves).
double HashNormal(uint64_t h);

/// A small sequential generator (splitmix64) seeded from a key; used inside one
/// (entity, day) unit, never across days.
class Rng {
 public:
  explicit Rng(uint64_t key) : state_(key) {}
  uint64_t Next() {
    state_ += kGolden;
    return Mix64(state_);
  }
  double Uniform() { return ToUnit(Next()); }
  /// Box-Muller normal.
  double Normal() { return HashNormal(Next()); }
  /// Approximate normal (Irwin-Hall sum of four 16-bit uniforms, variance 1, |z| < 3.5):
  /// one hash per variate, for the minute-level random walk.
  double FastNormal() {
    uint64_t r = Next();
    double s = static_cast<double>((r & 0xffff) + ((r >> 16) & 0xffff) +
                                   ((r >> 32) & 0xffff) + (r >> 48));
    return (s * (1.0 / 65536.0) - 2.0) * 1.7320508075688772;
  }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------------------------------
// Number formatting. Prices are int64 counts of 1/10,000 (four decimals, the finest
// precision in the files); written with trailing zeros trimmed: 1874500 -> "187.45",
// 123 -> "0.0123", 1870000 -> "187".

inline constexpr int64_t kTicksPerUnit = 10000;

inline char* AppendInt(char* out, int64_t v) {
  return std::to_chars(out, out + 24, v).ptr;
}
namespace detail {
struct DigitPairs {
  char text[200];
  constexpr DigitPairs() : text() {
    for (int i = 0; i < 100; ++i) {
      text[2 * i] = static_cast<char>('0' + i / 10);
      text[2 * i + 1] = static_cast<char>('0' + i % 10);
    }
  }
};
inline constexpr DigitPairs kDigitPairs{};
}  // namespace detail

inline char* AppendPrice(char* out, int64_t ticks) {
  if (ticks < 0) {
    *out++ = '-';
    ticks = -ticks;
  }
  out = std::to_chars(out, out + 24, ticks / kTicksPerUnit).ptr;
  const auto frac = static_cast<unsigned>(ticks % kTicksPerUnit);
  if (frac != 0) {
    *out++ = '.';
    const unsigned hi = frac / 100;
    const unsigned lo = frac % 100;
    out[0] = detail::kDigitPairs.text[2 * hi];
    out[1] = detail::kDigitPairs.text[2 * hi + 1];
    if (lo != 0) {
      out[2] = detail::kDigitPairs.text[2 * lo];
      out[3] = detail::kDigitPairs.text[2 * lo + 1];
      out += lo % 10 != 0 ? 4 : 3;
    } else {
      out += hi % 10 != 0 ? 2 : 1;
    }
  }
  return out;
}
/// Rounds a positive price to a multiple of `tick` (in 1e-4 units), at least one tick.
inline int64_t ToTicks(double price, int64_t tick) {
  if (!(price > 0) || price > 1e12)
    return tick;  // NaN or absurd: a model bug, keep valid
  double t = std::nearbyint(price * static_cast<double>(kTicksPerUnit / tick));
  int64_t v = static_cast<int64_t>(t) * tick;
  return v < tick ? tick : v;
}

// ---------------------------------------------------------------------------------------
// OCC option symbols: "O:" + root + YYMMDD + C/P + strike x 1000 as 8 digits.

/// "O:SPY250117C00590000". Requires 2000 <= year <= 2099 and 0 < strike_milli < 10^8.
/// The inverse is catalog::ParseOcc (qlake/catalog/symbols.h).
std::string FormatOcc(std::string_view root, Date expiry, bool call,
                      int64_t strike_milli);

// ---------------------------------------------------------------------------------------
// Option expirations.

enum class ChainStyle : uint8_t {
  kIndexEtf,  // SPY, QQQ, IWM: every session for two weeks, Fridays, monthlies,
              // quarterlies
  kWeekly,    // mega caps: Fridays for six weeks, monthlies, January LEAPS
  kMonthly,   // other names: monthlies, quarterlies, January LEAPS
  kAdjusted,  // adjusted roots (AAPL1): a few remaining monthlies
};
/// The monthly expiration of (year, month): the third Friday, or the trading day before
/// it when that Friday is a holiday (Good Friday, Juneteenth). Invalid outside the
/// calendar's range.
arrow::Result<Date> MonthlyExpiry(int year, unsigned month);
/// The weekly expiration of the week containing `friday` (a Friday): that Friday, or the
/// trading day before it when it is a holiday.
arrow::Result<Date> WeeklyExpiry(Date friday);
/// Unexpired expirations (>= today) listed for `style` on `today`, sorted and unique; all
/// are NYSE trading days. Expirations past the calendar's last date are left out.
arrow::Result<std::vector<Date>> Expirations(ChainStyle style, Date today);

// ---------------------------------------------------------------------------------------
// The ticker universe.

enum class TickerClass : uint8_t {
  kCommon,
  kEtf,
  kAdr,
  kPreferred,   // "JPMpC": CQS/Polygon lowercase p + series
  kWarrant,     // "ACHR.WS" or Nasdaq five-letter "...W"
  kUnit,        // "ACAH.U" or "...U"
  kRight,       // "...r" or "...R"
  kClassShare,  // "BRK.B"
  kWhenIssued,  // "...w"
};

struct StockInfo {
  std::string ticker;
  uint64_t id = 0;  // HashString(ticker) mixed with the seed: keys every random choice
  TickerClass cls = TickerClass::kCommon;
  /// Expected trades per minute in regular hours at activity weight 1.
  double lambda = 1;
  /// Log price level at the reference day (2024-01-01) and its random-walk offset there.
  double ln_price0 = 0;
  double walk_ref = 0;
  double sigma = 0.02;  // daily log-return volatility
  double beta = 0.5;    // correlation with the market walk, in [0, 0.95]
  double trade_size = 100;
  /// Listing cycle: listed on day n iff (n + phase) mod period < on; period 0 = always.
  int32_t churn_period = 0;
  int32_t churn_on = 0;
  int32_t churn_phase = 0;
  /// Chance of no trades at all on a day (halts, no interest).
  double gap_prob = 0;
};

struct Underlying {
  uint32_t stock = 0;  // index into Universe::stocks
  std::string root;    // OCC root ("BRKB" for BRK.B, "AAPL1" for the adjusted AAPL root)
  ChainStyle style = ChainStyle::kMonthly;
  double weight = 0.02;      // share of option activity
  double strike_offset = 0;  // adjusted roots: strikes are off the round grid
  /// Share of candidate contracts kept: about the scale (capped at 1) for the named
  /// underlyings, whose count does not scale; 1 for the others, whose count does.
  double keep = 1;
};

struct Universe {
  std::vector<StockInfo> stocks;  // sorted by ticker (byte order), as rows are written
  std::vector<Underlying> underlyings;
};

/// The universe for (seed, scale). The random names are a prefix of one seeded sequence,
/// so a smaller scale gives a subset of a larger one; the named specials (SPY, AAPL,
/// BRK.B, CON, PRN, NUL, ...) are always present.
Universe BuildUniverse(uint64_t seed, double scale);
/// Whether the stock is listed on day `day` (days since 1970-01-01).
bool ListedOn(const StockInfo& s, int32_t day);

// ---------------------------------------------------------------------------------------
// The price model.

/// Standard Brownian motion at integer time n in [0, 2^16], built by Levy's midpoint
/// construction from hashes of (key, dyadic node): O(16) work per value, no state, exact
/// Gaussian increments between any two times.
double LevyBrownian(uint64_t key, int32_t n);
/// The market's common random walk on day `day` (unit variance per day, 0 at the
/// reference day 2024-01-01).
double MarketWalk(uint64_t seed, int32_t day);
/// The day-close log price of `s` on day `day`, given MarketWalk(seed, day).
double LogClose(const StockInfo& s, int32_t day, double market);

/// Per-session constants shared by every ticker of one day.
struct DayContext {
  uint64_t seed = 0;
  Date date{};
  int32_t day = 0;       // days since epoch
  int32_t prev_day = 0;  // previous NYSE session
  catalog::Session session;
  int64_t midnight_ns = 0;  // window_start of day bars
  int64_t minute0_ns = 0;   // 04:00 ET
  /// Extended hours end (20:00 ET; 17:00 ET on early closes). Minute index k is the bar
  /// starting at 04:00 + k minutes, k in [0, n_minutes).
  int ext_end_minute = 20 * 60;
  int n_minutes = 16 * 60;
  std::string ws_text;  // ws_len digits per minute index
  int ws_len = 19;
  std::vector<double> stock_weight;   // stock activity weight per minute index
  std::vector<double> option_weight;  // option activity weight (regular hours)
  std::vector<double> path_sd;  // intraday log-price step std per minute (sum var = 1)
  std::vector<double> path_cumvar;  // cumulative path variance, size n_minutes + 1
  /// Minute-index ranges [k0, k1) of the pre, regular and post sessions (stocks) and of
  /// option trading, with their largest activity weight.
  struct Segment {
    int k0 = 0;
    int k1 = 0;
    double wmax = 0;
  };
  Segment stock_segments[3];
  Segment option_segment;      // 09:30..close
  Segment option_etf_segment;  // 09:30..close + 15 min (broad index ETFs)
  double market_activity = 1;
  double market_now = 0;   // MarketWalk(seed, day)
  double market_prev = 0;  // MarketWalk(seed, prev_day)
};
/// Builds the context of session `date`. Invalid if it is not a trading day.
arrow::Result<DayContext> MakeDayContext(uint64_t seed, Date date);

/// The latent log-price path of `s` on the day: x[k] at the start of minute index k,
/// k = 0..n_minutes. x[0] is near the previous session's close, x[n_minutes] is the day's
/// close level. Depends only on (seed, s, day); stocks and options share it.
void LatentPath(const StockInfo& s, const DayContext& day, std::vector<double>* x);

/// One aggregate bar. `item` indexes the caller's ticker list; minute is minutes after
/// New York midnight (-1 for a day bar). Prices in 1e-4 units.
struct Bar {
  uint32_t item = 0;
  int32_t minute = 0;
  int64_t open = 0;
  int64_t high = 0;
  int64_t low = 0;
  int64_t close = 0;
  int64_t volume = 0;
  int64_t transactions = 0;
};

/// Appends the minute bars of stock `s` on the day (none if not listed or no trades), in
/// time order, 04:00..ext_end ET.
void StockBars(const StockInfo& s, uint32_t item, const DayContext& day,
               std::vector<double>* path_scratch, std::vector<Bar>* out);

/// The day bar of a ticker's minute bars (non-empty, time-ordered).
Bar AggregateDay(std::span<const Bar> minutes);

struct Contract {
  std::string ticker;
  uint32_t underlying = 0;  // index into Universe::underlyings
  Date expiry{};
  bool call = true;
  int64_t strike_milli = 0;
  double lambda = 0;  // trades per minute at activity weight 1
};
/// The option contracts quoted on the day (unexpired, strikes around the underlying's
/// previous close), thinned by Underlying::keep, sorted by ticker.
arrow::Result<std::vector<Contract>> OptionChain(const Universe& u,
                                                 const DayContext& day);
/// Appends the minute bars of contract `c` (regular hours only). `spots` is exp() of the
/// latent path of its underlying stock on the day (the underlying's price by minute).
void OptionBars(const Contract& c, uint32_t item, const Universe& u,
                const std::vector<double>& spots, const DayContext& day,
                std::vector<Bar>* out);
/// Black-Scholes price (no dividends), with discount factor `df` = exp(-rate * years);
/// stores dPrice/dSpot in *delta when non-null. The normal CDF is the Abramowitz-Stegun
/// 26.2.17 approximation (|error| < 7.5e-8), plenty for prices rounded to cents.
double BlackScholes(bool call, double spot, double strike, double years, double vol,
                    double rate, double df, double* delta = nullptr);

// ---------------------------------------------------------------------------------------
// gzip of independently deflated segments (pigz-style): each segment is a byte-aligned,
// non-final run of deflate blocks that does not refer back into earlier segments, so
// segments can be compressed in parallel and concatenated into one gzip member whose
// bytes do not depend on the thread count.

/// CRC-32 (gzip polynomial) of data, continuing from `crc`.
uint32_t Crc32(std::string_view data, uint32_t crc = 0);
/// CRC of the concatenation A||B from crc(A), crc(B) and |B|.
uint32_t Crc32Combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

struct DeflateSegment {
  std::string data;  // raw deflate, byte-aligned, no final block
  uint32_t crc = 0;
  uint64_t raw_bytes = 0;
};
/// Compresses `raw` with ISA-L at `level` (0..3) as one segment.
arrow::Result<DeflateSegment> DeflateFlushed(std::string_view raw, int level);
/// The 10-byte gzip header: no name, mtime 0, OS 3 (Unix).
std::string_view GzipHeader();
/// An empty final deflate block plus the gzip trailer (CRC-32, size mod 2^32).
std::string GzipTrailer(uint32_t crc, uint64_t raw_bytes);
/// Decompresses a whole gzip file (all members) with ISA-L; Invalid if it is corrupt or
/// truncated. For tests and checks.
arrow::Result<std::string> Gunzip(std::string_view gz);

}  // namespace qlake::synth::internal
