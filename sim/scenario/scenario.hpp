// A scenario file, with --set overrides applied and its sweep expanded into points. Every point is built
// (and so validated) before any simulation starts.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/cluster/cluster.hpp"
#include "sim/policy/policy.hpp"
#include "sim/config/json_reader.hpp"
#include "sim/workload/workload.hpp"

namespace tailsim {

struct SweepAxis {
  std::string path;  // dotted, e.g. "cluster.gpus"
  std::vector<Json> values;
};

struct ScenarioPoint {
  std::vector<std::pair<std::string, Json>> params;  // swept path -> value, in axis order
  Json doc;                                          // the scenario with this point's values set
  std::string label() const;                         // "cluster.gpus=64, policy.copies=2" ("" unswept)
};

struct ScenarioOptions {
  std::vector<std::string> sets;    // PATH=VALUE
  std::vector<std::string> sweeps;  // PATH=V1,V2,...
  std::optional<std::uint64_t> seed;
  std::optional<std::int64_t> replications;
  std::optional<std::uint64_t> max_memory;  // --max-memory: refuse a sweep whose points would not fit
};

inline constexpr std::size_t kMaxSweepPoints = 1'000'000;

struct Scenario {
  std::string file;
  std::string name;
  std::uint64_t seed = 0;
  std::int64_t steps = 0;
  std::int64_t replications = 1;
  std::vector<SweepAxis> axes;
  std::vector<ScenarioPoint> points;  // cartesian product of the axes, last axis fastest
  Json expect;                        // the "expect" block, for `tailsim check`
  std::optional<std::string> baseline;  // "baseline": the policy label others are compared with (default: the first)
};

// The objects one point runs with.
struct PointModel {
  ClusterSpec cluster;
  std::unique_ptr<Workload> workload;
  std::vector<std::unique_ptr<Policy>> policies;
  std::size_t baseline = 0;  // index in policies of the scenario's baseline
  std::vector<const Policy*> policy_views() const;
};

Scenario load_scenario(const std::string& file, const ScenarioOptions& options = {});
Scenario load_scenario_json(Json doc, const std::string& file, const ScenarioOptions& options = {});
// Builds one point's objects, logging the warnings found on the way (spdlog warn) that `warned` does not
// hold yet, and adding them to it: a sweep's points share a set, so each is logged once. Null: log all.
PointModel build_point(const Scenario& scenario, const ScenarioPoint& point, std::set<std::string>* warned = nullptr);

// Sets a dotted path in a JSON document ("policies.1.copies"), creating objects on the way.
void set_dotted(Json& doc, const std::string& dotted, const Json& value, const std::string& origin);
// Parses a command-line value: JSON if it parses (numbers, objects, true), else a plain string.
Json parse_cli_value(const std::string& text);

}  // namespace tailsim
