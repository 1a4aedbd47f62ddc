// `none`: every task runs once and the barrier waits for the slowest.
#include <algorithm>

#include "sim/policy/policy.hpp"

namespace tailsim {

namespace {

// Reduces each worker to the first of `copies` attempts, then the barrier to the slowest worker. Shared by
// `none` (copies = 1) and the fixed form of `backup`. Where every attempt of a group has the same GPU factor
// (no backups, or a healthy group) and there is no noise, it works on the raw uniforms: durations are
// monotone in them, so one transform per group and step suffices, and the busy time is its expectation
// (unbiased for iid workers). Elsewhere it transforms each draw and sums exactly.
class FirstOfCopiesStepper final : public BspStepper {
 public:
  FirstOfCopiesStepper(const BspSetup& setup, int copies)
      : setup_(setup), copies_(copies), max_key_(setup.groups.size()), seen_(setup.groups.size()) {
    for (const WorkerGroup& g : setup.groups)
      if (on_keys(g)) expected_busy_s_ += static_cast<double>(g.count) * g.factor * setup.compute->expected_min(copies);
  }

  void begin_step() override {
    std::fill(max_key_.begin(), max_key_.end(), 0);
    std::fill(seen_.begin(), seen_.end(), 0);
    max_ns_ = 0;
    busy_ns_ = 0;
  }

  void add_chunk(const BspChunk& c) override {
    if (c.times_ns[0] != nullptr) {
      reduce_times(c.n, [&](std::int64_t i, int a) { return c.times_ns[a][i]; });
    } else if (!on_keys(*c.group)) {
      reduce_times(c.n, [&](std::int64_t i, int a) { return setup_.key_ns(*c.group, a, c.keys[a][i]); });
    } else {
      reduce_keys(c);
    }
  }

  BspStepResult end_step() override {
    BspStepResult r;
    r.step_ns = max_ns_;
    for (std::size_t g = 0; g < max_key_.size(); ++g)
      if (seen_[g]) r.step_ns = std::max(r.step_ns, setup_.key_ns(setup_.groups[g], 0, max_key_[g]));
    r.busy_s = static_cast<double>(busy_ns_) * 1e-9 + expected_busy_s_;
    // Losing copies run until the winner finishes, then are cancelled.
    r.extra_s = static_cast<double>(copies_ - 1) * r.busy_s;
    return r;
  }

 private:
  // A single worker is its own maximum: transforming it is exact and as cheap.
  bool on_keys(const WorkerGroup& g) const {
    return !setup_.per_draw_times && g.count > 1 && (copies_ == 1 || g.factor == 1.0);
  }

  template <class Duration>
  void reduce_times(std::int64_t n, Duration duration) {
    SimTime mx = max_ns_, sum = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      SimTime t = duration(i, 0);
      for (int a = 1; a < copies_; ++a) t = std::min(t, duration(i, a));
      mx = std::max(mx, t);
      sum += t;
    }
    max_ns_ = mx;
    busy_ns_ += sum;
  }

  void reduce_keys(const BspChunk& c) {
    std::uint64_t mx = max_key_[c.group_index];
    const std::uint64_t* k0 = c.keys[0];
    if (copies_ == 1) {
      for (std::int64_t i = 0; i < c.n; ++i) mx = std::max(mx, k0[i]);
    } else if (copies_ == 2) {
      const std::uint64_t* k1 = c.keys[1];
      for (std::int64_t i = 0; i < c.n; ++i) mx = std::max(mx, std::min(k0[i], k1[i]));
    } else {
      for (std::int64_t i = 0; i < c.n; ++i) {
        std::uint64_t k = k0[i];
        for (int a = 1; a < copies_; ++a) k = std::min(k, c.keys[a][i]);
        mx = std::max(mx, k);
      }
    }
    max_key_[c.group_index] = mx;
    seen_[c.group_index] = 1;
  }

  BspSetup setup_;
  int copies_;
  std::vector<std::uint64_t> max_key_;  // per group: largest (min over copies) raw uniform this step
  std::vector<char> seen_;
  double expected_busy_s_ = 0;  // per step, of the groups reduced on raw uniforms
  SimTime max_ns_ = 0;
  SimTime busy_ns_ = 0;
};

// Serves both workloads: bsp waits for the slowest worker, moe runs with no controller (every hook absent).
class NonePolicy final : public Policy, public BspPolicy, public MoePolicy {
 public:
  NonePolicy() : Policy("none", "none") {}
  const BspPolicy* bsp() const override { return this; }
  const MoePolicy* moe() const override { return this; }
  std::unique_ptr<BspStepper> make_stepper(const BspSetup& setup) const override {
    return std::make_unique<FirstOfCopiesStepper>(setup, 1);
  }
  std::unique_ptr<MoeController> make_controller(const MoeRunInfo&) const override { return nullptr; }
  BspOrderForm order_form() const override { return {1, 0, "", std::nullopt}; }
};

}  // namespace

std::unique_ptr<BspStepper> make_first_of_copies_stepper(const BspSetup& setup, int copies) {
  return std::make_unique<FirstOfCopiesStepper>(setup, copies);
}

std::unique_ptr<Policy> make_none_policy(const JsonReader&) { return std::make_unique<NonePolicy>(); }

}  // namespace tailsim
