// Timelines (--trace): valid Chrome trace JSON with named tracks, the same steps as the run, deterministic
// bytes, and the size and file errors.
#include "sim/cluster/trace_sink.hpp"
#include "sim/run/trace_run.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "sim/config/error.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

struct Slice {
  std::int64_t pid = 0, tid = 0, start_ns = 0, end_ns = 0;
  std::string name;
  Json args;
};

struct Trace {
  std::string bytes;
  Json doc;
  std::map<std::int64_t, std::string> processes;  // pid -> name
  std::map<std::int64_t, std::string> tracks;     // tid -> name
  std::vector<Slice> slices;

  bool gpu_track(std::int64_t tid) const {
    const std::string& n = tracks.at(tid);
    return n.starts_with("GPU ") && !n.ends_with(" nvlink") && !n.ends_with(" nic");
  }
  std::vector<const Slice*> steps(std::int64_t pid) const {
    std::vector<const Slice*> out;
    for (const Slice& s : slices)
      if (s.pid == pid && tracks.at(s.tid) == "steps") out.push_back(&s);
    return out;
  }
};

std::int64_t us_to_ns(const Json& us) {
  return std::llround(us.get<double>() * 1000.0);
}

Trace write_and_parse(const std::string& scenario, std::int64_t steps, const std::string& name = "t.json") {
  const Scenario sc = load_scenario_json(Json::parse(scenario), "trace.json");
  const std::vector<PointModel> models = build_all_points(sc);
  const std::string file = (test::temp_dir("trace") / name).string();
  write_trace(sc, models, file, steps);
  Trace t;
  t.bytes = test::read_file(file);
  t.doc = Json::parse(t.bytes);  // throws on invalid JSON
  for (const Json& e : t.doc.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "process_name")
      t.processes[e.at("pid").get<std::int64_t>()] = e.at("args").at("name").get<std::string>();
    if (e.at("ph") == "M" && e.at("name") == "thread_name")
      t.tracks[e.at("tid").get<std::int64_t>()] = e.at("args").at("name").get<std::string>();
    if (e.at("ph") != "X") continue;
    const std::int64_t start = us_to_ns(e.at("ts"));
    t.slices.push_back({e.at("pid").get<std::int64_t>(), e.at("tid").get<std::int64_t>(), start,
                        start + us_to_ns(e.at("dur")), e.at("name").get<std::string>(),
                        e.value("args", Json::object())});
  }
  return t;
}

// Every process holds `steps` steps, back to back, and each step ends where its last GPU finishes: the latest
// end of a slice other than a barrier wait on a GPU track. Nothing of a step leaves it.
void check_steps(const Trace& t, std::int64_t steps) {
  for (const auto& [pid, name] : t.processes) {
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << "process " << name;
    INFO(info_text.str());
    const std::vector<const Slice*> st = t.steps(pid);
    REQUIRE(static_cast<std::int64_t>(st.size()) == steps);
    for (std::int64_t s = 0; s < steps; ++s) {
      const Slice& step = *st[static_cast<std::size_t>(s)];
      CHECK(step.args.at("step") == s);
      if (s > 0) CHECK(step.start_ns == st[static_cast<std::size_t>(s - 1)]->end_ns);
      std::int64_t last_finish = -1;
      for (const Slice& x : t.slices) {
        if (x.pid != pid || x.args.value("step", -1) != s || &x == &step) continue;
        CHECK(x.start_ns >= step.start_ns);
        CHECK(x.end_ns <= step.end_ns);
        if (t.gpu_track(x.tid) && x.name != "barrier wait") last_finish = std::max(last_finish, x.end_ns);
      }
      CHECK(last_finish == step.end_ns);
    }
  }
}

const std::string kBsp = R"({"name": "trace-bsp", "seed": 11, "steps": 6,
  "cluster": {"gpus": 8, "gpu": "h100-sxm", "slow_gpus": [{"count": 1, "factor": 1.6}]},
  "workload": {"type": "bsp", "compute": {"type": "shifted_lognormal", "shift": 1, "mu": -0.7, "sigma": 0.9}},
  "policies": [{"type": "none"}, {"type": "backup", "copies": 2},
               {"type": "backup", "quantile": 0.5, "multiplier": 1.2, "name": "spec"},
               {"type": "drop_slowest", "m": 2}],
  "sweep": {"cluster.gpus": [4, 8]}})";

std::string moe(const std::string& mode) {
  Json doc = Json::parse(R"({"name": "trace-moe", "seed": 3, "steps": 4,
    "cluster": {"gpus": 16, "gpus_per_node": 8, "gpu": "h100-sxm",
                "noise": {"type": "normal", "mean": 1, "stddev": 0.05}},
    "workload": {"type": "moe", "tokens_per_gpu": 64,
      "model": {"name": "toy", "layers": 3, "dense_layers": 1, "dense_intermediate": 2048, "experts": 16,
                "top_k": 2, "hidden": 1024, "expert_intermediate": 512, "attention_params_per_layer": 4e6}},
    "policy": {"type": "none"}})");
  doc["workload"]["mode"] = mode;
  return doc.dump();
}

// The step times of every (point, policy) record of a run, against the trace's processes in the same order.
void check_same_steps_as_run(const std::string& scenario, const Trace& t) {
  const RunResults r = test::run_json(scenario);
  REQUIRE(r.records.size() == t.processes.size());
  std::size_t i = 0;
  for (const auto& [pid, name] : t.processes) {
    const Record& rec = r.records[i++];
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << "process " << name << ", record " << rec.policy;
    INFO(info_text.str());
    CHECK(name.ends_with(rec.policy));
    std::int64_t max_ns = 0, sum_ns = 0;
    const std::vector<const Slice*> st = t.steps(pid);
    for (const Slice* s : st) {
      max_ns = std::max(max_ns, s->end_ns - s->start_ns);
      sum_ns += s->end_ns - s->start_ns;
    }
    CHECK(ns_to_seconds(max_ns) == doctest::Approx(rec.step_time.max).epsilon(1e-12));
    CHECK(static_cast<double>(sum_ns) * 1e-9 / static_cast<double>(st.size()) ==
          doctest::Approx(rec.step_time.mean).epsilon(1e-12));
  }
}

std::size_t count_named(const Trace& t, const std::string& name) {
  return static_cast<std::size_t>(
      std::count_if(t.slices.begin(), t.slices.end(), [&](const Slice& s) { return s.name == name; }));
}

}  // namespace

TEST_CASE("a bsp trace shows each GPU's compute and barrier wait, and the straggler releases every step") {
  const Trace t = write_and_parse(kBsp, 6);
  CHECK(t.doc.at("displayTimeUnit") == "ns");
  CHECK(t.doc.at("metadata").at("scenario") == "trace-bsp");
  CHECK(t.doc.at("metadata").at("steps") == 6);
  REQUIRE(t.processes.size() == 8);  // 2 points x 4 policies
  CHECK(t.processes.at(1) == "cluster.gpus=4 | none");
  CHECK(t.processes.at(8) == "cluster.gpus=8 | drop_slowest");
  CHECK(std::count_if(t.tracks.begin(), t.tracks.end(),
                      [](const auto& kv) { return kv.second == "GPU 7 (slow x1.6)"; }) == 4);
  for (const char* name : {"compute", "barrier wait", "backup", "compute (straggler)", "compute (dropped)"}) {
    INFO(name);
    CHECK(count_named(t, name) > 0);
  }
  check_steps(t, 6);
  // With `none`, each step has exactly one straggler, the last to finish.
  for (const Slice* step : t.steps(1)) {
    const std::int64_t s = step->args.at("step");
    std::size_t stragglers = 0;
    for (const Slice& x : t.slices) {
      if (x.pid != 1 || x.args.value("step", -1) != s || x.name != "compute (straggler)") continue;
      ++stragglers;
      CHECK(x.end_ns == step->end_ns);
      const std::string track = t.tracks.at(x.tid);  // "GPU 3" or "GPU 3 (slow x1.6)"
      CHECK(track.substr(0, track.find(" (")) ==
            "GPU " + std::to_string(step->args.at("straggler_gpu").get<int>()));
    }
    CHECK(stragglers == 1);
  }
}

TEST_CASE("the traced steps are the run's first steps: same step times as the runner reports") {
  check_same_steps_as_run(kBsp, write_and_parse(kBsp, 6));
  check_same_steps_as_run(moe("inference"), write_and_parse(moe("inference"), 4));
}

TEST_CASE("a trace is the same bytes twice and with either bsp engine") {
  const Trace a = write_and_parse(kBsp, 3, "a.json");
  CHECK(a.bytes == write_and_parse(kBsp, 3, "b.json").bytes);
  Json events = Json::parse(kBsp);
  events["workload"]["engine"] = "events";
  CHECK(a.bytes == write_and_parse(events.dump(), 3, "c.json").bytes);
}

TEST_CASE("an moe trace shows every layer's phases per GPU and the transfers per NVLink and NIC port") {
  const Trace t = write_and_parse(moe("training"), 2);
  for (const char* name :
       {"dense", "dispatch", "experts", "experts (straggler)", "combine", "barrier wait", "all-reduce"}) {
    INFO(name);
    CHECK(count_named(t, name) > 0);
  }
  CHECK(t.tracks.size() == 1 + 3 * 16);  // steps, then 16 GPUs, their NVLink ports and their NIC ports
  CHECK(t.tracks.at(2) == "GPU 0");
  CHECK(t.tracks.at(18) == "GPU 0 nvlink");
  CHECK(t.tracks.at(34) == "GPU 0 nic");
  std::size_t transfers = 0;
  for (const Slice& s : t.slices) {
    if (t.gpu_track(s.tid) || t.tracks.at(s.tid) == "steps") continue;
    CHECK((s.name == "dispatch" || s.name == "combine" || s.name == "all-reduce"));
    CHECK(s.args.at("bytes_sent").get<double>() > 0);
    ++transfers;
  }
  CHECK(transfers > 0);
  const Slice& experts =
      *std::find_if(t.slices.begin(), t.slices.end(), [](const Slice& s) { return s.name == "experts"; });
  CHECK(experts.args.at("layer").get<int>() >= 1);  // layer 0 is dense
  CHECK(experts.args.at("expert_tokens").get<std::int64_t>() >= 0);
  CHECK(std::any_of(t.slices.begin(), t.slices.end(),
                    [](const Slice& s) { return s.args.value("pass", "") == "backward"; }));
  check_steps(t, 2);
}

TEST_CASE("a two_batch trace shows each micro-batch's computations per GPU and its all-to-alls per port") {
  Json doc = Json::parse(moe("training"));
  doc["workload"]["overlap"] = "two_batch";
  doc["steps"] = 2;
  const Trace t = write_and_parse(doc.dump(), 2);
  check_same_steps_as_run(doc.dump(), t);
  for (const char* name : {"dense 0", "dense 1", "experts 0", "experts 1", "dispatch 0", "dispatch 1", "combine 0", "combine 1"}) {
    INFO(name);
    CHECK(count_named(t, name) > 0);
  }
  std::map<std::int64_t, std::vector<const Slice*>> by_track;
  for (const Slice& s : t.slices)
    if (t.tracks.at(s.tid) != "steps") by_track[s.tid].push_back(&s);
  for (auto& [tid, slices] : by_track) {  // a GPU's compute stream, and each of its ports, run one thing at a time
    std::sort(slices.begin(), slices.end(), [](const Slice* a, const Slice* b) { return a->start_ns < b->start_ns; });
    for (std::size_t i = 1; i < slices.size(); ++i) CHECK(slices[i]->start_ns >= slices[i - 1]->end_ns - 1);
  }
  for (const auto& [pid, name] : t.processes) {  // each step ends with its last transfer or computation
    for (const Slice* step : t.steps(pid)) {
      std::int64_t last = -1;
      for (const Slice& x : t.slices)
        if (x.pid == pid && &x != step && x.args.value("step", -1) == step->args.at("step")) {
          CHECK(x.start_ns >= step->start_ns);
          CHECK(x.end_ns <= step->end_ns);
          last = std::max(last, x.end_ns);
        }
      CHECK(last == step->end_ns);
    }
  }
}

TEST_CASE("a trace covers at most the steps of replication 0") {
  Json doc = Json::parse(kBsp);
  doc["replications"] = 3;  // 6 steps: 2 per replication
  const Trace t = write_and_parse(doc.dump(), 10);
  CHECK(t.doc.at("metadata").at("steps") == 2);
  check_steps(t, 2);
}

TEST_CASE("an oversized trace is refused before it runs, naming a step count that fits") {
  Json doc = Json::parse(kBsp);
  doc["sweep"]["cluster.gpus"] = {1024, 2048};
  doc["steps"] = 1000;
  const Scenario sc = load_scenario_json(doc, "trace.json");
  const std::vector<PointModel> models = build_all_points(sc);
  const std::string file = (test::temp_dir("trace") / "big.json").string();
  try {
    write_trace(sc, models, file, 1000);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(e.path() == "--trace-steps");
    CHECK(e.message().find("more than the limit of 2000000") != std::string::npos);
    CHECK(e.message().find("or fewer (--trace-steps ") != std::string::npos);
  }
  CHECK(!std::filesystem::exists(file));
  CHECK_THROWS_AS(write_trace(sc, models, file, 0), InputError);

  TraceSink sink(4);                                   // the limit also holds while events are written
  sink.begin_process("none");                          // 2 events: name and sort index
  const std::int64_t track = sink.add_track("steps");  // 2 more
  CHECK_THROWS_WITH_AS(sink.slice(track, "step", 0, 1), doctest::Contains("more than 4 events"), InputError);
}

TEST_CASE("a trace file that cannot be written is an input error naming it") {
  const Scenario sc = load_scenario_json(Json::parse(kBsp), "trace.json");
  const std::vector<PointModel> models = build_all_points(sc);
  const std::string file = (test::temp_dir("trace") / "missing-folder" / "t.json").string();
  CHECK_THROWS_WITH_AS(write_trace(sc, models, file, 2), doctest::Contains(file.c_str()), InputError);
}

}  // namespace tailsim
