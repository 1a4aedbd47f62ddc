#include "sim/config/files.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <fcntl.h>
#include <unistd.h>

#include "sim/config/error.hpp"
#include "sim/core/hash.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {
thread_local InputFiles* t_inputs = nullptr;
}  // namespace

InputFiles::InputFiles() : outer_(t_inputs) { t_inputs = this; }
InputFiles::~InputFiles() { t_inputs = outer_; }

InputFiles* current_input_files() { return t_inputs; }

const std::string* InputFiles::content(const std::string& path) const {
  const auto found = contents_.find(path);
  return found == contents_.end() ? nullptr : &found->second;
}

void InputFiles::add(const std::string& path, const std::string& content) {
  for (const File& f : files_)
    if (f.path == path) return;  // read again by another sweep point: the first read is what counts
  files_.push_back({path, fnv1a64(content)});
  contents_.emplace(path, content);
}

std::string read_text_file(const std::string& file, const std::string& what) {
  if (t_inputs)
    if (const std::string* seen = t_inputs->content(file)) return *seen;
  std::error_code ec;
  if (fs::exists(file, ec) && !fs::is_regular_file(file, ec))
    throw InputError(file, "", "cannot read " + what + ": not a regular file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file, "", "cannot open " + what + " (does it exist and is it readable?)");
  std::ostringstream text;
  text << in.rdbuf();
  std::string content = text.str();
  if (t_inputs) t_inputs->add(file, content);
  return content;
}

namespace {

// Errors creating a file that come from the path the user gave (no such folder, no permission, a file
// where a folder should be): bad input. Any other (a full disk, an I/O error, a read-only file system)
// is an I/O error.
[[noreturn]] void throw_create_error(const std::string& path, int err) {
  if (err == ENOENT || err == ENOTDIR || err == EACCES || err == EPERM || err == EISDIR || err == ENAMETOOLONG ||
      err == ELOOP)
    throw InputError("", path, std::string("cannot write: ") + std::strerror(err));
  throw IoError(path, "cannot create", err);
}

// A temporary file beside `target` that did not exist before: created exclusively, never through a link.
// A name already taken (a stale file of a killed run, or a link someone planted) is left alone and the
// next name tried.
struct TempFile {
  std::string path;
  int fd = -1;
};

TempFile create_temp_beside(const fs::path& target, const std::string& shown) {
  static std::atomic<unsigned> counter{0};
  const std::string base = (target.parent_path() / ("." + target.filename().string() + ".tmp")).string() +
                           std::to_string(::getpid());
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string name = attempt == 0 ? base : base + "-" + std::to_string(counter++);
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) return TempFile{name, fd};
    if (errno != EEXIST) throw_create_error(shown, errno);
  }
  throw IoError(shown, "cannot create a temporary file beside it: 100 names taken");
}

void sync_folder(const fs::path& target, const std::string& shown) {
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // the rename is done; a folder that cannot be opened cannot be synced either
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL && err != EROFS) throw IoError(shown, "cannot sync its folder", err);
}

// Writes `content` into a new temporary file beside `path`, synced; the caller renames or removes it.
TempFile write_temp_beside(const std::string& path, const std::string& content) {
  TempFile t = create_temp_beside(fs::path(path), path);
  try {
    write_all(t.fd, content, path);
    if (::fsync(t.fd) != 0 && errno != EINVAL) throw IoError(path, "cannot sync", errno);
  } catch (...) {
    ::close(t.fd);
    ::unlink(t.path.c_str());
    throw;
  }
  return t;
}

void rename_into_place(const TempFile& t, const std::string& path) {
  if (::rename(t.path.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(t.path.c_str());
    if (err == EISDIR || err == ENOTDIR || err == EACCES || err == EPERM)
      throw InputError("", path, std::string("cannot write: ") + std::strerror(err));
    throw IoError(path, "cannot rename the new file into place", err);
  }
}

}  // namespace

void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(path, "cannot write", errno);
    }
    if (n == 0) throw IoError(path, "cannot write", EIO);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void write_atomically(const std::string& path, const std::string& content) {
  write_atomically_all({{path, content}});
}

void write_atomically_all(const std::vector<FileContent>& files) {
  std::vector<TempFile> temps;
  try {
    for (const FileContent& f : files) temps.push_back(write_temp_beside(f.path, f.content));
  } catch (...) {
    for (const TempFile& t : temps) {
      ::close(t.fd);
      ::unlink(t.path.c_str());
    }
    throw;
  }
  for (const TempFile& t : temps) ::close(t.fd);
  // Renames within a folder need no space: once every file is written, they do not fail for want of it.
  for (std::size_t i = 0; i < files.size(); ++i) {
    try {
      rename_into_place(temps[i], files[i].path);
    } catch (...) {
      for (std::size_t j = i + 1; j < files.size(); ++j) ::unlink(temps[j].path.c_str());
      throw;
    }
  }
  for (const FileContent& f : files) sync_folder(fs::path(f.path), f.path);
}

int write_atomically_keep_open(const std::string& path, const std::string& content) {
  TempFile t = write_temp_beside(path, content);
  try {
    rename_into_place(t, path);
    sync_folder(fs::path(path), path);
  } catch (...) {
    ::close(t.fd);
    throw;
  }
  return t.fd;
}

void prepare_output_dir(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw InputError("", flag, "cannot create output folder '" + dir + "'" + (ec ? ": " + ec.message() : ""));
  if (::access(dir.c_str(), W_OK) != 0)
    throw InputError("", flag, "output folder '" + dir + "' is not writable");
}

std::optional<std::uint64_t> available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return std::nullopt;
}

std::string_view trim_blanks(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

std::vector<std::string_view> split_csv_fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    out.push_back(trim_blanks(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

}  // namespace tailsim
