// Fuzz entry points: arbitrary bytes in, through the readers users feed their own files to. Shared by the
// libFuzzer targets (tools/fuzz/fuzz_target.cpp) and by the regression test that replays the seed corpus and
// every input the fuzzer ever crashed on (tests/fuzz/fuzz_regression_test.cpp).
//
// The contract: bad input ends in InputError, or ClockOverflow for a simulated duration past the integer
// clock (both exit code 2 on the command line). Any other exception, a crash, a sanitizer report, a hang, or
// an invariant below that fails (abort) is a bug.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "sim/cost/profile_table.hpp"
#include "sim/cost/profiled.hpp"
#include "sim/core/time.hpp"
#include "sim/report/records.hpp"
#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "sim/run/expect.hpp"
#include "sim/run/limits.hpp"
#include "sim/run/runner.hpp"
#include "sim/workload/routing_models.hpp"

namespace tailsim::fuzz {

inline void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: invariant violated: %s\n", what);
  std::abort();
}

// Scenario bytes, as `tailsim validate` reads them: parsed, loaded, every point built, expectations matched
// and the memory estimated. Scenarios small enough to run in a few milliseconds are then run for a few steps
// and their results checked for sense (finite, ordered quantiles, fractions within [0, 1], speed-ups within
// their intervals).
inline void scenario_input(const std::uint8_t* data, std::size_t size) {
  try {
    Scenario sc = load_scenario_json(parse_json_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json"),
                                     "fuzz.json");
    const std::vector<PointModel> models = build_all_points(sc);
    check_expectations_match(sc, models, parse_expectations(sc));
    const MemoryEstimate memory = estimate_memory(sc, models, 1);
    if (sc.points.size() > 4 || memory.working > (8u << 20)) return;
    sc.steps = std::min<std::int64_t>(sc.steps, 6);
    sc.replications = std::min(sc.replications, sc.steps);
    const RunResults results = run_scenario(sc, models, RunOptions(1));
    require(!results.records.empty(), "a run returned no records");
    for (const Record& r : results.records) {
      const StepTimeSummary& s = r.step_time;
      require(s.count > 0, "a record without steps");
      require(std::isfinite(s.mean) && std::isfinite(s.max) && s.mean >= 0, "a non-finite or negative mean");
      require(s.p50 <= s.p99 + 1e-12 && s.p99 <= s.max + 1e-12 && s.mean <= s.max * (1 + 1e-12) + 1e-12,
              "quantiles out of order");
      require(r.idle_fraction >= 0 && r.idle_fraction <= 1 + 1e-9, "idle fraction outside [0, 1]");
      if (r.extra_work_fraction) require(*r.extra_work_fraction >= 0, "negative extra work");
      if (const auto& v = r.vs_baseline) {
        require(std::isfinite(v->speedup) && v->speedup >= 0, "a non-finite or negative speed-up");
        if (v->ci95_low) require(*v->ci95_low <= v->speedup && v->speedup <= *v->ci95_high, "a speed-up outside its interval");
      }
      if (const auto& c = r.moe ? r.moe->routing : std::nullopt)
        for (const double f : {c->dropped_fraction, c->rerouted_fraction, c->dropped_gate_mass})
          require(f >= 0 && f <= 1 + 1e-9, "a dropped or rerouted share outside [0, 1]");
    }
  } catch (const InputError&) {
  } catch (const ClockOverflow&) {  // a duration the integer clock cannot hold: also exit code 2
  }
}

// Routing-trace bytes: the first byte picks the model's MoE layers (1 + b % 4), the second its experts
// (1 + b % 16), the rest is the CSV. A trace that reads is replayed through the router, which must keep
// its contract (counts sum to tokens x top_k, none above tokens).
inline void trace_input(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  const int layers = 1 + data[0] % 4, experts = 1 + data[1] % 16;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data + 2), size - 2));
  try {
    RoutingTrace trace = parse_routing_trace(in, "fuzz.csv", layers, experts);
    require(trace.steps > 0, "a trace without steps");
    const int top_k = std::min(2, experts);
    TraceRouter router(std::move(trace), RouterContext{layers, experts, top_k, 1, 0}, 1.0);
    std::vector<std::int64_t> counts(static_cast<std::size_t>(experts));
    for (std::int64_t step = 0; step < 3; ++step)
      for (int layer = 0; layer < layers; ++layer)
        for (const std::int64_t tokens : {std::int64_t{1}, std::int64_t{7}, std::int64_t{4096}}) {
          router.route(step, layer, tokens, counts);
          std::int64_t sum = 0;
          for (const std::int64_t c : counts) {
            require(c >= 0 && c <= tokens, "an expert count outside [0, tokens]");
            sum += c;
          }
          require(sum == tokens * top_k, "counts do not sum to tokens x top_k");
        }
  } catch (const InputError&) {
  }
}

// Profile-table bytes: a table that reads becomes a profiled cost model, which must return finite,
// positive times inside and past the table.
inline void profile_input(const std::uint8_t* data, std::size_t size) {
  try {
    ProfileTable table = parse_profile_table(std::string(reinterpret_cast<const char*>(data), size), "fuzz.csv");
    for (const auto& [key, value] : table.metadata) {
      try {
        (void)table.meta_integer(key);
      } catch (const InputError&) {
      }
      try {
        (void)table.meta_bool(key);
      } catch (const InputError&) {
      }
    }
    const std::int64_t max_tokens = table.max_tokens();
    const ProfiledCostModel model(std::move(table), 0.0);
    for (const std::int64_t n : {std::int64_t{1}, max_tokens / 2 + 1, max_tokens, max_tokens + 1, 4 * max_tokens}) {
      const double t = model.expert_time_s(n);
      require(std::isfinite(t) && t > 0, "a profiled time that is not finite and positive");
    }
  } catch (const InputError&) {
  }
}

// The run the records seeds (tools/fuzz/corpus/records) were written by: tail_at_scale.json with
//   --set steps=200 --sweep cluster.gpus=1,4   (2 points, policies none and backup, seed 7, 4 replications)
// so a seed passes the header check of --resume and the fuzzer reaches the point lines. Built once.
struct RecordsRun {
  Scenario scenario;
  std::vector<PointModel> models;
  Json header;
};

inline const RecordsRun& records_run() {
  static const RecordsRun run = [] {
    const InputFiles reads;
    ScenarioOptions options;
    options.sets = {"steps=200"};
    options.sweeps = {"cluster.gpus=1,4"};
    RecordsRun r{load_scenario(std::string(TAILSIM_SOURCE_DIR) + "/scenarios/textbook/tail_at_scale.json", options), {}, {}};
    r.models = build_all_points(r.scenario);
    std::vector<InputFiles::File> inputs;
    for (const InputFiles::File& f : reads.files())
      if (f.path != r.scenario.file) inputs.push_back(f);
    r.header = records_header(r.scenario, r.models, inputs, "");
    return r;
  }();
  return run;
}

// A sweep's records log (records.jsonl), as `tailsim merge` reads it (every check an error) and as `--resume`
// reads it against the run above (lines that fail their checks left out). What either keeps must fit the
// run: points in range, one record per policy with the point's labels and params.
inline void records_input(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)parse_record_log(text, "records.jsonl");
  } catch (const InputError&) {
  }
  const RecordsRun& run = records_run();
  try {
    LogChecks checks;
    checks.run_header = &run.header;
    checks.lenient = true;
    const RecordLog log = parse_record_log(text, "records.jsonl", checks);
    for (const auto& [point, records] : log.points) {
      require(point < run.scenario.points.size(), "--resume kept a point beyond the sweep");
      const auto& policies = run.models[point].policies;
      require(records.size() == policies.size(), "--resume kept a point with a record count other than its policies'");
      for (std::size_t k = 0; k < records.size(); ++k) {
        require(records[k].policy == policies[k]->label(), "--resume kept a record of another policy");
        require(records[k].params == run.scenario.points[point].params, "--resume kept a record of other params");
        require(records[k].step_time.count == run.scenario.steps, "--resume kept a record of other steps");
      }
    }
  } catch (const InputError&) {
  }
}

}  // namespace tailsim::fuzz
