// The synthetic ticker universe, OCC symbols and option expiration rules.

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "qlake/synth/synth_internal.h"

namespace qlake::synth::internal {

namespace {

// Purpose tags mixed into hash keys, so that different uses of one entity never share a
// random stream.
constexpr uint64_t kTagUniverse = 0x756e69766572ULL;
constexpr uint64_t kTagAttr = 0x61747472ULL;
constexpr uint64_t kTagChurn = 0x636875726eULL;

// The reference day of price levels: 2024-01-01 (days since 1970-01-01).
constexpr int32_t kRefDay = 19723;

// Named tickers present at every scale: the liquid names tests and demos look for, and
// the nasty ones (dots, Windows device names, words that parsers turn into null/NaN/bool,
// Polygon's lowercase CQS suffixes, list/delist cycles).
struct Special {
  const char* ticker;
  TickerClass cls;
  double price;   // at the reference day
  double sigma;   // daily log-return volatility
  double lambda;  // trades per minute at activity weight 1
  double beta;
  int32_t churn_period;  // calendar days; 0 = always listed
  int32_t churn_on;
};

constexpr TickerClass kC = TickerClass::kCommon;
constexpr TickerClass kE = TickerClass::kEtf;

constexpr Special kSpecials[] = {
    // Broad index ETFs and mega caps: trade nearly every minute, deep option chains.
    {"SPY", kE, 470, 0.009, 6000, 1.0, 0, 0},
    {"QQQ", kE, 400, 0.012, 4500, 1.0, 0, 0},
    {"IWM", kE, 195, 0.014, 1500, 1.0, 0, 0},
    {"AAPL", kC, 185, 0.016, 3500, 0.9, 0, 0},
    {"MSFT", kC, 375, 0.015, 2200, 0.9, 0, 0},
    {"NVDA", kC, 48, 0.030, 5000, 1.2, 0, 0},
    {"TSLA", kC, 248, 0.035, 4000, 1.1, 0, 0},
    {"AMZN", kC, 151, 0.020, 2500, 1.0, 0, 0},
    {"META", kC, 353, 0.022, 1800, 1.0, 0, 0},
    {"GOOGL", kC, 139, 0.018, 1600, 0.9, 0, 0},
    {"GOOG", kC, 140, 0.018, 1100, 0.9, 0, 0},
    {"AMD", kC, 147, 0.030, 2400, 1.2, 0, 0},
    {"NFLX", kC, 486, 0.025, 600, 0.9, 0, 0},
    {"BAC", kC, 33, 0.015, 1300, 0.8, 0, 0},
    {"C", kC, 51, 0.018, 700, 0.9, 0, 0},    // option root "C": a root that is C
    {"PCG", kC, 18, 0.020, 500, 0.6, 0, 0},  // root with both P and C
    {"F", kC, 12, 0.020, 900, 0.9, 0, 0},
    {"JPM", kC, 170, 0.013, 900, 0.8, 0, 0},
    {"A", kC, 139, 0.015, 300, 0.8, 0, 0},
    {"T", kC, 16.8, 0.012, 1500, 0.5, 0, 0},
    // Class shares: a dot in the ticker, dropped in the option root (BRKB).
    {"BRK.B", TickerClass::kClassShare, 357, 0.010, 500, 0.7, 0, 0},
    {"BRK.A", TickerClass::kClassShare, 543000, 0.010, 0.8, 0.7, 0, 0},
    {"BF.B", TickerClass::kClassShare, 53, 0.015, 40, 0.5, 0, 0},
    {"BF.A", TickerClass::kClassShare, 54, 0.015, 2, 0.5, 0, 0},
    {"PBR", TickerClass::kAdr, 16, 0.025, 300, 0.8, 0, 0},
    {"PBR.A", TickerClass::kClassShare, 15, 0.025, 60, 0.8, 0, 0},
    // Preferreds as Polygon spells them (CQS lowercase p + series).
    {"JPMpC", TickerClass::kPreferred, 24.5, 0.005, 0.4, 0.2, 0, 0},
    {"BACpL", TickerClass::kPreferred, 1210, 0.006, 0.05, 0.3, 0, 0},
    // Names that are Windows device names or that CSV readers like to reinterpret.
    {"CON", kC, 19.6, 0.030, 1.2, 0.7, 0, 0},
    {"PRN", kE, 118, 0.015, 0.3, 1.0, 0, 0},
    {"NUL", kC, 7.9, 0.040, 0.5, 0.8, 0, 0},
    {"AUX", kC, 3.45, 0.050, 0.4, 0.8, 0, 0},
    {"COM1", kC, 1.21, 0.060, 0.35, 0.6, 0, 0},
    {"LPT1", kC, 0.4512, 0.080, 0.6, 0.6, 0, 0},
    {"NA", kC, 2.1, 0.050, 0.5, 0.7, 0, 0},
    {"NULL", kC, 11.2, 0.030, 0.8, 0.7, 0, 0},
    {"NAN", kE, 10.5, 0.006, 0.3, 0.3, 0, 0},
    {"TRUE", kC, 5.1, 0.030, 2, 0.8, 0, 0},
    // Warrants, units, rights, when-issued: the CQS suffixes Polygon keeps.
    {"ACHR", kC, 5.6, 0.050, 400, 1.3, 0, 0},
    {"ACHR.WS", TickerClass::kWarrant, 1.32, 0.080, 8, 1.3, 0, 0},
    {"DWACW", TickerClass::kWarrant, 0.2312, 0.100, 3, 1.0, 0, 0},
    {"CCIXU", TickerClass::kUnit, 10.31, 0.004, 0.15, 0.1, 0, 0},
    {"ACAH.U", TickerClass::kUnit, 10.12, 0.004, 0.1, 0.1, 0, 0},
    {"BRACr", TickerClass::kRight, 0.0825, 0.090, 0.3, 0.5, 0, 0},
    {"BRACR", TickerClass::kRight, 0.079, 0.090, 0.2, 0.5, 0, 0},
    {"POSTw", TickerClass::kWhenIssued, 82, 0.020, 0.2, 0.6, 0, 0},
    // A penny stock quoted to four decimals.
    {"MULN", kC, 0.0123, 0.100, 250, 1.0, 0, 0},
    // List/delist cycles short enough to show in a one-week range.
    {"NWCO", kC, 14.2, 0.040, 1.5, 0.9, 14, 9},
    {"DLST", kC, 3.3, 0.050, 1.0, 0.9, 10, 6},
};

// Option underlyings among the specials (by ticker), their chain style and activity
// share.
struct SpecialChain {
  const char* ticker;
  const char* root;
  ChainStyle style;
  double weight;
  double strike_offset;
};
constexpr SpecialChain kSpecialChains[] = {
    {"SPY", "SPY", ChainStyle::kIndexEtf, 1.0, 0},
    {"QQQ", "QQQ", ChainStyle::kIndexEtf, 0.6, 0},
    {"IWM", "IWM", ChainStyle::kIndexEtf, 0.3, 0},
    {"AAPL", "AAPL", ChainStyle::kWeekly, 0.45, 0},
    {"MSFT", "MSFT", ChainStyle::kWeekly, 0.25, 0},
    {"NVDA", "NVDA", ChainStyle::kWeekly, 0.5, 0},
    {"TSLA", "TSLA", ChainStyle::kWeekly, 0.6, 0},
    {"AMZN", "AMZN", ChainStyle::kWeekly, 0.3, 0},
    {"META", "META", ChainStyle::kWeekly, 0.25, 0},
    {"GOOGL", "GOOGL", ChainStyle::kWeekly, 0.2, 0},
    {"AMD", "AMD", ChainStyle::kWeekly, 0.25, 0},
    {"NFLX", "NFLX", ChainStyle::kWeekly, 0.12, 0},
    {"BAC", "BAC", ChainStyle::kWeekly, 0.12, 0},
    {"F", "F", ChainStyle::kWeekly, 0.1, 0},
    {"C", "C", ChainStyle::kMonthly, 0.08, 0},
    {"PCG", "PCG", ChainStyle::kMonthly, 0.06, 0},
    {"JPM", "JPM", ChainStyle::kMonthly, 0.1, 0},
    {"BRK.B", "BRKB", ChainStyle::kMonthly, 0.05, 0},
    {"PBR", "PBR", ChainStyle::kMonthly, 0.03, 0},
    // An adjusted root (after a corporate action): a digit in the root, odd strikes.
    {"AAPL", "AAPL1", ChainStyle::kAdjusted, 0.02, -0.33},
};

// Random (non-special) option underlyings at scale 1.
constexpr int kRandomUnderlyingsAtScale1 = 500;
// Stock tickers at scale 1 (specials included).
constexpr double kTickersAtScale1 = 12000;

// First letters roughly as frequent as in US listings.
constexpr std::string_view kFirstLetters =
    "AAAABBBBCCCCCDDDEEEFFFGGGHHHIIIJJKKLLLMMMMNNNOOPPPPQRRRSSSSSTTTUUVVWWXYZ";
constexpr std::string_view kLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

char PickLetter(std::string_view from, Rng& rng) {
  return from[static_cast<size_t>(rng.Uniform() * static_cast<double>(from.size()))];
}

std::string RandomRoot(size_t len, Rng& rng) {
  std::string t;
  t.push_back(PickLetter(kFirstLetters, rng));
  while (t.size() < len) t.push_back(PickLetter(kLetters, rng));
  return t;
}

double LogUniform(double lo, double hi, double u) {
  return std::exp(std::log(lo) + u * (std::log(hi) - std::log(lo)));
}

// Fills the random attributes of a generated ticker from hashes of its id.
void RandomAttributes(StockInfo* s) {
  Rng r(HashCombine(s->id, kTagAttr));
  const double z = r.Normal();
  const double z2 = r.Normal();
  const double u = r.Uniform();
  double price = 20;
  double sigma = 0.02;
  double lambda_shift = 0;
  double lambda_spread = 2.5;
  double beta = 0.3 + r.Uniform();
  switch (s->cls) {
    case TickerClass::kCommon:
    case TickerClass::kAdr:
    case TickerClass::kClassShare:
    case TickerClass::kWhenIssued:
      if (u < 0.07) {
        price = LogUniform(0.005, 1.0, r.Uniform());  // penny stocks
        sigma = 0.06 + 0.05 * r.Uniform();
      } else {
        price = std::clamp(22.0 * std::exp(1.1 * z2), 1.0, 3000.0);
        sigma =
            std::clamp(0.018 * std::pow(20.0 / price, 0.15) * std::exp(0.3 * r.Normal()),
                       0.006, 0.08);
      }
      if (s->cls == TickerClass::kAdr) lambda_shift = -1.0;
      if (s->cls == TickerClass::kClassShare) lambda_shift = -1.0;
      if (s->cls == TickerClass::kWhenIssued) lambda_shift = -2.0, lambda_spread = 2.0;
      break;
    case TickerClass::kEtf:
      price = std::clamp(40.0 * std::exp(0.6 * z2), 5.0, 600.0);
      sigma = 0.008 + 0.01 * r.Uniform();
      beta = 0.8 + 0.3 * r.Uniform();
      lambda_shift = -0.3;
      break;
    case TickerClass::kPreferred:
      price = 25.0 * std::exp(0.12 * z2);
      sigma = 0.004 + 0.004 * r.Uniform();
      beta = 0.2;
      lambda_shift = -2.5, lambda_spread = 2.0;
      break;
    case TickerClass::kWarrant:
      price = LogUniform(0.01, 3.0, r.Uniform());
      sigma = 0.06 + 0.04 * r.Uniform();
      lambda_shift = -1.5, lambda_spread = 2.0;
      break;
    case TickerClass::kUnit:
      price = 10.2 * std::exp(0.03 * z2);
      sigma = 0.004;
      beta = 0.1;
      lambda_shift = -3.0, lambda_spread = 2.0;
      break;
    case TickerClass::kRight:
      price = LogUniform(0.01, 0.6, r.Uniform());
      sigma = 0.08;
      lambda_shift = -2.5, lambda_spread = 2.0;
      break;
  }
  s->ln_price0 = std::log(price);
  s->sigma = sigma;
  s->beta = std::min(beta, 1.2);
  s->lambda = std::min(8000.0, 0.3 * std::exp(lambda_spread * z + lambda_shift));
  s->gap_prob =
      s->cls == TickerClass::kCommon || s->cls == TickerClass::kEtf ? 0.003 : 0.01;
  // 6 % of the names list and delist in cycles of 2..16 months.
  Rng c(HashCombine(s->id, kTagChurn));
  if (c.Uniform() < 0.06) {
    s->churn_period = 60 + static_cast<int32_t>(c.Uniform() * 440);
    s->churn_on = static_cast<int32_t>(s->churn_period * (0.25 + 0.65 * c.Uniform()));
    s->churn_phase = static_cast<int32_t>(c.Uniform() * s->churn_period);
  }
}

double TradeSize(double price, uint64_t id) {
  const double base = 60.0 * std::pow(30.0 / price, 0.6);
  return std::clamp(base * std::exp(0.3 * HashNormal(HashCombine(id, 0x73697a65ULL))),
                    1.0, 50000.0);
}

void FinishStock(StockInfo* s) {
  // beta is the correlation with the market walk, so it must stay below 1.
  s->beta = std::clamp(s->beta, 0.0, 0.95);
  // The random walk's value at the reference day, so that ln_price0 is the level there.
  s->walk_ref = LevyBrownian(s->id, kRefDay);
  s->trade_size = TradeSize(std::exp(s->ln_price0), s->id);
}

}  // namespace

uint64_t HashString(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix64(h);
}

double HashNormal(uint64_t h) {
  // Two 32-bit uniforms in (0, 1); Box-Muller, cosine branch.
  const double u1 = (static_cast<double>(h >> 32) + 0.5) * 0x1.0p-32;
  const double u2 = (static_cast<double>(h & 0xffffffffu) + 0.5) * 0x1.0p-32;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

Universe BuildUniverse(uint64_t seed, double scale) {
  Universe u;
  std::unordered_set<std::string> used;
  for (const auto& sp : kSpecials) {
    StockInfo s;
    s.ticker = sp.ticker;
    s.id = HashCombine(seed, HashString(s.ticker));
    s.cls = sp.cls;
    s.ln_price0 = std::log(sp.price);
    s.sigma = sp.sigma;
    s.lambda = sp.lambda;
    s.beta = sp.beta;
    s.churn_period = sp.churn_period;
    s.churn_on = sp.churn_on;
    FinishStock(&s);
    used.insert(s.ticker);
    u.stocks.push_back(std::move(s));
  }
  const size_t n_special = u.stocks.size();
  const auto n_random = static_cast<size_t>(std::max(
      0.0, std::round(scale * kTickersAtScale1) - static_cast<double>(n_special)));
  const auto n_random_underlyings =
      static_cast<size_t>(std::round(scale * kRandomUnderlyingsAtScale1));

  // Random names: one seeded sequence, so smaller scales are prefixes of larger ones.
  Rng gen(HashCombine(seed, kTagUniverse));
  std::vector<size_t> commons;  // indices of generated common stocks (bases for suffixes)
  std::vector<std::pair<size_t, double>> random_underlyings;
  while (u.stocks.size() < n_special + n_random) {
    const double lu = gen.Uniform();
    const double cu = gen.Uniform();
    const double bu = gen.Uniform();
    StockInfo s;
    if (lu >= 0.925) {
      s.cls = TickerClass::kAdr;  // five letters ending in Y (ADR) or F (foreign)
      s.ticker = RandomRoot(4, gen) + (gen.Uniform() < 0.6 ? "Y" : "F");
    } else {
      const size_t len = lu < 0.005 ? 1 : lu < 0.05 ? 2 : lu < 0.35 ? 3 : 4;
      const bool have_base = !commons.empty();
      const std::string* base =
          have_base ? &u.stocks[commons[static_cast<size_t>(
                                    bu * static_cast<double>(commons.size()))]]
                           .ticker
                    : nullptr;
      if (cu < 0.775 || !have_base) {
        s.cls = TickerClass::kCommon;
        s.ticker = RandomRoot(len, gen);
      } else if (cu < 0.85) {
        s.cls = TickerClass::kEtf;
        s.ticker = RandomRoot(std::max<size_t>(len, 3), gen);
      } else if (cu < 0.885) {
        s.cls = TickerClass::kPreferred;
        s.ticker = *base + "p" + PickLetter(kLetters.substr(0, 14), gen);
      } else if (cu < 0.905) {
        s.cls = TickerClass::kWarrant;
        s.ticker = *base + (base->size() >= 4 ? "W" : ".WS");
      } else if (cu < 0.92) {
        s.cls = TickerClass::kUnit;
        s.ticker = *base + (base->size() >= 4 ? "U" : ".U");
      } else if (cu < 0.93) {
        s.cls = TickerClass::kRight;
        s.ticker = *base + (base->size() >= 4 ? "R" : "r");
      } else if (cu < 0.955) {
        if (base->size() <= 3) {
          s.cls = TickerClass::kClassShare;
          s.ticker = *base + (gen.Uniform() < 0.5 ? ".A" : ".B");
        } else {
          s.cls = TickerClass::kCommon;
          s.ticker = RandomRoot(len, gen);
        }
      } else if (cu < 0.96) {
        s.cls = TickerClass::kWhenIssued;
        s.ticker = *base + "w";
      } else {
        s.cls = TickerClass::kCommon;
        s.ticker = RandomRoot(len, gen);
      }
    }
    if (s.ticker.size() > 5 && s.cls != TickerClass::kWarrant &&
        s.cls != TickerClass::kUnit && s.cls != TickerClass::kClassShare &&
        s.cls != TickerClass::kPreferred) {
      continue;
    }
    if (!used.insert(s.ticker).second) continue;
    s.id = HashCombine(seed, HashString(s.ticker));
    RandomAttributes(&s);
    FinishStock(&s);
    const size_t index = u.stocks.size();
    if (s.cls == TickerClass::kCommon) commons.push_back(index);
    if ((s.cls == TickerClass::kCommon || s.cls == TickerClass::kEtf) && s.lambda > 20 &&
        std::exp(s.ln_price0) >= 3 && s.churn_period == 0 &&
        random_underlyings.size() < n_random_underlyings) {
      const double w = std::min(0.08, 0.015 * std::pow(s.lambda / 50.0, 0.3));
      random_underlyings.emplace_back(index, w);
    }
    u.stocks.push_back(std::move(s));
  }

  // Sort by ticker and remap underlying indices.
  std::vector<size_t> order(u.stocks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return u.stocks[a].ticker < u.stocks[b].ticker; });
  std::vector<uint32_t> new_index(order.size());
  std::vector<StockInfo> sorted;
  sorted.reserve(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    new_index[order[i]] = static_cast<uint32_t>(i);
    sorted.push_back(std::move(u.stocks[order[i]]));
  }
  u.stocks = std::move(sorted);
  auto find = [&](std::string_view t) -> uint32_t {
    auto it = std::lower_bound(
        u.stocks.begin(), u.stocks.end(), t,
        [](const StockInfo& s, std::string_view k) { return s.ticker < k; });
    return static_cast<uint32_t>(it - u.stocks.begin());
  };

  for (const auto& sc : kSpecialChains) {
    Underlying ul;
    ul.stock = find(sc.ticker);
    ul.root = sc.root;
    ul.style = sc.style;
    ul.weight = sc.weight;
    ul.strike_offset = sc.strike_offset;
    // Thin the named chains with the scale, but keep a few dozen contracts of the small
    // ones (PCG, C, BRKB) at tiny scales, and every contract of the adjusted root.
    ul.keep = sc.style == ChainStyle::kAdjusted
                  ? 1.0
                  : std::min(1.0, std::max(scale, 0.005 / sc.weight));
    u.underlyings.push_back(std::move(ul));
  }
  for (const auto& [index, w] : random_underlyings) {
    Underlying ul;
    ul.stock = new_index[index];
    ul.root = u.stocks[ul.stock].ticker;
    ul.style = ChainStyle::kMonthly;
    ul.weight = w;
    u.underlyings.push_back(std::move(ul));
  }
  return u;
}

bool ListedOn(const StockInfo& s, int32_t day) {
  if (s.churn_period <= 0) return true;
  const int32_t pos = (day + s.churn_phase) % s.churn_period;
  return pos < s.churn_on;
}

// ---------------------------------------------------------------------------------------
// OCC symbols.

std::string FormatOcc(std::string_view root, Date expiry, bool call,
                      int64_t strike_milli) {
  const date::year_month_day ymd{expiry};
  const int yy = static_cast<int>(ymd.year()) % 100;
  const unsigned mm = static_cast<unsigned>(ymd.month());
  const unsigned dd = static_cast<unsigned>(ymd.day());
  std::string t;
  t.reserve(2 + root.size() + 15);
  t += "O:";
  t += root;
  char buf[15];
  buf[0] = static_cast<char>('0' + yy / 10);
  buf[1] = static_cast<char>('0' + yy % 10);
  buf[2] = static_cast<char>('0' + mm / 10);
  buf[3] = static_cast<char>('0' + mm % 10);
  buf[4] = static_cast<char>('0' + dd / 10);
  buf[5] = static_cast<char>('0' + dd % 10);
  buf[6] = call ? 'C' : 'P';
  int64_t k = strike_milli;
  for (int i = 14; i >= 7; --i) {
    buf[i] = static_cast<char>('0' + k % 10);
    k /= 10;
  }
  t.append(buf, 15);
  return t;
}

// ---------------------------------------------------------------------------------------
// Expirations.

namespace {

// `d`, or the trading day before it when `d` is a holiday.
arrow::Result<Date> OnOrBeforeTrading(Date d) {
  const auto& cal = catalog::NyseCalendar::Get();
  ARROW_ASSIGN_OR_RAISE(bool trading, cal.IsTradingDay(d));
  if (trading) return d;
  return cal.PreviousTradingDay(d);
}

}  // namespace

arrow::Result<Date> MonthlyExpiry(int year, unsigned month) {
  const date::year_month_weekday third{date::year{year} / date::month{month} /
                                       date::Friday[3]};
  return OnOrBeforeTrading(Date{third});
}

arrow::Result<Date> WeeklyExpiry(Date friday) { return OnOrBeforeTrading(friday); }

arrow::Result<std::vector<Date>> Expirations(ChainStyle style, Date today) {
  const auto& cal = catalog::NyseCalendar::Get();
  const Date last = catalog::NyseCalendar::LastDate();
  std::vector<Date> out;
  auto add = [&](arrow::Result<Date> d) -> arrow::Status {
    if (!d.ok()) {
      // Beyond the calendar: such far expirations are simply not listed.
      return arrow::Status::OK();
    }
    if (*d >= today && *d <= last) out.push_back(*d);
    return arrow::Status::OK();
  };
  const date::year_month_day ymd{today};
  const int y0 = static_cast<int>(ymd.year());
  const unsigned m0 = static_cast<unsigned>(ymd.month());
  auto months_ahead = [&](int k) {
    const int idx = static_cast<int>(m0) - 1 + k;
    return std::pair<int, unsigned>{y0 + idx / 12, static_cast<unsigned>(idx % 12 + 1)};
  };
  // The Friday on or after today.
  const date::weekday wd{today};
  const int to_friday = (5 - static_cast<int>(wd.c_encoding()) + 7) % 7;
  const Date friday0 = today + date::days{to_friday};
  auto fridays = [&](int n) -> arrow::Status {
    for (int i = 0; i < n; ++i) {
      const Date f = friday0 + date::days{7 * i};
      if (f > last) break;
      ARROW_RETURN_NOT_OK(add(WeeklyExpiry(f)));
    }
    return arrow::Status::OK();
  };
  auto monthlies = [&](int n, bool quarterly_only, int from_k) -> arrow::Status {
    for (int k = from_k; k < n; ++k) {
      auto [y, m] = months_ahead(k);
      if (quarterly_only && m % 3 != 0) continue;
      ARROW_RETURN_NOT_OK(add(MonthlyExpiry(y, m)));
    }
    return arrow::Status::OK();
  };
  auto januaries = [&](int years) -> arrow::Status {
    for (int k = 1; k <= years; ++k) ARROW_RETURN_NOT_OK(add(MonthlyExpiry(y0 + k, 1)));
    return arrow::Status::OK();
  };
  switch (style) {
    case ChainStyle::kIndexEtf: {
      // Every session for the next two weeks (0DTE included).
      Date d = today;
      for (int i = 0; i < 10 && d <= last; ++i) {
        ARROW_ASSIGN_OR_RAISE(bool trading, cal.IsTradingDay(d));
        if (trading) out.push_back(d);
        auto next = cal.NextTradingDay(d);
        if (!next.ok()) break;
        d = *next;
      }
      ARROW_RETURN_NOT_OK(fridays(9));
      ARROW_RETURN_NOT_OK(monthlies(12, false, 0));
      ARROW_RETURN_NOT_OK(monthlies(24, true, 12));
      for (int k = 1; k <= 3; ++k) ARROW_RETURN_NOT_OK(add(MonthlyExpiry(y0 + k, 12)));
      break;
    }
    case ChainStyle::kWeekly:
      ARROW_RETURN_NOT_OK(fridays(6));
      ARROW_RETURN_NOT_OK(monthlies(6, false, 0));
      ARROW_RETURN_NOT_OK(monthlies(12, true, 6));
      ARROW_RETURN_NOT_OK(januaries(2));
      break;
    case ChainStyle::kMonthly:
      ARROW_RETURN_NOT_OK(monthlies(3, false, 0));
      ARROW_RETURN_NOT_OK(monthlies(9, true, 3));
      ARROW_RETURN_NOT_OK(januaries(1));
      break;
    case ChainStyle::kAdjusted:
      ARROW_RETURN_NOT_OK(monthlies(3, false, 0));
      break;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace qlake::synth::internal
