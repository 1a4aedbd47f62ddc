// Reusable scenario parts in configs/<kind>/<name>.json: a string where an object is expected names one.
#pragma once
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <string>
#include <vector>

#include "sim/config/json_reader.hpp"

namespace tailsim {

// A data folder of the project (`folder`: "configs", "models"): $`env_var` if set, else $TAILSIM_DATA/folder
// if TAILSIM_DATA is set, else next to the binary (../folder in a build tree, ../share/tailsim/folder once
// installed by cmake --install), else the source tree the binary was built from.
std::filesystem::path data_root(const char* env_var, const std::string& folder);
// The configs/ folder: data_root("TAILSIM_CONFIG_DIR", "configs").
std::filesystem::path config_root();
std::vector<std::string> config_names(const std::string& kind);  // sorted, without ".json"

// A parsed config document; it owns the JSON so readers built on it stay valid.
struct ConfigDoc {
  std::string file;
  Json json;
};
// Loads configs/<kind>/<name>.json; an unknown name fails at `at` listing the valid names.
ConfigDoc load_config(const JsonReader& at, const std::string& kind, const std::string& name);
// Parses a JSON file; a syntax error becomes an InputError with line and column.
Json parse_json_file(const std::string& file);
// Parses JSON text; InputError with the line and column of a syntax error, and json_input_guard's errors.
Json parse_json_text(const std::string& text, const std::string& file);
inline constexpr int kMaxJsonDepth = 64;
// A parser callback for JSON a user wrote: InputError(file) for nesting deeper than kMaxJsonDepth levels
// (deep documents exhaust the stack in the JSON library's recursive parts: 200,000 '[' crashed `tailsim
// validate`), and for a key given twice in one object (parsers silently keep one of the values).
Json::parser_callback_t json_input_guard(const std::string& file);
// `v` as an integer of type T when it is an integer JSON number that T holds; std::invalid_argument naming
// `name` otherwise (a float such as 4e40 would be undefined behaviour to convert, a negative count wrong).
template <class T>
T json_integer(const Json& v, const std::string& name) {
  if (v.is_number_unsigned()) {
    if (const auto u = v.get<std::uint64_t>(); std::in_range<T>(u)) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    if (const auto i = v.get<std::int64_t>(); std::in_range<T>(i)) return static_cast<T>(i);
  }
  const std::string found = v.dump();
  throw std::invalid_argument("'" + name + "': expected an integer" +
                              (std::is_unsigned_v<T> ? std::string(" >= 0") : std::string()) + ", got " +
                              (found.size() > 40 ? found.substr(0, 37) + "..." : found));
}
// The JSON library's message without its "[json.exception.type_error.302] " prefix.
std::string json_error_text(const Json::exception& e);

}  // namespace tailsim
