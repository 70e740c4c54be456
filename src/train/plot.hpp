// The loss curve of a training run as a self-contained SVG line chart (no plotting library: a
// chart of two series is a few dozen lines of SVG), drawn from the run's train_log.csv.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"

namespace wkv::train {

struct CurvePoint {
  double x = 0, y = 0;
};

// Training loss (a line) and validation loss (a line with dots) against tokens seen, with
// labelled axes and a legend. Either series may be empty; both empty is an error.
Expected<std::string> loss_curve_svg(const std::vector<CurvePoint>& train,
                                     const std::vector<CurvePoint>& val, const std::string& title);

// The chart of a train_log.csv (columns step,tokens,loss,val_loss,...: empty cells skipped;
// a resumed run's repeated steps keep the later row). Errors name `where` and the line.
Expected<std::string> loss_curve_from_csv(const std::string& csv, const std::string& where,
                                          const std::string& title);

// Reads DIR/train_log.csv and writes DIR/loss.svg atomically.
Status write_loss_curve(const std::string& dir, const std::string& title);

}  // namespace wkv::train
