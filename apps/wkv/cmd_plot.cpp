// wkv plot: draws the loss curve of a training log (train_log.csv) as an SVG. `wkv train` writes
// DIR/loss.svg itself at every checkpoint; this redraws it, e.g. for a log from another machine.
#include <cstdio>

#include "cli.hpp"
#include "core/file.hpp"
#include "train/plot.hpp"

namespace wkv::cli {

int cmd_plot(int argc, char** argv) {
  CLI::App app{"Draw the loss curve of a `wkv train` log as an SVG chart.", "wkv plot"};
  std::string log, out, title = "wkv train";
  app.add_option("--log", log, "train_log.csv written by `wkv train`")->required();
  app.add_option("-o,--output", out, "output .svg file")->required();
  app.add_option("--title", title, "chart title");
  return run(app, argc, argv, [&] {
    auto csv = read_text_file(log, size_t(1) << 30);
    if (!csv) return fail(csv.error());
    auto svg = train::loss_curve_from_csv(*csv, log, title);
    if (!svg) return fail(svg.error());
    Status s = write_file_atomic(
        out, [&](const ByteSink& sink) { return sink(svg->data(), svg->size()); });
    if (!s) return fail(s.error());
    return 0;
  });
}

WKV_COMMAND("plot", "draw a training log's loss curve as an SVG", cmd_plot);

}  // namespace wkv::cli
