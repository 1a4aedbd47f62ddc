// `evict` on the bsp workload: BspEviction (what both engines ask) and the batched engine's stepper.
#include <algorithm>
#include <cmath>

#include "sim/policy/evict.hpp"

namespace tailsim {

BspEviction::BspEviction(const EvictParams& params, const std::vector<WorkerGroup>& groups, std::int64_t gpus)
    : controller_(params, gpus),
      factor_(static_cast<std::size_t>(gpus), 1.0),
      gone_(static_cast<std::size_t>(gpus), 0),
      replaced_(static_cast<std::size_t>(gpus), 0),
      task_s_(static_cast<std::size_t>(gpus), 0.0),
      gpus_(gpus) {
  for (const WorkerGroup& g : groups)
    std::fill(factor_.begin() + g.first, factor_.begin() + g.first + g.count, g.factor);
}

SimTime BspEviction::task_ns(std::int64_t rank, SimTime drawn_ns) {
  const auto r = static_cast<std::size_t>(rank);
  SimTime ns = drawn_ns;
  // Unchanged draws stay exact; a spare's task and a shared one are rounded to the nearest ns once.
  const bool spare = replaced_[r] && factor_[r] != 1.0;
  if (spare || gone_count_ > 0) {
    double t = static_cast<double>(drawn_ns);
    if (spare) t /= factor_[r];
    if (gone_count_ > 0) t *= static_cast<double>(gpus_) / static_cast<double>(gpus_ - gone_count_);
    ns = static_cast<SimTime>(std::llround(t));
  }
  task_s_[r] = ns_to_seconds(ns);
  return gone_[r] ? -1 : ns;
}

void BspEviction::end_step() {
  for (const std::int64_t r : controller_.end_step(task_s_)) {
    const auto i = static_cast<std::size_t>(r);
    if (controller_.take_spare()) {
      replaced_[i] = 1;
      controller_.replaced(r);
      evictions_.push_back({r, step_ + 1, true});
      continue;
    }
    // The last rank stays: someone must run the step.
    if (gone_count_ + 1 == gpus_) continue;
    gone_[i] = 1;
    ++gone_count_;
    evictions_.push_back({r, step_ + 1, false});
  }
  ++step_;
}

namespace {

// The batched engine: every rank's task through BspEviction, the barrier at the slowest in service.
class EvictStepper final : public BspStepper {
 public:
  EvictStepper(const EvictParams& params, const BspSetup& setup)
      : eviction_(params, setup.groups, setup.gpus) {}
  void begin_step() override {
    max_ns_ = 0;
    busy_ns_ = 0;
  }
  void add_chunk(const BspChunk& c) override {
    for (std::int64_t i = 0; i < c.n; ++i) {
      const SimTime t = eviction_.task_ns(c.first + i, c.times_ns[0][i]);
      if (t < 0) continue;
      max_ns_ = std::max(max_ns_, t);
      busy_ns_ += t;
    }
  }
  BspStepResult end_step() override {
    BspStepResult r;
    r.step_ns = max_ns_;
    r.busy_s = static_cast<double>(busy_ns_) * 1e-9;
    r.gpus = eviction_.in_service();
    eviction_.end_step();
    return r;
  }

  std::span<const Eviction> evictions() const override { return eviction_.evictions(); }

 private:
  BspEviction eviction_;
  SimTime max_ns_ = 0, busy_ns_ = 0;
};

}  // namespace

std::unique_ptr<BspStepper> EvictPolicy::make_stepper(const BspSetup& setup) const {
  return std::make_unique<EvictStepper>(params_, setup);
}

BspOrderForm EvictPolicy::order_form() const {
  return {
      1, 0,
      "evict changes each rank's law during the run, from the rank's own past times (a per-rank detector), "
      "while the order-statistics engine draws only each group's largest times",
      std::nullopt};
}

}  // namespace tailsim
