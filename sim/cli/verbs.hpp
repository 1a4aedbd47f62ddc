// The verbs of the tailsim command line, callable from tests.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "sim/run/runner.hpp"

namespace tailsim {

// Parses argv and runs the verb; returns the exit code. Throws InputError / po::error on bad input.
// `dist` spreads `run` over MPI ranks (null: one process).
int cli_main(int argc, char** argv, std::ostream& out, std::ostream& err, Distributor* dist = nullptr);

// Parses a verb's arguments: `opts`, with every bare argument going to the option named `positional`.
boost::program_options::variables_map parse_verb_args(const std::vector<std::string>& args,
                                                      const boost::program_options::options_description& opts,
                                                      const char* positional);

// The verbs that live in files of their own.
int verb_check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace tailsim
