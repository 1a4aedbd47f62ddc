#include "sim/cost/profile_table.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "sim/config/configs.hpp"
#include "sim/config/files.hpp"
#include "sim/config/error.hpp"
#include "sim/config/json_reader.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

std::string line_ref(std::size_t line) { return "line " + std::to_string(line); }

}  // namespace

fs::path models_root() { return data_root("TAILSIM_MODELS_DIR", "models"); }

fs::path resolve_model_file(const std::string& name, const fs::path& base_dir, const std::string& file,
                            const std::string& path) {
  if (name.empty()) throw InputError(file, path, "expected a table file name, got an empty string");
  const fs::path p(name);
  std::vector<fs::path> tried;
  if (p.is_absolute()) {
    tried.push_back(p);
  } else {
    tried.push_back(models_root() / p);
    if (!base_dir.empty()) tried.push_back(base_dir / p);
  }
  for (const fs::path& candidate : tried)
    if (fs::is_regular_file(candidate)) return candidate;
  std::vector<std::string> names;
  for (const fs::path& candidate : tried) names.push_back(candidate.string());
  throw InputError(file, path, "no table file " + quote_input(name) + " (looked for " + join(names, " and ") + ")");
}

std::optional<std::string> ProfileTable::meta(const std::string& key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return v;
  return std::nullopt;
}

std::optional<std::int64_t> ProfileTable::meta_integer(const std::string& key) const {
  const auto v = meta(key);
  if (!v) return std::nullopt;
  std::int64_t out = 0;
  const auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size() || out < 1)
    throw InputError(this->file, "metadata '" + key + "'", "expected an integer >= 1, got " + quote_input(*v));
  return out;
}

std::optional<bool> ProfileTable::meta_bool(const std::string& key) const {
  const auto v = meta(key);
  if (!v) return std::nullopt;
  // The CUDA profiler writes "gated: true (SiLU(w1 x) * (w3 x))": the first word decides.
  const std::string word = v->substr(0, v->find_first_of(" \t("));
  if (word == "true") return true;
  if (word == "false") return false;
  throw InputError(this->file, "metadata '" + key + "'", "expected true or false, got " + quote_input(*v));
}

namespace {

std::int64_t parse_tokens_field(std::string_view text, const std::string& file, std::size_t line_no) {
  std::int64_t tokens = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), tokens);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || tokens < 1 || tokens > kMaxTableTokens)
    throw InputError(file, line_ref(line_no),
                     "column 'tokens': expected an integer from 1 to " + std::to_string(kMaxTableTokens) + ", got " +
                         quote_input(text));
  return tokens;
}

double parse_time_field(std::string_view text, const std::string& file, std::size_t line_no) {
  double time_us = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), time_us);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
    throw InputError(file, line_ref(line_no),
                     "column 'time_us': expected a number of microseconds, got " + quote_input(text));
  if (!std::isfinite(time_us))
    throw InputError(file, line_ref(line_no), "column 'time_us': expected a finite number, got " + quote_input(text));
  if (time_us <= 0)
    throw InputError(file, line_ref(line_no),
                     "column 'time_us': expected a time > 0, got " + quote_input(text) +
                         (time_us < 0 ? " (negative)" : ""));
  if (time_us > kMaxTableTime_us)
    throw InputError(file, line_ref(line_no),
                     "column 'time_us': expected at most 1e9 (1000 s), got " + quote_input(text));
  return time_us;
}

// A table read line by line: metadata, then the header, then the rows.
struct TableParser {
  explicit TableParser(const std::string& file_name) : file(file_name) { t.file = file_name; }

  ProfileTable t;
  const std::string& file;
  std::vector<std::string_view> header;
  std::size_t tokens_col = 0, time_col = 0, header_line = 0;
  std::vector<std::size_t> row_lines;  // line of each row, for the duplicate message

  void read_line(std::string_view line, std::size_t line_no) {
    if (line.empty()) return;
    if (line.front() == '#') {
      const std::string_view body = trim_blanks(line.substr(1));
      const std::size_t colon = body.find(':');
      if (colon != std::string_view::npos && header.empty())
        t.metadata.emplace_back(std::string(trim_blanks(body.substr(0, colon))), std::string(trim_blanks(body.substr(colon + 1))));
      return;
    }
    if (header.empty()) read_header(line, line_no);
    else read_row(line, line_no);
  }

  void read_header(std::string_view line, std::size_t line_no) {
    header = split_csv_fields(line);
    header_line = line_no;
    const auto find = [&](std::string_view name) -> std::size_t {
      const auto it = std::find(header.begin(), header.end(), name);
      if (it == header.end())
        throw InputError(file, line_ref(line_no),
                         "the header has no column '" + std::string(name) + "' (the header: " + quote_input(line) +
                             "; a table needs tokens and time_us)");
      return static_cast<std::size_t>(it - header.begin());
    };
    tokens_col = find("tokens");
    time_col = find("time_us");
  }

  void read_row(std::string_view line, std::size_t line_no) {
    const std::vector<std::string_view> fields = split_csv_fields(line);
    if (fields.size() != header.size())
      throw InputError(file, line_ref(line_no),
                       "expected " + std::to_string(header.size()) + " comma-separated fields (as in the header on " +
                           line_ref(header_line) + "), got " + std::to_string(fields.size()));
    const std::int64_t tokens = parse_tokens_field(fields[tokens_col], file, line_no);
    const double time_us = parse_time_field(fields[time_col], file, line_no);
    if (!t.tokens.empty() && tokens <= t.tokens.back()) {
      if (tokens == t.tokens.back())
        throw InputError(file, line_ref(line_no),
                         "column 'tokens': duplicate token count " + std::to_string(tokens) + " (also on " +
                             line_ref(row_lines.back()) + ")");
      throw InputError(file, line_ref(line_no),
                       "column 'tokens': token counts must increase, got " + std::to_string(tokens) + " after " +
                           std::to_string(t.tokens.back()) + " (" + line_ref(row_lines.back()) + ")");
    }
    t.tokens.push_back(tokens);
    t.time_s.push_back(time_us * 1e-6);
    row_lines.push_back(line_no);
  }
};

}  // namespace

ProfileTable parse_profile_table(const std::string& text, const std::string& file) {
  TableParser parser(file);
  std::size_t line_no = 0, pos = 0;
  const std::string_view all(text);
  while (pos <= all.size()) {
    const std::size_t end = all.find('\n', pos);
    const std::string_view raw = all.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? all.size() + 1 : end + 1;
    ++line_no;
    parser.read_line(trim_blanks(raw), line_no);
  }
  if (parser.header.empty()) throw InputError(file, "", "no CSV header (expected a line such as 'tokens,time_us')");
  if (parser.t.tokens.empty()) throw InputError(file, "", "no data rows after the header on " + line_ref(parser.header_line));
  return std::move(parser.t);
}

ProfileTable read_profile_table(const std::string& file) {
  return parse_profile_table(read_text_file(file, "profile table"), file);
}

}  // namespace tailsim
