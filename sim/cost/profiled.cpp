#include "sim/cost/profiled.hpp"

#include <algorithm>

namespace tailsim {

ProfiledCostModel::ProfiledCostModel(ProfileTable table, double grouped_overhead_s)
    : table_(std::move(table)), grouped_overhead_s_(grouped_overhead_s) {
  const std::vector<std::int64_t>& tok = table_.tokens;
  const std::vector<double>& time = table_.time_s;
  max_tokens_ = tok.back();
  const auto dense_limit = std::max<std::int64_t>(1 << 16, 8 * static_cast<std::int64_t>(tok.size()));
  if (max_tokens_ <= dense_limit) {
    by_tokens_.assign(static_cast<std::size_t>(max_tokens_) + 1, 0.0);
    for (std::int64_t n = 1; n <= max_tokens_; ++n) by_tokens_[static_cast<std::size_t>(n)] = interpolated_s(n);
  }
  // Extrapolation slope: least squares over the upper half of the token range (at least the last two points).
  if (tok.size() == 1) {
    slope_s_per_token_ = time.front() / static_cast<double>(tok.front());  // proportional: the only guess left
  } else {
    std::size_t first = tok.size() - 2;
    while (first > 0 && 2 * tok[first - 1] >= max_tokens_) --first;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    const double m = static_cast<double>(tok.size() - first);
    for (std::size_t i = first; i < tok.size(); ++i) {
      const double x = static_cast<double>(tok[i]);
      sx += x;
      sy += time[i];
      sxx += x * x;
      sxy += x * time[i];
    }
    const double denom = m * sxx - sx * sx;
    slope_s_per_token_ = denom > 0 ? std::max(0.0, (m * sxy - sx * sy) / denom) : 0.0;
  }
}

double ProfiledCostModel::interpolated_s(std::int64_t n) const {
  const std::vector<std::int64_t>& tok = table_.tokens;
  const std::vector<double>& time = table_.time_s;
  if (n <= tok.front()) return time.front();
  // The row i with tok[i] < n <= tok[i + 1]; at a measured count, the measured value exactly.
  const auto next = std::lower_bound(tok.begin(), tok.end(), n);
  const auto i1 = static_cast<std::size_t>(next - tok.begin());
  if (tok[i1] == n) return time[i1];
  const std::size_t i = i1 - 1;
  const double t0 = time[i], t1 = time[i1];
  const double span = static_cast<double>(tok[i1] - tok[i]);
  return t0 + (t1 - t0) * static_cast<double>(n - tok[i]) / span;
}

void ProfiledCostModel::count_held(HeldBytes& held) const {
  std::uint64_t meta = 0;
  for (const auto& [k, v] : table_.metadata) meta += 64 + k.capacity() + v.capacity();
  held.add(by_tokens_.capacity() * sizeof(double) + table_.tokens.capacity() * sizeof(std::int64_t) +
           table_.time_s.capacity() * sizeof(double) + table_.file.capacity() + meta);
}

double ProfiledCostModel::grouped_time_s(std::span<const std::int64_t> tokens_per_local_expert) const {
  double sum = 0;
  int active = 0;
  for (const std::int64_t n : tokens_per_local_expert) {
    if (n <= 0) continue;
    sum += expert_time_s(n) - grouped_overhead_s_;
    ++active;
  }
  return active == 0 ? 0.0 : grouped_overhead_s_ + sum;
}

double estimated_overhead_s(const ProfileTable& table, const ExpertShape& shape, const GpuSpec& gpu) {
  const double first = table.time_s.front();
  if (!(gpu.memory_bandwidth_bytes_per_s > 0)) return 0.0;
  return std::clamp(first - shape.weight_bytes() / gpu.memory_bandwidth_bytes_per_s, 0.0, first);
}

}  // namespace tailsim
