// The pipeline workload end to end: exact step times, the two engines, what-if analysis, trace replay and
// every bad input.
#include <doctest/doctest.h>

#include "sim/workload/pipeline.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

std::string scenario(const std::string& workload, int gpus = 8, const std::string& policies = R"([{"type": "none"}])",
                     int steps = 20) {
  return R"({"name": "p", "seed": 3, "steps": )" + std::to_string(steps) + R"(, "cluster": {"gpus": )" +
         std::to_string(gpus) + R"(, "gpus_per_node": 8}, "workload": )" + workload + R"(, "policies": )" + policies + "}";
}

const std::string kConst = R"("forward": {"type": "constant", "value": 0.01})";

}  // namespace

TEST_CASE("a pipeline step with constant times is the 1F1B makespan plus the all-reduce and optimizer") {
  // pp = 4, m = 8, f = 10 ms, b = 20 ms: (8 + 3) x 30 ms = 330 ms, then optimizer 5 ms.
  const auto r = test::run_json(scenario(R"({"type": "pipeline", "pp": 4, "microbatches": 8, "optimizer": "5ms", )" + kConst + "}"));
  CHECK(test::record(r, "none").step_time.mean == doctest::Approx(0.335).epsilon(1e-9));
  const auto g = test::run_json(scenario(R"({"type": "pipeline", "pp": 4, "microbatches": 8, "schedule": "gpipe", )" + kConst + "}"));
  CHECK(test::record(g, "none").step_time.mean == doctest::Approx(0.33).epsilon(1e-9));
  // Interleaved with 2 chunks: (m v + p - 1)(f + b) / v = (16 + 3) x 15 ms.
  const auto i = test::run_json(scenario(R"({"type": "pipeline", "pp": 4, "microbatches": 8, "schedule": "interleaved", )" + kConst + "}"));
  CHECK(test::record(i, "none").step_time.mean == doctest::Approx(0.285).epsilon(1e-9));
}

TEST_CASE("a slow stage lengthens the steady phase: T = sum of stages + (m - 1) x the slowest") {
  const auto r = test::run_json(scenario(R"({"type": "pipeline", "pp": 4, "microbatches": 8, "stage_factors": [1, 1, 1, 2], )" + kConst + "}"));
  CHECK(test::record(r, "none").step_time.mean == doctest::Approx(3 * 0.03 + 0.06 + 7 * 0.06).epsilon(1e-9));
}

TEST_CASE("the gradient all-reduce is a ring over the slowest link, overlapped when asked") {
  // dp = 2 replicas of pp = 8 on 2 nodes: each stage's replicas sit on different nodes (NIC).
  const std::string base = R"({"type": "pipeline", "pp": 8, "microbatches": 8, "grad_bytes": "1GB", )" + kConst;
  const auto plain = test::run_json(scenario(base + "}", 16));
  const auto overlap = test::run_json(scenario(base + R"(, "overlap_grad_reduce": true, "buckets": 4})", 16));
  const double nic_bw = 400e9 / 8, lat = 5e-6;
  const double ring = 2.0 * lat + 1.0 * 1e9 / nic_bw;  // 2 (dp - 1) / dp = 1
  const double pipe = (8 + 7) * 0.03;
  CHECK(test::record(plain, "none").step_time.mean == doctest::Approx(pipe + ring).epsilon(1e-6));
  CHECK(test::record(overlap, "none").step_time.mean < test::record(plain, "none").step_time.mean);
  CHECK(test::record(overlap, "none").step_time.mean > pipe);
}

TEST_CASE("the pipeline's fast path and event engine agree on the same draws") {
  const std::string w = R"({"type": "pipeline", "pp": 4, "microbatches": 8, "p2p_bytes": "64MB", "grad_bytes": "2GB",
      "overlap_grad_reduce": true, "forward": {"type": "lognormal", "mu": -4.6, "sigma": 0.3},
      "slow": [{"ranks": [5], "factor": 1.7}], "engine": ")";
  const auto with_gpu = [](std::string doc) { return doc.replace(doc.find(R"("gpus": 16)"), 10, R"("gpus": 16, "gpu": "h100-sxm")"); };
  for (const char* sched : {"1f1b", "gpipe", "interleaved"}) {
    const auto fast = test::run_json(with_gpu(scenario(w + R"(fast", "schedule": ")" + sched + R"("})", 16)));
    const auto events = test::run_json(with_gpu(scenario(w + R"(events", "schedule": ")" + sched + R"("})", 16)));
    CHECK(test::record(fast, "none").step_time.mean == test::record(events, "none").step_time.mean);
    CHECK(test::record(fast, "none").step_time.max == test::record(events, "none").step_time.max);
    CHECK(test::record(events, "none").events > test::record(fast, "none").events);
  }
}

TEST_CASE("what-if analysis names the slow rank's replica and stage") {
  // dp = 4, pp = 4; rank 9 = replica 2, stage 1 is 2x slower.
  const auto r = test::run_json(scenario(R"({"type": "pipeline", "pp": 4, "microbatches": 16,
      "forward": {"type": "normal", "mean": 0.01, "stddev": 0.0001}, "slow": [{"ranks": [9], "factor": 2}],
      "whatif": {"decompose": true}})", 16));
  const auto& w = *test::record(r, "none").whatif;
  CHECK(w.slowdown > 1.5);
  REQUIRE(w.by_dp_rank.size() == 4);
  REQUIRE(w.by_stage.size() == 4);
  CHECK(std::max_element(w.by_dp_rank.begin(), w.by_dp_rank.end()) - w.by_dp_rank.begin() == 2);
  CHECK(std::max_element(w.by_stage.begin(), w.by_stage.end()) - w.by_stage.begin() == 1);
  CHECK(w.by_dp_rank[2] == doctest::Approx(w.slowdown).epsilon(0.02));
  CHECK(w.by_dp_rank[0] < 1.01);
  // Fixing only the slow rank removes the whole slowdown (the others' times stay as run); fixing a healthy
  // rank removes none of it.
  const auto fixing = [&](int rank) {
    const auto f = test::run_json(scenario(R"({"type": "pipeline", "pp": 4, "microbatches": 16,
        "forward": {"type": "normal", "mean": 0.01, "stddev": 0.0001}, "slow": [{"ranks": [9], "factor": 2}],
        "whatif": {"ranks": [)" + std::to_string(rank) + "]}}", 16));
    return test::record(f, "none").whatif->slowdown;
  };
  CHECK(fixing(9) >= w.slowdown * 0.98);
  CHECK(fixing(0) == doctest::Approx(1.0).epsilon(0.005));
}

TEST_CASE("a simple CSV trace replays each rank's own times") {
  std::string csv = "step,dp_rank,stage,microbatch,forward_s,backward_s\n";
  for (int step = 0; step < 2; ++step)
    for (int d = 0; d < 2; ++d)
      for (int s = 0; s < 2; ++s)
        for (int mb = 0; mb < 4; ++mb)
          csv += std::to_string(step) + "," + std::to_string(d) + "," + std::to_string(s) + "," + std::to_string(mb) +
                 (d == 1 && s == 1 ? ",0.02,0.04\n" : ",0.01,0.02\n");
  const std::string path = test::write_temp("pipe-simple.csv", csv);
  const auto r = test::run_json(scenario(R"({"type": "pipeline", "trace": {"file": ")" + path + R"(", "format": "simple"}})", 4));
  // Replica 1's last stage is 2x: sum of stages + (m - 1) x slowest = 0.03 + 0.06 + 3 x 0.06.
  CHECK(test::record(r, "none").step_time.mean == doctest::Approx(0.27).epsilon(1e-9));
}

TEST_CASE("the ByteDance ST trace replays and its what-if names the last stage") {
  const auto r = test::run_json(scenario(R"({"type": "pipeline", "trace": {"file": ")" + std::string(TAILSIM_SOURCE_DIR) +
                                          R"(/data/bytedance-stragglers/trace-ST.csv.gz"}, "whatif": {"decompose": true}})", 8,
                                          R"([{"type": "none"}])", 32));
  const auto& w = *test::record(r, "none").whatif;
  CHECK(w.slowdown == doctest::Approx(1.1787).epsilon(0.10));  // the artifact's result-ST.json
  CHECK(std::max_element(w.by_stage.begin(), w.by_stage.end()) - w.by_stage.begin() == 3);
}

TEST_CASE("bad pipeline input fails with its JSON path or file and line") {
  const std::string w = R"({"type": "pipeline", "pp": 4, )" + kConst;
  CHECK(test::run_error(scenario(w + R"(, "microbatches": 0})")).find("/workload/microbatches: expected an integer >= 1") != std::string::npos);
  CHECK(test::run_error(scenario(w + "}", 6)).find("/workload/pp: pp = 4 does not divide the cluster's 6 ranks") != std::string::npos);
  const std::string sched = test::run_error(scenario(w + R"(, "schedule": "zb"})"));
  CHECK(sched.find("/workload/schedule") != std::string::npos);
  CHECK(sched.find("1f1b") != std::string::npos);
  CHECK(test::run_error(scenario(w + R"(, "schedule": "interleaved", "microbatches": 6})")).find("multiple of pp") != std::string::npos);
  CHECK(test::run_error(scenario(w + R"(, "virtual_stages": 2})")).find("/workload/virtual_stages") != std::string::npos);
  CHECK(test::run_error(scenario(w + R"(, "slow": [{"stage": 9, "factor": 2}]})")).find("/workload/slow/0/stage") != std::string::npos);
  CHECK(test::run_error(scenario(w + R"(, "p2p_bytes": "1MB"})")).find("/workload/p2p_bytes: the cluster gives no nvlink bandwidth") != std::string::npos);
  CHECK(test::run_error(scenario(w + "}", 8, R"([{"type": "backup"}])")).find("does not apply to workload 'pipeline'") != std::string::npos);
}

TEST_CASE("a trace with a missing op or rank fails naming the file and line") {
  std::string csv = "step,dp_rank,stage,microbatch,forward_s,backward_s\n";
  for (int s = 0; s < 2; ++s)
    for (int mb = 0; mb < 2; ++mb) csv += "0,0," + std::to_string(s) + "," + std::to_string(mb) + ",0.01,0.02\n";
  const std::string missing_mb = test::write_temp("pipe-missing.csv", csv.substr(0, csv.rfind("0,0,1,1")));
  std::string err = test::run_error(scenario(R"({"type": "pipeline", "trace": {"file": ")" + missing_mb + R"(", "format": "simple"}})", 2));
  CHECK(err.find("pipe-missing.csv: line 4: step 0 (ending here) has no forward of microbatch 1 on dp_rank 0 stage 1") != std::string::npos);
  const std::string missing_rank = test::write_temp("pipe-rank.csv", csv);
  err = test::run_error(scenario(R"({"type": "pipeline", "trace": {"file": ")" + missing_rank + R"(", "format": "simple", "dp": 2}})", 4));
  CHECK(err.find("has no forward of microbatch 0 on dp_rank 1 stage 0") != std::string::npos);
  const std::string bad = test::write_temp("pipe-bad.csv", csv + "0,0,1,x,0.1,0.2\n");
  err = test::run_error(scenario(R"({"type": "pipeline", "trace": {"file": ")" + bad + R"(", "format": "simple"}})", 2));
  CHECK(err.find("pipe-bad.csv: line 6:") != std::string::npos);
  const std::string bd = test::write_temp("pipe-bd.csv", "dp_rank,stage,rank,step,optype,start_ts,duration,seq_id,mc,mb_id,gmc\n0,0,0,1,forward-compute,0,0.1,0,0,0,0\n0,0,0,1,warp-drive,0,0.1,0,0,-1,0\n");
  err = test::run_error(scenario(R"({"type": "pipeline", "trace": {"file": ")" + bd + R"("}})", 1));
  CHECK(err.find("pipe-bd.csv: line 3: unknown optype 'warp-drive'") != std::string::npos);
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("the three ByteDance replays meet their expect blocks (the artifact's figures within 10 %, the culprits)") {
  for (const char* job : {"ar", "se", "st"}) {
    const auto r = test::run_cli(std::string("check ") + TAILSIM_SOURCE_DIR + "/scenarios/training/bytedance_" + job + ".json");
    CHECK_MESSAGE(r.exit_code == 0, job, r.out, r.err);
    CHECK(r.out.find("ok: 5 passed, 0 failed") != std::string::npos);
  }
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("drop_slowest finishes the pipeline step without the slowest replicas' gradients") {
  // dp = 4, pp = 2, m = 4: healthy (4 + 1) x 30 ms; replica 2 at 2x takes twice that.
  const std::string w = R"({"type": "pipeline", "pp": 2, "microbatches": 4, "forward": {"type": "constant", "value": 0.01},
      "slow": [{"dp_rank": 2, "factor": 2}]})";
  const auto r = test::run_json(scenario(w, 8, R"([{"type": "none"}, {"type": "drop_slowest", "m": 1}])"));
  CHECK(test::record(r, "none").step_time.mean == doctest::Approx(0.30).epsilon(1e-9));
  CHECK(test::record(r, "drop_slowest").step_time.mean == doctest::Approx(0.15).epsilon(1e-9));
  CHECK(test::run_error(scenario(w, 8, R"([{"type": "drop_slowest", "m": 4}])")).find("/policies/0/m: expected m < K = 4") != std::string::npos);
}

}  // namespace tailsim

namespace tailsim {

namespace {

// Two ranks in one process: rank 1 runs first and hands its bytes to rank 0's gather.
class TwoRanks final : public Distributor {
 public:
  TwoRanks(int rank, std::string* other) : rank_(rank), other_(other) {}
  int rank() const override { return rank_; }
  int size() const override { return 2; }
  void broadcast(std::string&) override {}
  std::vector<std::string> gather(const std::string& bytes) override {
    if (rank_ == 1) {
      *other_ = bytes;
      return {};
    }
    return {bytes, *other_};
  }

 private:
  int rank_;
  std::string* other_;
};

}  // namespace

TEST_CASE("what-if and eviction tallies cross process boundaries intact: two ranks give the one-process records") {
  const std::string doc = R"({"name": "p", "seed": 3, "steps": 6, "replications": 2, "cluster": {"gpus": 8},
    "workload": {"type": "pipeline", "pp": 2, "microbatches": 4, "forward": {"type": "lognormal", "mu": -4.6, "sigma": 0.2},
                 "whatif": {"decompose": true}, "slow": [{"ranks": [5], "factor": 3}]},
    "policies": [{"type": "none"}, {"type": "evict", "window": 2, "spares": 1}]})";
  const Scenario sc = load_scenario_json(Json::parse(doc), "test.json");
  const std::vector<PointModel> models = build_all_points(sc);
  const RunResults one = run_scenario(sc, models, RunOptions{1});
  std::string bytes;
  TwoRanks r1(1, &bytes), r0(0, &bytes);
  RunOptions o1{1}, o0{1};
  o1.distributor = &r1;
  o0.distributor = &r0;
  run_scenario(sc, models, o1);
  const RunResults two = run_scenario(sc, models, o0);
  REQUIRE(two.records.size() == 2);
  REQUIRE(two.records[1].evicted);
  CHECK(*two.records[1].evicted == std::vector<Eviction>{{5, 2, true}});
  CHECK(two.records[1].evicted == one.records[1].evicted);
  const auto& a = *one.records[0].whatif;
  const auto& b = *two.records[0].whatif;
  CHECK(a.slowdown == b.slowdown);
  CHECK(a.by_dp_rank == b.by_dp_rank);
  CHECK(a.by_stage == b.by_stage);
  CHECK(b.by_dp_rank.size() == 4);
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("forward and backward may be given per stage") {
  const auto r = test::run_json(scenario(R"({"type": "pipeline", "pp": 2, "microbatches": 4,
      "forward": [{"type": "constant", "value": 0.01}, {"type": "constant", "value": 0.02}],
      "backward": [{"type": "constant", "value": 0.02}, {"type": "constant", "value": 0.04}]})", 2));
  // Slow last stage: (f + b) + (f' + b') + (m - 1)(f' + b') = 0.03 + 0.06 + 3 x 0.06.
  CHECK(test::record(r, "none").step_time.mean == doctest::Approx(0.27).epsilon(1e-9));
  CHECK(test::run_error(scenario(R"({"type": "pipeline", "pp": 2, "forward": [{"type": "constant", "value": 0.01}]})", 2))
            .find("/workload/forward: expected a distribution or an array of pp = 2 distributions") != std::string::npos);
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("fail-slow episodes slow compute or links while they last") {
  const std::string base = R"({"type": "pipeline", "pp": 4, "microbatches": 8, "forward": {"type": "constant", "value": 0.01})";
  const auto always = [&](const std::string& kind, const std::string& extra) {
    return test::run_json(scenario(base + extra + R"(, "fail_slow": [{"kind": ")" + kind + R"(", "rate_per_rank_step": 1,
        "duration_steps": {"type": "constant", "value": 1}, "factor": {"type": "constant", "value": 2}}]})"));
  };
  // Every rank slowed 2x at every step: twice the 1F1B makespan.
  CHECK(test::record(always("compute", ""), "none").step_time.mean == doctest::Approx(0.66).epsilon(1e-9));
  // Links 2x: the p2p transfers double, compute does not.
  // One GPU a node: every p2p crosses the NIC (which has a default bandwidth).
  const auto nic = [](std::string doc) { return doc.replace(doc.find(R"("gpus_per_node": 8)"), 18, R"("gpus_per_node": 1)"); };
  const auto slow = test::run_json(nic(scenario(base + R"(, "p2p_bytes": "10MB", "fail_slow": [{"kind": "link", "rate_per_rank_step": 1,
        "duration_steps": {"type": "constant", "value": 1}, "factor": {"type": "constant", "value": 2}}]})")));
  const auto plain = test::run_json(nic(scenario(base + R"(, "p2p_bytes": "10MB"})")));
  CHECK(test::record(slow, "none").step_time.mean > test::record(plain, "none").step_time.mean);
  CHECK(test::record(slow, "none").step_time.mean < 0.66);
  const auto never = test::run_json(scenario(base + R"(, "fail_slow": [{"kind": "compute", "rate_per_rank_step": 0,
        "duration_steps": {"type": "constant", "value": 5}, "factor": {"type": "constant", "value": 2}}]})"));
  CHECK(test::record(never, "none").step_time.mean == doctest::Approx(0.33).epsilon(1e-9));
  CHECK(test::run_error(scenario(base + R"(, "fail_slow": [{"kind": "disk", "rate_per_rank_step": 0,
        "duration_steps": {"type": "constant", "value": 5}, "factor": {"type": "constant", "value": 2}}]})")).find("/workload/fail_slow/0/kind") != std::string::npos);
}

TEST_CASE("random fail-slow episodes come and go, the same for every policy") {
  const auto r = test::run_json(scenario(R"({"type": "pipeline", "pp": 2, "microbatches": 4, "forward": {"type": "constant", "value": 0.01},
      "fail_slow": [{"kind": "compute", "rate_per_rank_step": 0.0005, "duration_steps": {"type": "constant", "value": 20},
                     "factor": {"type": "constant", "value": 3}}]})", 16, R"([{"type": "none"}, {"type": "none", "name": "again"}])", 400));
  const auto& a = test::record(r, "none").step_time;
  // A rank is in an episode about 1 % of the steps, so most steps (0.99^16 = 85 %) have none.
  CHECK(a.p50 == doctest::Approx(0.15).epsilon(1e-9));
  // With one: at least the slow stage's m x 3(f + b), at most every rank at 3x.
  CHECK(a.max >= 0.36 - 1e-9);
  CHECK(a.max <= 0.45 + 1e-9);
  CHECK(test::record(r, "again").step_time.mean == a.mean);
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("--trace writes the pipeline's tasks, rank by rank") {
  const std::string path = test::write_temp("pipe-trace-scenario.json", scenario(R"({"type": "pipeline", "pp": 2, "microbatches": 2, "forward": {"type": "constant", "value": 0.01}})", 2, R"([{"type": "none"}])", 3));
  const std::string out = test::write_temp("pipe-trace.json", "");
  const auto r = test::run_cli("run " + path + " --quiet --trace " + out + " --trace-steps 2");
  REQUIRE(r.exit_code == 0);
  const Json doc = Json::parse(test::read_file(out));
  int tasks = 0, steps = 0;
  for (const Json& e : doc.at("traceEvents"))
    if (e.value("ph", "") == "X") (e.at("name") == "step" ? steps : tasks) += 1;
  CHECK(steps == 2);
  CHECK(tasks == 2 * 2 * 2 * 2);  // steps x ranks x microbatches x (forward, backward)
}

}  // namespace tailsim
