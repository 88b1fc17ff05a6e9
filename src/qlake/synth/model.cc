// The price and activity model (docs/synth.md, "Price model").
//
// Day level: a ticker's close on day n is a pure function of (seed, ticker, n):
//   ln close(n) = ln p0 + L * tanh(w(n) / L),
//   w(n) = sigma_cal * (beta * M(n) + sqrt(1 - beta^2) * I(n)),
// where M and I are standard Brownian motions (market, idiosyncratic) evaluated at n by
// Levy's midpoint construction, each relative to its value on the reference day. The tanh
// keeps levels within e^{+-L} of p0 over decades without changing day-to-day returns
// much. Nothing is carried from one day to the next, so any day can be generated alone.
//
// Minute level: a Brownian bridge (time-changed by an intraday variance profile) from
// near the previous session's close (plus an overnight gap) at 04:00 to the day's close
// at the end of extended hours. Trades arrive as a Poisson process whose rate is the
// ticker's liquidity times an intraday activity profile; a minute bar exists when at
// least one trade happened in it. Options price off their underlying's same path with
// Black-Scholes, so option and stock moves agree.

#include <algorithm>
#include <cmath>

#include "qlake/synth/synth_internal.h"

namespace qlake::synth::internal {

namespace {

constexpr uint64_t kTagMarket = 0x6d61726b6574ULL;
constexpr uint64_t kTagActivity = 0x6163746976ULL;
constexpr uint64_t kTagPath = 0x70617468ULL;
constexpr uint64_t kTagGap = 0x676170ULL;
constexpr uint64_t kTagBars = 0x62617273ULL;
constexpr uint64_t kTagKeep = 0x6b656570ULL;
constexpr uint64_t kTagOption = 0x6f7074ULL;

constexpr int32_t kRefDay = 19723;      // 2024-01-01
constexpr int32_t kLevySpan = 1 << 16;  // days: 1970 .. 2149
// Price levels stay within e^{+-kClamp} of the reference level.
constexpr double kClamp = 2.0;
// Calendar-day variance relative to trading-day variance (weekends move less).
constexpr double kCalendarVar = 252.0 / 365.0;
// Intraday wiggle of the path around the straight line, as a share of daily sigma.
constexpr double kIntradayShare = 0.7;
// Trades per minute of an at-the-money, expiring contract on an underlying of weight 1.
constexpr double kOptionActivity = 30.0;
constexpr double kRate = 0.04;
constexpr double kMinutesPerYear = 365.0 * 1440.0;

constexpr int kExtStart = 4 * 60;

// Zero-truncated Poisson(mu) given p0 = exp(-mu).
int64_t TruncatedPoisson(double mu, double p0, Rng& rng) {
  if (mu > 20) {
    return std::max<int64_t>(1, std::llround(mu + std::sqrt(mu) * rng.FastNormal()));
  }
  const double u = rng.Uniform() * (1.0 - p0);
  double p = p0 * mu;
  double cdf = p;
  int64_t k = 1;
  while (u > cdf && k < 200) {
    ++k;
    p *= mu / static_cast<double>(k);
    cdf += p;
  }
  return k;
}

// Calls emit(k, n) for each minute index k in [seg.k0, seg.k1) with n >= 1 trades, in
// order. Trade counts are Poisson(rate * w[k]). Low rates skip ahead geometrically with
// the segment's largest rate and thin (exact for a Bernoulli per minute, and fast for the
// thousands of names that trade a few times a day).
template <typename Emit>
void SampleMinutes(double rate, const double* w, const DayContext::Segment& seg, Rng& rng,
                   Emit&& emit) {
  const double mu_max = rate * seg.wmax;
  if (!(mu_max > 0) || seg.k1 <= seg.k0) return;
  if (mu_max > 0.25) {
    for (int k = seg.k0; k < seg.k1; ++k) {
      const double mu = rate * w[k];
      if (mu > 40) {  // P(no trade) < 1e-17
        emit(k, TruncatedPoisson(mu, 0.0, rng));
        continue;
      }
      const double p0 = std::exp(-mu);
      if (rng.Uniform() < 1.0 - p0) emit(k, TruncatedPoisson(mu, p0, rng));
    }
    return;
  }
  const double p_max = -std::expm1(-mu_max);
  const double log_q = std::log1p(-p_max);
  double k = seg.k0 - 1;
  while (true) {
    const double u = (static_cast<double>(rng.Next() >> 11) + 0.5) * 0x1.0p-53;
    k += 1.0 + std::floor(std::log(u) / log_q);
    if (k >= seg.k1) break;
    const int ki = static_cast<int>(k);
    const double mu = rate * w[ki];
    const double p = -std::expm1(-mu);
    if (rng.Uniform() * p_max < p) emit(ki, TruncatedPoisson(mu, 1.0 - p, rng));
  }
}

// Regular-session activity: busy open, quieter midday, busy close.
double RegularWeight(int m, int open, int close) {
  return 0.8 + 1.5 * std::exp(-(m - open) / 20.0) +
         0.8 * std::exp(-(close - 1 - m) / 15.0);
}

double StrikeStep(double spot, ChainStyle style, int64_t days) {
  const bool near = days <= 45;
  if (style == ChainStyle::kIndexEtf && near) return spot < 100 ? 0.5 : 1;
  if (style == ChainStyle::kWeekly && near) {
    return spot < 25 ? 0.5 : spot < 100 ? 1 : spot < 250 ? 2.5 : 5;
  }
  return spot < 5      ? 0.5
         : spot < 25   ? 1
         : spot < 100  ? 2.5
         : spot < 250  ? 5
         : spot < 1000 ? 10
                       : 25;
}

// Abramowitz & Stegun 26.2.17.
double NormCdf(double x) {
  const double ax = std::fabs(x);
  const double t = 1.0 / (1.0 + 0.2316419 * ax);
  const double poly =
      t * (0.319381530 +
           t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  const double tail = 0.3989422804014327 * std::exp(-0.5 * ax * ax) * poly;
  return x >= 0 ? 1.0 - tail : tail;
}

// e^d for the small |d| of one minute's moves (|d| < 0.05): third-order series.
inline double ExpSmall(double d) { return 1.0 + d * (1.0 + d * (0.5 + d * (1.0 / 6.0))); }

// A positive, right-skewed size multiplier with mean 1 (a cheap stand-in for a
// lognormal).
inline double SizeMultiplier(double z) {
  return (0.5 + 0.125 * (z + 2.0) * (z + 2.0)) / 1.125;
}

}  // namespace

double LevyBrownian(uint64_t key, int32_t n) {
  n = std::clamp(n, 0, kLevySpan);
  int32_t a = 0;
  int32_t b = kLevySpan;
  double wa = 0;
  double wb = std::sqrt(static_cast<double>(kLevySpan)) * HashNormal(HashCombine(key, b));
  while (true) {
    if (n == a) return wa;
    if (n == b) return wb;
    // Given W(a) and W(b), W(mid) is normal with the mean of the two and variance
    // (b - a) / 4; each dyadic midpoint is a distinct integer, so it keys its own draw.
    const int32_t mid = a + (b - a) / 2;
    const double wm =
        0.5 * (wa + wb) + 0.5 * std::sqrt(static_cast<double>(b - a)) *
                              HashNormal(HashCombine(key, static_cast<uint64_t>(mid)));
    if (n < mid) {
      b = mid;
      wb = wm;
    } else {
      a = mid;
      wa = wm;
    }
  }
}

double MarketWalk(uint64_t seed, int32_t day) {
  const uint64_t key = HashCombine(seed, kTagMarket);
  return LevyBrownian(key, day) - LevyBrownian(key, kRefDay);
}

double LogClose(const StockInfo& s, int32_t day, double market) {
  const double idio = LevyBrownian(s.id, day) - s.walk_ref;
  const double w = s.sigma * std::sqrt(kCalendarVar) *
                   (s.beta * market + std::sqrt(1.0 - s.beta * s.beta) * idio);
  return s.ln_price0 + kClamp * std::tanh(w / kClamp);
}

arrow::Result<DayContext> MakeDayContext(uint64_t seed, Date date) {
  const auto& cal = catalog::NyseCalendar::Get();
  ARROW_ASSIGN_OR_RAISE(auto session, cal.SessionOn(date));
  if (!session) {
    ARROW_ASSIGN_OR_RAISE(auto why, cal.ClosureReason(date));
    return arrow::Status::Invalid(FormatDate(date), " is not an NYSE trading day (", why,
                                  ")");
  }
  ARROW_ASSIGN_OR_RAISE(Date prev, cal.PreviousTradingDay(date));
  DayContext c;
  c.seed = seed;
  c.date = date;
  c.day = ToDate32(date);
  c.prev_day = ToDate32(prev);
  c.session = *session;
  c.midnight_ns = FromNewYork(date, 0);
  c.minute0_ns = FromNewYork(date, kExtStart);
  // Extended hours end at 20:00 ET, 17:00 ET on early-close days.
  c.ext_end_minute = session->early_close ? 17 * 60 : 20 * 60;
  c.n_minutes = c.ext_end_minute - kExtStart;
  const int open = session->open_minute;
  const int close = session->close_minute;

  // Timestamps of every minute, formatted once per day (all have the same width).
  char buf[24];
  c.ws_len = static_cast<int>(AppendInt(buf, c.minute0_ns) - buf);
  c.ws_text.resize(static_cast<size_t>(c.ws_len) * static_cast<size_t>(c.n_minutes));
  for (int k = 0; k < c.n_minutes; ++k) {
    AppendInt(c.ws_text.data() + static_cast<size_t>(k) * static_cast<size_t>(c.ws_len),
              c.minute0_ns + int64_t{60'000'000'000} * k);
  }

  const auto n = static_cast<size_t>(c.n_minutes);
  c.stock_weight.assign(n, 0);
  c.option_weight.assign(n, 0);
  c.path_sd.assign(n, 0);
  c.path_cumvar.assign(n + 1, 0);
  double total_var = 0;
  for (int k = 0; k < c.n_minutes; ++k) {
    const int m = kExtStart + k;
    double w;
    double var;
    if (m < open) {  // pre-market: thin before 08:00, building towards the open
      w = m < 7 * 60 ? 0.001 : m < 8 * 60 ? 0.004 : 0.01 + 0.03 * (m - 8 * 60) / 90.0;
      var = 0.04;
    } else if (m < close) {
      w = RegularWeight(m, open, close);
      var = w;
    } else {  // post-market: a burst after the close, then quiet
      w = m < close + 15 ? 0.06 : m < close + 60 ? 0.016 : 0.003;
      var = 0.04;
    }
    const auto ku = static_cast<size_t>(k);
    c.stock_weight[ku] = w;
    c.path_sd[ku] = var;
    total_var += var;
    if (m >= open && m < close) {
      c.option_weight[ku] = RegularWeight(m, open, close);
    } else if (m >= close && m < close + 15) {
      c.option_weight[ku] = 0.15;  // index ETF options trade until 16:15 (13:15)
    }
  }
  for (size_t k = 0; k < n; ++k) {
    c.path_cumvar[k + 1] = c.path_cumvar[k] + c.path_sd[k] / total_var;
    c.path_sd[k] = std::sqrt(c.path_sd[k] / total_var);
  }
  auto segment = [&](const std::vector<double>& w, int m0, int m1) {
    DayContext::Segment s;
    s.k0 = std::clamp(m0 - kExtStart, 0, c.n_minutes);
    s.k1 = std::clamp(m1 - kExtStart, 0, c.n_minutes);
    for (int k = s.k0; k < s.k1; ++k)
      s.wmax = std::max(s.wmax, w[static_cast<size_t>(k)]);
    return s;
  };
  c.stock_segments[0] = segment(c.stock_weight, kExtStart, open);
  c.stock_segments[1] = segment(c.stock_weight, open, close);
  c.stock_segments[2] = segment(c.stock_weight, close, c.ext_end_minute);
  c.option_segment = segment(c.option_weight, open, close);
  c.option_etf_segment = segment(c.option_weight, open, close + 15);

  c.market_activity =
      std::exp(0.15 * HashNormal(HashCombine(seed, kTagActivity,
                                             static_cast<uint64_t>(c.day)))) *
      (session->early_close ? 0.7 : 1.0);
  c.market_now = MarketWalk(seed, c.day);
  c.market_prev = MarketWalk(seed, c.prev_day);
  return c;
}

void LatentPath(const StockInfo& s, const DayContext& day, std::vector<double>* x) {
  const auto n = static_cast<size_t>(day.n_minutes);
  x->resize(n + 1);
  double* p = x->data();
  const double prev = LogClose(s, day.prev_day, day.market_prev);
  const double gap =
      0.25 * s.sigma *
      HashNormal(HashCombine(s.id, kTagGap, static_cast<uint64_t>(day.day)));
  const double x0 = prev + gap;
  const double x1 = LogClose(s, day.day, day.market_now);
  Rng rng(HashCombine(s.id, kTagPath, static_cast<uint64_t>(day.day)));
  const double sig = s.sigma * kIntradayShare;
  double walk = 0;
  p[0] = 0;
  for (size_t k = 0; k < n; ++k) {
    walk += day.path_sd[k] * sig * rng.FastNormal();
    p[k + 1] = walk;
  }
  // Pin the walk: subtract the share of its end-point error accrued by each time.
  const double err = walk - (x1 - x0);
  for (size_t k = 0; k <= n; ++k) p[k] = x0 + p[k] - day.path_cumvar[k] * err;
}

void StockBars(const StockInfo& s, uint32_t item, const DayContext& day,
               std::vector<double>* path, std::vector<Bar>* out) {
  if (!ListedOn(s, day.day)) return;
  Rng rng(HashCombine(s.id, kTagBars, static_cast<uint64_t>(day.day)));
  if (rng.Uniform() < s.gap_prob) return;  // halted or no interest today
  // News days: 2 % of ticker-days are six times busier.
  double factor = rng.Uniform() < 0.02 ? 6.0 : 1.0;
  factor *= std::exp(0.45 * rng.Normal() - 0.1) * day.market_activity;
  const double rate = s.lambda * factor;
  const double sd_scale = s.sigma * kIntradayShare;
  bool have_path = false;
  const double* x = nullptr;

  auto emit = [&](int k, int64_t n) {
    if (!have_path) {
      LatentPath(s, day, path);
      x = path->data();
      have_path = true;
    }
    const auto ku = static_cast<size_t>(k);
    const double xo = x[ku];
    const double xc = x[ku + 1];
    const double level = std::exp(xc);
    const int64_t tick = level < 1.0 ? 1 : 100;  // sub-dollar names quote to 1/100 cent
    Bar b;
    b.item = item;
    b.minute = kExtStart + k;
    b.transactions = n;
    if (n == 1) {
      const int64_t t = ToTicks(level * ExpSmall((xo - xc) * rng.Uniform()), tick);
      b.open = b.high = b.low = b.close = t;
    } else {
      const double sd = day.path_sd[ku] * sd_scale;
      const double open = level * ExpSmall(xo - xc + 0.15 * sd * rng.FastNormal());
      const double spread =
          sd * (0.3 + 0.7 * std::min(1.0, static_cast<double>(n) / 30.0));
      const double hi =
          std::max(open, level) * ExpSmall(std::fabs(rng.FastNormal()) * spread * 0.6);
      const double lo =
          std::min(open, level) * ExpSmall(-std::fabs(rng.FastNormal()) * spread * 0.6);
      b.open = ToTicks(open, tick);
      // Off-exchange prints at sub-penny prices: ~3 % of closes carry four decimals.
      b.close = ToTicks(level, tick == 100 && rng.Uniform() < 0.03 ? 1 : tick);
      b.high = std::max({ToTicks(hi, tick), b.open, b.close});
      b.low = std::min({ToTicks(lo, tick), b.open, b.close});
    }
    const double v =
        static_cast<double>(n) * s.trade_size * SizeMultiplier(rng.FastNormal());
    b.volume = std::max<int64_t>(n, std::llround(v));
    if (rng.Uniform() < 0.0004 * static_cast<double>(std::min<int64_t>(n, 20))) {
      b.volume += std::llround(5000.0 * std::exp(rng.Uniform() * 5.3));  // a block print
    }
    out->push_back(b);
  };
  for (const auto& seg : day.stock_segments) {
    SampleMinutes(rate, day.stock_weight.data(), seg, rng, emit);
  }
}

Bar AggregateDay(std::span<const Bar> minutes) {
  Bar d = minutes.front();
  d.minute = -1;
  d.close = minutes.back().close;
  d.volume = 0;
  d.transactions = 0;
  for (const Bar& b : minutes) {
    d.high = std::max(d.high, b.high);
    d.low = std::min(d.low, b.low);
    d.volume += b.volume;
    d.transactions += b.transactions;
  }
  return d;
}

double BlackScholes(bool call, double spot, double strike, double years, double vol,
                    double rate, double df, double* delta) {
  const double sq = vol * std::sqrt(years);
  const double d1 = (std::log(spot / strike) + (rate + 0.5 * vol * vol) * years) / sq;
  const double d2 = d1 - sq;
  const double n1 = NormCdf(d1);
  const double n2 = NormCdf(d2);
  if (call) {
    if (delta) *delta = n1;
    return spot * n1 - strike * df * n2;
  }
  if (delta) *delta = n1 - 1.0;
  return strike * df * (1.0 - n2) - spot * (1.0 - n1);
}

arrow::Result<std::vector<Contract>> OptionChain(const Universe& u,
                                                 const DayContext& day) {
  std::vector<Contract> out;
  for (uint32_t ui = 0; ui < u.underlyings.size(); ++ui) {
    const Underlying& ul = u.underlyings[ui];
    const StockInfo& s = u.stocks[ul.stock];
    if (!ListedOn(s, day.day)) continue;
    const double spot = std::exp(LogClose(s, day.prev_day, day.market_prev));
    const double sig_ann = s.sigma * std::sqrt(252.0);
    ARROW_ASSIGN_OR_RAISE(auto expiries, Expirations(ul.style, day.date));
    for (const Date expiry : expiries) {
      const int64_t days = (expiry - day.date).count();
      const double tdays = static_cast<double>(std::max<int64_t>(days, 1));
      const double hw =
          spot * std::clamp(3.0 * sig_ann * std::sqrt(tdays / 365.0), 0.03, 0.6);
      double step = StrikeStep(spot, ul.style, days);
      const double max_side = ul.style == ChainStyle::kIndexEtf && days <= 45 ? 60
                              : ul.style == ChainStyle::kAdjusted             ? 8
                                                                              : 25;
      while (hw / step > max_side) step *= 2;
      const double off = ul.strike_offset;
      const auto k0 = static_cast<int64_t>(std::ceil((spot - hw - off) / step));
      const auto k1 = static_cast<int64_t>(std::floor((spot + hw - off) / step));
      const double wd =
          std::max(0.012, 0.7 * sig_ann * std::sqrt(std::max(0.3, tdays) / 365.0));
      const double t_factor = std::pow(1.0 + static_cast<double>(days) / 3.0, -0.8);
      for (int64_t k = k0; k <= k1; ++k) {
        const double strike = static_cast<double>(k) * step + off;
        if (strike <= 0) continue;
        const int64_t strike_milli = std::llround(strike * 1000);
        if (strike_milli <= 0 || strike_milli >= 100'000'000) continue;
        const double x = std::log(strike / spot);
        const double moneyness =
            std::exp(-0.5 * (x / wd) * (x / wd)) + 0.03 * std::exp(-std::fabs(x) / 0.15);
        for (const bool call : {true, false}) {
          const double lambda =
              kOptionActivity * ul.weight * moneyness * t_factor * (call ? 1.0 : 0.85);
          if (lambda * 390 * 3 < 1e-3) continue;  // would never trade
          std::string ticker = FormatOcc(ul.root, expiry, call, strike_milli);
          if (ul.keep < 1 &&
              ToUnit(HashCombine(day.seed, kTagKeep, HashString(ticker))) >= ul.keep) {
            continue;
          }
          out.push_back(
              Contract{std::move(ticker), ui, expiry, call, strike_milli, lambda});
        }
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Contract& a, const Contract& b) { return a.ticker < b.ticker; });
  return out;
}

void OptionBars(const Contract& c, uint32_t item, const Universe& u,
                const std::vector<double>& spots, const DayContext& day,
                std::vector<Bar>* out) {
  const Underlying& ul = u.underlyings[c.underlying];
  const StockInfo& s = u.stocks[ul.stock];
  Rng rng(HashCombine(HashCombine(day.seed, kTagOption, HashString(c.ticker)),
                      static_cast<uint64_t>(day.day)));
  const double rate =
      c.lambda * std::exp(0.6 * rng.Normal() - 0.18) * day.market_activity;
  const auto& seg =
      ul.style == ChainStyle::kIndexEtf ? day.option_etf_segment : day.option_segment;
  const double sig_ann = s.sigma * std::sqrt(252.0);
  const double strike = static_cast<double>(c.strike_milli) / 1000.0;
  const int64_t days = (c.expiry - day.date).count();
  const double df = std::exp(-kRate * static_cast<double>(days) / 365.0);
  const bool penny = ul.style == ChainStyle::kIndexEtf;
  SampleMinutes(rate, day.option_weight.data(), seg, rng, [&](int k, int64_t n) {
    const auto ku = static_cast<size_t>(k);
    const int m = kExtStart + k;
    // Priced at the minute's end off the underlying's close; the open follows by delta.
    const double left = static_cast<double>(days * 1440 + (16 * 60 - m)) - 1.0;
    const double years = std::max(left, 1.0) / kMinutesPerYear;
    const double spot = spots[ku + 1];
    const double x = std::log(strike / spot);
    const double iv = std::max(0.08, sig_ann * (1.0 - 0.25 * x + 1.5 * x * x));
    double delta = 0;
    const double close =
        std::max(0.0, BlackScholes(c.call, spot, strike, years, iv, kRate, df, &delta));
    const double open = std::max(0.0, close + delta * (spots[ku] - spot)) *
                        ExpSmall(0.01 * rng.FastNormal());
    const int64_t tick = penny || close < 3.0 ? 100 : 500;  // $0.01 / $0.05 increments
    Bar b;
    b.item = item;
    b.minute = m;
    b.transactions = n;
    b.close = ToTicks(close, tick);
    if (n == 1) {
      b.open = b.high = b.low = b.close;
    } else {
      const double spread = 0.015 * std::min(1.0, static_cast<double>(n) / 10.0 + 0.2);
      b.open = ToTicks(open, tick);
      const double hi =
          std::max(open, close) * (1.0 + std::fabs(rng.FastNormal()) * spread);
      const double lo =
          std::min(open, close) * (1.0 - std::fabs(rng.FastNormal()) * spread);
      b.high = std::max({ToTicks(hi, tick), b.open, b.close});
      b.low = std::min({ToTicks(std::max(lo, 0.0), tick), b.open, b.close});
    }
    const double size = 1.0 + 5.0 * SizeMultiplier(rng.FastNormal());
    b.volume = std::max<int64_t>(n, std::llround(static_cast<double>(n) * size));
    if (rng.Uniform() < 0.002)
      b.volume += std::llround(100.0 * std::exp(rng.Uniform() * 3.4));
    out->push_back(b);
  });
}

}  // namespace qlake::synth::internal
