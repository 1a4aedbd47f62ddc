// Result writers: results.json and results.csv (names from DESIGN.md) and the human table on stdout.
#pragma once
#include <ostream>
#include <string>

#include "sim/config/files.hpp"
#include "sim/run/runner.hpp"

namespace tailsim {

struct ReportOptions {
  bool timing = false;  // include wall_seconds (makes outputs differ from run to run)
};

Json results_json(const RunResults& results, const ReportOptions& options);
std::string results_csv(const RunResults& results, const ReportOptions& options);
void print_table(std::ostream& out, const RunResults& results, const ReportOptions& options);

}  // namespace tailsim
