// The prefetch policy (sim/policy/prefetch.cpp) and its cache (sim/policy/expert_cache.hpp) on known access
// sequences: a trace router replays which expert each step's single token picks.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "sim/policy/expert_cache.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// One GPU, one MoE layer of 4 experts, top-1, one token a step: step t's token goes to expert seq[t].
std::string scenario(const std::vector<int>& seq, const std::string& policy) {
  std::string csv = "step,layer,e0,e1,e2,e3\n";
  for (std::size_t t = 0; t < seq.size(); ++t) {
    csv += std::to_string(t) + ",0";
    for (int e = 0; e < 4; ++e) csv += e == seq[t] ? ",1" : ",0";
    csv += "\n";
  }
  const std::string trace = test::write_temp("prefetch_seq.csv", csv);
  return R"({"seed": 1, "steps": )" + std::to_string(seq.size()) + R"(,
    "cluster": {"gpus": 1, "gpu": "h100-sxm"},
    "workload": {"type": "moe", "tokens_per_gpu": 1, "routing": {"type": "trace", "file": ")" + trace + R"("},
      "model": {"name": "toy", "layers": 1, "experts": 4, "top_k": 1, "hidden": 1024, "expert_intermediate": 512}},
    "policies": [{"type": "none"}, )" + policy + "]}";
}

}  // namespace

TEST_CASE("expert cache: least recently used out, on a known sequence") {
  ExpertCache c(2);
  CHECK(!c.insert(0, 1));
  CHECK(!c.insert(1, 2));
  CHECK(c.touch(0, 3));            // 0 is now more recent than 1
  CHECK(c.insert(2, 4) == 1);      // 1 goes
  CHECK(!c.touch(1, 5));
  CHECK(c.insert(1, 5) == 0);      // 0 (stamp 3) is older than 2 (stamp 4)
  CHECK(c.contains(2));
  CHECK(c.contains(1));
  CHECK(!c.contains(0));
  ExpertCache none(0);
  CHECK(none.insert(3, 1) == 3);   // no room: it passes through
}

TEST_CASE("prefetch lru: hits, misses and the weights loaded on a known sequence") {
  // The cache starts with the GPU's first two experts (0 and 1). Sequence 0 1 0 2 1 0: hit, hit, hit,
  // miss (1 out), miss (0 out), miss (2 out): 3 hits of 6, 3 experts loaded.
  const RunResults r = test::run_json(scenario({0, 1, 0, 2, 1, 0}, R"({"type": "prefetch", "cache_experts": 2})"));
  const Record& rec = test::record(r, "prefetch");
  REQUIRE(rec.moe->prefetch_hit_rate);
  CHECK(*rec.moe->prefetch_hit_rate == doctest::Approx(0.5));
  const double expert_bytes = 3.0 * 1024 * 512 * 2;  // gated BF16
  REQUIRE(rec.moe->weights);
  CHECK(rec.moe->weights->bytes_moved == doctest::Approx(3 * expert_bytes));
  // A miss waits for its expert over the 64 GB/s host link (49 us), which the tiny dense part cannot hide.
  CHECK(rec.moe->weights->stall_s > 0);
  CHECK(rec.step_time.mean > test::record(r, "none").step_time.mean);
}

TEST_CASE("prefetch previous_step loads last step's experts of the next layer; next_layer follows the layer before") {
  // One layer: neither strategy has a next layer to load, so both equal lru exactly.
  const std::vector<int> seq = {0, 2, 3, 2, 0, 3, 1};
  const auto rate = [&](const std::string& policy) {
    return *test::record(test::run_json(scenario(seq, policy)), "prefetch").moe->prefetch_hit_rate;
  };
  const double lru = rate(R"({"type": "prefetch", "cache_experts": 2})");
  CHECK(lru == doctest::Approx(2.0 / 7.0));  // 0 hit; 2 miss (1 out); 3 miss (0 out); 2 hit; 0 miss; 3 miss; 1 miss
  CHECK(rate(R"({"type": "prefetch", "cache_experts": 2, "strategy": "previous_step"})") == lru);
  CHECK(rate(R"({"type": "prefetch", "cache_experts": 2, "strategy": "next_layer"})") == lru);
}

TEST_CASE("prefetch's bad input names the key") {
  const std::vector<int> seq = {0, 1};
  CHECK(test::run_error(scenario(seq, R"({"type": "prefetch", "cache_experts": 5})")).find("/policies/1/cache_experts") !=
        std::string::npos);
  CHECK(test::run_error(scenario(seq, R"({"type": "prefetch", "cache_experts": 5})")).find("at most the 4 experts") !=
        std::string::npos);
  CHECK(test::run_error(scenario(seq, R"({"type": "prefetch"})")).find("/policies/1") != std::string::npos);
  CHECK(test::run_error(scenario(seq, R"({"type": "prefetch", "cache_experts": 2, "strategy": "psychic"})"))
            .find("/policies/1/strategy") != std::string::npos);
  CHECK(test::run_error(scenario(seq, R"({"type": "prefetch", "cache_experts": 2, "prefetch_k": 3})"))
            .find("/policies/1/prefetch_k") != std::string::npos);
}

}  // namespace tailsim
