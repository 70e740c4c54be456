// The loss-curve SVG: points land where the axes say, validation rows are drawn as their own
// series, resumed runs' repeated steps keep the later row, and bad CSV is an error naming the
// line.
#include <gtest/gtest.h>

#include <sstream>

#include "train/plot.hpp"

namespace wkv::train {
namespace {

// The (x, y) pairs of the polyline with the given class.
std::vector<std::pair<double, double>> polyline(const std::string& svg, const std::string& cls) {
  const std::string key = "<polyline class=\"" + cls + "\"";
  const size_t at = svg.find(key);
  if (at == std::string::npos) return {};
  const size_t p = svg.find("points=\"", at) + 8, e = svg.find('"', p);
  std::istringstream in(svg.substr(p, e - p));
  std::vector<std::pair<double, double>> out;
  std::string pt;
  while (in >> pt) {
    const size_t c = pt.find(',');
    out.emplace_back(std::stod(pt.substr(0, c)), std::stod(pt.substr(c + 1)));
  }
  return out;
}

TEST(LossCurve, DrawsTrainingAndValidationSeriesInOrder) {
  const std::string csv =
      "step,tokens,loss,val_loss,lr,tokens_per_s,elapsed_s\n"
      "0,0,,5.5,0,0,0\n"
      "1,100,5.0,,0.001,10,1\n"
      "2,200,4.0,,0.001,10,2\n"
      "3,300,3.0,3.2,0.001,10,3\n";
  auto svg = loss_curve_from_csv(csv, "log.csv", "run <1>");
  ASSERT_TRUE(svg) << svg.error().message;
  EXPECT_EQ(svg->rfind("<svg", 0), 0u);
  EXPECT_NE(svg->find("run &lt;1&gt;"), std::string::npos);  // the title is escaped
  const auto tr = polyline(*svg, "train"), va = polyline(*svg, "val");
  ASSERT_EQ(tr.size(), 3u);
  ASSERT_EQ(va.size(), 2u);
  // More tokens further right; lower loss lower on the page (larger y).
  EXPECT_LT(tr[0].first, tr[1].first);
  EXPECT_LT(tr[0].second, tr[1].second);
  EXPECT_LT(tr[1].second, tr[2].second);
  EXPECT_LT(va[0].first, tr[0].first);    // validation at 0 tokens is the leftmost point
  EXPECT_LT(va[0].second, tr[2].second);  // 5.5 is above 3.0
  EXPECT_NEAR(va[1].first, tr[2].first, 1e-9);
}

TEST(LossCurve, AResumedRunsRepeatedStepKeepsTheLaterRow) {
  const std::string csv =
      "step,tokens,loss,val_loss,lr,tokens_per_s,elapsed_s\n"
      "1,10,4.0,,0,0,0\n"
      "2,20,3.0,,0,0,0\n"
      "2,20,2.0,,0,0,0\n"
      "3,30,1.0,,0,0,0\n";
  auto svg = loss_curve_from_csv(csv, "log.csv", "t");
  ASSERT_TRUE(svg);
  const auto tr = polyline(*svg, "train");
  ASSERT_EQ(tr.size(), 3u);
  // 4.0 -> 2.0 -> 1.0: the first drop is twice the second (with the earlier 3.0 it would be half).
  EXPECT_NEAR((tr[1].second - tr[0].second) / (tr[2].second - tr[1].second), 2.0, 0.01);
}

TEST(LossCurve, BadCsvIsAnErrorNamingTheLine) {
  auto a = loss_curve_from_csv("a,b\n1,2\n", "x.csv", "t");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("x.csv: line 1"), std::string::npos);
  auto b = loss_curve_from_csv("step,tokens,loss,val_loss\n1,10,abc,\n", "x.csv", "t");
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("line 2"), std::string::npos);
  auto c = loss_curve_from_csv("step,tokens,loss,val_loss\n1,10\n", "x.csv", "t");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("too few columns"), std::string::npos);
  auto d = loss_curve_from_csv("step,tokens,loss,val_loss\n", "x.csv", "t");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("no loss values"), std::string::npos);
}

}  // namespace
}  // namespace wkv::train
