// Memoizes a cost model's grouped time of a GPU holding one expert (or one replica's slice of one): the
// common case at scale, where K > E and each expert has K / E replicas whose token shares repeat. Token
// counts below kDirect index a table directly (grown to the largest count seen, at most 2 MiB), so a count
// met in any earlier layer or step is a hit; larger ones go through a direct-mapped hash table. A pure
// function cached, so results are identical with and without it. One per run (not shared between threads).
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "sim/cost/cost_model.hpp"

namespace tailsim {

class GroupedTimeCache {
 public:
  static constexpr std::int64_t kDirect = std::int64_t{1} << 18;  // counts with a slot of their own
  static constexpr std::uint64_t kMaxBytes = kDirect * sizeof(double) + (std::uint64_t{1} << 16);

  explicit GroupedTimeCache(const CostModel& model) : model_(&model), table_(std::size_t{1} << kBits) {}

  double grouped_time_s(std::span<const std::int64_t> tokens_per_local_expert) {
    if (tokens_per_local_expert.size() != 1) return model_->grouped_time_s(tokens_per_local_expert);
    const std::int64_t n = tokens_per_local_expert[0];
    if (n >= 0 && n < kDirect) {
      const auto i = static_cast<std::size_t>(n);
      if (i >= direct_.size()) direct_.resize(std::max(2 * direct_.size(), i + 1), -1.0);
      if (direct_[i] < 0) direct_[i] = model_->grouped_time_s(tokens_per_local_expert);
      return direct_[i];
    }
    Entry& e = table_[(static_cast<std::uint64_t>(n) * 0x9E3779B97F4A7C15ull) >> (64 - kBits)];
    if (e.tokens != n) e = Entry{n, model_->grouped_time_s(tokens_per_local_expert)};
    return e.seconds;
  }

 private:
  static constexpr int kBits = 12;
  struct Entry {
    std::int64_t tokens = -1;
    double seconds = 0;
  };
  const CostModel* model_;
  std::vector<double> direct_;  // seconds by token count; -1: not computed yet
  std::vector<Entry> table_;
};

}  // namespace tailsim
