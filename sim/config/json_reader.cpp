#include "sim/config/json_reader.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>

namespace tailsim {

namespace {

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::string: return "a string";
    case Json::value_t::array: return "an array";
    case Json::value_t::object: return "an object";
    default: return "a number";
  }
}

enum UnitKind { kDuration = 0, kSize = 1, kBandwidth = 2 };

struct Unit {
  std::string_view suffix;
  double factor;
};

double parse_with_units(std::string_view text, const std::vector<Unit>& units, std::string_view what) {
  std::string s(text);
  s.erase(std::remove_if(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); }), s.end());
  std::size_t consumed = 0;
  double value = 0;
  try {
    value = std::stod(s, &consumed);
  } catch (const std::exception&) {
    throw std::invalid_argument("expected " + std::string(what) + ", got '" + std::string(text) + "'");
  }
  const std::string suffix = s.substr(consumed);
  for (const Unit& u : units)
    if (suffix == u.suffix) return value * u.factor;
  std::vector<std::string> names;
  for (const Unit& u : units)
    if (!u.suffix.empty()) names.emplace_back(u.suffix);
  throw std::invalid_argument("unknown unit '" + suffix + "' in '" + std::string(text) +
                              "' (known: " + join(names) + ")");
}

}  // namespace

std::string Range::describe() const {
  std::string out;
  if (min) out += std::string(min_exclusive ? "> " : ">= ") + number_text(*min);
  if (max) out += std::string(out.empty() ? "" : " and ") + (max_exclusive ? "< " : "<= ") + number_text(*max);
  return out;
}

bool Range::contains(double v) const {
  if (std::isnan(v)) return false;
  if (min && (min_exclusive ? !(v > *min) : !(v >= *min))) return false;
  if (max && (max_exclusive ? !(v < *max) : !(v <= *max))) return false;
  return true;
}

JsonReader::JsonReader(const Json& value, std::string file, std::string path)
    : value_(&value),
      file_(std::make_shared<const std::string>(std::move(file))),
      path_(std::move(path)),
      read_(std::make_shared<std::set<std::string, std::less<>>>()),
      asked_(std::make_shared<std::set<std::string, std::less<>>>()) {}

void JsonReader::fail(const std::string& message) const { throw InputError(*file_, path_or_root(), message); }

void JsonReader::fail_expected(const std::string& expected) const {
  fail("expected " + expected + ", got " + brief(*value_));
}

bool JsonReader::has(std::string_view key) const {
  asked_->emplace(key);
  return value_->is_object() && value_->find(key) != value_->end();
}

void JsonReader::expect_object() const {
  if (!value_->is_object()) fail_expected("an object");
}

void JsonReader::mark_read(std::string_view key) const { read_->emplace(key); }

void JsonReader::mark_known(const std::vector<std::string>& keys) const { asked_->insert(keys.begin(), keys.end()); }

const Json& JsonReader::required(std::string_view key) const {
  expect_object();
  asked_->emplace(key);
  auto it = value_->find(key);
  if (it == value_->end()) {
    // A near miss among the keys nobody asked for is more likely a typo than an omission.
    std::vector<std::string> unasked;
    for (auto k = value_->begin(); k != value_->end(); ++k)
      if (!asked_->count(k.key())) unasked.push_back(k.key());
    for (const std::string& candidate : unasked)
      if (closest_match(candidate, {std::string(key)}) == key)
        fail("unknown key '" + candidate + "' (did you mean '" + std::string(key) + "'?); '" + std::string(key) +
             "' is required");
    fail("missing required key '" + std::string(key) + "'");
  }
  mark_read(key);
  return *it;
}

void JsonReader::require_all(const std::vector<std::string>& keys) const {
  expect_object();
  mark_known(keys);
  std::vector<std::string> missing, quoted, hints;
  for (const std::string& k : keys)
    if (value_->find(k) == value_->end()) {
      missing.push_back(k);
      quoted.push_back("'" + k + "'");
    }
  if (missing.size() < 2) return;  // one: the reader of that key says so, with its typo hint
  for (auto k = value_->begin(); k != value_->end(); ++k) {  // a near miss is more likely a typo
    const std::string hint = asked_->count(k.key()) ? "" : closest_match(k.key(), missing);
    if (!hint.empty()) hints.push_back("unknown key '" + k.key() + "' (did you mean '" + hint + "'?)");
  }
  fail("missing required keys " + join(quoted) + (hints.empty() ? "" : "; " + join(hints, "; ")));
}

JsonReader JsonReader::child(std::string_view key) const {
  const Json& v = required(key);
  JsonReader r(v, *file_, path_ + "/" + pointer_token(key));
  r.file_ = file_;
  return r;
}

std::optional<JsonReader> JsonReader::optional_child(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return child(key);
}

std::vector<JsonReader> JsonReader::elements() const {
  if (!value_->is_array()) fail_expected("an array");
  std::vector<JsonReader> out;
  for (std::size_t i = 0; i < value_->size(); ++i) {
    JsonReader r((*value_)[i], *file_, path_ + "/" + std::to_string(i));
    r.file_ = file_;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<JsonReader> JsonReader::array(std::string_view key) const { return child(key).elements(); }

double JsonReader::as_number(Range range) const {
  if (!value_->is_number()) fail_expected("a number" + (range.describe().empty() ? "" : " " + range.describe()));
  const double v = value_->get<double>();
  if (!std::isfinite(v) || !range.contains(v)) fail_expected("a number " + range.describe());
  return v;
}

double JsonReader::number(std::string_view key, std::optional<double> fallback, Range range) const {
  if (!has(key)) {
    if (fallback) return *fallback;
    required(key);
  }
  return child(key).as_number(range);
}

std::int64_t JsonReader::integer(std::string_view key, std::optional<std::int64_t> fallback, Range range) const {
  if (!has(key)) {
    if (fallback) return *fallback;
    required(key);
  }
  const JsonReader c = child(key);
  const Json& v = c.value();
  const std::string want = "an integer" + (range.describe().empty() ? "" : " " + range.describe());
  if (!v.is_number()) c.fail_expected(want);
  const double d = v.get<double>();
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) c.fail_expected(want);
  if (!range.contains(d)) c.fail_expected(want);
  return v.is_number_integer() ? v.get<std::int64_t>() : static_cast<std::int64_t>(d);
}

bool JsonReader::boolean(std::string_view key, std::optional<bool> fallback) const {
  if (!has(key)) {
    if (fallback) return *fallback;
    required(key);
  }
  const JsonReader c = child(key);
  if (!c.value().is_boolean()) c.fail_expected("true or false");
  return c.value().get<bool>();
}

std::string JsonReader::string(std::string_view key, std::optional<std::string> fallback,
                               const std::vector<std::string>& choices) const {
  if (!has(key)) {
    if (fallback) return *fallback;
    required(key);
  }
  const JsonReader c = child(key);
  if (!c.value().is_string()) {
    c.fail_expected(choices.empty() ? "a string" : "one of " + join(choices));
  }
  std::string s = c.value().get<std::string>();
  if (!choices.empty() && std::find(choices.begin(), choices.end(), s) == choices.end()) {
    const std::string hint = closest_match(s, choices);
    c.fail("unknown value '" + s + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
           "; valid: " + join(choices));
  }
  return s;
}

double JsonReader::quantity(std::string_view key, std::optional<double> fallback, Range range,
                            int unit_kind) const {
  static const char* const kWhat[] = {"a duration (seconds, or a string such as \"20ms\")",
                                      "a size (bytes, or a string such as \"352MiB\")",
                                      "a bandwidth (bytes/s, or a string such as \"400Gbit/s\")"};
  if (!has(key)) {
    if (fallback) return *fallback;
    required(key);
  }
  const JsonReader c = child(key);
  double v = 0;
  if (c.value().is_number()) {
    v = c.value().get<double>();
  } else if (c.value().is_string()) {
    const std::string text = c.value().get<std::string>();
    try {
      v = unit_kind == kDuration ? parse_duration_s(text)
          : unit_kind == kSize   ? parse_size_bytes(text)
                                 : parse_bandwidth_bytes_per_s(text);
    } catch (const std::invalid_argument& e) {
      c.fail(e.what());
    }
  } else {
    c.fail_expected(kWhat[unit_kind]);
  }
  if (!std::isfinite(v) || !range.contains(v))
    c.fail_expected(std::string(kWhat[unit_kind]) + " " + range.describe());
  return v;
}

double JsonReader::duration_s(std::string_view key, std::optional<double> fallback, Range range) const {
  return quantity(key, fallback, range, kDuration);
}
double JsonReader::size_bytes(std::string_view key, std::optional<double> fallback, Range range) const {
  return quantity(key, fallback, range, kSize);
}
double JsonReader::bandwidth_bytes_per_s(std::string_view key, std::optional<double> fallback,
                                         Range range) const {
  return quantity(key, fallback, range, kBandwidth);
}

void JsonReader::finish(const std::vector<std::string>& also_known) const {
  if (!value_->is_object()) return;
  std::vector<std::string> known(asked_->begin(), asked_->end());
  known.insert(known.end(), also_known.begin(), also_known.end());
  std::sort(known.begin(), known.end());
  known.erase(std::unique(known.begin(), known.end()), known.end());
  for (auto it = value_->begin(); it != value_->end(); ++it) {
    if (read_->count(it.key()) || std::binary_search(known.begin(), known.end(), it.key())) continue;
    const std::string hint = closest_match(it.key(), known);
    throw UnknownKeyError(*file_, path_or_root(), it.key(),
                          "unknown key '" + it.key() + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?") +
                              (hint.empty() ? " (" : " ") + "known: " + join(known) + ")");
  }
}

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  // Edit distance, credited for a shared prefix of 3 or more ("gpu_count" -> "gpus"); ties go to the
  // candidate of the closest length.
  const std::size_t threshold = std::max<std::size_t>(2, word.size() / 3);
  std::string best;
  std::size_t best_score = SIZE_MAX, best_len_diff = SIZE_MAX;
  for (const std::string& c : candidates) {
    std::vector<std::size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (std::size_t j = 0; j <= c.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= c.size(); ++j) {
        const std::size_t sub = prev[j - 1] + (std::tolower(word[i - 1]) == std::tolower(c[j - 1]) ? 0 : 1);
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      }
      std::swap(prev, cur);
    }
    const std::size_t distance = prev[c.size()];
    std::size_t prefix = 0;
    while (prefix < word.size() && prefix < c.size() && word[prefix] == c[prefix]) ++prefix;
    if (distance > threshold && prefix < 3) continue;
    const std::size_t score = distance - std::min(distance, prefix >= 3 ? prefix : 0);
    const std::size_t len_diff = c.size() > word.size() ? c.size() - word.size() : word.size() - c.size();
    if (score < best_score || (score == best_score && len_diff < best_len_diff)) {
      best = c;
      best_score = score;
      best_len_diff = len_diff;
    }
  }
  return best;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::string pointer_token(std::string_view key) {
  std::string out;
  for (const char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string brief(const Json& value) {
  std::string s = value.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return type_name(value) == "a number" || value.is_boolean() || value.is_null() ? s : type_name(value) + " " + s;
}

double parse_duration_s(std::string_view text) {
  static const std::vector<Unit> units = {{"", 1.0},    {"s", 1.0},    {"ms", 1e-3}, {"us", 1e-6},
                                          {"µs", 1e-6}, {"μs", 1e-6}, {"ns", 1e-9}, {"min", 60.0}, {"h", 3600.0}};
  return parse_with_units(text, units, "a duration");
}

double parse_size_bytes(std::string_view text) {
  static const std::vector<Unit> units = {
      {"", 1.0},     {"B", 1.0},           {"KB", 1e3},          {"MB", 1e6},
      {"GB", 1e9},   {"TB", 1e12},         {"KiB", 1024.0},      {"MiB", 1048576.0},
      {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  return parse_with_units(text, units, "a size");
}

double parse_bandwidth_bytes_per_s(std::string_view text) {
  static const std::vector<Unit> units = {
      {"", 1.0},          {"B/s", 1.0},        {"KB/s", 1e3},        {"MB/s", 1e6},
      {"GB/s", 1e9},      {"TB/s", 1e12},      {"GiB/s", 1073741824.0},
      {"bit/s", 0.125},   {"Kbit/s", 125.0},   {"Mbit/s", 1.25e5},   {"Gbit/s", 1.25e8},
      {"Tbit/s", 1.25e11}, {"Mb/s", 1.25e5},    {"Gb/s", 1.25e8},     {"Tb/s", 1.25e11},
      {"Mbps", 1.25e5},   {"Gbps", 1.25e8},    {"Tbps", 1.25e11}};
  return parse_with_units(text, units, "a bandwidth");
}

}  // namespace tailsim
