// `drop_slowest`: the barrier releases after the first K - m arrivals; the last m tasks are abandoned
// (elastic training's "drop the slowest replicas", paid for in a slightly noisier update).
#include <algorithm>

#include "sim/policy/policy.hpp"

namespace tailsim {

namespace {

class DropSlowestStepper final : public BspStepper {
 public:
  DropSlowestStepper(const BspSetup& setup, std::int64_t m)
      : m_(m), times_(static_cast<std::size_t>(setup.gpus)) {}
  void begin_step() override {}
  void add_chunk(const BspChunk& c) override {
    std::copy(c.times_ns[0], c.times_ns[0] + c.n, times_.begin() + c.first);
  }
  BspStepResult end_step() override {
    sorted_.assign(times_.begin(), times_.end());
    const auto kth = static_cast<std::ptrdiff_t>(sorted_.size()) - m_ - 1;
    std::nth_element(sorted_.begin(), sorted_.begin() + kth, sorted_.end());
    BspStepResult r;
    r.step_ns = sorted_[static_cast<std::size_t>(kth)];
    SimTime busy = 0;
    for (const SimTime t : times_) busy += std::min(t, r.step_ns);  // the dropped ones work until release
    r.busy_s = static_cast<double>(busy) * 1e-9;
    return r;
  }

 private:
  std::int64_t m_;
  std::vector<SimTime> times_, sorted_;
};

class DropSlowestPolicy final : public Policy, public BspPolicy {
 public:
  explicit DropSlowestPolicy(std::int64_t m) : Policy("drop_slowest", "drop_slowest"), m_(m) {}
  const BspPolicy* bsp() const override { return this; }
  bool needs_worker_times() const override { return true; }
  std::int64_t barrier_quorum(std::int64_t gpus) const override { return gpus - m_; }
  void check_gpus(std::int64_t gpus) const override {
    if (m_ >= gpus)
      fail("m", "expected m < K = " + std::to_string(gpus) + " (at least one arrival must release the barrier), got " +
                    std::to_string(m_));
  }
  std::unique_ptr<BspStepper> make_stepper(const BspSetup& setup) const override {
    return std::make_unique<DropSlowestStepper>(setup, m_);
  }
  BspOrderForm order_form() const override { return {1, m_, "", std::nullopt}; }

 private:
  std::int64_t m_;
};

}  // namespace

std::unique_ptr<Policy> make_drop_slowest_policy(const JsonReader& n) {
  return std::make_unique<DropSlowestPolicy>(n.integer("m", {}, at_least(0)));
}

}  // namespace tailsim
