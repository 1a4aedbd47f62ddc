// The moe workload's phases: core attention in the dense part (prefill and decode), decode with a drawn
// context length, throughput, and the bad input of phases.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "sim/config/error.hpp"
#include "sim/workload/moe.hpp"
#include "tests/cost/cost_helpers.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

constexpr const char* kGqa = R"("attention": {"type": "gqa", "heads": 32, "kv_heads": 8, "head_dim": 128},)";

// 16 GPUs, one expert each, links fast enough to vanish, no projections and no noise: a layer is its dense
// part (core attention only) plus its slowest expert. `phase_keys` are the workload's phase keys.
std::string scenario(const std::string& phase_keys, const std::string& attention, int steps = 40,
                     int replications = 1) {
  return R"({"seed": 3, "steps": )" + std::to_string(steps) + R"(, "replications": )" +
         std::to_string(replications) + R"(,
    "cluster": {"gpus": 16, "gpu": "h100-sxm",
                "nvlink": {"bandwidth": "1e30B/s", "latency": "0s"}, "nic": {"bandwidth": "1e30B/s", "latency": "0s"}},
    "workload": {"type": "moe", )" +
         phase_keys + R"(, "routing": {"type": "generated", "preset": "uniform"},
      "model": {"name": "toy", "layers": 3, "experts": 16, "top_k": 2, "hidden": 1024, "expert_intermediate": 512, )" +
         attention + R"( "gated": true}},
    "policy": {"type": "none"}})";
}

AttentionShape toy_gqa() {
  AttentionShape s;
  s.heads = 32;
  s.kv_heads = 8;
  s.head_dim = 128;
  return s;
}

std::string error(const std::string& text) { return test::run_error(text); }

}  // namespace

TEST_CASE("prefill core attention adds its roofline time to every layer's dense part") {
  const std::string keys = R"("tokens_per_gpu": 256, "prompt_length": 100)";
  const RunResults without = test::run_json(scenario(keys, ""));
  const RunResults with = test::run_json(scenario(keys, kGqa));
  const double core_s = attention_roofline(test::gpu_spec("h100-sxm"), "bf16")
                            .time_s(prefill_attention(toy_gqa(), 256, 100, 2.0));
  const double added = with.records.at(0).step_time.mean - without.records.at(0).step_time.mean;
  CHECK(std::abs(added - 3 * core_s) <= 3e-9 * 3);  // three layers; each synchronisation rounds to 1 ns
  CHECK(with.records.at(0).moe->load_imbalance == without.records.at(0).moe->load_imbalance);  // same routing
}

TEST_CASE("an FP8 model's core attention runs in BF16, at the BF16 peak with a BF16 cache") {
  // DeepSeek-V3 keeps attention operators in BF16 (technical report, section 3.3); its GEMMs are FP8.
  std::string without = scenario(R"("tokens_per_gpu": 256, "prompt_length": 100)", "");
  std::string with = scenario(R"("tokens_per_gpu": 256, "prompt_length": 100)", kGqa);
  for (std::string* text : {&without, &with}) text->replace(text->find(R"("gated": true)"), 0, R"("dtype": "fp8", )");
  const double core_s = attention_roofline(test::gpu_spec("h100-sxm"), "bf16")
                            .time_s(prefill_attention(toy_gqa(), 256, 100, 2.0));
  const double added = test::run_json(with).records.at(0).step_time.mean - test::run_json(without).records.at(0).step_time.mean;
  CHECK(std::abs(added - 3 * core_s) <= 3e-9 * 3);
  CHECK(core_attention_dtype("fp8") == "bf16");
  CHECK(core_attention_dtype("fp16") == "fp16");
}

TEST_CASE("decode core attention reads batch_per_gpu x context_length KV entries per layer") {
  const RunResults without = test::run_json(scenario(R"("tokens_per_gpu": 64)", ""));
  const RunResults with =
      test::run_json(scenario(R"("phase": "decode", "batch_per_gpu": 64, "context_length": 3000)", kGqa));
  const double core_s = attention_roofline(test::gpu_spec("h100-sxm"), "bf16")
                            .time_s(decode_attention(toy_gqa(), 64.0 * 3000.0, 2.0));
  const double added = with.records.at(0).step_time.mean - without.records.at(0).step_time.mean;
  CHECK(std::abs(added - 3 * core_s) <= 3e-9 * 3);
}

TEST_CASE("throughput is the tokens of a step over the mean step time, exactly") {
  const RunResults prefill = test::run_json(scenario(R"("tokens_per_gpu": 256)", kGqa));
  const Record& p = prefill.records.at(0);
  CHECK(p.moe->tokens_per_s == 16.0 * 256.0 / p.step_time.mean);
  CHECK(p.moe->tokens_per_s_per_gpu == 256.0 / p.step_time.mean);
  const RunResults decode =
      test::run_json(scenario(R"("phase": "decode", "batch_per_gpu": 32, "context_length": 500)", kGqa));
  const Record& d = decode.records.at(0);
  CHECK(d.moe->tokens_per_s == 16.0 * 32.0 / d.step_time.mean);
  CHECK(d.moe->tokens_per_s_per_gpu == 32.0 / d.step_time.mean);
}

TEST_CASE(
    "decode with a drawn context length is deterministic per seed and thread count, and leaves routing "
    "alone") {
  const std::string drawn =
      R"("phase": "decode", "batch_per_gpu": 32, "context_length": {"type": "uniform", "min": 1000, "max": 3000})";
  const RunResults one = test::run_json(scenario(drawn, kGqa, 40, 4), 1);
  const RunResults four = test::run_json(scenario(drawn, kGqa, 40, 4), 4);
  const Record &a = one.records.at(0), &b = four.records.at(0);
  CHECK(a.step_time.mean == b.step_time.mean);
  CHECK(a.step_time.p99 == b.step_time.p99);
  CHECK(a.step_time.max == b.step_time.max);
  CHECK(a.moe->tokens_per_s == b.moe->tokens_per_s);
  // The same routing draws as with a constant context (the draws have their own stream); the GPU whose
  // requests hold the most KV entries sets the dense part, so the step is longer than at the mean context.
  const RunResults fixed = test::run_json(
      scenario(R"("phase": "decode", "batch_per_gpu": 32, "context_length": 2000)", kGqa, 40, 4));
  CHECK(fixed.records.at(0).moe->load_imbalance == a.moe->load_imbalance);
  CHECK(a.step_time.mean > fixed.records.at(0).step_time.mean);
  CHECK(a.step_time.stddev > 0);
}

TEST_CASE("bad phase input names the JSON path, what was expected and what was found") {
  CHECK(error(scenario(R"("phase": "decode", "batch_per_gpu": 8, "context_length": 100)", kGqa)) ==
        "no error");
  CHECK(error(scenario(R"("phase": "decode", "batch_per_gpu": 8, "context_length": -5)", kGqa))
            .find("/workload/context_length: expected a number >= 0") != std::string::npos);
  CHECK(
      error(
          scenario(
              R"("phase": "decode", "batch_per_gpu": 8, "context_length": {"type": "normal", "mean": 100, "stddev": 10, "min": -50})",
              kGqa))
          .find("/workload/context_length: expected a distribution of context lengths >= 0 (KV entries), got "
                "one whose "
                "draws reach -50") != std::string::npos);
  CHECK(
      error(
          scenario(
              R"("phase": "decode", "batch_per_gpu": 8, "context_length": {"type": "uniform", "min": -10, "max": 5})",
              kGqa))
          .find("/workload/context_length/min: expected") != std::string::npos);
  CHECK(error(scenario(R"("phase": "decode", "batch_per_gpu": 0, "context_length": 100)", kGqa))
            .find("/workload/batch_per_gpu: expected an integer >= 1") != std::string::npos);
  CHECK(error(scenario(R"("phase": "decode", "batch_per_gpu": 8, "context_length": 100)", ""))
            .find("/workload/phase: model 'toy' cannot run phase 'decode': it has no 'attention' figures") !=
        std::string::npos);
  const std::string unknown = error(scenario(R"("phase": "generate")", kGqa));
  CHECK(unknown.find("/workload/phase") != std::string::npos);
  CHECK(unknown.find("prefill") != std::string::npos);
  CHECK(unknown.find("decode") != std::string::npos);
  CHECK(error(scenario(R"("phase": "decode", "mode": "training", "batch_per_gpu": 8, "context_length": 100)",
                       kGqa))
            .find("/workload/phase: expected 'prefill' for mode 'training'") != std::string::npos);
  CHECK(error(scenario(R"("phase": "decode", "tokens_per_gpu": 8, "batch_per_gpu": 8, "context_length": 100)",
                       kGqa))
            .find("/workload/tokens_per_gpu: 'tokens_per_gpu' applies to phase 'prefill'") !=
        std::string::npos);
  CHECK(error(scenario(R"("tokens_per_gpu": 8, "context_length": 100)", kGqa))
            .find("/workload/context_length: 'context_length' applies to phase 'decode'") !=
        std::string::npos);
}

namespace {

// A policy without hooks that keeps the MoeRunInfo of the last run it served.
class InfoProbe final : public Policy, public MoePolicy {
 public:
  InfoProbe() : Policy("probe", "probe") {}
  const MoePolicy* moe() const override { return this; }
  std::unique_ptr<MoeController> make_controller(const MoeRunInfo& info) const override {
    seen = info;
    return nullptr;
  }
  mutable MoeRunInfo seen;
};

MoeRunInfo info_of(const std::string& phase_keys) {
  const Scenario sc = load_scenario_json(Json::parse(scenario(phase_keys, kGqa, 2)), "test.json");
  const PointModel model = build_point(sc, sc.points.at(0));
  const InfoProbe probe;
  const Policy* policies[] = {&probe};
  RunRequest req;
  req.steps = 2;
  req.policies = policies;
  model.workload->run(req);
  return probe.seen;
}

}  // namespace

TEST_CASE("policies see the phase: decode, with batch_per_gpu tokens per GPU") {
  const MoeRunInfo decode = info_of(R"("phase": "decode", "batch_per_gpu": 24, "context_length": 100)");
  CHECK(decode.decode);
  CHECK(decode.tokens_per_gpu == 24);
  const MoeRunInfo prefill = info_of(R"("tokens_per_gpu": 48)");
  CHECK_FALSE(prefill.decode);
  CHECK(prefill.tokens_per_gpu == 48);
}

TEST_CASE("tailsim validate exits 2 on a negative context length, naming the file and JSON path") {
  const std::string file =
      test::write_temp("negative_context.json",
                       scenario(R"("phase": "decode", "batch_per_gpu": 8, "context_length": -1)", kGqa));
  const test::CommandResult r = test::run_cli("validate " + file);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("negative_context.json") != std::string::npos);
  CHECK(r.err.find("/workload/context_length") != std::string::npos);
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("capacity policies leave decode steps alone unless cap_decode, as the paper's code does") {
  // Skewed routing, so that a factor of 1 binds: 64 requests a GPU, one token each.
  std::string text = scenario(R"("phase": "decode", "batch_per_gpu": 64, "context_length": 1000)", kGqa);
  const auto at = text.find(R"("preset": "uniform")");
  REQUIRE(at != std::string::npos);
  text.replace(at, std::string(R"("preset": "uniform")").size(), R"("preset": "olmoe")");
  const auto policy = text.find(R"("policy": {"type": "none"})");
  REQUIRE(policy != std::string::npos);
  text.replace(policy, std::string(R"("policy": {"type": "none"})").size(),
               R"("policies": [{"type": "none"}, {"type": "capacity_drop", "name": "drop"},
                               {"type": "capacity_drop", "cap_decode": true, "name": "drop decode"},
                               {"type": "reroute", "name": "reroute"}])");
  const RunResults r = test::run_json(text);
  REQUIRE(r.records.size() == 4);
  const Record& none = r.records[0];
  for (const Record* uncapped : {&r.records[1], &r.records[3]}) {
    REQUIRE(uncapped->moe->routing);
    CHECK(uncapped->moe->routing->dropped_fraction == 0);
    CHECK(uncapped->moe->routing->rerouted_fraction == 0);
    CHECK(uncapped->step_time.mean == none.step_time.mean);  // the same draws, nothing changed
  }
  const Record& capped = r.records[2];
  REQUIRE(capped.moe->routing);
  CHECK(capped.moe->routing->dropped_fraction > 0.01);
  CHECK(capped.step_time.mean < none.step_time.mean);
}

}  // namespace tailsim
