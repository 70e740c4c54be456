#include "core/file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace wkv {

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

Expected<std::shared_ptr<const MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{path + ": cannot open: " + errno_text()};
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    std::string e = errno_text();
    ::close(fd);
    return Error{path + ": cannot stat: " + e};
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{path + ": not a regular file"};
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      std::string e = errno_text();
      ::close(fd);
      return Error{path + ": cannot map: " + e};
    }
    f->data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);
  return std::shared_ptr<const MappedFile>(std::move(f));
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<std::byte*>(data_), size_);
}

Status write_file_atomic(const std::string& path,
                         const std::function<bool(const ByteSink&)>& write) {
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0) return Error{path + ": cannot create temporary file: " + errno_text()};
  bool io_ok = true;
  std::string io_err;
  // Crash testing: WKV_FAULT_KILL_IN_WRITE=SUFFIX kills the process (SIGKILL, nothing cleaned
  // up) once the first bytes of a file whose path ends in SUFFIX are written, so tests can check
  // that a crash mid-write leaves the previous file intact.
  const char* fault = std::getenv("WKV_FAULT_KILL_IN_WRITE");
  const bool kill_in_write = fault && *fault && path.ends_with(fault);
  ByteSink sink = [&](const void* data, size_t n) {
    if (kill_in_write && n > 0) {
      if (::write(fd, data, (n + 1) / 2) >= 0) fsync(fd);
      ::kill(::getpid(), SIGKILL);
    }
    const char* p = static_cast<const char*>(data);
    while (n > 0 && io_ok) {
      ssize_t w = ::write(fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        io_ok = false;
        io_err = errno_text();
        break;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return io_ok;
  };
  bool ok = write(sink) && io_ok;
  if (ok && fsync(fd) != 0) {
    ok = false;
    io_err = errno_text();
  }
  fchmod(fd, 0644);
  ::close(fd);
  if (!ok) {
    unlink(tmp.c_str());
    return Error{path + ": write failed" + (io_err.empty() ? std::string() : ": " + io_err)};
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    std::string e = errno_text();
    unlink(tmp.c_str());
    return Error{path + ": cannot rename temporary file into place: " + e};
  }
  return Status::success();
}

Expected<std::string> read_text_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open: " + errno_text()};
  in.seekg(0, std::ios::end);
  auto sz = in.tellg();
  if (sz < 0) return Error{path + ": cannot read size"};
  if (static_cast<size_t>(sz) > max_bytes)
    return Error{path + ": file too large (" + std::to_string(static_cast<long long>(sz)) +
                 " bytes, limit " + std::to_string(max_bytes) + ")"};
  in.seekg(0);
  std::string s(static_cast<size_t>(sz), '\0');
  in.read(s.data(), sz);
  if (!in) return Error{path + ": read failed"};
  return s;
}

}  // namespace wkv
