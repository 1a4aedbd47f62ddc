// Two-batch overlap of the moe step (sim/workload/moe_overlap.cpp): the step against the schedule of its
// phases worked out by hand, the straggler that still holds it, the SMs the all-to-all holds, the time split,
// the controllers, and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "sim/config/error.hpp"
#include "sim/workload/moe.hpp"
#include "tests/cost/cost_helpers.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

constexpr int kLayers = 2;
constexpr std::int64_t kTokens = 1000;  // per GPU: each micro-batch holds 500

// Every layer routes exactly kTokens pairs to each of the two experts (one per GPU).
std::string even_trace() {
  std::string csv = "step,layer,e0,e1\n";
  for (int l = 0; l < kLayers; ++l) csv += "0," + std::to_string(l) + ",1000,1000\n";
  return test::write_temp("overlap_even_trace.csv", csv);
}

// The experts' linear cost: 10 + 0.5 x tokens microseconds.
std::string linear_table() {
  std::string csv = "tokens,time_us\n";
  for (int t = 1; t <= 1000; ++t) csv += std::to_string(t) + "," + std::to_string(10.0 + 0.5 * t) + "\n";
  return test::write_temp("overlap_linear_cost.csv", csv);
}

// Two H100s on one NVLink of `nvlink` (no latency), one expert each, a shared expert as the dense part.
std::string scenario(const std::string& nvlink, const std::string& extra_workload = "",
                     const std::string& extra_cluster = "", const std::string& policy = R"({"type": "none"})",
                     const std::string& overlap = "two_batch") {
  return R"({"seed": 1, "steps": 3,
    "cluster": {"gpus": 2, "gpus_per_node": 2, "gpu": "h100-sxm", )" + extra_cluster + R"(
                "nvlink": {"bandwidth": ")" + nvlink + R"(", "latency": "0us"}, "nic": {"bandwidth": "50GB/s", "latency": "0us"}},
    "workload": {"type": "moe", "tokens_per_gpu": 1000, "dispatch": "per_expert", "overlap": ")" + overlap + R"(", )" +
         extra_workload + R"(
      "routing": {"type": "trace", "file": ")" + even_trace() + R"("},
      "cost": {"type": "profiled", "table": ")" + linear_table() + R"("},
      "model": {"name": "toy", "layers": 2, "experts": 2, "top_k": 1, "hidden": 1024, "expert_intermediate": 512,
                "shared_experts": 1}},
    "policy": )" + policy + "}";
}

// One micro-batch's phases, by hand: the shared expert on 500 tokens (roofline), the routed expert on 500
// (the table), and each all-to-all: a GPU sends and receives half of its 500 pairs (the other half stays on
// it), 250 x 1024 x 2 bytes = 512,000 bytes, at the NVLink's bandwidth.
double dense_s() {
  return test::cost_model(Json{{"type", "roofline"}}, "h100-sxm", {1024, 512, true, "bf16"})->expert_time_s(500);
}
constexpr double kExpertS = (10.0 + 0.5 * 500) * 1e-6;
constexpr double kBytes = 250.0 * 1024 * 2;

double step_of(const std::string& text) {
  const RunResults r = test::run_json(text);
  return r.records.at(0).step_time.mean;
}

std::string error(const std::string& text) { return test::run_error(text); }

}  // namespace

TEST_CASE("communication-bound: after the first dense part the ports never rest, d + 4 L x") {
  // x = 512 us > e = 260 us > d: dispatch 0 starts after dense 0, and every later all-to-all follows the one
  // before it on the ports (worked out by hand, layer by layer, in moe_overlap.cpp's order).
  const double x = kBytes / 1e9;
  const double expected = dense_s() + 4 * kLayers * x;
  CHECK(std::abs(step_of(scenario("1GB/s")) - expected) <= 2e-9);
  // In sequence the same layer is dense, dispatch, experts and combine of the whole batch.
  const double serial = step_of(scenario("1GB/s", "", "", R"({"type": "none"})", "none"));
  const double whole_dense = test::cost_model(Json{{"type", "roofline"}}, "h100-sxm", {1024, 512, true, "bf16"})->expert_time_s(1000);
  CHECK(std::abs(serial - kLayers * (whole_dense + 2 * 2 * x + (10.0 + 0.5 * 1000) * 1e-6)) <= 4e-9 * kLayers);
}

TEST_CASE("computation-bound: the compute stream never rests, 2 L (d + e) + x") {
  const double x = kBytes / 1e12;  // 0.5 us, below d and e
  const double expected = 2 * kLayers * (dense_s() + kExpertS) + x;
  CHECK(std::abs(step_of(scenario("1TB/s")) - expected) <= 2e-9);
  SUBCASE("a GPU twice as slow still holds every combine: the step is its compute stream") {
    const double slow = step_of(scenario("1TB/s", "", R"("slow_gpus": [{"count": 1, "factor": 2}],)"));
    CHECK(std::abs(slow - (2 * kLayers * 2 * (dense_s() + kExpertS) + x)) <= 2e-9);
  }
  SUBCASE("all-to-all kernels holding half the SMs make the computation twice as long") {
    const double held = step_of(scenario("1TB/s", R"("comm_sms": 66,)"));
    CHECK(std::abs(held - (2 * kLayers * 2 * (dense_s() + kExpertS) + x)) <= 2e-9);
  }
}

TEST_CASE("the time split counts only exposed communication, and adds up") {
  const RunResults r = test::run_json(scenario("1GB/s"));
  const MoeRecord& m = *r.records.at(0).moe;
  CHECK(m.compute_fraction + m.communication_fraction + m.barrier_wait_fraction == doctest::Approx(1.0));
  // Per GPU and step: compute 2 L (d + e); the ports are busy 4 L x from the end of the first dense part to
  // the step's end, and every compute operation but that first one runs under them. So the exposed
  // communication is the step less the compute, and nothing waits.
  const double step = dense_s() + 4 * kLayers * kBytes / 1e9;
  const double compute = 2 * kLayers * (dense_s() + kExpertS);
  CHECK(m.compute_fraction == doctest::Approx(compute / step).epsilon(1e-6));
  CHECK(m.communication_fraction == doctest::Approx((step - compute) / step).epsilon(1e-6));
  CHECK(m.barrier_wait_fraction < 1e-6);
}

TEST_CASE("capacity policies run under two_batch: dropped pairs shorten both micro-batches' experts") {
  // (Hedges and weight loads under two_batch: tests/policy/moe_seam_test.cpp.)
  const double capped = step_of(scenario("1TB/s", "", "", R"({"type": "capacity_drop", "capacity_factor": 0.5})"));
  CHECK(capped < step_of(scenario("1TB/s")));
}

TEST_CASE("two_batch is deterministic and leaves the routing draws as they were") {
  const std::string text = scenario("1GB/s");
  CHECK(test::run_json(text).records.at(0).step_time.mean == test::run_json(text, 2).records.at(0).step_time.mean);
}

TEST_CASE("bad overlap input names the JSON path, what was expected and what was found") {
  const std::string one = error(R"({"seed": 1, "steps": 2, "cluster": {"gpus": 8, "gpu": "h100-sxm"},
    "workload": {"type": "moe", "model": "deepseek-v3", "phase": "decode", "batch_per_gpu": 1, "context_length": 100,
                 "overlap": "two_batch"}, "policy": {"type": "none"}})");
  CHECK(one.find("/workload/overlap") != std::string::npos);
  CHECK(one.find("batch_per_gpu >= 2, got 1") != std::string::npos);
  const std::string sms = error(scenario("1GB/s", R"("comm_sms": 132,)"));
  CHECK(sms.find("/workload/comm_sms") != std::string::npos);
  const std::string unknown = error(scenario("1GB/s", "", "", R"({"type": "none"})", "three_batch"));
  CHECK(unknown.find("two_batch") != std::string::npos);
  CHECK(error(scenario("1GB/s", R"("comm_sms": 20,)", "", R"({"type": "none"})", "none")).find("'comm_sms' applies to overlap 'two_batch'") != std::string::npos);
}

}  // namespace tailsim

namespace tailsim {

namespace {

// Training on one 16-GPU NVLink node of 100 GB/s (no latency): 4 MoE layers with 4e6 attention weights
// each (8 MB of BF16 gradients a layer), Mixtral-sized experts, 16,384 tokens a GPU.
std::string training(bool overlap_grad_reduce, const std::string& mode = "training") {
  return R"({"seed": 2, "steps": 3,
    "cluster": {"gpus": 16, "gpus_per_node": 16, "gpu": "h100-sxm",
                "nvlink": {"bandwidth": "100GB/s", "latency": "0us"}, "nic": {"bandwidth": "50GB/s", "latency": "0us"}},
    "workload": {"type": "moe", "mode": ")" + mode + R"(", "tokens_per_gpu": 16384,
      "overlap_grad_reduce": )" + (overlap_grad_reduce ? "true" : "false") + R"(,
      "routing": {"type": "generated", "preset": "uniform"},
      "model": {"name": "toy", "layers": 4, "experts": 16, "top_k": 2, "hidden": 4096, "expert_intermediate": 14336,
                "attention_params_per_layer": 4e6}},
    "policy": {"type": "none"}})";
}

}  // namespace

TEST_CASE("overlap_grad_reduce: each layer's bucket reduces under the backward of the layers before it") {
  // A bucket takes t = 2 (15/16) x 8 MB / 100 GB/s = 150 us, less than a layer's backward pass, so every
  // bucket but the last (layer 0's, ready when the backward ends) is done before the backward ends: the step
  // waits t instead of the whole all-reduce, 4 t.
  const double t = 2.0 * 15.0 / 16.0 * 8e6 / 100e9;
  const double serial = test::run_json(training(false)).records.at(0).step_time.mean;
  const double overlapped = test::run_json(training(true)).records.at(0).step_time.mean;
  CHECK(std::abs((serial - overlapped) - 3 * t) <= 2e-9);
  CHECK(test::run_error(training(true, "inference")).find("'overlap_grad_reduce' applies to mode 'training'") !=
        std::string::npos);
}

}  // namespace tailsim
