// wkv chat: a terminal chat (G1/World format) on one recurrent state, replies streamed.
// On a terminal: a small built-in line editor (arrows, Home/End, Backspace/Delete, history with
// Up/Down) — written here rather than linking GNU readline (GPL) or libedit, because those
// few keys are all a chat needs. Piped: one user turn per line of standard input.
// Commands: /reset, /save FILE, /load FILE, /retry, /help, /quit.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "default_model.hpp"
#include "formats/formats.hpp"
#include "runtime/chat_session.hpp"

namespace wkv::cli {
namespace {

// Reads one line with editing on a terminal. Returns false at end of input (Ctrl-D on an empty
// line). Ctrl-C clears the line.
class LineEditor {
 public:
  bool read(const std::string& prompt, std::string& out) {
    termios old{};
    tcgetattr(STDIN_FILENO, &old);
    termios raw = old;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG);
    raw.c_iflag &= ~static_cast<tcflag_t>(IXON | ICRNL);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
    std::string line;
    size_t cur = 0;
    size_t hist = history_.size();
    std::string saved;
    bool ok = true;
    auto chars_after = [&](size_t from) {
      size_t n = 0;
      for (size_t i = from; i < line.size(); ++i)
        if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80) ++n;
      return n;
    };
    auto redraw = [&] {
      std::string s = "\r\x1b[K" + prompt + line;
      size_t back = chars_after(cur);
      if (back) s += "\x1b[" + std::to_string(back) + "D";
      (void)!write(STDOUT_FILENO, s.data(), s.size());
    };
    auto prev_char = [&](size_t i) {
      do --i;
      while (i > 0 && (static_cast<unsigned char>(line[i]) & 0xC0) == 0x80);
      return i;
    };
    auto next_char = [&](size_t i) {
      do ++i;
      while (i < line.size() && (static_cast<unsigned char>(line[i]) & 0xC0) == 0x80);
      return i;
    };
    redraw();
    while (true) {
      char c;
      if (::read(STDIN_FILENO, &c, 1) != 1) {
        ok = false;
        break;
      }
      if (c == '\r' || c == '\n') break;
      if (c == 4) {  // Ctrl-D
        if (line.empty()) {
          ok = false;
          break;
        }
        if (cur < line.size()) line.erase(cur, next_char(cur) - cur);
      } else if (c == 3) {  // Ctrl-C
        line.clear();
        cur = 0;
      } else if (c == 127 || c == 8) {
        if (cur > 0) {
          size_t p = prev_char(cur);
          line.erase(p, cur - p);
          cur = p;
        }
      } else if (c == 1) {
        cur = 0;
      } else if (c == 5) {
        cur = line.size();
      } else if (c == 21) {  // Ctrl-U
        line.erase(0, cur);
        cur = 0;
      } else if (c == 27) {
        char seq[3] = {0, 0, 0};
        if (::read(STDIN_FILENO, &seq[0], 1) != 1 || ::read(STDIN_FILENO, &seq[1], 1) != 1) continue;
        if (seq[0] != '[' && seq[0] != 'O') continue;
        if (seq[1] >= '0' && seq[1] <= '9') {
          if (::read(STDIN_FILENO, &seq[2], 1) != 1) continue;
          if (seq[1] == '3' && seq[2] == '~' && cur < line.size()) line.erase(cur, next_char(cur) - cur);
          if ((seq[1] == '1' || seq[1] == '7') && seq[2] == '~') cur = 0;
          if ((seq[1] == '4' || seq[1] == '8') && seq[2] == '~') cur = line.size();
        } else if (seq[1] == 'D' && cur > 0) {
          cur = prev_char(cur);
        } else if (seq[1] == 'C' && cur < line.size()) {
          cur = next_char(cur);
        } else if (seq[1] == 'H') {
          cur = 0;
        } else if (seq[1] == 'F') {
          cur = line.size();
        } else if (seq[1] == 'A' && hist > 0) {
          if (hist == history_.size()) saved = line;
          line = history_[--hist];
          cur = line.size();
        } else if (seq[1] == 'B' && hist < history_.size()) {
          ++hist;
          line = hist == history_.size() ? saved : history_[hist];
          cur = line.size();
        }
      } else if (static_cast<unsigned char>(c) >= 32 || c == '\t') {
        line.insert(cur, 1, c);
        ++cur;
      }
      redraw();
    }
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    (void)!write(STDOUT_FILENO, "\n", 1);
    if (ok && !line.empty() && (history_.empty() || history_.back() != line)) history_.push_back(line);
    out = line;
    return ok;
  }

 private:
  std::vector<std::string> history_;
};

Status save_chat(const std::string& path, const ChatSession& chat, const std::string& model) {
  return save_safetensors(path, chat.state().to_tensors(),
                          {{"format", "wkv-state"}, {"kind", "wkv-chat"},
                           {"model", model}, {"transcript", chat.transcript()}});
}

Status load_chat(const std::string& path, ChatSession& chat, const Model& net) {
  std::map<std::string, std::string> meta;
  auto t = load_safetensors(path, &meta);
  if (!t) return t.error();
  State s = net.new_state();
  WKV_TRY_STATUS(s.from_tensors(*t, path));
  chat.restore(std::move(s), meta.count("transcript") ? meta["transcript"] : "");
  return Status::success();
}

}  // namespace

int cmd_chat(int argc, char** argv) {
  CLI::App app{"Chat with a model in the terminal (RWKV World/G1 format); reads turns from "
               "standard input when piped. Commands: /reset, /save FILE, /load FILE, /retry, /quit.",
               "wkv chat"};
  std::string model;
  TokenizerOptions to;
  int n = 1000;
  // The G1 chat reference's sampling (API_DEMO_CHAT.py).
  SamplerConfig sc;
  sc.temperature = 1.0f;
  sc.top_p = 0.3f;
  sc.presence_penalty = 0.5f;
  sc.frequency_penalty = 0.5f;
  sc.penalty_decay = 0.996f;
  app.add_option("-m,--model", model, "checkpoint (.pth, .safetensors or rwkv.cpp .bin); default: the bundled model (models/)");
  to.add(app);
  AdapterOptions adapters;
  adapters.add(app);
  app.add_option("-n,--tokens", n, "longest reply in tokens")->check(CLI::Range(1, 1 << 30));
  app.add_option("--temperature", sc.temperature, "0 = greedy (default 1.0)")->check(CLI::Range(0.0f, 100.0f));
  app.add_option("--top-p", sc.top_p, "nucleus mass (default 0.3)")->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--top-k", sc.top_k, "keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  app.add_option("--presence-penalty", sc.presence_penalty, "default 0.5");
  app.add_option("--frequency-penalty", sc.frequency_penalty, "default 0.5");
  app.add_option("--penalty-decay", sc.penalty_decay, "default 0.996")->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--seed", sc.seed, "random seed");
  return run(app, argc, argv, [&] {
    if (Status s = use_default_model(model); !s) return fail(s.error());
    if (Status v = validate_sampler_config(sc); !v) {
      std::cerr << "wkv chat: error: " << v.error().message << "\n" << app.help();
      return kExitUsage;
    }
    auto m = load_model_file(model, adapters);
    if (!m) return fail(m.error());
    Model& net = **m;
    auto tok = make_model_tokenizer(to, net, model);
    if (!tok) return fail(tok.error());
    ChatSession chat(net, **tok, sc, n);
    const bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    LineEditor editor;
    if (tty)
      std::printf("wkv chat: %s. Type a message; /reset, /save FILE, /load FILE, /retry, /quit.\n",
                  model.c_str());
    auto stream = [](const std::string& t) {
      std::fwrite(t.data(), 1, t.size(), stdout);
      std::fflush(stdout);
    };
    int status = 0;
    std::string line;
    while (true) {
      if (tty) {
        if (!editor.read("User: ", line)) break;
      } else if (!std::getline(std::cin, line)) {
        break;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (line[0] == '/') {
        std::string cmd = line.substr(0, line.find(' '));
        std::string arg = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
        Status s = Status::success();
        if (cmd == "/quit" || cmd == "/exit") break;
        if (cmd == "/reset") {
          chat.reset();
          std::fprintf(stderr, "wkv chat: conversation reset\n");
        } else if (cmd == "/save" && !arg.empty()) {
          s = save_chat(arg, chat, model);
          if (s) std::fprintf(stderr, "wkv chat: saved to %s\n", arg.c_str());
        } else if (cmd == "/load" && !arg.empty()) {
          s = load_chat(arg, chat, net);
          if (s) std::fprintf(stderr, "wkv chat: loaded %s\n", arg.c_str());
        } else if (cmd == "/retry") {
          if (tty) stream("Assistant: ");
          auto r = chat.retry(stream);
          if (r) stream("\n");
          else s = r.error();
        } else if (cmd == "/help") {
          std::fprintf(stderr, "/reset  /save FILE  /load FILE  /retry  /quit\n");
        } else {
          s = Error{"unknown command " + line + " (/reset, /save FILE, /load FILE, /retry, /quit)"};
        }
        if (!s) {
          std::fprintf(stderr, "wkv: error: %s\n", s.error().message.c_str());
          status = kExitError;
        }
        continue;
      }
      if (tty) stream("Assistant: ");
      auto r = chat.say(line, stream);
      if (!r) {
        std::fprintf(stderr, "wkv: error: %s\n", r.error().message.c_str());
        status = kExitError;
        continue;
      }
      stream("\n");
    }
    return tty ? 0 : status;
  });
}

WKV_COMMAND("chat", "chat in the terminal (User:/Assistant: format), streamed replies", cmd_chat);

}  // namespace wkv::cli
