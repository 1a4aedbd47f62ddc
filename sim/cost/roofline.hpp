// The analytical cost models: `roofline` (GPU datasheet x efficiencies) and `fitted` (the same formula with its
// three parameters fitted to a measured table).
//
// One expert FFN on n tokens is a chain of GEMMs (gated: w1 and w3, hidden -> intermediate, then w2 back;
// ungated: w1 and w2) and an elementwise activation:
//   time(n) = overhead + sum over GEMMs of max(compute, bytes / bandwidth) + activation bytes / bandwidth
//   compute = waves x sm_count x (2 tile_m tile_n K) / peak_flops     (tile and wave quantization)
//   waves   = ceil(ceil(n / tile_m) x ceil(N / tile_n) / sm_count)    (M padded to the tile, tiles in waves)
//   bytes   = (N K + n K + n N) x bytes_per_element                   (weights once, activations in and out)
// A grouped call (all of one GPU's local experts) runs each GEMM stage as one grouped kernel: the tiles of all
// experts share the SMs (one wave quantization over their sum, each expert's tokens padded to tile_m), each
// activated expert's weights stream once, and the fixed overhead is paid once:
//   grouped = grouped_overhead + sum over GEMMs of max(compute of all tiles, all bytes / bandwidth) + activation
// so a group with one activated expert costs exactly expert_time_s of its tokens (when grouped_overhead equals
// overhead, the default). The defaults describe a chain of cuBLAS expert GEMMs (the per-expert tables); a fused
// MoE module has a larger fixed part: vLLM 0.19's on H100 is ~47 us + one expert's weights at ~3.0 TB/s per
// activated expert (models/h100-sxm/qwen3.6-35b-a3b_fused_moe.csv, tests/cost/grouped_test.cpp).
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "sim/cost/cost_model.hpp"
#include "sim/cost/profile_table.hpp"

namespace tailsim {

struct RooflineParams {
  double peak_flops = 0;             // effective dense tensor FLOP/s for the expert's dtype, > 0
  double bandwidth_bytes_per_s = 0;  // effective HBM bandwidth, > 0
  double overhead_s = 0;             // fixed time per expert FFN (launches, pipeline fill), >= 0
  double grouped_overhead_s = 0;     // fixed time per grouped call of all local experts, >= 0
  std::int64_t tile_m = 64;          // GEMM tile rows (tokens are padded up to a multiple)
  std::int64_t tile_n = 128;         // GEMM tile columns
  std::int64_t sm_count = 1;         // SMs: tiles run in waves of this many
};

// Defaults of the `roofline` kind. Sources: shared/profiles/FIGURES.md section 1 and 5 (effective H100
// ~720 TFLOPS of 989 and ~2.9-3.1 TB/s of 3.35, A100 ~230 of 312 TFLOPS; t0 ~8 us; measured H100 HBM copy
// 86.7 % of peak); tile 64 x 128 gave the lowest fit error on all four shipped tables among {64,128} x {128,256}.
inline constexpr double kDefaultComputeEfficiency = 0.75;
inline constexpr double kDefaultMemoryEfficiency = 0.85;
inline constexpr double kDefaultLaunchOverheadS = 8e-6;
inline constexpr std::int64_t kDefaultTileM = 64;
inline constexpr std::int64_t kDefaultTileN = 128;

// The GPU's dense peak FLOP/s for a dtype (fp16, bf16, fp8); 0 where the GPU lacks it.
double peak_flops_for(const GpuSpec& gpu, const std::string& dtype);

// The FLOP and byte terms of the formula above, before dividing by peak and bandwidth. `tokens` is the sum
// of the tokens of `active` activated experts and `m_tiles` the sum of their ceil(tokens / tile_m).
struct GemmTerms {
  double count = 0;  // GEMMs of this shape (2 for the gated w1 and w3)
  double flops = 0;  // wave-quantized FLOPs of one of them
  double bytes = 0;  // bytes moved by one of them
};
struct FfnTerms {
  GemmTerms up;     // hidden -> intermediate (w1, and w3 when gated)
  GemmTerms down;   // intermediate -> hidden (w2)
  double act_bytes = 0;
};
FfnTerms ffn_terms(const ExpertShape& shape, const RooflineParams& p, std::int64_t tokens, std::int64_t m_tiles,
                   std::int64_t active);

class RooflineCostModel final : public CostModel {
 public:
  RooflineCostModel(const ExpertShape& shape, const RooflineParams& params, std::string kind = "roofline");
  std::string kind() const override { return kind_; }
  double expert_time_s(std::int64_t tokens) const override;
  double grouped_time_s(std::span<const std::int64_t> tokens_per_local_expert) const override;

  // The two roofline terms of one expert without the overhead, for tests and reports: the GEMMs' compute
  // time (wave-quantized) and all bytes over the bandwidth.
  double compute_s(std::int64_t tokens) const;
  double memory_s(std::int64_t tokens) const;
  const RooflineParams& params() const { return params_; }
  const ExpertShape& shape() const { return shape_; }

 private:
  double terms_s(const FfnTerms& t) const;

  ExpertShape shape_;
  RooflineParams params_;
  std::string kind_;
};

// Error of a model against a measured table, |model - measured| / measured over all rows.
struct ErrorStats {
  double mape = 0;                   // mean absolute percentage error, as a fraction
  double max_error = 0;              // largest relative error, as a fraction
  std::int64_t max_error_tokens = 0; // where it occurs
  std::size_t points = 0;
};
ErrorStats table_error(const CostModel& model, const ProfileTable& table);

// The roofline's peak_flops, bandwidth and overhead fitted to a table measured for `table_shape` on `gpu`
// (tiles and SM count fixed): weighted least squares on relative errors (Eigen), with the GPU's datasheet
// as bounds (peak_flops <= peak, bandwidth <= HBM bandwidth, overhead >= 0: one expert shape alone cannot
// separate the overhead from weight streaming, the bounds keep the split physical). The max() makes the model
// piecewise linear in (1/peak, 1/bandwidth, overhead); the fit tries the compute/memory assignment of every
// machine balance on a log grid, solves each exactly with its active bounds, and keeps the best.
struct RooflineFit {
  RooflineParams params;  // grouped_overhead_s = overhead_s (the factory may override it and rescale the peak)
  ErrorStats error;       // of the fitted model on the table
  double rms_relative = 0;
};
RooflineFit fit_roofline(const ProfileTable& table, const ExpertShape& table_shape, const GpuSpec& gpu,
                         std::int64_t tile_m, std::int64_t tile_n);

// A roofline with fitted parameters, applied to the context's expert shape (the parameters describe the GPU,
// so a table measured for one shape predicts others; for another dtype the `fitted` factory scales peak_flops
// by the ratio of the two dtypes' datasheet peaks).
class FittedCostModel final : public CostModel {
 public:
  FittedCostModel(const ExpertShape& shape, RooflineFit fit, std::string table_file);
  std::string kind() const override { return "fitted"; }
  double expert_time_s(std::int64_t tokens) const override { return model_.expert_time_s(tokens); }
  double grouped_time_s(std::span<const std::int64_t> t) const override { return model_.grouped_time_s(t); }
  const RooflineFit& fit() const { return fit_; }
  const RooflineCostModel& roofline() const { return model_; }
  const std::string& table_file() const { return table_file_; }

 private:
  RooflineFit fit_;
  RooflineCostModel model_;
  std::string table_file_;
};

}  // namespace tailsim
