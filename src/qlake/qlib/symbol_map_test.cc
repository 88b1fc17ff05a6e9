#include "qlake/qlib/symbol_map.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace qlake::qlib {
namespace {

TEST(SymbolMap, DocumentedExamples) {
  struct Case {
    const char* ticker;
    const char* code;
    const char* dir;
  };
  for (const auto& c :
       {Case{"AAPL", "AAPL", "aapl"}, Case{"BRK.B", "BRK-B", "brk-b"},
        Case{"JPMpC", "JPM_PC", "jpm_pc"}, Case{"BRACr", "BRAC_R", "brac_r"},
        Case{"BRACR", "BRACR", "bracr"}, Case{"NA", "NA_", "na_"},
        Case{"NULL", "NULL_", "null_"}, Case{"NAN", "NAN", "nan"},
        Case{"CON", "CON", "_qlib_con"}, Case{"LPT1", "LPT1", "_qlib_lpt1"},
        Case{"COM1", "COM1", "_qlib_com1"}, Case{"NUL", "NUL", "_qlib_nul"},
        Case{"A/B", "A__2FB", "a__2fb"}, Case{"X-Y", "X__2DY", "x__2dy"},
        Case{"a_b", "_A__5F_B", "_a__5f_b"}, Case{"N/A", "N__2FA", "n__2fa"},
        Case{"CON.A", "CON-A", "con-a"}, Case{"ACAH.U", "ACAH-U", "acah-u"}}) {
    auto code = TickerToCode(c.ticker);
    ASSERT_TRUE(code.ok()) << c.ticker;
    EXPECT_EQ(*code, c.code) << c.ticker;
    EXPECT_EQ(CodeToDir(*code), c.dir) << c.ticker;
    auto back = CodeToTicker(*code);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, c.ticker);
  }
}

TEST(SymbolMap, RoundTripsEveryByteAndNeverCollides) {
  std::set<std::string> dirs;
  int n = 0;
  for (int a = 1; a < 256; ++a) {
    for (const char* tail : {"", "A", "a", ".", "_"}) {
      std::string t = std::string(1, static_cast<char>(a)) + tail;
      auto code = TickerToCode(t);
      ASSERT_TRUE(code.ok());
      for (char ch : *code) {
        ASSERT_TRUE((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                    ch == '_')
            << *code;
      }
      auto back = CodeToTicker(*code);
      ASSERT_TRUE(back.ok()) << *code;
      EXPECT_EQ(*back, t);
      dirs.insert(CodeToDir(*code));
      ++n;
    }
  }
  EXPECT_EQ(static_cast<int>(dirs.size()), n);  // lowercased directories stay distinct
}

TEST(SymbolMap, RejectsMalformedCodes) {
  for (const char* bad : {"", "aapl", "A_", "A__2", "A__ZZ", "A_1", "NA", "NULL", "__41",
                          "AB_", "A.B", "A B"}) {
    EXPECT_FALSE(CodeToTicker(bad).ok()) << bad;
  }
  EXPECT_FALSE(TickerToCode("").ok());
  EXPECT_FALSE(TickerToCode(std::string(65, 'A')).ok());
}

TEST(SymbolMap, FieldNames) {
  EXPECT_TRUE(ValidateFieldName("transactions").ok());
  EXPECT_TRUE(ValidateFieldName("ret_1d").ok());
  for (const char* bad : {"", "Close", "1x", "a-b", "a.b", "$close"}) {
    EXPECT_FALSE(ValidateFieldName(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace qlake::qlib
