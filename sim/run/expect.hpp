// Regression expectations: a scenario's "expect" block, checked by `tailsim check` against its results.
//
//   "expect": [
//     {"where": {"cluster.gpus": 1024, "policy": "none"}, "metric": "step_time.mean", "value": 10.756, "rel_tol": 0.01},
//     {"where": {"cluster.gpus": 256}, "metric": "speedup", "baseline": "none", "policy": "backup", "min": 2.0}
//   ]
//
// `where` selects records: each key is a dotted scenario path compared with the point's value (swept or not)
// or "policy" (a label); it must match at least one record. Bounds: `value` with `rel_tol` and/or `abs_tol`,
// and/or `min`, `max`. `speedup` is the record's vs_baseline: mean step time of the scenario's baseline
// policy / mean step time of `policy` at the same point, with its paired 95% interval (sim/stats/paired.hpp);
// its `baseline`, when given, must be the scenario's. Mean-based metrics (step_time.mean, slowdown_vs_k1,
// speedup) are statistical: their allowed deviation adds the half-width of the run's own 95% confidence
// interval, so a check stays tight without failing on a change that only reshuffles random draws.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "sim/run/runner.hpp"
#include "sim/scenario/scenario.hpp"

namespace tailsim {

struct Expectation {
  std::string path;  // JSON path of the expectation, "/expect/0"
  Json where;        // object: dotted path or "policy" -> value
  std::string metric;
  std::optional<double> value, rel_tol, abs_tol, min, max;
  std::string baseline, policy;  // speedup only (baseline: "" or the scenario's baseline label)
};

// The metric names an expectation may use.
const std::vector<std::string>& expectation_metrics();

// Reads and validates the scenario's "expect" block (keys, types, metric names, bounds).
std::vector<Expectation> parse_expectations(const Scenario& scenario);
// Checks that every `where` (and speedup's policies) matches a record of the scenario; throws InputError.
void check_expectations_match(const Scenario& scenario, const std::vector<PointModel>& models,
                              const std::vector<Expectation>& expectations);

struct Verdict {
  std::string name;    // "step_time.mean at cluster.gpus=1024, policy=none"
  bool passed = false;
  std::string detail;  // "10.7634 within 10.756 ± 0.1076 (rel_tol 0.01) + 0.0213 (95% CI)"
};
// One verdict per expectation and matching point (and policy, unless the metric is speedup).
std::vector<Verdict> evaluate_expectations(const Scenario& scenario, const RunResults& results,
                                           const std::vector<Expectation>& expectations);

}  // namespace tailsim
