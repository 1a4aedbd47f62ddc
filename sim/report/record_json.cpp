// One record in results.json form, and back (records.jsonl lines carry records in this form).
#include <string>

#include "sim/config/error.hpp"
#include "sim/config/configs.hpp"
#include "sim/config/json_reader.hpp"
#include "sim/report/records.hpp"

namespace tailsim {

Json record_json(const Record& rec, bool timing, bool slowdown) {
  Json params = Json::object();
  for (const auto& [k, v] : rec.params) params[k] = v;
  const StepTimeSummary& s = rec.step_time;
  Json j = {{"params", params},
            {"policy", rec.policy},
            {"steps", s.count},
            {"step_time",
             {{"mean", s.mean}, {"stddev", s.stddev}, {"ci95_low", s.ci95_low}, {"ci95_high", s.ci95_high}, {"p50", s.p50},
              {"p90", s.p90}, {"p99", s.p99}, {"p999", s.p999}, {"max", s.max}}}};
  if (slowdown && rec.slowdown_vs_k1) j["slowdown_vs_k1"] = *rec.slowdown_vs_k1;
  j["idle_fraction"] = rec.idle_fraction;
  if (rec.extra_work_fraction) j["extra_work_fraction"] = *rec.extra_work_fraction;
  if (rec.moe) {
    j["load_imbalance"] = rec.moe->load_imbalance;
    j["time_split"] = {{"compute", rec.moe->compute_fraction},
                       {"communication", rec.moe->communication_fraction},
                       {"barrier_wait", rec.moe->barrier_wait_fraction}};
    j["bytes_moved"] = rec.moe->bytes_moved;
    j["throughput"] = {{"tokens_per_s", rec.moe->tokens_per_s}, {"tokens_per_s_per_gpu", rec.moe->tokens_per_s_per_gpu}};
    if (const auto& c = rec.moe->routing) {
      j["dropped_fraction"] = c->dropped_fraction;
      j["rerouted_fraction"] = c->rerouted_fraction;
      j["dropped_gate_mass"] = c->dropped_gate_mass;
    }
    if (const auto& w = rec.moe->weights) {
      j["weight_bytes_moved"] = w->bytes_moved;
      j["weight_stall_s"] = w->stall_s;
    }
    if (rec.moe->predictor_mape) j["predictor_mape"] = *rec.moe->predictor_mape;
    if (rec.moe->predictor_mape_h1) j["predictor_mape_h1"] = *rec.moe->predictor_mape_h1;
    if (rec.moe->predictor_mape_stable) j["predictor_mape_stable"] = *rec.moe->predictor_mape_stable;
    if (rec.moe->predictor_mape_fluctuating) j["predictor_mape_fluctuating"] = *rec.moe->predictor_mape_fluctuating;
    if (rec.moe->prefetch_hit_rate) j["prefetch_hit_rate"] = *rec.moe->prefetch_hit_rate;
    if (rec.moe->backup_bytes_per_gpu) j["backup_bytes_per_gpu"] = *rec.moe->backup_bytes_per_gpu;
  }
  if (const auto& w = rec.whatif) {
    j["whatif_slowdown"] = w->slowdown;
    if (!w->by_dp_rank.empty()) j["whatif_by_dp_rank"] = w->by_dp_rank;
    if (!w->by_stage.empty()) j["whatif_by_stage"] = w->by_stage;
  }
  if (const auto& v = rec.vs_baseline) {
    j["vs_baseline"] = {{"policy", v->policy}, {"speedup", v->speedup}};
    if (v->ci95_low) j["vs_baseline"]["ci95_low"] = *v->ci95_low;
    if (v->ci95_high) j["vs_baseline"]["ci95_high"] = *v->ci95_high;
  }
  if (rec.evicted) {
    j["evicted"] = Json::array();
    for (const Eviction& e : *rec.evicted) j["evicted"].push_back({{"rank", e.rank}, {"step", e.step}, {"spare", e.spare}});
  }
  j["events"] = rec.events;
  if (!rec.engine.empty()) j["engine"] = rec.engine;
  if (timing) j["wall_seconds"] = rec.wall_seconds;
  return j;
}

namespace {

// The values are taken with nlohmann's at() and get(): the message of a malformed record quotes their
// exception ("malformed record: [json.exception.out_of_range.403] key 'p99' not found"), and merge and
// --resume print it as it is; JsonReader only answers which optional keys are present.
StepTimeSummary step_time_from_json(const Json& j) {
  const Json& st = j.at("step_time");
  StepTimeSummary s;
  s.count = json_integer<std::int64_t>(j.at("steps"), "steps");
  s.mean = st.at("mean").get<double>();
  s.stddev = st.at("stddev").get<double>();
  s.ci95_low = st.at("ci95_low").get<double>();
  s.ci95_high = st.at("ci95_high").get<double>();
  s.p50 = st.at("p50").get<double>();
  s.p90 = st.at("p90").get<double>();
  s.p99 = st.at("p99").get<double>();
  s.p999 = st.at("p999").get<double>();
  s.max = st.at("max").get<double>();
  return s;
}

MoeRecord moe_from_json(const Json& j) {
  MoeRecord m;
  m.load_imbalance = j.at("load_imbalance").get<double>();
  const Json& split = j.at("time_split");
  m.compute_fraction = split.at("compute").get<double>();
  m.communication_fraction = split.at("communication").get<double>();
  m.barrier_wait_fraction = split.at("barrier_wait").get<double>();
  m.bytes_moved = j.at("bytes_moved").get<double>();
  if (j.contains("dropped_fraction"))
    m.routing = RoutingCost{j.at("dropped_fraction").get<double>(), j.at("rerouted_fraction").get<double>(),
                            j.at("dropped_gate_mass").get<double>()};
  if (j.contains("weight_bytes_moved"))
    m.weights = MoeRecord::Weights{j.at("weight_bytes_moved").get<double>(), j.at("weight_stall_s").get<double>()};
  if (j.contains("predictor_mape")) m.predictor_mape = j.at("predictor_mape").get<double>();
  for (const auto& [key, field] : {std::pair{"predictor_mape_h1", &MoeRecord::predictor_mape_h1},
                                   std::pair{"predictor_mape_stable", &MoeRecord::predictor_mape_stable},
                                   std::pair{"predictor_mape_fluctuating", &MoeRecord::predictor_mape_fluctuating}})
    if (j.contains(key)) m.*field = j.at(key).get<double>();
  if (j.contains("prefetch_hit_rate")) m.prefetch_hit_rate = j.at("prefetch_hit_rate").get<double>();
  if (j.contains("backup_bytes_per_gpu")) m.backup_bytes_per_gpu = j.at("backup_bytes_per_gpu").get<double>();
  if (j.contains("throughput")) {  // absent in records written before it existed
    m.tokens_per_s = j.at("throughput").at("tokens_per_s").get<double>();
    m.tokens_per_s_per_gpu = j.at("throughput").at("tokens_per_s_per_gpu").get<double>();
  }
  return m;
}

VsBaseline vs_baseline_from_json(const Json& j) {
  VsBaseline v;
  v.policy = j.at("policy").get<std::string>();
  v.speedup = j.at("speedup").get<double>();
  if (j.contains("ci95_low") || j.contains("ci95_high")) {
    v.ci95_low = j.at("ci95_low").get<double>();
    v.ci95_high = j.at("ci95_high").get<double>();
  }
  return v;
}

}  // namespace

Record record_from_json(const Json& j, std::size_t point, const std::vector<std::string>& param_names,
                        const std::string& file, const std::string& where) {
  try {
    const JsonReader r(j, file, where);
    Record rec;
    rec.point = point;
    const Json& params = j.at("params");
    for (const std::string& name : param_names) rec.params.emplace_back(name, params.at(name));
    if (params.size() != param_names.size()) throw std::invalid_argument("params do not match the header's param_names");
    rec.policy = j.at("policy").get<std::string>();
    rec.step_time = step_time_from_json(j);
    rec.idle_fraction = j.at("idle_fraction").get<double>();
    if (r.has("extra_work_fraction")) rec.extra_work_fraction = j.at("extra_work_fraction").get<double>();
    if (r.has("load_imbalance")) rec.moe = moe_from_json(j);
    if (r.has("whatif_slowdown")) {
      WhatIfRecord w;
      w.slowdown = j.at("whatif_slowdown").get<double>();
      if (r.has("whatif_by_dp_rank")) w.by_dp_rank = j.at("whatif_by_dp_rank").get<std::vector<double>>();
      if (r.has("whatif_by_stage")) w.by_stage = j.at("whatif_by_stage").get<std::vector<double>>();
      rec.whatif = std::move(w);
    }
    if (r.has("evicted")) {
      rec.evicted.emplace();
      for (const Json& e : j.at("evicted"))
        rec.evicted->push_back({json_integer<std::int64_t>(e.at("rank"), "rank"), json_integer<std::int64_t>(e.at("step"), "step"),
                                e.at("spare").get<bool>()});
    }
    if (r.has("vs_baseline")) rec.vs_baseline = vs_baseline_from_json(j.at("vs_baseline"));
    rec.events = json_integer<std::uint64_t>(j.at("events"), "events");
    if (r.has("engine")) rec.engine = j.at("engine").get<std::string>();
    if (r.has("wall_seconds")) rec.wall_seconds = j.at("wall_seconds").get<double>();
    return rec;
  } catch (const Json::exception& e) {
    throw InputError(file, where, std::string("malformed record: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw InputError(file, where, std::string("malformed record: ") + e.what());
  }
}

}  // namespace tailsim
