#include "sim/cost/roofline.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Dense>

#include "sim/config/error.hpp"

namespace tailsim {

namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

GemmTerms gemm_terms(double count, std::int64_t n, std::int64_t k, const RooflineParams& p, std::int64_t tokens,
                     std::int64_t m_tiles, std::int64_t active, double bpe) {
  GemmTerms g;
  g.count = count;
  const std::int64_t tiles = m_tiles * ceil_div(n, p.tile_n);
  // Fewer tiles than SMs: one wave, with K split over the idle SMs (split-K / stream-K, as cuBLAS and
  // DeepGEMM do) in slices of at least kMinSplitK.
  constexpr std::int64_t kMinSplitK = 256;
  double waves = tiles > 0 ? 1 : 0;
  std::int64_t k_per_tile = k;
  if (tiles >= p.sm_count) {
    waves = static_cast<double>(ceil_div(tiles, p.sm_count));
  } else if (tiles > 0) {
    const std::int64_t split = std::clamp<std::int64_t>(p.sm_count / tiles, 1, std::max<std::int64_t>(1, k / kMinSplitK));
    k_per_tile = ceil_div(k, split);
  }
  g.flops = waves * static_cast<double>(p.sm_count) * 2.0 * static_cast<double>(p.tile_m) *
            static_cast<double>(p.tile_n) * static_cast<double>(k_per_tile);
  const double nd = static_cast<double>(n), kd = static_cast<double>(k), td = static_cast<double>(tokens);
  g.bytes = (static_cast<double>(active) * nd * kd + td * (nd + kd)) * bpe;
  return g;
}

}  // namespace

double peak_flops_for(const GpuSpec& gpu, const std::string& dtype) {
  if (dtype == "fp16") return gpu.peak_flops_fp16;
  if (dtype == "bf16") return gpu.peak_flops_bf16;
  if (dtype == "fp8") return gpu.peak_flops_fp8;
  return 0.0;
}

FfnTerms ffn_terms(const ExpertShape& s, const RooflineParams& p, std::int64_t tokens, std::int64_t m_tiles,
                   std::int64_t active) {
  const double bpe = s.bytes_per_element();
  FfnTerms t;
  t.up = gemm_terms(s.gated ? 2.0 : 1.0, s.intermediate, s.hidden, p, tokens, m_tiles, active, bpe);
  t.down = gemm_terms(1.0, s.hidden, s.intermediate, p, tokens, m_tiles, active, bpe);
  // Gated: read w1 x and w3 x, write the product; ungated: read and write one tensor.
  t.act_bytes = (s.gated ? 3.0 : 2.0) * static_cast<double>(tokens) * static_cast<double>(s.intermediate) * bpe;
  return t;
}

RooflineCostModel::RooflineCostModel(const ExpertShape& shape, const RooflineParams& params, std::string kind)
    : shape_(shape), params_(params), kind_(std::move(kind)) {}

double RooflineCostModel::terms_s(const FfnTerms& t) const {
  const double p = params_.peak_flops, bw = params_.bandwidth_bytes_per_s;
  return t.up.count * std::max(t.up.flops / p, t.up.bytes / bw) +
         t.down.count * std::max(t.down.flops / p, t.down.bytes / bw) + t.act_bytes / bw;
}

double RooflineCostModel::expert_time_s(std::int64_t tokens) const {
  if (tokens <= 0) return 0.0;
  return params_.overhead_s + terms_s(ffn_terms(shape_, params_, tokens, ceil_div(tokens, params_.tile_m), 1));
}

double RooflineCostModel::grouped_time_s(std::span<const std::int64_t> tokens_per_local_expert) const {
  std::int64_t tokens = 0, m_tiles = 0, active = 0;
  for (const std::int64_t n : tokens_per_local_expert) {
    if (n <= 0) continue;
    tokens += n;
    m_tiles += ceil_div(n, params_.tile_m);
    ++active;
  }
  if (active == 0) return 0.0;
  return params_.grouped_overhead_s + terms_s(ffn_terms(shape_, params_, tokens, m_tiles, active));
}

double RooflineCostModel::compute_s(std::int64_t tokens) const {
  if (tokens <= 0) return 0.0;
  const FfnTerms t = ffn_terms(shape_, params_, tokens, ceil_div(tokens, params_.tile_m), 1);
  return (t.up.count * t.up.flops + t.down.count * t.down.flops) / params_.peak_flops;
}

double RooflineCostModel::memory_s(std::int64_t tokens) const {
  if (tokens <= 0) return 0.0;
  const FfnTerms t = ffn_terms(shape_, params_, tokens, ceil_div(tokens, params_.tile_m), 1);
  return (t.up.count * t.up.bytes + t.down.count * t.down.bytes + t.act_bytes) / params_.bandwidth_bytes_per_s;
}

ErrorStats table_error(const CostModel& model, const ProfileTable& table) {
  ErrorStats e;
  double sum = 0;
  for (std::size_t i = 0; i < table.tokens.size(); ++i) {
    const double err = std::fabs(model.expert_time_s(table.tokens[i]) - table.time_s[i]) / table.time_s[i];
    sum += err;
    if (err > e.max_error) {
      e.max_error = err;
      e.max_error_tokens = table.tokens[i];
    }
  }
  e.points = table.tokens.size();
  e.mape = sum / static_cast<double>(e.points);
  return e;
}

namespace {

constexpr double kUs = 1e-6;

// Per table row, the terms in seconds at the datasheet peaks; the fit's unknowns are the slowdowns
// u = peak / P >= 1, v = bw_peak / BW >= 1 and the overhead w in microseconds >= 0 (all of order 1, so the
// system is well scaled).
struct FitRow {
  double up_c, up_m, down_c, down_m, act_m, up_count, down_count, measured;
};

std::vector<FitRow> fit_rows(const ProfileTable& table, const ExpertShape& table_shape, const RooflineParams& base,
                             double peak, double bw_peak) {
  std::vector<FitRow> rows;
  rows.reserve(table.tokens.size());
  for (std::size_t i = 0; i < table.tokens.size(); ++i) {
    const std::int64_t n = table.tokens[i];
    const FfnTerms t = ffn_terms(table_shape, base, n, ceil_div(n, base.tile_m), 1);
    rows.push_back({t.up.flops / peak, t.up.bytes / bw_peak, t.down.flops / peak, t.down.bytes / bw_peak,
                    t.act_bytes / bw_peak, t.up.count, t.down.count, table.time_s[i]});
  }
  return rows;
}

double fit_predict(const FitRow& r, const Eigen::Vector3d& x) {
  return r.up_count * std::max(x[0] * r.up_c, x[1] * r.up_m) + r.down_count * std::max(x[0] * r.down_c, x[1] * r.down_m) +
         x[1] * r.act_m + x[2] * kUs;
}

// Sum of squared relative errors of parameters x = (u, v, w) over the rows.
double fit_sse(const std::vector<FitRow>& rows, const Eigen::Vector3d& x) {
  double s = 0;
  for (const FitRow& r : rows) {
    const double e = (fit_predict(r, x) - r.measured) / r.measured;
    s += e * e;
  }
  return s;
}

// The best parameters found so far, within the bounds x >= lower.
struct FitSearch {
  const std::vector<FitRow>& rows;
  Eigen::Vector3d lower;
  Eigen::Vector3d best;
  double best_sse;

  // Solves the weighted least squares for the compute/memory assignment of machine balance `ratio`
  // (seconds-at-peak ratio: a GEMM counts as compute-bound when u c >= v m, i.e. c / m >= ratio = v / u).
  void solve_for_ratio(double ratio) {
    Eigen::Matrix3d normal = Eigen::Matrix3d::Zero();
    Eigen::Vector3d rhs = Eigen::Vector3d::Zero();
    for (const FitRow& r : rows) {
      Eigen::Vector3d x(0.0, r.act_m, kUs);
      if (r.up_c >= ratio * r.up_m) x[0] += r.up_count * r.up_c;
      else x[1] += r.up_count * r.up_m;
      if (r.down_c >= ratio * r.down_m) x[0] += r.down_count * r.down_c;
      else x[1] += r.down_count * r.down_m;
      x /= r.measured;
      normal += x * x.transpose();
      rhs += x;
    }
    // Exact box-constrained solution: the best feasible solution over all sets of parameters held at a bound.
    for (int fixed = 0; fixed < 8; ++fixed) try_bound_set(normal, rhs, fixed);
  }

  // Solves the normal equations with the parameters of bit mask `fixed` held at their bound; keeps the
  // solution if it is feasible and better.
  void try_bound_set(const Eigen::Matrix3d& normal, const Eigen::Vector3d& rhs, int fixed) {
    std::vector<int> free_idx;
    Eigen::Vector3d x = lower;
    for (int j = 0; j < 3; ++j)
      if (!(fixed & (1 << j))) free_idx.push_back(j);
    if (!free_idx.empty()) {
      const auto k = static_cast<Eigen::Index>(free_idx.size());
      Eigen::MatrixXd a(k, k);
      Eigen::VectorXd b(k);
      for (Eigen::Index i = 0; i < k; ++i) {
        b[i] = rhs[free_idx[i]];
        for (int j = 0; j < 3; ++j)
          if (fixed & (1 << j)) b[i] -= normal(free_idx[i], j) * lower[j];
        for (Eigen::Index j = 0; j < k; ++j) a(i, j) = normal(free_idx[i], free_idx[j]);
      }
      const auto qr = a.colPivHouseholderQr();
      if (qr.rank() < k) return;
      const Eigen::VectorXd sol = qr.solve(b);
      for (Eigen::Index i = 0; i < k; ++i) x[free_idx[i]] = sol[i];
    }
    if (!(x.array() >= lower.array() - 1e-12).all() || !x.allFinite()) return;
    x = x.cwiseMax(lower);
    const double s = fit_sse(rows, x);
    if (s < best_sse) {
      best_sse = s;
      best = x;
    }
  }
};

}  // namespace

RooflineFit fit_roofline(const ProfileTable& table, const ExpertShape& table_shape, const GpuSpec& gpu,
                         std::int64_t tile_m, std::int64_t tile_n) {
  const double peak = peak_flops_for(gpu, table_shape.dtype);
  if (!(peak > 0))
    throw InputError(table.file, "", "cannot fit: GPU '" + gpu.name + "' has no " + table_shape.dtype + " peak");
  const double bw_peak = gpu.memory_bandwidth_bytes_per_s;
  RooflineParams base;
  base.tile_m = tile_m;
  base.tile_n = tile_n;
  base.sm_count = std::max(1, gpu.sm_count);

  const std::vector<FitRow> rows = fit_rows(table, table_shape, base, peak, bw_peak);
  const Eigen::Vector3d lower(1.0, 1.0, 0.0);
  FitSearch search{rows, lower, lower, fit_sse(rows, lower)};
  // Machine balance on a log grid wide enough for every GPU and dtype (0.01 .. 100 x the datasheet balance).
  for (int i = 0; i <= 400; ++i) search.solve_for_ratio(std::pow(10.0, -2.0 + i * 0.01));
  // Polish: the assignment of the best parameters' own balance, until it no longer improves.
  for (int iter = 0; iter < 20; ++iter) {
    const double before = search.best_sse;
    search.solve_for_ratio(search.best[1] / search.best[0]);
    if (!(search.best_sse < before)) break;
  }

  RooflineFit fit;
  fit.params = base;
  fit.params.peak_flops = peak / search.best[0];
  fit.params.bandwidth_bytes_per_s = bw_peak / search.best[1];
  fit.params.overhead_s = search.best[2] * kUs;
  fit.params.grouped_overhead_s = fit.params.overhead_s;
  fit.rms_relative = std::sqrt(search.best_sse / static_cast<double>(rows.size()));
  fit.error = table_error(RooflineCostModel(table_shape, fit.params), table);
  return fit;
}

FittedCostModel::FittedCostModel(const ExpertShape& shape, RooflineFit fit, std::string table_file)
    : fit_(std::move(fit)), model_(shape, fit_.params, "fitted"), table_file_(std::move(table_file)) {}

}  // namespace tailsim
