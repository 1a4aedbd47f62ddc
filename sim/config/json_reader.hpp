// A JSON value together with where it came from (file, JSON path). Constructors of registered types read
// their own keys through it, so every key is documented where it is used and every error names its path:
//   scenario.json: /policies/1/copies: expected an integer >= 1, got 0
// An object node remembers which keys were read; finish() rejects the rest with a suggestion.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/config/error.hpp"

namespace tailsim {

using Json = nlohmann::json;

// Bounds for a number; an empty bound is open.
struct Range {
  std::optional<double> min;
  std::optional<double> max;
  bool min_exclusive = false;
  bool max_exclusive = false;
  std::string describe() const;  // e.g. "a number > 0" body: "> 0 and <= 1"
  bool contains(double v) const;
};
inline Range at_least(double v) { return Range{v, std::nullopt, false, false}; }
inline Range above(double v) { return Range{v, std::nullopt, true, false}; }
inline Range open_unit_interval() { return Range{0.0, 1.0, true, true}; }

class JsonReader {
 public:
  JsonReader(const Json& value, std::string file, std::string path = "");

  const Json& value() const { return *value_; }
  const std::string& file() const { return *file_; }
  const std::string& path() const { return path_; }  // JSON pointer, "" for the root
  std::string path_or_root() const { return path_.empty() ? "/" : path_; }
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail_expected(const std::string& expected) const;  // "expected X, got <value>"

  bool is_object() const { return value_->is_object(); }
  bool is_string() const { return value_->is_string(); }
  bool has(std::string_view key) const;
  void expect_object() const;

  JsonReader child(std::string_view key) const;  // required key
  std::optional<JsonReader> optional_child(std::string_view key) const;
  std::vector<JsonReader> elements() const;  // this must be an array
  std::vector<JsonReader> array(std::string_view key) const;  // required array key

  double number(std::string_view key, std::optional<double> fallback = {}, Range range = {}) const;
  std::int64_t integer(std::string_view key, std::optional<std::int64_t> fallback = {}, Range range = {}) const;
  bool boolean(std::string_view key, std::optional<bool> fallback = {}) const;
  std::string string(std::string_view key, std::optional<std::string> fallback = {},
                     const std::vector<std::string>& choices = {}) const;
  // Unit-aware quantities: a number (SI base unit) or a string such as "20ms", "352MiB", "400Gbit/s"
  // ("400Gbps" and "400Gb/s" are bits too; "50GB/s" bytes).
  double duration_s(std::string_view key, std::optional<double> fallback = {}, Range range = {}) const;
  double size_bytes(std::string_view key, std::optional<double> fallback = {}, Range range = {}) const;
  double bandwidth_bytes_per_s(std::string_view key, std::optional<double> fallback = {},
                               Range range = {}) const;

  // The value of this node read as a number (for array elements).
  double as_number(Range range = {}) const;

  // Fails naming every one of `keys` this object lacks, when it lacks two or more (an inline object missing
  // several is fixed in one go); declares them known (mark_known). One missing key is left to its reader.
  void require_all(const std::vector<std::string>& keys) const;
  void mark_read(std::string_view key) const;
  // Declares keys read later as known now: a required key that is missing is never blamed on one of them
  // ("unknown key 'gpus' (did you mean 'gpu'?)"), as it is on keys nobody asked for.
  void mark_known(const std::vector<std::string>& keys) const;
  // Fails on any key of this object that nobody read, suggesting the closest known key.
  void finish(const std::vector<std::string>& also_known = {}) const;

 private:
  const Json& required(std::string_view key) const;
  double quantity(std::string_view key, std::optional<double> fallback, Range range, int unit_kind) const;

  const Json* value_;
  std::shared_ptr<const std::string> file_;
  std::string path_;
  std::shared_ptr<std::set<std::string, std::less<>>> read_;   // keys read
  std::shared_ptr<std::set<std::string, std::less<>>> asked_;  // keys looked for, present or not
};

// Closest candidate by edit distance, or "" when none is close.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");
// Escapes a key for a JSON pointer (RFC 6901).
std::string pointer_token(std::string_view key);
// Compact rendering of a JSON value for messages (long values are shortened).
std::string brief(const Json& value);

// Parses "20ms", "3.5us", "2 s"; throws std::invalid_argument with the reason.
double parse_duration_s(std::string_view text);
double parse_size_bytes(std::string_view text);
double parse_bandwidth_bytes_per_s(std::string_view text);

}  // namespace tailsim
