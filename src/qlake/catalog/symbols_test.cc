#include "qlake/catalog/symbols.h"

#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qlake::catalog {
namespace {

using ::testing::HasSubstr;

TEST(OccTest, ParsesTheDocumentedExample) {
  auto c = ParseOcc("O:SPY230327P00390000");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "SPY");
  EXPECT_EQ(FormatDate(c->expiration), "2023-03-27");
  EXPECT_EQ(c->type, 'P');
  EXPECT_EQ(c->strike_milli, 390000);
  EXPECT_DOUBLE_EQ(c->strike(), 390.0);
}

TEST(OccTest, RootsWithDigitsAndWithPOrCParseFromTheRight) {
  auto pcg = ParseOcc("O:PCG250117C00012500");
  ASSERT_TRUE(pcg.ok()) << pcg.status();
  EXPECT_EQ(pcg->root, "PCG");
  EXPECT_EQ(pcg->type, 'C');
  EXPECT_EQ(pcg->strike_milli, 12500);  // 12.5, exact
  auto adj = ParseOcc("O:AAPL1250620P00187500");
  ASSERT_TRUE(adj.ok()) << adj.status();
  EXPECT_EQ(adj->root, "AAPL1");
  EXPECT_EQ(FormatDate(adj->expiration), "2025-06-20");
  auto one = ParseOcc("O:F250117C00012000");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->root, "F");
  // Fractional strikes that are not representable in binary stay exact in milli units.
  auto frac = ParseOcc("O:SPXW251219C06012345");
  ASSERT_TRUE(frac.ok());
  EXPECT_EQ(frac->strike_milli, 6012345);
}

TEST(OccTest, RejectsMalformedSymbolsWithTheReason) {
  struct Case {
    const char* ticker;
    const char* why;
  } cases[] = {
      {"SPY230327P00390000", "no O: prefix"},
      {"O:230327P00390000", "too short"},
      {"O:SPY230327X00390000", "type is not C or P"},
      {"O:SPY231327P00390000", "not a real date"},
      {"O:SPY230230P00390000", "not a real date"},
      {"O:SPY2303A7P00390000", "expiry is not YYMMDD"},
      {"O:SPY230327P0039000A", "strike is not 8 digits"},
      {"O:SPY230327P00000000", "strike is zero"},
      {"O:spy230327P00390000", "root must be A-Z"},
      {"O:TOOLONGROOT230327P00390000", "longer than 6"},
      {"O:1SPY230327P00390000", "start with a letter"},
      {"", "no O: prefix"},
  };
  for (const auto& c : cases) {
    auto r = ParseOcc(c.ticker);
    ASSERT_FALSE(r.ok()) << c.ticker;
    EXPECT_THAT(r.status().message(), HasSubstr(c.why)) << c.ticker;
  }
}

TEST(PathComponentTest, EscapesEverythingDangerousAndRoundTrips) {
  const char* tickers[] = {"AAPL", "BRK.B", "CON",  "con",     "PRN",   "NUL",
                           "AUX",  "COM1",  "LPT9", "NA",      "../x",  "..",
                           ".",    "A/B",   "A\\B", "BACpB",   "BACPB", "X:Y",
                           "a b",  "TAB\t", "%41",  "CONSOLE", "COM10"};
  std::set<std::string> seen_lower;
  for (const char* t : tickers) {
    auto e = EscapePathComponent(t);
    ASSERT_TRUE(e.ok()) << t;
    for (char c : *e) {
      EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '%')
          << t << " -> " << *e;
    }
    EXPECT_NE(*e, ".");
    EXPECT_NE(*e, "..");
    auto back = UnescapePathComponent(*e);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, t);
    // No two tickers may collide on a case-insensitive file system.
    std::string lower = *e;
    for (auto& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_TRUE(seen_lower.insert(lower).second) << t << " collides as " << lower;
  }
  EXPECT_EQ(*EscapePathComponent("CON"), "%43ON");
  EXPECT_EQ(*EscapePathComponent("BRK.B"), "BRK%2EB");
  EXPECT_EQ(*EscapePathComponent("CONSOLE"), "CONSOLE");
  EXPECT_EQ(*EscapePathComponent("COM10"), "COM10");
}

TEST(PathComponentTest, RejectsEmptyAndMalformed) {
  EXPECT_FALSE(EscapePathComponent("").ok());
  EXPECT_FALSE(UnescapePathComponent("AB%4").ok());
  EXPECT_FALSE(UnescapePathComponent("AB%ZZ").ok());
  EXPECT_FALSE(UnescapePathComponent("").ok());
}

}  // namespace
}  // namespace qlake::catalog
