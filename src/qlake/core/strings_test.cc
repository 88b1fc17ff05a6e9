#include "qlake/core/strings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qlake {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SplitCommaListTest, TrimsBlanksAndDropsEmptyItems) {
  EXPECT_THAT(SplitCommaList("AAPL,MSFT"), ElementsAre("AAPL", "MSFT"));
  EXPECT_THAT(SplitCommaList(" AAPL, MSFT ,,\tBRK.B\t"),
              ElementsAre("AAPL", "MSFT", "BRK.B"));
  EXPECT_THAT(SplitCommaList("one"), ElementsAre("one"));
  EXPECT_THAT(SplitCommaList(""), IsEmpty());
  EXPECT_THAT(SplitCommaList(" , ,"), IsEmpty());
  EXPECT_THAT(SplitCommaList(",a,"), ElementsAre("a"));
  // Inner blanks belong to the item.
  EXPECT_THAT(SplitCommaList("a b, c"), ElementsAre("a b", "c"));
}

}  // namespace
}  // namespace qlake
