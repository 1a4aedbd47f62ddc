// The `profiled` cost model: a measured table (tokens -> time of one expert FFN) looked up in O(1).
//   - at a measured token count: the measured value, exactly;
//   - between two measured counts: linear interpolation;
//   - below the first measured count: the first value (a kernel never gets faster with fewer tokens than the
//     smallest measured, and the flat weight-streaming region starts at 1 token);
//   - past the last measured count: the last value plus the slope of a least-squares line through the
//     table's upper half (token counts >= half the largest), never negative, so one noisy last point does not
//     set the slope.
// Every integer token count up to the table's largest is precomputed into an array when the table is dense
// (or small); a sparse table is searched instead (O(log rows)), with the same results.
//
// Grouped call (all of one GPU's local experts): the measured per-expert times add up, with the fixed
// per-call overhead paid once instead of per expert:
//   grouped = grouped_overhead + sum over activated experts of (time(n_e) - grouped_overhead)
// so one activated expert costs exactly its measured time. A per-expert table cannot tell how a grouped
// kernel would overlap experts; this is the sequential-experts-in-one-launch approximation. The default
// grouped_overhead is the part of the first measured time that weight streaming at the GPU's datasheet
// bandwidth cannot explain: time(first) - weight_bytes / bandwidth (clamped to [0, time(first)]).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "sim/cost/cost_model.hpp"
#include "sim/cost/profile_table.hpp"

namespace tailsim {

class ProfiledCostModel final : public CostModel {
 public:
  ProfiledCostModel(ProfileTable table, double grouped_overhead_s);
  std::string kind() const override { return "profiled"; }
  double expert_time_s(std::int64_t tokens) const override {
    if (tokens <= 0) return 0.0;
    if (tokens <= max_tokens_)
      return by_tokens_.empty() ? interpolated_s(tokens) : by_tokens_[static_cast<std::size_t>(tokens)];
    return table_.time_s.back() + slope_s_per_token_ * static_cast<double>(tokens - max_tokens_);
  }
  void count_held(HeldBytes& held) const override;
  double grouped_time_s(std::span<const std::int64_t> tokens_per_local_expert) const override;

  const ProfileTable& table() const { return table_; }
  double extrapolation_slope_s_per_token() const { return slope_s_per_token_; }
  double grouped_overhead_s() const { return grouped_overhead_s_; }

 private:
  ProfileTable table_;
  std::int64_t max_tokens_ = 0;
  // [0, max_tokens_], index 0 being 0 s, when the table is dense enough for the array to cost no more than a
  // few times the table; empty for a sparse one (2 rows up to 2^20 tokens: 8 MiB a sweep point, 2.4 GiB for
  // 300), looked up by binary search. Both give the same doubles.
  std::vector<double> by_tokens_;
  double interpolated_s(std::int64_t tokens) const;  // 1 <= tokens <= max_tokens_
  double slope_s_per_token_ = 0;
  double grouped_overhead_s_ = 0;
};

// The default grouped overhead of a table measured for `shape` on `gpu` (see above).
double estimated_overhead_s(const ProfileTable& table, const ExpertShape& shape, const GpuSpec& gpu);

}  // namespace tailsim
