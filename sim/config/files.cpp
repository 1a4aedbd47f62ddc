#include "sim/config/files.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
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

void InputFiles::add(const std::string& path, const std::string& content) {
  for (const File& f : files_)
    if (f.path == path) return;  // read again by another sweep point: the first read is what counts
  files_.push_back({path, fnv1a64(content)});
}

std::string read_text_file(const std::string& file, const std::string& what) {
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

void write_atomically(const std::string& path, const std::string& content) {
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp" + std::to_string(::getpid()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw InputError("", path, "cannot write (permission denied or no such folder)");
    f << content;
    f.flush();
    if (!f) {
      fs::remove(tmp);
      throw InputError("", path, "cannot write (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp);
    throw InputError("", path, "cannot write: " + ec.message());
  }
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
