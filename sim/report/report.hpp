// Result writers: results.json and results.csv (names from DESIGN.md) and the human table on stdout.
#pragma once
#include <ostream>
#include <string>

#include "sim/scenario/runner.hpp"

namespace tailsim {

struct ReportOptions {
  bool timing = false;  // include wall_seconds (makes outputs differ from run to run)
};

Json results_json(const RunResults& results, const ReportOptions& options);
std::string results_csv(const RunResults& results, const ReportOptions& options);
void print_table(std::ostream& out, const RunResults& results, const ReportOptions& options);

// Writes `content` to `path` through a temporary file in the same folder and a rename, so readers see
// the old file or the new one, never half of one.
void write_atomically(const std::string& path, const std::string& content);
// Creates DIR if needed and checks it can be written; throws InputError naming `flag` otherwise.
void prepare_output_dir(const std::string& dir, const std::string& flag);

}  // namespace tailsim
