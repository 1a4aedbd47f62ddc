// The router registry: the named presets of the generated router (calibrated in docs/routing.md), the
// router objects a scenario writes, and the sources built from them once per scenario.
#include <filesystem>

#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "sim/workload/routing_models.hpp"

namespace tailsim {

// ---- presets -------------------------------------------------------------------------------------------

std::optional<GeneratedRoutingParams> routing_preset(std::string_view name) {
  GeneratedRoutingParams p;
  if (name == "uniform") {
    p.skew_family = SkewFamily::kZipf;
    p.skew = 0.0;
    p.layer_correlation = 0.0;
    p.batch_noise = 0.0;
    p.phases = {{1, 0.0}};
    return p;
  }
  // Both calibrated in docs/routing.md against models/routing/expert_counts.csv (the test "routing presets
  // land within tolerance of the measured OLMoE and Mixtral skew" checks them): the Dirichlet concentration
  // against the long-run skew pooled over text domains, batch_noise against the skew of one domain's
  // routing, layer_correlation against models/routing/crosslayer_estimates.csv (median of the implied
  // per-layer values). Drift keeps the default: a stable phase of 5e-4 nats per step.
  if (name == "mixtral") {
    // Mixtral-8x7B top-2: max/mean 1.07-1.18 pooled, 1.08-1.33 within a domain; layers ~0.79.
    p.skew_family = SkewFamily::kDirichlet;
    p.skew = 120.0;
    p.layer_correlation = 0.8;
    p.batch_noise = 0.09;
    p.group_tokens = 2048;
    return p;
  }
  if (name == "olmoe") {
    // OLMoE-1B-7B top-8: max/mean 2.1-3.0 pooled, 2.5-7.8 within a domain; layers ~0.90.
    p.skew_family = SkewFamily::kDirichlet;
    p.skew = 3.0;
    p.layer_correlation = 0.9;
    p.batch_noise = 0.6;
    p.group_tokens = 2048;
    return p;
  }
  // DeepSeek-V3 top-8 of 256 in 8 groups of 32, calibrated in docs/routing.md against SGLang's per-layer
  // counts (models/routing/sglang-ep-stats; the test "deepseek-v3 presets match SGLang's counts" checks
  // them): log-normal popularity within groups, a shared offset per group, each layer's sigma drawn around
  // the mean (the spread of max/mean over layers), and consecutive layers as weakly alike as measured
  // (Spearman 0.24 decode, 0.13 prefill). The per-batch noise is OLMoE's (no per-batch DeepSeek counts are
  // public); at the batch sizes of a large EP deployment it adds little.
  if (name == "deepseek-v3" || name == "deepseek-v3-decode") {
    const bool decode = name == "deepseek-v3-decode";
    p.skew_family = SkewFamily::kLogNormal;
    p.skew = decode ? 0.51 : 0.67;
    p.layer_spread = decode ? 0.12 : 0.08;
    p.groups = 8;
    p.group_skew = decode ? 0.57 : 0.37;
    p.group_limit = 4;
    p.layer_correlation = decode ? 0.25 : 0.15;
    p.batch_noise = 0.6;
    p.group_tokens = 2048;
    return p;
  }
  return std::nullopt;
}

std::vector<std::string> routing_preset_names() {
  return {"deepseek-v3", "deepseek-v3-decode", "mixtral", "olmoe", "uniform"};
}
// ---- registry ------------------------------------------------------------------------------------------

namespace {

// SGLang's expert-distribution JSON ({"logical_count": [[count per expert] per layer]}): the last `layers`
// rows (a file of every transformer layer leads with the dense layers' zero rows), each normalized.
std::vector<std::vector<double>> read_sglang_counts(const std::string& path, int layers, int experts) {
  const Json doc = parse_json_file(path);
  const JsonReader root(doc, path);
  root.expect_object();
  const auto rows = root.array("logical_count");
  if (rows.size() < static_cast<std::size_t>(layers))
    root.child("logical_count").fail("expected at least " + std::to_string(layers) + " layers (the model's MoE layers), got " +
                                     std::to_string(rows.size()));
  std::vector<std::vector<double>> out;
  for (std::size_t i = rows.size() - static_cast<std::size_t>(layers); i < rows.size(); ++i) {
    const auto counts = rows[i].elements();
    if (counts.size() != static_cast<std::size_t>(experts))
      rows[i].fail("expected " + std::to_string(experts) + " experts' counts, got " + std::to_string(counts.size()));
    std::vector<double> row;
    double total = 0;
    for (const JsonReader& c : counts) total += row.emplace_back(c.as_number(Range{0.0, 1e300}));
    if (!(total > 0)) rows[i].fail("expected some tokens in a MoE layer, got a row of zeros");
    for (double& x : row) x /= total;
    out.push_back(std::move(row));
  }
  return out;
}

std::shared_ptr<const std::vector<std::vector<double>>> read_popularity(const JsonReader& n, const RouterContext& shape) {
  const JsonReader at = n.child("popularity");
  std::filesystem::path path(n.string("popularity"));
  if (path.is_relative() && !n.file().empty()) path = std::filesystem::path(n.file()).parent_path() / path;
  const std::string key = "sglang:" + std::to_string(shape.layers) + "x" + std::to_string(shape.experts) + ":" + path.string();
  try {
    return parse_shared<std::vector<std::vector<double>>>(
        key, [&] { return read_sglang_counts(path.string(), shape.layers, shape.experts); });
  } catch (const InputError& e) {
    at.fail(e.file() + (e.path().empty() ? "" : " " + e.path()) + ": " + e.message());
  }
}

GeneratedRoutingParams read_generated(const JsonReader& n, const RouterContext& shape) {
  const std::vector<std::string> presets = routing_preset_names();
  GeneratedRoutingParams p;
  if (n.has("preset")) {
    p = *routing_preset(n.string("preset", std::nullopt, presets));
  } else if (!n.has("skew") && !n.has("popularity")) {
    n.fail("a generated router needs 'preset' (one of " + join(presets) + "), 'skew' ({\"zipf\": s}, "
           "{\"dirichlet\": alpha} or {\"lognormal\": sigma}) or 'popularity' (an SGLang expert-distribution file)");
  }
  if (n.has("popularity") && n.has("skew"))
    n.child("skew").fail("'skew' and 'popularity' both set the long-run popularity: give one of them");
  if (const auto skew = n.optional_child("skew")) {
    skew->expect_object();
    if (skew->has("zipf") + skew->has("dirichlet") + skew->has("lognormal") != 1)
      skew->fail("expected exactly one of 'zipf' (exponent >= 0), 'dirichlet' (concentration > 0) or 'lognormal' "
                 "(sigma >= 0), got " + brief(skew->value()));
    if (skew->has("lognormal")) {
      p.skew_family = SkewFamily::kLogNormal;
      p.skew = skew->number("lognormal", std::nullopt, Range{0.0, 10.0});
    } else if (skew->has("zipf")) {
      p.skew_family = SkewFamily::kZipf;
      p.skew = skew->number("zipf", std::nullopt, Range{0.0, 10.0});
    } else {
      p.skew_family = SkewFamily::kDirichlet;
      p.skew = skew->number("dirichlet", std::nullopt, Range{0.0, 1e6, true, false});
    }
    skew->finish();
  }
  p.layer_spread = n.number("layer_spread", p.layer_spread, Range{0.0, 3.0});
  p.groups = static_cast<int>(n.integer("groups", p.groups, Range{1.0, 65536.0}));
  if (shape.experts % p.groups != 0)
    n.child("groups").fail("expected a divisor of the model's " + std::to_string(shape.experts) + " experts, got " +
                           std::to_string(p.groups));
  p.group_skew = n.number("group_skew", p.group_skew, Range{0.0, 5.0});
  if (p.groups == 1) p.group_limit = 0;
  p.group_limit = static_cast<int>(n.integer("group_limit", p.group_limit, Range{0.0, static_cast<double>(p.groups)}));
  if (p.group_limit > 0 && p.group_limit * (shape.experts / p.groups) < shape.top_k)
    (n.has("group_limit") ? n.child("group_limit") : n)
        .fail("expected group_limit x experts per group >= top_k (" + std::to_string(shape.top_k) + "), got " +
              std::to_string(p.group_limit) + " x " + std::to_string(shape.experts / p.groups));
  if (n.has("popularity")) p.popularity = read_popularity(n, shape);
  p.layer_correlation = n.number("layer_correlation", p.layer_correlation, Range{0.0, 1.0});
  p.batch_noise = n.number("batch_noise", p.batch_noise, Range{0.0, 5.0});
  p.group_tokens = n.integer("group_tokens", p.group_tokens, at_least(1));
  if (n.has("phases")) {
    const auto items = n.array("phases");
    if (items.empty()) n.child("phases").fail_expected("a non-empty array of {steps, volatility}");
    p.phases.clear();
    for (const JsonReader& ph : items) {
      ph.expect_object();
      RoutingPhase phase;
      phase.steps = ph.integer("steps", std::nullopt, at_least(1));
      phase.volatility = ph.number("volatility", std::nullopt, Range{0.0, 2.0});
      ph.finish();
      p.phases.push_back(phase);
    }
  }
  p.reversion = n.number("reversion", p.reversion, Range{0.0, 1.0});
  p.gate_concentration = n.number("gate_concentration", p.gate_concentration, Range{0.0, 1e4, true, false});
  return p;
}

class GeneratedSource final : public RouterSource {
 public:
  explicit GeneratedSource(GeneratedRoutingParams params) : params_(std::move(params)) {}
  std::unique_ptr<Router> make(const RouterContext& context) const override {
    return std::make_unique<GeneratedRouter>(params_, context);
  }
  double gate_concentration() const override { return params_.gate_concentration; }
  int expert_groups() const override { return params_.groups; }
  int group_limit() const override { return params_.group_limit; }
  std::int64_t stable_from() const override {
    std::int64_t start = 0;  // as GeneratedRouter lays out its phases
    for (std::size_t i = 0; i + 1 < params_.phases.size(); ++i) start += std::max<std::int64_t>(params_.phases[i].steps, 1);
    return start;
  }

 private:
  GeneratedRoutingParams params_;
};

class TraceSource final : public RouterSource {
 public:
  TraceSource(std::shared_ptr<const RoutingTrace> trace, double gate_concentration)
      : trace_(std::move(trace)), gate_concentration_(gate_concentration) {}
  std::unique_ptr<Router> make(const RouterContext& context) const override {
    return std::make_unique<TraceRouter>(trace_, context, gate_concentration_);
  }
  double gate_concentration() const override { return gate_concentration_; }
  void count_held(HeldBytes& held) const override {
    held.add_shared(trace_.get(), trace_->counts.capacity() * sizeof(std::uint32_t) +
                                      trace_->totals.capacity() * sizeof(std::int64_t));
  }

 private:
  std::shared_ptr<const RoutingTrace> trace_;
  double gate_concentration_;
};

std::unique_ptr<RouterSource> make_generated(const JsonReader& n, const RouterContext& context) {
  auto source = std::make_unique<GeneratedSource>(read_generated(n, context));
  try {
    source->make(context);  // the shape is checked here, once, with the node's path in the error
  } catch (const std::invalid_argument& e) {
    n.fail(e.what());
  }
  return source;
}

std::unique_ptr<RouterSource> make_trace(const JsonReader& n, const RouterContext& context) {
  const JsonReader at = n.child("file");
  const std::string name = n.string("file");
  std::filesystem::path path(name);
  if (path.is_relative() && !n.file().empty()) path = std::filesystem::path(n.file()).parent_path() / path;
  const double beta = n.number("gate_concentration", 1.0, Range{0.0, 1e4, true, false});
  if (context.layers < 1 || context.experts < 1 || context.top_k < 1 || context.top_k > context.experts)
    n.fail("a trace router needs a model with layers >= 1 and experts >= top_k >= 1");
  // Parsed once per run, however many sweep points replay it (the shape is part of what is parsed).
  const std::string key = "trace:" + std::to_string(context.layers) + "x" + std::to_string(context.experts) + ":" +
                          path.string();
  try {
    return std::make_unique<TraceSource>(
        parse_shared<RoutingTrace>(key, [&] { return read_routing_trace(path.string(), context.layers, context.experts); }),
        beta);
  } catch (const InputError& e) {
    at.fail(e.file() + (e.path().empty() ? "" : " " + e.path()) + ": " + e.message());
  }
}

RouterRegistry build_router_registry() {
  RouterRegistry r("routers");
  r.add("generated",
        "top-k routing from a calibrated model: skew, drift with fluctuating/stable phases, layer similarity, "
        "per-batch content noise, gate scores",
        {{"preset", "deepseek-v3 | deepseek-v3-decode | mixtral | olmoe | uniform: calibrated defaults for every key "
                    "below (docs/routing.md)"},
         {"skew", "{\"zipf\": s >= 0}, {\"dirichlet\": alpha > 0} or {\"lognormal\": sigma >= 0}: shape of the "
                  "long-run popularity"},
         {"layer_spread", "lognormal: a layer's sigma is skew x exp(spread z - spread^2/2), z ~ N(0,1); [0, 3], default 0"},
         {"groups", "expert groups (contiguous blocks), dividing the experts; default 1"},
         {"group_skew", "std (nats) of a group's shared log-popularity offset, [0, 5], default 0"},
         {"group_limit", "groups a token's experts come from at most, [0, groups], 0 (default): no limit; with groups "
                         "placed by node it limits the nodes a token's dispatch reaches"},
         {"popularity", "SGLang expert-distribution JSON ({\"logical_count\": [[...] per layer]}), relative to the "
                        "scenario: the long-run popularity of the last `layers` rows, instead of 'skew'"},
         {"layer_correlation", "Spearman correlation of consecutive layers' popularities, [0, 1], default 0.9"},
         {"batch_noise", "log-popularity std (nats) of one token group's own routing, [0, 5], default 0"},
         {"group_tokens", "tokens per group sharing its routing (a document), >= 1, default 2048"},
         {"phases", "drift schedule [{steps >= 1, volatility in nats/step, [0, 2]}], last phase lasts; "
                    "default [{steps: 1, volatility: 0.0005}]"},
         {"reversion", "per-step pull of the drift back to the base, [0, 1], default 0 (random walk)"},
         {"gate_concentration", "Dirichlet concentration of a token's top-k gate weights, > 0, default 1"}},
        make_generated);
  r.add("trace", "replay per-layer, per-step expert counts from a CSV file (steps cycle)",
        {{"file", "CSV path relative to the scenario: header step,layer,e0..e{E-1}; one row per step and layer"},
         {"gate_concentration", "Dirichlet concentration of a token's top-k gate weights, > 0, default 1"}},
        make_trace);
  return r;
}

}  // namespace

const RouterRegistry& router_registry() {
  static const RouterRegistry registry = build_router_registry();
  return registry;
}

std::shared_ptr<const RouterSource> make_router_source(const JsonReader& node, const RouterContext& shape) {
  return router_registry().build(node, shape);
}

std::unique_ptr<Router> make_router(const JsonReader& node, const RouterContext& context) {
  return make_router_source(node, context)->make(context);
}

}  // namespace tailsim
