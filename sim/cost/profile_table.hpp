// Measured expert-FFN tables (tokens -> time) for the `profiled` and `fitted` cost models, and where they live.
//
// Format (what tools/cuda/profile_expert_ffn.cu writes, and every table in models/):
//   # key: value            metadata lines first (gpu, gpu_config, dtype, hidden, intermediate, gated, source...)
//   tokens,time_us[,...]    a CSV header naming at least `tokens` and `time_us`; other columns are ignored
//   1,127.866,...           one row per token count: tokens an integer >= 1, strictly increasing;
//                           time_us a finite number > 0 (the whole FFN, microseconds)
// Blank lines and '#' lines anywhere are skipped. Every bad entry is an InputError naming the file, the line
// and the column.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tailsim {

// The models/ folder: data_root("TAILSIM_MODELS_DIR", "models") (sim/config/configs.hpp).
std::filesystem::path models_root();

// Finds a table named in a scenario or on the command line: an absolute path as is; a relative one under
// models_root(), else relative to `base_dir` (the folder of the file that names it; empty for none).
// Throws InputError(file, path, ...) listing the places tried when there is no such file.
std::filesystem::path resolve_model_file(const std::string& name, const std::filesystem::path& base_dir,
                                         const std::string& file, const std::string& path);

struct ProfileTable {
  std::string file;                                        // where it was read
  std::vector<std::pair<std::string, std::string>> metadata;  // '# key: value' lines, in file order
  std::vector<std::int64_t> tokens;                        // strictly increasing, >= 1
  std::vector<double> time_s;                              // same length, > 0

  // The value of metadata `key` (trimmed), if present.
  std::optional<std::string> meta(const std::string& key) const;
  // Metadata `key` as an integer / a leading true|false word; InputError (file, the metadata line) if malformed.
  std::optional<std::int64_t> meta_integer(const std::string& key) const;
  std::optional<bool> meta_bool(const std::string& key) const;
  std::int64_t max_tokens() const { return tokens.back(); }
};

// The largest token count a table may hold (the profiled model indexes every integer up to it).
inline constexpr std::int64_t kMaxTableTokens = 1 << 20;
// The longest time a row may hold, µs (1000 s): longer is no kernel, and extrapolating a slope from times
// near the double range overflowed to infinity (found by review, tools/fuzz/crashes/profile/).
inline constexpr double kMaxTableTime_us = 1e9;

ProfileTable read_profile_table(const std::string& file);
// Parses table text; `file` is only used in error messages.
ProfileTable parse_profile_table(const std::string& text, const std::string& file);

}  // namespace tailsim
