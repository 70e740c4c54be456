// Progress of long work on stderr: on a terminal one line redrawn in place (a bar, the figures
// and the ETA); otherwise plain lines, as a log wants them.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace wkv::cli {

// "[#########...........]  45%" for a fraction in [0, 1] (clamped), `width` cells.
inline std::string progress_bar(double frac, int width = 24) {
  if (!(frac >= 0)) frac = 0;  // NaN too
  if (frac > 1) frac = 1;
  const int full = int(frac * width + 1e-9);
  std::string s = "[";
  s.append(size_t(full), '#');
  s.append(size_t(width - full), '.');
  char pct[16];
  std::snprintf(pct, sizeof pct, "] %3d%%", int(frac * 100 + 1e-9));
  return s + pct;
}

class Progress {
 public:
  Progress() : tty_(isatty(STDERR_FILENO) == 1) {}
  bool tty() const { return tty_; }
  // Redraws the bar line (terminal only).
  void update(double frac, const std::string& text) {
    if (!tty_) return;
    std::fprintf(stderr, "\r%s  %s\x1b[K", progress_bar(frac).c_str(), text.c_str());
    std::fflush(stderr);
    open_ = true;
  }
  // A line that stays (above the bar on a terminal).
  void line(const std::string& text) {
    if (open_) std::fputs("\r\x1b[K", stderr);
    std::fprintf(stderr, "%s\n", text.c_str());
    open_ = false;
  }
  // Ends the bar line so what follows starts on its own line.
  void finish() {
    if (open_) std::fputc('\n', stderr);
    open_ = false;
  }

 private:
  bool tty_;
  bool open_ = false;
};

}  // namespace wkv::cli
