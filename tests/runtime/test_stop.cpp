// Stop strings across token boundaries: held back while they might still match, never emitted.
#include "runtime/generate.hpp"
#include "test_util.hpp"

namespace wkv {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces, bool* stopped) {
  std::string out;
  for (const auto& p : pieces) {
    out += m.push(p, stopped);
    if (*stopped) return out;
  }
  return out + m.flush();
}

TEST(StopMatcher, StopSplitAcrossPiecesIsNotEmitted) {
  StopMatcher m({"\n\n"});
  bool stopped = false;
  EXPECT_EQ(feed(m, {"Hello", "\n", "\nUser:"}, &stopped), "Hello");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcher, PartialMatchThatFailsIsEmittedInFull) {
  StopMatcher m({"STOP"});
  bool stopped = false;
  EXPECT_EQ(m.push("abcST", &stopped), "abc");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.push("Xyz", &stopped), "STXyz");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"world", "lo"});
  bool stopped = false;
  EXPECT_EQ(feed(m, {"hello world"}, &stopped), "hel");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcher, NoStopsPassesEverything) {
  StopMatcher m({});
  bool stopped = false;
  EXPECT_EQ(feed(m, {"a", "b"}, &stopped), "ab");
  EXPECT_FALSE(stopped);
}

}  // namespace
}  // namespace wkv
