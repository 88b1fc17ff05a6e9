#include "qlake/catalog/symbols.h"

#include <array>

namespace qlake::catalog {

namespace {

constexpr std::string_view kOccPrefix = "O:";
constexpr std::size_t kOccTail = 15;  // YYMMDD + C/P + 8-digit strike
constexpr std::size_t kMaxOccRoot = 6;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

int64_t Digits(std::string_view s) {
  int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return !s.empty();
}

// Windows reserved device names, compared case-insensitively on the whole escaped name
// (we escape '.', so there is never an "extension" part).
bool IsReservedDeviceName(std::string_view name) {
  static constexpr std::array<std::string_view, 4> kFixed = {"CON", "PRN", "AUX", "NUL"};
  std::string upper(name);
  for (auto& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  for (auto r : kFixed) {
    if (upper == r) return true;
  }
  return upper.size() == 4 && (upper.starts_with("COM") || upper.starts_with("LPT")) &&
         IsDigit(upper[3]);
}

void AppendEscaped(unsigned char c, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->push_back('%');
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 0xF]);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

arrow::Result<OccContract> ParseOcc(std::string_view ticker) {
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid(
        "option ticker '", ticker, "' is not an OCC symbol (", why,
        "); expected O:<root><YYMMDD><C|P><strike x 1000, 8 digits>");
  };
  if (!ticker.starts_with(kOccPrefix)) return bad("no O: prefix");
  std::string_view body = ticker.substr(kOccPrefix.size());
  if (body.size() < kOccTail + 1) return bad("too short");
  std::string_view root = body.substr(0, body.size() - kOccTail);
  std::string_view tail = body.substr(body.size() - kOccTail);
  if (root.size() > kMaxOccRoot) return bad("root longer than 6 characters");
  for (char c : root) {
    if (!IsUpper(c) && !IsDigit(c)) return bad("root must be A-Z and 0-9");
  }
  if (!IsUpper(root.front())) return bad("root must start with a letter");
  std::string_view yymmdd = tail.substr(0, 6);
  char type = tail[6];
  std::string_view strike = tail.substr(7);
  if (!AllDigits(yymmdd)) return bad("expiry is not YYMMDD");
  if (type != 'C' && type != 'P') return bad("type is not C or P");
  if (!AllDigits(strike)) return bad("strike is not 8 digits");
  int y = 2000 + static_cast<int>(Digits(yymmdd.substr(0, 2)));
  unsigned m = static_cast<unsigned>(Digits(yymmdd.substr(2, 2)));
  unsigned d = static_cast<unsigned>(Digits(yymmdd.substr(4, 2)));
  date::year_month_day ymd{date::year{y}, date::month{m}, date::day{d}};
  if (!ymd.ok()) return bad("expiry is not a real date");
  int64_t strike_milli = Digits(strike);
  if (strike_milli == 0) return bad("strike is zero");
  return OccContract{root, Date{ymd}, type, strike_milli};
}

arrow::Result<std::string> EscapePathComponent(std::string_view ticker) {
  if (ticker.empty())
    return arrow::Status::Invalid("empty ticker cannot name a directory");
  std::string out;
  out.reserve(ticker.size() + 8);
  const bool reserved = IsReservedDeviceName(ticker);
  for (std::size_t i = 0; i < ticker.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(ticker[i]);
    bool plain = IsUpper(static_cast<char>(c)) || IsDigit(static_cast<char>(c)) ||
                 c == '-' || c == '_';
    if (plain && !(reserved && i == 0)) {
      out.push_back(static_cast<char>(c));
    } else {
      AppendEscaped(c, &out);
    }
  }
  return out;
}

arrow::Result<std::string> UnescapePathComponent(std::string_view component) {
  std::string out;
  out.reserve(component.size());
  for (std::size_t i = 0; i < component.size(); ++i) {
    if (component[i] != '%') {
      out.push_back(component[i]);
      continue;
    }
    int hi = i + 2 < component.size() ? HexValue(component[i + 1]) : -1;
    int lo = i + 2 < component.size() ? HexValue(component[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return arrow::Status::Invalid("'", component, "': malformed %-escape at offset ",
                                    i);
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  if (out.empty()) return arrow::Status::Invalid("empty path component");
  return out;
}

}  // namespace qlake::catalog
