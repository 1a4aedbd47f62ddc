// tailsim._tailsim, the native half of `import tailsim` (python/tailsim/__init__.py is the other): thin
// wrappers over the functions the command line calls, so a scenario run from Python gives the records
// `tailsim run --format json` prints, byte for byte once parsed. Errors become Python exceptions
// (tailsim.InputError, a ValueError, with message, file and path); the GIL is released while simulating, and
// Ctrl-C stops a run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/program_options/errors.hpp>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "sim/cli/cost_verb.hpp"
#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "sim/cost/cost_model.hpp"
#include "sim/policy/policy.hpp"
#include "sim/report/report.hpp"
#include "sim/run/expect.hpp"
#include "sim/run/limits.hpp"
#include "sim/run/runner.hpp"
#include "sim/stats/distribution.hpp"
#include "sim/workload/routing.hpp"
#include "sim/workload/workload.hpp"

namespace py = pybind11;

namespace tailsim {

namespace {

py::object to_python(const Json& j) {
  switch (j.type()) {
    case Json::value_t::boolean: return py::bool_(j.get<bool>());
    case Json::value_t::number_integer: return py::int_(j.get<std::int64_t>());
    case Json::value_t::number_unsigned: return py::int_(j.get<std::uint64_t>());
    case Json::value_t::number_float: return py::float_(j.get<double>());
    case Json::value_t::string: return py::str(j.get_ref<const std::string&>());
    case Json::value_t::array: {
      py::list list;
      for (const Json& e : j) list.append(to_python(e));
      return list;
    }
    case Json::value_t::object: {
      py::dict dict;
      for (auto it = j.begin(); it != j.end(); ++it) dict[py::str(it.key())] = to_python(it.value());
      return dict;
    }
    default: return py::none();
  }
}

// What tailsim/__init__.py passes: the scenario as a file, or as JSON text (a dict, dumped) named `file`;
// `options` holds --set and --sweep as the command line writes them, --seed and --replications.
struct ScenarioSource {
  std::string file;
  std::optional<std::string> text;
  ScenarioOptions options;
};

Scenario load(const ScenarioSource& s) {
  return s.text ? load_scenario_json(parse_json_text(*s.text, s.file), s.file, s.options)
                : load_scenario(s.file, s.options);
}

// What `tailsim run --out DIR` writes to results.json and results.csv, computed as `run` does (load_run,
// plan_quantiles, run_scenario, write_results).
std::pair<Json, std::string> run_results(const ScenarioSource& source, int threads, bool timing,
                                         const std::atomic<bool>* stop) {
  const InputFiles reads;  // every file read once, large ones parsed once for all the points
  const Scenario sc = load(source);
  const std::vector<PointModel> models = build_points_within(sc, source.options.max_memory);
  check_expectations_match(sc, models, parse_expectations(sc));
  const bool sketch = plan_quantiles(sc, models, threads, false, "auto", source.options.max_memory);
  RunOptions options(threads);
  options.sketch_quantiles = sketch;
  options.stop = stop;
  const RunResults results = run_scenario(sc, models, options);
  ReportOptions ro;
  ro.timing = timing;
  return {results_json(results, ro), results_csv(results, ro)};
}

// run_results on a thread of its own, while this one, without the GIL, wakes every 0.1 s to let Python run its
// signal handlers: Ctrl-C (KeyboardInterrupt) stops the run at its next step and is raised here, as in any
// Python code. Other Python threads run meanwhile.
std::pair<Json, std::string> run_interruptible(const ScenarioSource& source, int threads, bool timing) {
  std::atomic<bool> stop{false};
  std::pair<Json, std::string> results;
  std::exception_ptr error;
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  std::thread worker([&] {
    try {
      results = run_results(source, threads, timing, &stop);
    } catch (...) {
      error = std::current_exception();
    }
    const std::lock_guard<std::mutex> lock(mutex);
    done = true;
    finished.notify_all();
  });
  bool interrupted = false;
  for (bool over = false; !over;) {
    {
      const py::gil_scoped_release unlocked;
      std::unique_lock<std::mutex> lock(mutex);
      over = finished.wait_for(lock, std::chrono::milliseconds(100), [&] { return done; });
    }
    if (!over && !interrupted && PyErr_CheckSignals() != 0) {  // the handler raised: stop, then re-raise it
      interrupted = true;
      stop = true;
    }
  }
  worker.join();
  if (interrupted) throw py::error_already_set();
  if (error) std::rethrow_exception(error);
  return results;
}

// `tailsim validate`'s checks: every point built, the expectations matched; the number of points.
std::size_t validate(const ScenarioSource& source) {
  const InputFiles reads;
  const Scenario sc = load(source);
  const std::vector<PointModel> models = build_all_points(sc);
  check_expectations_match(sc, models, parse_expectations(sc));
  return sc.points.size();
}

template <class Reg>
py::list registry_entries(const Reg& reg) {
  py::list out;
  for (const auto& e : reg.entries()) {
    py::list params;
    for (const ParamDoc& p : e.params) params.append(py::dict(py::arg("name") = p.name, py::arg("help") = p.help));
    out.append(py::dict(py::arg("name") = e.name, py::arg("description") = e.description, py::arg("params") = params));
  }
  return out;
}

// `tailsim list KIND` as data: [{name, description, params: [{name, help}]}] for the registries,
// [{name, description}] for the configs/ folders.
py::list list_types(const std::string& kind) {
  if (kind == "policies") return registry_entries(policy_registry());
  if (kind == "distributions") return registry_entries(distribution_registry());
  if (kind == "workloads") return registry_entries(workload_registry());
  if (kind == "routers") return registry_entries(router_registry());
  if (kind == "cost-models") return registry_entries(cost_model_registry());
  const std::vector<std::string> configs = {"gpus", "models", "clusters", "noise"};
  if (std::find(configs.begin(), configs.end(), kind) == configs.end()) {
    const std::vector<std::string> kinds = {"policies", "distributions", "workloads", "routers", "cost-models",
                                            "gpus",     "models",        "clusters",  "noise"};
    const std::string hint = closest_match(kind, kinds);
    throw InputError("", "list_types", "unknown kind " + quote_input(kind) +
                                           (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; valid: " + join(kinds));
  }
  py::list out;
  for (const std::string& name : config_names(kind)) {
    const ConfigDoc doc = load_config(JsonReader(Json::object(), ""), kind, name);
    out.append(py::dict(py::arg("name") = name, py::arg("description") = doc.json.value("description", "")));
  }
  return out;
}

// `tailsim cost ... --format csv`, run by the verb itself: its text (kind,tokens,time_us).
std::string cost_csv(const std::vector<std::string>& args) {
  std::ostringstream out;
  verb_cost(args, out);
  return out.str();
}

// Raises tailsim.InputError(text) with .message, .file and .path.
void raise_input_error(const py::handle& type, const std::string& text, const std::string& message,
                       const std::string& file, const std::string& path) {
  py::object error = py::reinterpret_borrow<py::object>(type)(text);
  error.attr("message") = message;
  error.attr("file") = file;
  error.attr("path") = path;
  PyErr_SetObject(type.ptr(), error.ptr());
}

}  // namespace

}  // namespace tailsim

PYBIND11_MODULE(_tailsim, m) {
  using namespace tailsim;
  m.doc() = "tailsim's native module; use `import tailsim`";
  // Owned by the module (an attribute), so the handle lives as long as the translator can run.
  static py::handle input_error = PyErr_NewExceptionWithDoc(
      "tailsim.InputError", "Bad input: .message, and where it is, .file and .path (a JSON path or an argument)",
      PyExc_ValueError, nullptr);
  m.attr("InputError") = py::reinterpret_borrow<py::object>(input_error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InputError& e) {
      raise_input_error(input_error, e.what(), e.message(), e.file(), e.path());
    } catch (const boost::program_options::error& e) {
      raise_input_error(input_error, e.what(), e.what(), "", "");
    } catch (const IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    }
  });

  m.def(
      "run",
      [](const std::string& file, std::optional<std::string> text, std::vector<std::string> sets,
         std::vector<std::string> sweeps, std::optional<std::uint64_t> seed, std::optional<std::int64_t> replications,
         std::optional<int> threads, bool timing) {
        ScenarioSource s{file, std::move(text), {}};
        s.options.sets = std::move(sets);
        s.options.sweeps = std::move(sweeps);
        s.options.seed = seed;
        s.options.replications = replications;
        const int n = threads.value_or(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
        if (n < 1) throw InputError("", "threads", "expected an integer >= 1, got " + std::to_string(n));
        const std::pair<Json, std::string> results = run_interruptible(s, n, timing);
        return py::make_tuple(to_python(results.first), py::str(results.second));
      },
      py::arg("file"), py::arg("text"), py::arg("sets"), py::arg("sweeps"), py::arg("seed"), py::arg("replications"),
      py::arg("threads"), py::arg("timing"), "(results.json's document, results.csv's text) of a scenario (see tailsim.run)");
  m.def(
      "validate",
      [](const std::string& file, std::optional<std::string> text) {
        py::gil_scoped_release unlocked;
        return validate(ScenarioSource{file, std::move(text), {}});
      },
      py::arg("file"), py::arg("text"), "validates a scenario; returns its number of sweep points");
  m.def("list_types", &list_types, py::arg("kind"), "tailsim list KIND as a list of dicts");
  m.def("cost_csv", &cost_csv, py::arg("args"), "tailsim cost ARGS --format csv's text");
}
