// `tailsim list`: the registered kinds (policies, distributions, workloads, routers, cost models) with
// their parameters, and the configs/ files (GPUs, models, clusters, noise profiles).
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "sim/cli/verbs.hpp"
#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "sim/cost/cost_model.hpp"
#include "sim/policy/policy.hpp"
#include "sim/stats/distribution.hpp"
#include "sim/workload/routing.hpp"
#include "sim/workload/workload.hpp"

namespace tailsim {

namespace {

// A name padded to its column; one wider than its column still gets two spaces before its text.
void column(std::ostream& out, const std::string& name, std::size_t width) {
  out << name << std::string(name.size() + 2 > width ? 2 : width - name.size(), ' ');
}

template <class Reg>
void list_registry(std::ostream& out, const Reg& reg) {
  out << reg.kind() << ":\n";
  for (const auto& e : reg.entries()) {
    out << "  ";
    column(out, e.name, 18);
    out << e.description << '\n';
    for (const ParamDoc& p : e.params) {
      out << "      ";
      column(out, p.name, 14);
      out << p.help << '\n';
    }
  }
}

}  // namespace

int verb_list(const std::vector<std::string>& args, std::ostream& out) {
  const std::vector<std::string> kinds = {"policies", "distributions", "workloads", "routers", "cost-models",
                                          "gpus",     "models",        "clusters",  "noise"};
  if (wants_help(args)) {
    print_verb_help(out, "list", boost::program_options::options_description());
    out << "\nKIND (default: all of them): policies, distributions, workloads, routers or cost-models (the \"type\"\n"
           "values of a scenario, with their parameters); gpus, models, clusters or noise (the files of configs/,\n"
           "which a scenario names by string, e.g. \"gpu\": \"h100-sxm\").\n";
    return 0;
  }
  std::vector<std::string> wanted = args.empty() ? kinds : args;
  for (const std::string& w : wanted) {
    if (w == "policies") list_registry(out, policy_registry());
    else if (w == "distributions") list_registry(out, distribution_registry());
    else if (w == "workloads") list_registry(out, workload_registry());
    else if (w == "routers") list_registry(out, router_registry());
    else if (w == "cost-models") list_registry(out, cost_model_registry());
    else if (w == "gpus" || w == "models" || w == "clusters" || w == "noise") {
      out << w << " (configs/" << w << "):\n";
      for (const std::string& name : config_names(w)) {
        const ConfigDoc doc = load_config(JsonReader(Json::object(), ""), w, name);
        out << "  ";
        column(out, name, 18);
        out << doc.json.value("description", "") << '\n';
      }
    } else {
      const std::string hint = closest_match(w, kinds);
      throw InputError("", "list", "unknown registry '" + w + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                                       "; valid: " + join(kinds));
    }
  }
  return 0;
}

}  // namespace tailsim
