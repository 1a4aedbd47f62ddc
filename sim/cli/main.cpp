// tailsim command line: thin verbs over the library. Exit codes: 0 ok, 1 regression, 2 bad input,
// 3 internal error.
#include <iostream>
#include <thread>

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "sim/cli/verbs.hpp"
#include "sim/scenario/error.hpp"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("tailsim"));  // stdout carries results only
  spdlog::set_level(spdlog::level::warn);
  spdlog::set_pattern("[%l] %v");
  try {
    return tailsim::cli_main(argc, argv, std::cout, std::cerr);
  } catch (const tailsim::InputError& e) {
    std::cerr << "tailsim: error: " << e.what() << '\n';
    return 2;
  } catch (const po::error& e) {
    std::cerr << "tailsim: error: " << e.what() << " (see tailsim --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "tailsim: internal error: " << e.what() << '\n';
    return 3;
  }
}
