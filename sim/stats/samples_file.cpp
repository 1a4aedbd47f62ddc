#include "sim/stats/samples_file.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string_view>

#include "sim/config/error.hpp"
#include "sim/config/files.hpp"

namespace tailsim {

namespace {

// A header line: no field of it starts like a number (a digit, or a sign or point before one), as a column
// name such as "seconds" or "step_time_s" does; "1.5x" or "0..5" is a typo, not a header.
bool looks_like_header(std::string_view line) {
  bool in_field = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ',' || c == ';' || c == ' ' || c == '\t') {
      in_field = false;
      continue;
    }
    if (in_field) continue;
    in_field = true;
    const auto digit = [](char d) { return d >= '0' && d <= '9'; };
    if (digit(c)) return false;
    if ((c == '+' || c == '-' || c == '.') && i + 1 < line.size() && (digit(line[i + 1]) || line[i + 1] == '.'))
      return false;
  }
  return true;
}

}  // namespace

std::string samples_path(const JsonReader& node, const std::string& file_key) {
  std::filesystem::path path(node.string(file_key));
  if (path.is_relative() && !node.file().empty())
    path = std::filesystem::path(node.file()).parent_path() / path;
  return path.string();
}

std::vector<double> read_samples_file(const JsonReader& node, const std::string& file_key) {
  const JsonReader at = node.child(file_key);
  const std::filesystem::path path(samples_path(node, file_key));
  std::string text;
  try {
    text = read_text_file(path.string(), "samples file");
  } catch (const InputError& e) {
    at.fail(e.message() + ": " + quote_input(path.string()));
  }
  // A UTF-8 byte order mark (some editors and spreadsheets write one) is no part of the first value.
  if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);
  std::istringstream in(text);
  std::vector<double> out;
  std::string line;
  bool first_entry = true;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const std::string field = line.substr(first, line.find_last_not_of(" \t\r") + 1 - first);
    const bool header_allowed = first_entry;
    first_entry = false;
    // The whole line is one plain number: "2.5 ms" or "1,5" is refused, never read as 2.5 or 1.
    double v = 0;
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
    if (ec != std::errc() || end != field.data() + field.size()) {
      if (header_allowed && looks_like_header(field)) continue;
      at.fail(path.string() + " line " + std::to_string(line_no) + ": expected a number, got " + quote_input(field) +
              " (one plain number per line, in seconds or as a factor: no units, no decimal comma)");
    }
    if (!std::isfinite(v) || v < 0)
      at.fail(path.string() + " line " + std::to_string(line_no) + ": expected a finite number >= 0, got " +
              quote_input(field));
    out.push_back(v);
  }
  if (out.empty()) at.fail("samples file " + quote_input(path.string()) + " holds no numbers");
  return out;
}

}  // namespace tailsim
