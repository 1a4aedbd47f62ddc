// The verbs of the tailsim command line, callable from tests.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "sim/scenario/runner.hpp"

namespace tailsim {

// Parses argv and runs the verb; returns the exit code. Throws InputError / po::error on bad input.
// `dist` spreads `run` over MPI ranks (null: one process).
int cli_main(int argc, char** argv, std::ostream& out, std::ostream& err, Distributor* dist = nullptr);

// The verbs that live in files of their own.
int verb_check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace tailsim
