// Reusable scenario parts in configs/<kind>/<name>.json: a string where an object is expected names one.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "sim/scenario/json_reader.hpp"

namespace tailsim {

// The configs/ folder: $TAILSIM_CONFIG_DIR, else next to the binary (../configs, ../share/tailsim/configs),
// else the source tree the binary was built from.
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
// Parses JSON text; InputError with the line and column of a syntax error, or when nested deeper than
// kMaxJsonDepth levels.
Json parse_json_text(const std::string& text, const std::string& file);
inline constexpr int kMaxJsonDepth = 64;

}  // namespace tailsim
