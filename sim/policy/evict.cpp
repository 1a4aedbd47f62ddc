#include "sim/policy/evict.hpp"

#include <algorithm>

namespace tailsim {

StragglerDetector::StragglerDetector(std::int64_t ranks, int window, bool own_reference)
    : ranks_(ranks), window_(window), own_reference_(own_reference),
      history_(static_cast<std::size_t>(ranks * window), 0.0), scores_(static_cast<std::size_t>(ranks), 1.0),
      best_own_(static_cast<std::size_t>(ranks), 0.0), scratch_(static_cast<std::size_t>(window)),
      since_(static_cast<std::size_t>(ranks), 0) {}

void StragglerDetector::reset(std::int64_t rank) {
  since_[static_cast<std::size_t>(rank)] = 0;
  best_own_[static_cast<std::size_t>(rank)] = 0;
  scores_[static_cast<std::size_t>(rank)] = 1.0;
}

void StragglerDetector::add_step(std::span<const double> t) {
  const auto w = static_cast<std::size_t>(window_);
  for (std::int64_t r = 0; r < ranks_; ++r)
    history_[static_cast<std::size_t>(r) * w + static_cast<std::size_t>(seen_ % window_)] = t[static_cast<std::size_t>(r)];
  ++seen_;
  for (auto& n : since_) ++n;
  if (!ready()) return;
  double best = -1;
  for (std::int64_t r = 0; r < ranks_; ++r) {
    if (since_[static_cast<std::size_t>(r)] < window_) continue;
    const auto first = history_.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(r) * w);
    std::copy(first, first + static_cast<std::ptrdiff_t>(w), scratch_.begin());
    const auto mid = scratch_.begin() + static_cast<std::ptrdiff_t>(w / 2);
    std::nth_element(scratch_.begin(), mid, scratch_.end());
    double median = *mid;
    if (w % 2 == 0) median = (median + *std::max_element(scratch_.begin(), mid)) / 2;
    scores_[static_cast<std::size_t>(r)] = median;  // the median for now; the score below
    double& own = best_own_[static_cast<std::size_t>(r)];
    own = own == 0 ? median : std::min(own, median);
    best = best < 0 ? median : std::min(best, median);
  }
  for (std::int64_t r = 0; r < ranks_; ++r) {
    double& s = scores_[static_cast<std::size_t>(r)];
    if (since_[static_cast<std::size_t>(r)] < window_) {
      s = 1.0;
      continue;
    }
    const double reference = own_reference_ ? best_own_[static_cast<std::size_t>(r)] : best;
    s = s > 0 ? reference / s : 1.0;
  }
}

EvictController::EvictController(const EvictParams& params, std::int64_t ranks)
    : params_(params), detector_(ranks, params.window, params.own_reference),
      flagged_at_(static_cast<std::size_t>(ranks), -1), gone_(static_cast<std::size_t>(ranks), false),
      spares_left_(params.spares) {}

std::vector<std::int64_t> EvictController::end_step(std::span<const double> rank_times) {
  detector_.add_step(rank_times);
  std::vector<std::int64_t> leaving;
  if (detector_.ready())
    for (std::size_t r = 0; r < flagged_at_.size(); ++r) {
      if (gone_[r]) continue;
      if (flagged_at_[r] < 0 && detector_.scores()[r] < params_.threshold) flagged_at_[r] = step_;
      if (flagged_at_[r] >= 0 && step_ - flagged_at_[r] >= params_.drain_steps) {
        leaving.push_back(static_cast<std::int64_t>(r));
        gone_[r] = true;
      }
    }
  ++step_;
  return leaving;
}

void EvictController::replaced(std::int64_t rank) {
  // The spare takes the rank's place and is watched from now on; the detector's window refills with it.
  gone_[static_cast<std::size_t>(rank)] = false;
  flagged_at_[static_cast<std::size_t>(rank)] = -1;
  detector_.reset(rank);
}

bool EvictController::take_spare() {
  if (spares_left_ == 0) return false;
  --spares_left_;
  return true;
}

std::unique_ptr<Policy> make_evict_policy(const JsonReader& n) {
  EvictParams p;
  p.window = static_cast<int>(n.integer("window", 10, Range{1.0, 100000.0}));
  p.threshold = n.number("threshold", 0.75, Range{0.0, 1.0, true, false});
  p.own_reference = n.string("reference", "best", {"best", "own"}) == "own";
  p.drain_steps = n.integer("drain", 0, at_least(0));
  p.spares = n.integer("spares", 0, at_least(0));
  return std::make_unique<EvictPolicy>(p);
}

}  // namespace tailsim
