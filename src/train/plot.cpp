// Loss-curve SVG (see plot.hpp).
#include "train/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "core/file.hpp"

namespace wkv::train {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string label(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a >= 1e9)
    std::snprintf(buf, sizeof buf, "%gG", v / 1e9);
  else if (a >= 1e6)
    std::snprintf(buf, sizeof buf, "%gM", v / 1e6);
  else if (a >= 1e4)
    std::snprintf(buf, sizeof buf, "%gk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Tick positions: 1, 2 or 5 times a power of ten, about `want` of them over [lo, hi].
std::vector<double> ticks(double lo, double hi, int want) {
  const double span = hi - lo;
  const double raw = span / want, p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = p;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else
      o += c;
  }
  return o;
}

}  // namespace

Expected<std::string> loss_curve_svg(const std::vector<CurvePoint>& train,
                                     const std::vector<CurvePoint>& val, const std::string& title) {
  if (train.empty() && val.empty()) return Error{"no loss values to plot"};
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto* s : {&train, &val})
    for (const CurvePoint& p : *s) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
      x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
      y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
    }
  if (!std::isfinite(x0)) return Error{"no finite loss values to plot"};
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  const double pad = (y1 - y0) * 0.05;
  y0 = std::max(0.0, y0 - pad), y1 += pad;
  const double W = 800, H = 480, L = 70, R = 20, T = 40, B = 50;
  auto sx = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto sy = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << ' ' << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
    << escape(title) << "</text>\n";
  for (double t : ticks(y0, y1, 6)) {
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << num(sy(t)) << "\" y2=\""
      << num(sy(t)) << "\" stroke=\"#e4e4e4\"/>\n"
      << "<text x=\"" << L - 6 << "\" y=\"" << num(sy(t) + 4) << "\" text-anchor=\"end\">"
      << label(t) << "</text>\n";
  }
  for (double t : ticks(x0, x1, 8))
    o << "<text x=\"" << num(sx(t)) << "\" y=\"" << H - B + 18 << "\" text-anchor=\"middle\">"
      << label(t) << "</text>\n";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\""
    << H - T - B << "\" fill=\"none\" stroke=\"#444\"/>\n"
    << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 12
    << "\" text-anchor=\"middle\">tokens</text>\n"
    << "<text transform=\"translate(18 " << (T + H - B) / 2
    << ") rotate(-90)\" text-anchor=\"middle\">loss (nats/token)</text>\n";
  auto series = [&](const std::vector<CurvePoint>& s, const char* color, const char* cls,
                    bool dots) {
    if (s.empty()) return;
    o << "<polyline class=\"" << cls << "\" fill=\"none\" stroke=\"" << color
      << "\" stroke-width=\"1.5\" points=\"";
    for (const CurvePoint& p : s)
      if (std::isfinite(p.y)) o << num(sx(p.x)) << ',' << num(sy(p.y)) << ' ';
    o << "\"/>\n";
    if (dots)
      for (const CurvePoint& p : s)
        if (std::isfinite(p.y))
          o << "<circle cx=\"" << num(sx(p.x)) << "\" cy=\"" << num(sy(p.y)) << "\" r=\"3\" fill=\""
            << color << "\"/>\n";
  };
  series(train, "#1f77b4", "train", false);
  series(val, "#d62728", "val", true);
  const double lx = W - R - 150, ly = T + 16;
  o << "<line x1=\"" << lx << "\" x2=\"" << lx + 24 << "\" y1=\"" << ly << "\" y2=\"" << ly
    << "\" stroke=\"#1f77b4\" stroke-width=\"2\"/><text x=\"" << lx + 30 << "\" y=\"" << ly + 4
    << "\">training loss</text>\n"
    << "<line x1=\"" << lx << "\" x2=\"" << lx + 24 << "\" y1=\"" << ly + 18 << "\" y2=\""
    << ly + 18 << "\" stroke=\"#d62728\" stroke-width=\"2\"/><text x=\"" << lx + 30 << "\" y=\""
    << ly + 22 << "\">validation loss</text>\n"
    << "</svg>\n";
  return o.str();
}

Expected<std::string> loss_curve_from_csv(const std::string& csv, const std::string& where,
                                          const std::string& title) {
  std::istringstream in(csv);
  std::string line;
  size_t lineno = 0;
  std::map<long long, std::pair<double, double>> rows;  // step -> (train, val); NaN if empty
  int c_step = -1, c_tokens = -1, c_loss = -1, c_val = -1;
  std::map<long long, double> tokens;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> f(1);
    for (char c : line) {
      if (c == ',')
        f.emplace_back();
      else
        f.back().push_back(c);
    }
    if (lineno == 1) {
      for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] == "step") c_step = int(i);
        if (f[i] == "tokens") c_tokens = int(i);
        if (f[i] == "loss") c_loss = int(i);
        if (f[i] == "val_loss") c_val = int(i);
      }
      if (c_step < 0 || c_tokens < 0 || c_loss < 0 || c_val < 0)
        return Error{where + ": line 1: expected the columns step, tokens, loss and val_loss"};
      continue;
    }
    if (line.empty()) continue;
    const int need = std::max(std::max(c_step, c_tokens), std::max(c_loss, c_val));
    if (int(f.size()) <= need)
      return Error{where + ": line " + std::to_string(lineno) + ": too few columns"};
    auto value = [&](int c, double& out) -> bool {
      if (f[size_t(c)].empty()) {
        out = NAN;
        return true;
      }
      char* end = nullptr;
      out = std::strtod(f[size_t(c)].c_str(), &end);
      return end && *end == '\0';
    };
    double step = 0, tok = 0, loss = 0, val = 0;
    if (!value(c_step, step) || !value(c_tokens, tok) || !value(c_loss, loss) ||
        !value(c_val, val) || !std::isfinite(step) || !std::isfinite(tok))
      return Error{where + ": line " + std::to_string(lineno) + ": not a number"};
    rows[(long long)step] = {loss, val};
    tokens[(long long)step] = tok;
  }
  std::vector<CurvePoint> tr, va;
  for (const auto& [step, lv] : rows) {
    if (std::isfinite(lv.first)) tr.push_back({tokens[step], lv.first});
    if (std::isfinite(lv.second)) va.push_back({tokens[step], lv.second});
  }
  auto svg = loss_curve_svg(tr, va, title);
  if (!svg) return Error{where + ": " + svg.error().message};
  return svg;
}

Status write_loss_curve(const std::string& dir, const std::string& title) {
  const std::string csv_path = dir + "/train_log.csv";
  auto csv = read_text_file(csv_path, size_t(1) << 30);
  if (!csv) return csv.error();
  auto svg = loss_curve_from_csv(*csv, csv_path, title);
  if (!svg) return svg.error();
  return write_file_atomic(dir + "/loss.svg",
                           [&](const ByteSink& sink) { return sink(svg->data(), svg->size()); });
}

}  // namespace wkv::train
