// tailsim command line: thin verbs over the library. Exit codes: 0 ok, 1 regression, 2 bad input,
// 3 internal error, 74 a failure to write output (EX_IOERR).
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "sim/cli/verbs.hpp"
#include "sim/core/time.hpp"
#ifdef TAILSIM_HAVE_MPI
#include "sim/mpi/mpi_distributor.hpp"
#endif
#include "sim/config/error.hpp"

namespace po = boost::program_options;

namespace {

constexpr int kExitIoError = 74;  // EX_IOERR of sysexits.h

#ifdef TAILSIM_HAVE_MPI
constexpr const char* kMpi = "enabled (mpirun -n N tailsim run ...)";
#else
constexpr const char* kMpi = "disabled (no MPI found at build time)";
#endif

int run(int argc, char** argv, tailsim::Distributor* dist) {
  // Bad input is the same on every rank: one message is enough.
  const bool report_input_errors = !dist || dist->rank() == 0;
  try {
    if (argc == 2 && std::string(argv[1]) == "--version") {
      std::cout << "tailsim " << TAILSIM_VERSION << "\nmpi: " << kMpi << '\n';
      return 0;
    }
    return tailsim::cli_main(argc, argv, std::cout, std::cerr, dist);
  } catch (const tailsim::InputError& e) {
    if (report_input_errors) std::cerr << "tailsim: error: " << e.what() << '\n';
    return 2;
  } catch (const tailsim::IoError& e) {
    std::cerr << "tailsim: error: " << e.what() << '\n';
    return kExitIoError;
  } catch (const po::error& e) {
    if (report_input_errors) std::cerr << "tailsim: error: " << e.what() << " (see tailsim --help)\n";
    return 2;
  } catch (const tailsim::ClockOverflow& e) {
    std::cerr << "tailsim: error: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "tailsim: internal error: " << e.what() << '\n';
    return 3;
  }
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("tailsim"));  // stdout carries results only
  spdlog::set_level(spdlog::level::warn);
  spdlog::set_pattern("[%l] %v");
  std::unique_ptr<tailsim::Distributor> dist;
#ifdef TAILSIM_HAVE_MPI
  dist = tailsim::mpi_distributor_if_launched(&argc, &argv);
#endif
  const int code = run(argc, argv, dist.get());
#ifdef TAILSIM_HAVE_MPI
  // Every rank validates the same input, so bad input fails everywhere alike; anything else on one rank
  // must not leave the others waiting in a collective.
  if (code != 0 && dist && dist->size() > 1) tailsim::mpi_abort(code);
#endif
  return code;
}
