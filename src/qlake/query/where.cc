#include "qlake/query/where.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <set>
#include <utility>

#include <arrow/builder.h>
#include <arrow/compute/api.h>
#include <arrow/compute/initialize.h>
#include <arrow/scalar.h>
#include <arrow/type.h>
#include <fmt/format.h>

#include "qlake/core/dates.h"

namespace qlake::query {

namespace cp = arrow::compute;

namespace {

enum class Tok { kIdent, kNumber, kString, kOp, kLParen, kRParen, kComma, kEnd };

struct Token {
  Tok kind;
  std::string text;  // identifier / operator / number text / unquoted string
  std::size_t pos;   // 1-based character position in the input
};

arrow::Result<std::vector<Token>> Lex(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    const std::size_t pos = i + 1;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i;
      while (j < s.size() &&
             (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) {
        ++j;
      }
      out.push_back({Tok::kIdent, std::string(s.substr(i, j - i)), pos});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < s.size() &&
                std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      std::size_t j = i;
      while (j < s.size() &&
             (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) {
        ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        ++j;
        if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      out.push_back({Tok::kNumber, std::string(s.substr(i, j - i)), pos});
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string v;
      std::size_t j = i + 1;
      bool closed = false;
      while (j < s.size()) {
        if (s[j] == c) {
          if (j + 1 < s.size() && s[j + 1] == c) {
            v.push_back(c);
            j += 2;
            continue;
          }
          closed = true;
          ++j;
          break;
        }
        v.push_back(s[j++]);
      }
      if (!closed) {
        return arrow::Status::Invalid("where: unterminated string starting at ", pos);
      }
      out.push_back({Tok::kString, std::move(v), pos});
      i = j;
    } else if (c == '(') {
      out.push_back({Tok::kLParen, "(", pos});
      ++i;
    } else if (c == ')') {
      out.push_back({Tok::kRParen, ")", pos});
      ++i;
    } else if (c == ',') {
      out.push_back({Tok::kComma, ",", pos});
      ++i;
    } else {
      static constexpr std::string_view kTwo[] = {"<=", ">=", "!=", "<>", "=="};
      std::string_view two = s.substr(i, 2);
      if (std::find(std::begin(kTwo), std::end(kTwo), two) != std::end(kTwo)) {
        out.push_back({Tok::kOp, std::string(two), pos});
        i += 2;
      } else if (std::string_view("=<>+-*/").find(c) != std::string_view::npos) {
        out.push_back({Tok::kOp, std::string(1, c), pos});
        ++i;
      } else {
        return arrow::Status::Invalid("where: unexpected character '", std::string(1, c),
                                      "' at ", pos);
      }
    }
  }
  out.push_back({Tok::kEnd, "", s.size() + 1});
  return out;
}

std::string Lower(std::string_view s) {
  std::string r(s);
  for (auto& ch : r) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return r;
}

bool IsKeyword(const std::string& lower) {
  static const std::set<std::string> kw = {"and", "or",   "not",  "in",   "between",
                                           "is",  "null", "true", "false"};
  return kw.count(lower) > 0;
}

// An operand while parsing: an expression plus, for literals, what it was written as, so
// a string can become a date or timestamp once the other side's type is known.
struct Operand {
  cp::Expression expr;
  std::shared_ptr<arrow::DataType> column_type;  // set for plain column references
  std::optional<std::string> string_literal;
  bool literal = false;
};

class Parser {
 public:
  Parser(std::vector<Token> toks, const arrow::Schema& schema)
      : toks_(std::move(toks)), schema_(schema) {}

  arrow::Result<cp::Expression> Parse() {
    ARROW_ASSIGN_OR_RAISE(auto e, Or());
    if (Peek().kind != Tok::kEnd) return Error("expected end of expression");
    return e;
  }

 private:
  const Token& Peek() const { return toks_[i_]; }
  const Token& Next() { return toks_[i_++]; }
  bool PeekKeyword(std::string_view kw) const {
    return Peek().kind == Tok::kIdent && Lower(Peek().text) == kw;
  }
  bool AcceptKeyword(std::string_view kw) {
    if (!PeekKeyword(kw)) return false;
    ++i_;
    return true;
  }
  arrow::Status Error(std::string_view what) const {
    const Token& t = Peek();
    std::string found = t.kind == Tok::kEnd ? "end of input" : "'" + t.text + "'";
    return arrow::Status::Invalid("where: ", what, " at ", t.pos, ", found ", found);
  }

  arrow::Result<cp::Expression> Or() {
    ARROW_ASSIGN_OR_RAISE(auto left, And());
    while (AcceptKeyword("or")) {
      ARROW_ASSIGN_OR_RAISE(auto right, And());
      left = cp::or_(left, right);
    }
    return left;
  }

  arrow::Result<cp::Expression> And() {
    ARROW_ASSIGN_OR_RAISE(auto left, Not());
    while (AcceptKeyword("and")) {
      ARROW_ASSIGN_OR_RAISE(auto right, Not());
      left = cp::and_(left, right);
    }
    return left;
  }

  arrow::Result<cp::Expression> Not() {
    if (AcceptKeyword("not")) {
      ARROW_ASSIGN_OR_RAISE(auto inner, Not());
      return cp::not_(inner);
    }
    return Primary();
  }

  // A parenthesis opens either a boolean group or an arithmetic operand: try the group
  // first, and fall back to a comparison if what follows the ')' is an operator.
  arrow::Result<cp::Expression> Primary() {
    if (Peek().kind == Tok::kLParen) {
      const std::size_t save = i_;
      ++i_;
      auto group = Or();
      if (group.ok() && Peek().kind == Tok::kRParen) {
        ++i_;
        if (!(Peek().kind == Tok::kOp || PeekKeyword("in") || PeekKeyword("between") ||
              PeekKeyword("is") || PeekKeyword("not"))) {
          return group;
        }
      }
      i_ = save;
    }
    return Comparison();
  }

  arrow::Result<cp::Expression> Comparison() {
    ARROW_ASSIGN_OR_RAISE(Operand left, Sum());
    bool negate = false;
    if (AcceptKeyword("is")) {
      negate = AcceptKeyword("not");
      if (!AcceptKeyword("null")) return Error("expected NULL after IS");
      auto e = cp::is_null(left.expr);
      return negate ? cp::not_(e) : e;
    }
    if (PeekKeyword("not")) {
      ++i_;
      negate = true;
      if (!PeekKeyword("in") && !PeekKeyword("between")) {
        return Error("expected IN or BETWEEN after NOT");
      }
    }
    if (AcceptKeyword("in")) {
      if (Peek().kind != Tok::kLParen) return Error("expected '(' after IN");
      ++i_;
      std::vector<std::shared_ptr<arrow::Scalar>> values;
      while (true) {
        ARROW_ASSIGN_OR_RAISE(Operand lit, Atom());
        if (!lit.literal) return Error("IN lists hold literals only");
        ARROW_ASSIGN_OR_RAISE(auto v, Coerce(lit, left));
        values.push_back(v.expr.literal()->scalar());
        if (Peek().kind == Tok::kComma) {
          ++i_;
          continue;
        }
        if (Peek().kind == Tok::kRParen) {
          ++i_;
          break;
        }
        return Error("expected ',' or ')' in IN list");
      }
      ARROW_ASSIGN_OR_RAISE(auto set, MakeArray(values));
      auto e = cp::call("is_in", {left.expr}, cp::SetLookupOptions(set));
      return negate ? cp::not_(e) : e;
    }
    if (AcceptKeyword("between")) {
      ARROW_ASSIGN_OR_RAISE(Operand lo, Sum());
      if (!AcceptKeyword("and")) return Error("expected AND in BETWEEN");
      ARROW_ASSIGN_OR_RAISE(Operand hi, Sum());
      ARROW_ASSIGN_OR_RAISE(lo, Coerce(lo, left));
      ARROW_ASSIGN_OR_RAISE(hi, Coerce(hi, left));
      auto e = cp::and_(cp::greater_equal(left.expr, lo.expr),
                        cp::less_equal(left.expr, hi.expr));
      return negate ? cp::not_(e) : e;
    }
    if (Peek().kind != Tok::kOp ||
        std::string_view("+-*/").find(Peek().text) != std::string_view::npos) {
      return Error("expected a comparison (=, !=, <, <=, >, >=, IN, BETWEEN, IS NULL)");
    }
    std::string op = Next().text;
    ARROW_ASSIGN_OR_RAISE(Operand right, Sum());
    ARROW_ASSIGN_OR_RAISE(right, Coerce(right, left));
    ARROW_ASSIGN_OR_RAISE(left, Coerce(left, right));
    if (op == "=" || op == "==") return cp::equal(left.expr, right.expr);
    if (op == "!=" || op == "<>") return cp::not_equal(left.expr, right.expr);
    if (op == "<") return cp::less(left.expr, right.expr);
    if (op == "<=") return cp::less_equal(left.expr, right.expr);
    if (op == ">") return cp::greater(left.expr, right.expr);
    return cp::greater_equal(left.expr, right.expr);
  }

  static arrow::Result<std::shared_ptr<arrow::Array>> MakeArray(
      const std::vector<std::shared_ptr<arrow::Scalar>>& values) {
    auto type = values.front()->type;
    for (const auto& v : values) {
      if (!v->type->Equals(*type)) {
        // Mixed ints and floats: widen to double.
        if (arrow::is_numeric(v->type->id()) && arrow::is_numeric(type->id())) {
          type = arrow::float64();
        } else {
          return arrow::Status::Invalid("where: IN list mixes ", type->ToString(),
                                        " and ", v->type->ToString());
        }
      }
    }
    std::unique_ptr<arrow::ArrayBuilder> b;
    ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type, &b));
    for (const auto& v : values) {
      if (v->type->Equals(*type)) {
        ARROW_RETURN_NOT_OK(b->AppendScalar(*v));
      } else {
        ARROW_ASSIGN_OR_RAISE(auto c, v->CastTo(type));
        ARROW_RETURN_NOT_OK(b->AppendScalar(*c));
      }
    }
    return b->Finish();
  }

  // A string literal next to a date or timestamp column becomes a value of that type.
  arrow::Result<Operand> Coerce(Operand lit, const Operand& other) const {
    if (!lit.string_literal || !other.column_type) return lit;
    auto type = other.column_type;
    if (type->id() == arrow::Type::DATE32) {
      auto d = ParseDate(*lit.string_literal);
      if (!d.ok()) {
        return arrow::Status::Invalid("where: '", *lit.string_literal,
                                      "' is not a date (YYYY-MM-DD)");
      }
      lit.expr = cp::literal(std::make_shared<arrow::Date32Scalar>(ToDate32(*d)));
    } else if (type->id() == arrow::Type::TIMESTAMP) {
      // An explicit offset is required: "2025-01-02" or "2025-01-02T09:30" would depend
      // on a zone the reader has to guess.
      const std::string& text = *lit.string_literal;
      const bool has_offset =
          text.size() > 10 &&
          (text.back() == 'Z' || text.find_first_of("+-", 11) != std::string::npos);
      auto s = arrow::Scalar::Parse(type, text);
      if (!has_offset || !s.ok()) {
        return arrow::Status::Invalid(
            "where: '", *lit.string_literal, "' is not a time for ", type->ToString(),
            " (ISO 8601 with an offset, e.g. '2025-01-02T14:30:00Z')");
      }
      lit.expr = cp::literal(*s);
    }
    return lit;
  }

  arrow::Result<Operand> Sum() {
    ARROW_ASSIGN_OR_RAISE(Operand left, Product());
    while (Peek().kind == Tok::kOp && (Peek().text == "+" || Peek().text == "-")) {
      std::string op = Next().text;
      ARROW_ASSIGN_OR_RAISE(Operand right, Product());
      left = Operand{cp::call(op == "+" ? "add" : "subtract", {left.expr, right.expr}),
                     nullptr, std::nullopt, false};
    }
    return left;
  }

  arrow::Result<Operand> Product() {
    ARROW_ASSIGN_OR_RAISE(Operand left, Unary());
    while (Peek().kind == Tok::kOp && (Peek().text == "*" || Peek().text == "/")) {
      std::string op = Next().text;
      ARROW_ASSIGN_OR_RAISE(Operand right, Unary());
      if (op == "*") {
        left = Operand{cp::call("multiply", {left.expr, right.expr}), nullptr,
                       std::nullopt, false};
      } else {
        // True division, whatever the operand types.
        auto f = [](const cp::Expression& e) {
          return cp::call("cast", {e}, cp::CastOptions::Safe(arrow::float64()));
        };
        left = Operand{cp::call("divide", {f(left.expr), f(right.expr)}), nullptr,
                       std::nullopt, false};
      }
    }
    return left;
  }

  arrow::Result<Operand> Unary() {
    if (Peek().kind == Tok::kOp && Peek().text == "-") {
      ++i_;
      if (Peek().kind == Tok::kNumber) {
        auto t = Next();
        return Number("-" + t.text, t.pos);
      }
      ARROW_ASSIGN_OR_RAISE(Operand inner, Unary());
      return Operand{cp::call("negate", {inner.expr}), nullptr, std::nullopt, false};
    }
    if (Peek().kind == Tok::kLParen) {
      ++i_;
      ARROW_ASSIGN_OR_RAISE(Operand inner, Sum());
      if (Peek().kind != Tok::kRParen) return Error("expected ')'");
      ++i_;
      return inner;
    }
    return Atom();
  }

  arrow::Result<Operand> Number(const std::string& text, std::size_t pos) const {
    bool is_float = text.find_first_of(".eE") != std::string::npos;
    if (!is_float) {
      int64_t v = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec == std::errc() && p == text.data() + text.size()) {
        return Operand{cp::literal(v), nullptr, std::nullopt, true};
      }
    }
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) {
      return arrow::Status::Invalid("where: bad number '", text, "' at ", pos);
    }
    return Operand{cp::literal(d), nullptr, std::nullopt, true};
  }

  arrow::Result<Operand> Atom() {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kNumber: {
        ++i_;
        return Number(t.text, t.pos);
      }
      case Tok::kString: {
        ++i_;
        return Operand{cp::literal(t.text), nullptr, t.text, true};
      }
      case Tok::kOp:
        if (t.text == "-") return Unary();
        break;
      case Tok::kIdent: {
        std::string lower = Lower(t.text);
        if (lower == "true" || lower == "false") {
          ++i_;
          return Operand{cp::literal(lower == "true"), nullptr, std::nullopt, true};
        }
        if (IsKeyword(lower)) break;
        auto field = schema_.GetFieldByName(t.text);
        if (!field) {
          std::string names;
          for (const auto& f : schema_.fields()) {
            names += (names.empty() ? "" : ", ") + f->name();
          }
          return arrow::Status::Invalid("where: unknown column '", t.text, "' at ", t.pos,
                                        " (columns: ", names, ")");
        }
        ++i_;
        auto type = field->type();
        if (type->id() == arrow::Type::DICTIONARY) {
          type = std::static_pointer_cast<arrow::DictionaryType>(type)->value_type();
        }
        return Operand{cp::field_ref(t.text), type, std::nullopt, false};
      }
      default:
        break;
    }
    return Error("expected a column, number or string");
  }

  std::vector<Token> toks_;
  const arrow::Schema& schema_;
  std::size_t i_ = 0;
};

void CollectFields(const cp::Expression& e, std::set<std::string>* out) {
  if (auto* ref = e.field_ref()) {
    if (ref->name()) out->insert(*ref->name());
    return;
  }
  if (auto* call = e.call()) {
    for (const auto& a : call->arguments) CollectFields(a, out);
  }
}

}  // namespace

arrow::Result<cp::Expression> ParseWhere(std::string_view text,
                                         const arrow::Schema& schema) {
  // Binding needs the compute function registry (idempotent; pyarrow and the CLI do it
  // too, but a library caller may not have).
  static const arrow::Status init = arrow::compute::Initialize();
  ARROW_RETURN_NOT_OK(init);
  ARROW_ASSIGN_OR_RAISE(auto toks, Lex(text));
  if (toks.size() == 1) return arrow::Status::Invalid("where: empty expression");
  Parser p(std::move(toks), schema);
  ARROW_ASSIGN_OR_RAISE(auto expr, p.Parse());
  // Type-check now, so a bad expression fails before any file is read.
  auto bound = expr.Bind(schema);
  if (!bound.ok()) {
    return arrow::Status::Invalid("where: ", bound.status().message());
  }
  if (!bound->type()->Equals(*arrow::boolean())) {
    return arrow::Status::Invalid("where: the expression is ", bound->type()->ToString(),
                                  ", not a condition");
  }
  return expr;
}

std::vector<std::string> ReferencedColumns(const cp::Expression& expr) {
  std::set<std::string> s;
  CollectFields(expr, &s);
  return {s.begin(), s.end()};
}

}  // namespace qlake::query
