#include "sim/run/expect.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "sim/config/error.hpp"

namespace tailsim {

namespace {

const Json* find_dotted(const Json& doc, const std::string& dotted) {
  const Json* node = &doc;
  std::size_t start = 0;
  while (start <= dotted.size()) {
    const std::size_t dot = std::min(dotted.find('.', start), dotted.size());
    const std::string key = dotted.substr(start, dot - start);
    start = dot + 1;
    if (node->is_object() && node->contains(key)) {
      node = &(*node)[key];
    } else if (node->is_array() && !key.empty() && key.find_first_not_of("0123456789") == std::string::npos &&
               std::stoul(key) < node->size()) {
      node = &(*node)[std::stoul(key)];
    } else {
      return nullptr;
    }
  }
  return node;
}

// A record's metric and the half-width of its 95% CI (0 where the metric is not statistical).
struct Measured {
  double value = 0;
  double ci_half = 0;
};

std::optional<Measured> metric_of(const Record& r, const std::string& m) {
  const StepTimeSummary& s = r.step_time;
  if (m == "step_time.mean") return Measured{s.mean, s.ci95_high - s.mean};
  if (m == "slowdown_vs_k1") {
    if (!r.slowdown_vs_k1) return std::nullopt;
    return Measured{*r.slowdown_vs_k1, *r.slowdown_vs_k1 * (s.mean > 0 ? (s.ci95_high - s.mean) / s.mean : 0)};
  }
  const std::pair<const char*, double> plain[] = {
      {"step_time.stddev", s.stddev}, {"step_time.p50", s.p50}, {"step_time.p90", s.p90},
      {"step_time.p99", s.p99},       {"step_time.p999", s.p999}, {"step_time.max", s.max},
      {"idle_fraction", r.idle_fraction}, {"events", static_cast<double>(r.events)},
      {"steps", static_cast<double>(s.count)}};
  for (const auto& [name, v] : plain)
    if (m == name) return Measured{v, 0};
  if (m == "evicted_ranks" || m == "first_eviction_step") {
    if (!r.evicted || (m == "first_eviction_step" && r.evicted->empty())) return std::nullopt;
    return Measured{static_cast<double>(m == "evicted_ranks" ? r.evicted->size() : r.evicted->front().step), 0};
  }
  if (m == "extra_work_fraction") {
    if (!r.extra_work_fraction) return std::nullopt;
    return Measured{*r.extra_work_fraction, 0};
  }
  if (r.whatif) {
    if (m == "whatif_slowdown") return Measured{r.whatif->slowdown, 0};
    for (const auto& [prefix, values] : {std::pair{std::string("whatif_by_dp_rank."), &r.whatif->by_dp_rank},
                                         std::pair{std::string("whatif_by_stage."), &r.whatif->by_stage}}) {
      if (m.rfind(prefix, 0) != 0) continue;
      const std::string index = m.substr(prefix.size());
      if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos || index.size() > 9) return std::nullopt;
      const auto i = static_cast<std::size_t>(std::stoul(index));
      if (i >= values->size()) return std::nullopt;
      return Measured{(*values)[i], 0};
    }
  }
  if (!r.moe) return std::nullopt;
  if (m == "load_imbalance") return Measured{r.moe->load_imbalance, 0};
  if (m == "time_split.compute") return Measured{r.moe->compute_fraction, 0};
  if (m == "time_split.communication") return Measured{r.moe->communication_fraction, 0};
  if (m == "time_split.barrier_wait") return Measured{r.moe->barrier_wait_fraction, 0};
  if (m == "bytes_moved") return Measured{r.moe->bytes_moved, 0};
  if (m == "throughput.tokens_per_s") return Measured{r.moe->tokens_per_s, 0};
  if (m == "throughput.tokens_per_s_per_gpu") return Measured{r.moe->tokens_per_s_per_gpu, 0};
  if (m == "weight_bytes_moved" && r.moe->weights) return Measured{r.moe->weights->bytes_moved, 0};
  if (m == "weight_stall_s" && r.moe->weights) return Measured{r.moe->weights->stall_s, 0};
  if (m == "predictor_mape" && r.moe->predictor_mape) return Measured{*r.moe->predictor_mape, 0};
  if (m == "predictor_mape_h1" && r.moe->predictor_mape_h1) return Measured{*r.moe->predictor_mape_h1, 0};
  if (m == "predictor_mape_stable" && r.moe->predictor_mape_stable) return Measured{*r.moe->predictor_mape_stable, 0};
  if (m == "predictor_mape_fluctuating" && r.moe->predictor_mape_fluctuating)
    return Measured{*r.moe->predictor_mape_fluctuating, 0};
  if (m == "prefetch_hit_rate" && r.moe->prefetch_hit_rate) return Measured{*r.moe->prefetch_hit_rate, 0};
  if (m == "backup_bytes_per_gpu" && r.moe->backup_bytes_per_gpu) return Measured{*r.moe->backup_bytes_per_gpu, 0};
  if (!r.moe->routing) return std::nullopt;
  if (m == "dropped_fraction") return Measured{r.moe->routing->dropped_fraction, 0};
  if (m == "rerouted_fraction") return Measured{r.moe->routing->rerouted_fraction, 0};
  if (m == "dropped_gate_mass") return Measured{r.moe->routing->dropped_gate_mass, 0};
  return std::nullopt;
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

std::string where_text(const Json& where) {
  std::string out;
  for (auto it = where.begin(); it != where.end(); ++it)
    out += (out.empty() ? "" : ", ") + it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump());
  return out.empty() ? "every point" : out;
}

// Does point `p` (its scenario document) satisfy the where's path keys? ("policy" is checked by the caller.)
bool point_matches(const ScenarioPoint& p, const Json& where) {
  for (auto it = where.begin(); it != where.end(); ++it) {
    if (it.key() == "policy") continue;
    const Json* v = find_dotted(p.doc, it.key());
    if (!v || *v != *it) return false;
  }
  return true;
}

const Record* find_record(const RunResults& results, std::size_t point, const std::string& policy) {
  for (const Record& r : results.records)
    if (r.point == point && r.policy == policy) return &r;
  return nullptr;
}

Verdict judge(const Expectation& e, const std::string& name, const Measured& m) {
  Verdict v;
  v.name = name;
  std::vector<std::string> parts;
  bool ok = std::isfinite(m.value);
  const std::string ci = m.ci_half > 0 ? " + " + fmt(m.ci_half) + " (95% CI)" : "";
  if (e.value) {
    const double tol = e.rel_tol.value_or(0) * std::fabs(*e.value) + e.abs_tol.value_or(0) + m.ci_half;
    ok = ok && std::fabs(m.value - *e.value) <= tol;
    parts.push_back("expected " + fmt(*e.value) + " ± " + fmt(tol - m.ci_half) +
                    (e.rel_tol ? " (rel_tol " + fmt(*e.rel_tol) + ")" : "") + ci);
  }
  if (e.min) {
    ok = ok && m.value + m.ci_half >= *e.min;
    parts.push_back("min " + fmt(*e.min) + ci);
  }
  if (e.max) {
    ok = ok && m.value - m.ci_half <= *e.max;
    parts.push_back("max " + fmt(*e.max) + ci);
  }
  v.passed = ok;
  v.detail = e.metric + " = " + fmt(m.value) + "; ";
  for (std::size_t i = 0; i < parts.size(); ++i) v.detail += (i ? ", " : "") + parts[i];
  return v;
}

}  // namespace

const std::vector<std::string>& expectation_metrics() {
  static const std::vector<std::string> names = {
      "step_time.mean", "step_time.stddev", "step_time.p50", "step_time.p90", "step_time.p99", "step_time.p999",
      "step_time.max", "slowdown_vs_k1", "idle_fraction", "extra_work_fraction", "load_imbalance",
      "time_split.compute", "time_split.communication", "time_split.barrier_wait", "bytes_moved",
      "throughput.tokens_per_s", "throughput.tokens_per_s_per_gpu", "dropped_fraction",
      "rerouted_fraction", "dropped_gate_mass", "weight_bytes_moved", "weight_stall_s", "predictor_mape",
      "predictor_mape_h1", "predictor_mape_stable", "predictor_mape_fluctuating",
      "prefetch_hit_rate", "backup_bytes_per_gpu", "whatif_slowdown", "whatif_by_dp_rank.N", "whatif_by_stage.N",
      "evicted_ranks", "first_eviction_step",
      "events", "steps", "speedup"};
  return names;
}

std::vector<Expectation> parse_expectations(const Scenario& sc) {
  std::vector<Expectation> out;
  if (sc.expect.is_null()) return out;
  const JsonReader root(sc.expect, sc.file, "/expect");
  for (const JsonReader& n : root.elements()) {
    n.expect_object();
    Expectation e;
    e.path = n.path();
    // whatif_by_dp_rank.N and whatif_by_stage.N name one entry of a decomposition.
    const std::string metric = n.string("metric");
    const bool indexed = (metric.rfind("whatif_by_dp_rank.", 0) == 0 || metric.rfind("whatif_by_stage.", 0) == 0) &&
                         metric.back() >= '0' && metric.back() <= '9';
    e.metric = indexed ? metric : n.string("metric", {}, expectation_metrics());
    if (const auto w = n.optional_child("where")) {
      w->expect_object();
      e.where = w->value();
      if (e.where.contains("policy") && !e.where["policy"].is_string())
        w->child("policy").fail_expected("a policy label (a string)");
    } else {
      e.where = Json::object();
    }
    const auto bound = [&](const char* key) -> std::optional<double> {
      if (!n.has(key)) return std::nullopt;
      return n.number(key);
    };
    e.value = bound("value");
    e.rel_tol = n.has("rel_tol") ? std::optional<double>(n.number("rel_tol", {}, at_least(0))) : std::nullopt;
    e.abs_tol = n.has("abs_tol") ? std::optional<double>(n.number("abs_tol", {}, at_least(0))) : std::nullopt;
    e.min = bound("min");
    e.max = bound("max");
    if (!e.value && !e.min && !e.max) n.fail("expected a bound: 'value' (with 'rel_tol' or 'abs_tol'), 'min' or 'max'");
    if ((e.rel_tol || e.abs_tol) && !e.value) n.fail("'rel_tol' and 'abs_tol' need a 'value'");
    if (e.min && e.max && *e.min > *e.max) n.fail("'min' is above 'max'");
    if (e.metric == "speedup") {
      e.baseline = n.string("baseline", "");
      e.policy = n.string("policy");
      if (e.where.contains("policy")) n.child("where").fail("a speedup names its policies in 'baseline' and 'policy', not in 'where'");
    }
    n.finish();
    out.push_back(std::move(e));
  }
  return out;
}

void check_expectations_match(const Scenario& sc, const std::vector<PointModel>& models,
                              const std::vector<Expectation>& expectations) {
  for (const Expectation& e : expectations) {
    bool any = false;
    for (std::size_t p = 0; p < sc.points.size() && !any; ++p) {
      if (!point_matches(sc.points[p], e.where)) continue;
      std::vector<std::string> labels;
      for (const auto& pol : models[p].policies) labels.push_back(pol->label());
      const auto has = [&](const std::string& l) { return std::find(labels.begin(), labels.end(), l) != labels.end(); };
      if (e.metric == "speedup") {
        for (const std::string* l : {&e.baseline, &e.policy})
          if (!l->empty() && !has(*l))
            throw InputError(sc.file, e.path, "speedup: no policy labelled '" + *l + "' (policies: " + join(labels) + ")");
        const std::string& base = labels[models[p].baseline];
        if (!e.baseline.empty() && e.baseline != base)
          throw InputError(sc.file, e.path + "/baseline",
                           "speedup is paired against the scenario's baseline policy, '" + base + "', not '" +
                               e.baseline + "'; set the scenario's \"baseline\": \"" + e.baseline +
                               "\" to compare with it (or leave 'baseline' out here)");
        if (e.policy == base)
          throw InputError(sc.file, e.path + "/policy", "speedup of the baseline '" + base + "' over itself; name another policy");
        any = true;
      } else {
        any = !e.where.contains("policy") || has(e.where["policy"].get<std::string>());
      }
    }
    if (!any)
      throw InputError(sc.file, e.path + "/where",
                       "matches no point of the scenario (" + where_text(e.where) + "; " + std::to_string(sc.points.size()) +
                           " point" + (sc.points.size() == 1 ? "" : "s") + ")");
  }
}

std::vector<Verdict> evaluate_expectations(const Scenario& sc, const RunResults& results,
                                           const std::vector<Expectation>& expectations) {
  std::vector<Verdict> out;
  for (const Expectation& e : expectations) {
    for (std::size_t p = 0; p < sc.points.size(); ++p) {
      if (!point_matches(sc.points[p], e.where)) continue;
      const std::string at = sc.points[p].label();
      if (e.metric == "speedup") {
        const Record* pol = find_record(results, p, e.policy);
        if (!pol) continue;
        const std::string name = "speedup of " + e.policy + " over " +
                                 (pol->vs_baseline ? pol->vs_baseline->policy : "the baseline") + (at.empty() ? "" : " at " + at);
        if (!pol->vs_baseline) {
          out.push_back({name, false, "speedup does not apply: the policy's mean step time is 0"});
          continue;
        }
        const VsBaseline& v = *pol->vs_baseline;
        out.push_back(judge(e, name, Measured{v.speedup, v.ci95_high ? *v.ci95_high - v.speedup : 0}));
        continue;
      }
      for (const Record& r : results.records) {
        if (r.point != p || (e.where.contains("policy") && r.policy != e.where["policy"].get<std::string>())) continue;
        const std::string name = e.metric + " at " + (at.empty() ? "" : at + ", ") + "policy=" + r.policy;
        const std::optional<Measured> m = metric_of(r, e.metric);
        if (!m) {
          out.push_back({name, false, e.metric + " does not apply to this record"});
          continue;
        }
        out.push_back(judge(e, name, *m));
      }
    }
  }
  return out;
}

}  // namespace tailsim
