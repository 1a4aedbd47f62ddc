// `backup` on the moe workload (sim/policy/backup_moe.cpp, charged by sim/workload/moe_control.cpp): exact
// small cases. Constant routing (a trace: every expert gets 256 pairs a layer), top-1, a linear expert cost
// (10 us + 0.5 us a token), links fast enough to vanish and no dense part, so a layer lasts as long as its
// slowest GPU's experts: 138 us on a healthy GPU, 414 us on the last GPU, 3x slow.
#include <doctest/doctest.h>

#include <string>

#include "tests/helpers.hpp"

namespace tailsim {

namespace {

constexpr int kLayers = 3;

std::string linear_table() {
  std::string csv = "# a linear cost for tests\ntokens,time_us\n";
  for (int t = 1; t <= 1024; ++t) csv += std::to_string(t) + "," + std::to_string(10.0 + 0.5 * t) + "\n";
  return test::write_temp("backup_moe_linear_cost.csv", csv);
}

// K GPUs in nodes of 4, E experts of 256 x K / E pairs each, the last GPU `factor` x slow.
std::string scenario(const std::string& policy, int gpus = 8, int experts = 8, double factor = 3.0,
                     const std::string& sizes = R"("layers": 3, "hidden": 1024, "expert_intermediate": 512)") {
  std::string csv = "step,layer";
  for (int e = 0; e < experts; ++e) csv += ",e" + std::to_string(e);
  csv += "\n";
  for (int l = 0; l < kLayers; ++l) {
    csv += "0," + std::to_string(l);
    for (int e = 0; e < experts; ++e) csv += "," + std::to_string(256 * gpus / experts);
    csv += "\n";
  }
  const std::string trace = test::write_temp("backup_moe_" + std::to_string(gpus) + "_" + std::to_string(experts) + ".csv", csv);
  const std::string slow = factor > 1 ? R"([{"count": 1, "factor": )" + std::to_string(factor) + "}]" : "[]";
  return R"({"seed": 3, "steps": 4,
    "cluster": {"gpus": )" + std::to_string(gpus) + R"(, "gpus_per_node": 4, "gpu": "h100-sxm", "slow_gpus": )" + slow + R"(,
                "nvlink": {"bandwidth": "1e30B/s", "latency": "0s"}, "nic": {"bandwidth": "1e30B/s", "latency": "0s"}},
    "workload": {"type": "moe", "tokens_per_gpu": 256, "routing": {"type": "trace", "file": ")" + trace + R"("},
      "cost": {"type": "profiled", "table": ")" + linear_table() + R"("},
      "model": {"name": "toy", "experts": )" + std::to_string(experts) + R"(, "top_k": 1, )" + sizes + R"(}},
    "policies": [{"type": "none"}, )" + policy + "]}";
}

const char* kTrigger = R"({"type": "backup", "quantile": 0.5, "multiplier": 1.5})";

// Per-step means in seconds: the run rounds each layer to the nanosecond.
double step_s(double layer_us) { return kLayers * 1e-9 * static_cast<double>(seconds_to_ns(layer_us * 1e-6)); }

}  // namespace

TEST_CASE("backup on moe: a 3x slow GPU's remaining tokens re-run on its backup, which finishes first") {
  // Quorum 4 of 8 finish at 138 us; the median of those is 138, so backups launch at 1.5 x 138 = 207 us.
  // GPU 7 has then done 207 / 414 = half of its 256 tokens; its backup, GPU 4 (the next GPU of its node),
  // idle since 138 us, runs the other 128 in 10 + 64 = 74 us: done at 281 us, before GPU 7's 414 us.
  const RunResults r = test::run_json(scenario(kTrigger));
  const Record& none = test::record(r, "none");
  const Record& backup = test::record(r, "backup");
  CHECK(none.step_time.mean == doctest::Approx(step_s(414)).epsilon(1e-12));
  CHECK(backup.step_time.mean == doctest::Approx(step_s(281)).epsilon(1e-12));
  // Useful compute a layer: 7 x 138 us, and GPU 7's primary until the copy's result came (281 us).
  REQUIRE(backup.extra_work_fraction);
  CHECK(*backup.extra_work_fraction == doctest::Approx(74.0 / (7 * 138.0 + 281.0)).epsilon(1e-9));
  REQUIRE(backup.moe->backup_bytes_per_gpu);  // one standby expert (m = 1): gated BF16 weights, 3 layers
  CHECK(*backup.moe->backup_bytes_per_gpu == doctest::Approx(3.0 * 1024 * 512 * 2 * kLayers));
  REQUIRE(backup.vs_baseline);
  CHECK(backup.vs_baseline->speedup == doctest::Approx(414.0 / 281.0).epsilon(1e-6));
}

TEST_CASE("backup on moe, fixed form: the known slow GPU is backed up from the start, all of its tokens") {
  // GPU 4 runs its own 138 us, then all 256 of GPU 7's tokens in 138 us: done at 276 us.
  const RunResults results = test::run_json(scenario(R"({"type": "backup"})"));
  const Record& backup = test::record(results, "backup");
  CHECK(backup.step_time.mean == doctest::Approx(step_s(276)).epsilon(1e-12));
  CHECK(*backup.extra_work_fraction == doctest::Approx(138.0 / (7 * 138.0 + 276.0)).epsilon(1e-9));
}

TEST_CASE("backup on moe: backup_on next_node pays the NIC, and over a slow one its copies never start") {
  // A 1 GB/s NIC: every GPU's dispatch takes 262 us (128 tokens x 2 KB to the other node), so the healthy
  // GPUs finish at 400 us, GPU 7 at 676 us, and backups launch at 1.5 x 400 = 600 us with 48 of GPU 7's
  // tokens left. GPU 4 (its node, free NVLink) runs them in 34 us: done at 634 us. GPU 3 (the next node)
  // would get them only at 698 us, after GPU 7 has finished: no copy, the same steps as none.
  std::string text = scenario(kTrigger);
  const std::string fast_nic = R"("nic": {"bandwidth": "1e30B/s")";
  text.replace(text.find(fast_nic), fast_nic.size(), R"("nic": {"bandwidth": "1GB/s")");
  text.replace(text.rfind('}') - 1, 0, R"(, {"type": "backup", "name": "next", "quantile": 0.5, "multiplier": 1.5, "backup_on": "next_node"})");
  const RunResults r = test::run_json(text);
  const double none = test::record(r, "none").step_time.mean;
  CHECK(test::record(r, "next").step_time.mean == none);
  CHECK(*test::record(r, "next").extra_work_fraction == 0.0);
  CHECK(test::record(r, "backup").step_time.mean == doctest::Approx(none - kLayers * 42e-6).epsilon(1e-5));
}

TEST_CASE("backup on moe: a healthy cluster triggers no backup and no extra work") {
  const RunResults r = test::run_json(scenario(kTrigger, 8, 8, 1.0));
  const Record& backup = test::record(r, "backup");
  CHECK(backup.step_time.mean == test::record(r, "none").step_time.mean);
  CHECK(backup.step_time.mean == doctest::Approx(step_s(138)).epsilon(1e-12));
  REQUIRE(backup.extra_work_fraction);
  CHECK(*backup.extra_work_fraction == 0.0);
}

TEST_CASE("backup on moe: with more GPUs than experts the placement's replicas serve, no standby copies") {
  // K = 16, E = 8: GPU g hosts expert g mod 8 with GPU g +- 8, each replica 256 of the expert's 512 pairs.
  // GPU 15 is backed up on GPU 7, the other host of expert 7: the same times as above.
  const RunResults results = test::run_json(scenario(kTrigger, 16, 8));
  const Record& backup = test::record(results, "backup");
  CHECK(backup.step_time.mean == doctest::Approx(step_s(281)).epsilon(1e-12));
  CHECK(*backup.moe->backup_bytes_per_gpu == 0.0);
  CHECK(*backup.extra_work_fraction == doctest::Approx(74.0 / (15 * 138.0 + 281.0)).epsilon(1e-9));
}

TEST_CASE("backup on moe: bad backup_slots, copies and memory name the key") {
  const auto error = [](const std::string& policy, int gpus = 8, int experts = 8,
                        const std::string& sizes = R"("layers": 3, "hidden": 1024, "expert_intermediate": 512)") {
    return test::run_error(scenario(policy, gpus, experts, 3.0, sizes));
  };
  const std::string negative = error(R"({"type": "backup", "quantile": 0.5, "backup_slots": -1})");
  CHECK(negative.find("/policies/1/backup_slots") != std::string::npos);
  const std::string zero = error(R"({"type": "backup", "quantile": 0.5, "backup_slots": 0})");
  CHECK(zero.find("/policies/1/backup_slots") != std::string::npos);
  CHECK(zero.find("needs replicas") != std::string::npos);
  const std::string odd = error(R"({"type": "backup", "backup_slots": 3})", 4, 8);  // 2 experts a GPU
  CHECK(odd.find("/policies/1/backup_slots: expected a multiple of the 2 experts") != std::string::npos);
  const std::string many = error(R"({"type": "backup", "backup_slots": 8})");
  CHECK(many.find("/policies/1/backup_slots: expected at most 7") != std::string::npos);
  // Experts of 3 x 32768 x 131072 BF16 weights (25.8 GB): 1 hosted + 1 standby over 3 layers is 155 GB > 80 GB.
  const std::string big = error(R"({"type": "backup", "backup_slots": 1})", 8, 8,
                                R"("layers": 3, "hidden": 32768, "expert_intermediate": 131072)");
  CHECK(big.find("/policies/1/backup_slots: expected copies that fit the GPU's memory") != std::string::npos);
  const std::string bsp = test::run_error(R"({"seed": 1, "steps": 2, "cluster": {"gpus": 4},
    "workload": {"type": "bsp", "compute": {"type": "constant", "value": 0.01}},
    "policy": {"type": "backup", "backup_slots": 1}})");
  CHECK(bsp.find("/policy/backup_slots: applies to the moe workload") != std::string::npos);
  const std::string copies = error(R"({"type": "backup", "copies": 3})");
  CHECK(copies.find("/policies/1/copies: expected 2 or left out on the moe workload") != std::string::npos);
}

}  // namespace tailsim
