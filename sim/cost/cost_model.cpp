#include "sim/cost/cost_model.hpp"

#include <algorithm>
#include <filesystem>

#include "sim/cost/profile_table.hpp"
#include "sim/cost/profiled.hpp"
#include "sim/cost/roofline.hpp"
#include "sim/config/error.hpp"

namespace tailsim {

namespace {

const Range kTileRange{1.0, 4096.0};

void check_shape(const JsonReader& n, const ExpertShape& s) {
  if (s.hidden < 1 || s.intermediate < 1)
    n.fail("the expert shape must have hidden >= 1 and intermediate >= 1, got " + std::to_string(s.hidden) + " x " +
           std::to_string(s.intermediate));
  if (s.dtype != "fp16" && s.dtype != "bf16" && s.dtype != "fp8")
    n.fail("unknown expert dtype '" + s.dtype + "'; valid: fp16, bf16, fp8");
}

double checked_peak(const JsonReader& n, const CostContext& c, const std::string& dtype) {
  const double peak = peak_flops_for(c.gpu, dtype);
  if (!(peak > 0)) n.fail("GPU '" + c.gpu.name + "' has no dense " + dtype + " peak (configs/gpus: peak_tflops." + dtype + ")");
  if (!(c.gpu.memory_bandwidth_bytes_per_s > 0)) n.fail("GPU '" + c.gpu.name + "' has no memory bandwidth");
  return peak;
}

// Reads the "table" key: resolved under models/ (or next to the scenario file) and parsed.
ProfileTable read_table(const JsonReader& n) {
  const std::string name = n.string("table");
  // A scenario named without a folder ("s.json") lives in the working directory.
  const std::filesystem::path base =
      n.file().empty() ? std::filesystem::path() : std::filesystem::path(n.file()).parent_path().empty() ? "." : std::filesystem::path(n.file()).parent_path();
  return read_profile_table(resolve_model_file(name, base, n.file(), n.path_or_root() + "/table").string());
}

// The table's metadata must agree with the GPU (gpu_config) and, when `shape_too`, with the expert shape
// (hidden, intermediate, gated, element width): a Mixtral table silently used for another model would be a
// wrong answer with a plausible face. Absent metadata is not checked.
void check_table_context(const JsonReader& n, const ProfileTable& t, const CostContext& c, bool shape_too) {
  const auto where = [&](const std::string& what) {
    n.fail("table " + t.file + " " + what + " (set \"strict\": false to use it anyway)");
  };
  if (const auto g = t.meta("gpu_config"); g && !c.gpu.name.empty() && *g != c.gpu.name)
    where("was measured on '" + *g + "', not on '" + c.gpu.name + "'");
  if (!shape_too) return;
  const auto hidden = t.meta_integer("hidden");
  const auto inter = t.meta_integer("intermediate");
  if ((hidden && *hidden != c.shape.hidden) || (inter && *inter != c.shape.intermediate))
    where("is for experts " + (hidden ? std::to_string(*hidden) : "?") + " -> " + (inter ? std::to_string(*inter) : "?") +
          ", but the model's experts are " + std::to_string(c.shape.hidden) + " -> " + std::to_string(c.shape.intermediate));
  if (const auto gated = t.meta_bool("gated"); gated && *gated != c.shape.gated)
    where(std::string("is for a") + (*gated ? " gated" : "n ungated") + " FFN, the model's experts are " +
          (c.shape.gated ? "gated" : "ungated"));
  if (const auto dtype = t.meta("dtype")) {
    ExpertShape probe;
    probe.dtype = *dtype;
    // fp16 and bf16 share width and tensor throughput on every GPU in configs/gpus, so either stands for the other.
    if (probe.bytes_per_element() != c.shape.bytes_per_element())
      where("is for dtype " + *dtype + ", the model's experts are " + c.shape.dtype);
  }
}

// The shape a table was measured for, from its metadata (required for fitting).
ExpertShape table_shape(const JsonReader& n, const ProfileTable& t, const CostContext& c) {
  const std::optional<ExpertShape> s = measured_shape(t, c.shape.dtype);
  if (!s)
    n.fail("table " + t.file + " lacks '# hidden: N' and '# intermediate: N' metadata; the fitted model needs "
           "the expert shape the table was measured for");
  if (s->dtype != "fp16" && s->dtype != "bf16" && s->dtype != "fp8")
    n.fail("table " + t.file + " has dtype '" + s->dtype + "'; valid: fp16, bf16, fp8");
  return *s;
}

std::unique_ptr<CostModel> make_roofline(const JsonReader& n, const CostContext& c) {
  check_shape(n, c.shape);
  const double peak = checked_peak(n, c, c.shape.dtype);
  RooflineParams p;
  p.peak_flops = peak * n.number("compute_efficiency", kDefaultComputeEfficiency, Range{0.0, 1.0, true, false});
  p.bandwidth_bytes_per_s =
      c.gpu.memory_bandwidth_bytes_per_s * n.number("memory_efficiency", kDefaultMemoryEfficiency, Range{0.0, 1.0, true, false});
  p.overhead_s = n.duration_s("launch_overhead", kDefaultLaunchOverheadS, at_least(0));
  p.grouped_overhead_s = n.duration_s("grouped_overhead", p.overhead_s, at_least(0));
  p.tile_m = n.integer("tile_m", kDefaultTileM, kTileRange);
  p.tile_n = n.integer("tile_n", kDefaultTileN, kTileRange);
  p.sm_count = std::max(1, c.gpu.sm_count);
  return std::make_unique<RooflineCostModel>(c.shape, p);
}

std::unique_ptr<CostModel> make_profiled(const JsonReader& n, const CostContext& c) {
  check_shape(n, c.shape);
  ProfileTable t = read_table(n);
  if (n.boolean("strict", true)) check_table_context(n, t, c, true);
  const double smallest = *std::min_element(t.time_s.begin(), t.time_s.end());
  const double overhead =
      n.duration_s("grouped_overhead", std::min(smallest, estimated_overhead_s(t, c.shape, c.gpu)), at_least(0));
  if (overhead > smallest)
    n.child("grouped_overhead").fail("must be <= the table's smallest time (" + std::to_string(smallest * 1e6) + " us)");
  return std::make_unique<ProfiledCostModel>(std::move(t), overhead);
}

std::unique_ptr<CostModel> make_fitted(const JsonReader& n, const CostContext& c) {
  check_shape(n, c.shape);
  checked_peak(n, c, c.shape.dtype);
  ProfileTable t = read_table(n);
  if (n.boolean("strict", true)) check_table_context(n, t, c, false);
  const ExpertShape measured = table_shape(n, t, c);
  checked_peak(n, c, measured.dtype);
  RooflineFit fit = fit_roofline(t, measured, c.gpu, n.integer("tile_m", kDefaultTileM, kTileRange),
                                 n.integer("tile_n", kDefaultTileN, kTileRange));
  fit.params.grouped_overhead_s = n.duration_s("grouped_overhead", fit.params.overhead_s, at_least(0));
  // The fit finds the fraction of the table dtype's peak that the GEMMs reach; an expert of another dtype (fp8
  // experts, fp16 table) keeps that fraction of its own dtype's peak.
  fit.params.peak_flops *= peak_flops_for(c.gpu, c.shape.dtype) / peak_flops_for(c.gpu, measured.dtype);
  return std::make_unique<FittedCostModel>(c.shape, std::move(fit), t.file);
}

}  // namespace

std::optional<ExpertShape> measured_shape(const ProfileTable& t, const std::string& default_dtype) {
  const auto hidden = t.meta_integer("hidden");
  const auto inter = t.meta_integer("intermediate");
  if (!hidden || !inter) return std::nullopt;
  return ExpertShape{*hidden, *inter, t.meta_bool("gated").value_or(true), t.meta("dtype").value_or(default_dtype)};
}

const CostModelRegistry& cost_model_registry() {
  static const CostModelRegistry registry = [] {
    CostModelRegistry r("cost models");
    r.add("profiled",
          "measured table (tokens -> time of one expert FFN), interpolated; past the end, the slope of its upper half",
          {{"table", "CSV under models/ (or next to the scenario), e.g. \"h100-sxm/mixtral-8x7b_expert_ffn.csv\"; required"},
           {"grouped_overhead", "fixed time per grouped call, paid once (duration >= 0, <= the smallest time; "
                                "default: first time - weights / datasheet bandwidth)"},
           {"strict", "require the table's gpu_config, hidden, intermediate, gated, dtype metadata to match (default true)"}},
          make_profiled);
    r.add("roofline",
          "max(FLOPs / peak, bytes / bandwidth) per GEMM + overhead, tile and wave quantized, from the GPU's datasheet",
          {{"compute_efficiency", "fraction of the datasheet dense peak reached, in (0, 1] (default 0.75)"},
           {"memory_efficiency", "fraction of the datasheet HBM bandwidth reached, in (0, 1] (default 0.85)"},
           {"launch_overhead", "fixed time per expert FFN (duration >= 0, default 8us)"},
           {"grouped_overhead", "fixed time per grouped call of all local experts (duration >= 0, default launch_overhead; "
                                "vLLM's eager FusedMoE on H100 measures ~47us, models/README.md)"},
           {"tile_m", "GEMM tile rows; tokens are padded to a multiple (integer 1..4096, default 64)"},
           {"tile_n", "GEMM tile columns (integer 1..4096, default 128)"}},
          make_roofline);
    r.add("fitted",
          "the roofline with peak, bandwidth and overhead fitted to a measured table (least squares; error reported), "
          "applied to the model's shape and dtype",
          {{"table", "CSV under models/ with '# hidden:' and '# intermediate:' metadata; required"},
           {"tile_m", "GEMM tile rows (integer 1..4096, default 64)"},
           {"tile_n", "GEMM tile columns (integer 1..4096, default 128)"},
           {"grouped_overhead", "fixed time per grouped call (duration >= 0, default the fitted overhead)"},
           {"strict", "require the table's gpu_config metadata to match the GPU (default true)"}},
          make_fitted);
    return r;
  }();
  return registry;
}

std::unique_ptr<CostModel> make_cost_model(const JsonReader& node, const CostContext& context) {
  return cost_model_registry().build(node, context);
}

}  // namespace tailsim
