#include "qlake/qlib/symbol_map.h"

#include <array>
#include <cctype>

namespace qlake::qlib {

namespace {

constexpr char kHex[] = "0123456789ABCDEF";
constexpr std::size_t kMaxTickerBytes = 64;

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Codes made only of [A-Z0-9_-] that pandas' default NA list would read as NaN.
bool IsNaLike(std::string_view code) { return code == "NA" || code == "NULL"; }

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

arrow::Result<std::string> TickerToCode(std::string_view ticker) {
  if (ticker.empty() || ticker.size() > kMaxTickerBytes) {
    return arrow::Status::Invalid("ticker '", ticker, "' must have 1 to ",
                                  kMaxTickerBytes, " bytes");
  }
  std::string code;
  code.reserve(ticker.size() + 4);
  for (char c : ticker) {
    if (IsUpper(c) || IsDigit(c)) {
      code.push_back(c);
    } else if (c >= 'a' && c <= 'z') {
      code.push_back('_');
      code.push_back(static_cast<char>(c - 'a' + 'A'));
    } else if (c == '.') {
      code.push_back('-');
    } else {
      auto b = static_cast<unsigned char>(c);
      code.append("__");
      code.push_back(kHex[b >> 4]);
      code.push_back(kHex[b & 15]);
    }
  }
  if (IsNaLike(code)) code.push_back('_');
  return code;
}

arrow::Result<std::string> CodeToTicker(std::string_view code) {
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid("'", code, "' is not a qlake Qlib code: ", why);
  };
  if (code.empty()) return bad("empty");
  std::string_view body = code;
  bool guarded = false;
  if (body.size() >= 2 && body.back() == '_' && body[body.size() - 2] != '_') {
    // A trailing lone '_' is the NA guard (a letter escape is '_' + letter, a hex escape
    // ends in a hex digit).
    body.remove_suffix(1);
    guarded = true;
    if (!IsNaLike(body)) return bad("a trailing '_' guards only NA and NULL");
  }
  std::string t;
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (IsUpper(c) || IsDigit(c)) {
      t.push_back(c);
    } else if (c == '-') {
      t.push_back('.');
    } else if (c == '_') {
      if (i + 1 >= body.size()) return bad("dangling '_'");
      char n = body[i + 1];
      if (IsUpper(n)) {
        t.push_back(static_cast<char>(n - 'A' + 'a'));
        i += 1;
      } else if (n == '_') {
        if (i + 3 >= body.size()) return bad("short hex escape");
        int hi = HexValue(body[i + 2]), lo = HexValue(body[i + 3]);
        if (hi < 0 || lo < 0) return bad("bad hex escape");
        t.push_back(static_cast<char>(hi * 16 + lo));
        i += 3;
      } else {
        return bad("'_' must be followed by a letter or '_'");
      }
    } else {
      return bad("only A-Z, 0-9, '-' and '_' may appear");
    }
  }
  if (!guarded && IsNaLike(t)) return bad("NA and NULL are written with a trailing '_'");
  // The mapping must round-trip exactly (rejects e.g. "__41" for "A").
  auto again = TickerToCode(t);
  if (!again.ok() || *again != code) return bad("not in canonical form");
  return t;
}

std::string CodeToDir(std::string_view code) {
  std::string upper(code);
  for (auto& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::array<std::string_view, 4> kNames = {"CON", "PRN", "AUX", "NUL"};
  bool reserved = false;
  for (auto n : kNames) reserved = reserved || upper == n;
  if (upper.size() == 4 && (upper.starts_with("COM") || upper.starts_with("LPT")) &&
      IsDigit(upper[3])) {
    reserved = true;
  }
  std::string dir = reserved ? "_qlib_" + std::string(code) : std::string(code);
  for (auto& c : dir) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return dir;
}

arrow::Status ValidateFieldName(std::string_view field) {
  bool ok = !field.empty() && field.size() <= 32 && field[0] >= 'a' && field[0] <= 'z';
  for (char c : field) {
    ok = ok && ((c >= 'a' && c <= 'z') || IsDigit(c) || c == '_');
  }
  if (!ok) {
    return arrow::Status::Invalid(
        "field name '", field,
        "' must be 1-32 characters of [a-z0-9_] starting with a "
        "letter (Qlib's $name syntax)");
  }
  return arrow::Status::OK();
}

}  // namespace qlake::qlib
