// `backup`: speculative copies. Fixed form: every task runs `copies` attempts and keeps the first
// (MapReduce backup tasks at their bluntest). Trigger form (Spark's spark.speculation): once `quantile` of
// the tasks have finished, a task that has run longer than `multiplier` x the median finished duration gets
// one backup attempt on a spare worker; the first of the two to finish wins.
#include <algorithm>
#include <cmath>

#include "sim/policy/backup.hpp"
#include "sim/policy/policy.hpp"

namespace tailsim {


namespace {

std::int64_t quantile_count(double quantile, std::int64_t gpus) { return speculation_quorum(quantile, gpus); }

SimTime launch_time(std::vector<SimTime>& finished, double multiplier, SimTime now_rel) {
  return std::max(now_rel, static_cast<SimTime>(std::llround(speculation_threshold(finished, multiplier))));
}

class SpeculationStepper final : public BspStepper {
 public:
  SpeculationStepper(const BspSetup& setup, double quantile, double multiplier)
      : setup_(setup), multiplier_(multiplier), quorum_(quantile_count(quantile, setup.gpus)),
        primary_(static_cast<std::size_t>(setup.gpus)), backup_(static_cast<std::size_t>(setup.gpus)) {}

  void begin_step() override {}
  void add_chunk(const BspChunk& c) override {
    std::copy(c.times_ns[0], c.times_ns[0] + c.n, primary_.begin() + c.first);
    std::copy(c.times_ns[1], c.times_ns[1] + c.n, backup_.begin() + c.first);
  }
  BspStepResult end_step() override {
    // The quorum-th arrival happens at the quorum-th smallest duration; the finished set is the quorum
    // smallest durations (ties do not change their values).
    sorted_.assign(primary_.begin(), primary_.end());
    std::nth_element(sorted_.begin(), sorted_.begin() + (quorum_ - 1), sorted_.end());
    const SimTime t_quorum = sorted_[static_cast<std::size_t>(quorum_ - 1)];
    sorted_.resize(static_cast<std::size_t>(quorum_));
    const SimTime launch = launch_time(sorted_, multiplier_, t_quorum);
    BspStepResult r;
    SimTime busy = 0, extra = 0;
    for (std::size_t k = 0; k < primary_.size(); ++k) {
      SimTime finish = primary_[k];
      if (finish > launch) {  // still running when backups launch (completions at `launch` come first)
        finish = std::min(finish, launch + backup_[k]);
        extra += finish - launch;
      }
      busy += finish;
      r.step_ns = std::max(r.step_ns, finish);
    }
    r.busy_s = static_cast<double>(busy) * 1e-9;
    r.extra_s = static_cast<double>(extra) * 1e-9;
    return r;
  }

 private:
  BspSetup setup_;
  double multiplier_;
  std::int64_t quorum_;
  std::vector<SimTime> primary_, backup_, sorted_;
};

class BackupPolicy final : public Policy, public BspPolicy, public MoePolicy {
 public:
  explicit BackupPolicy(const BackupMoeParams& p)
      : Policy("backup", "backup"), copies_(p.copies), quantile_(p.quantile), multiplier_(p.multiplier), moe_(p) {}
  const BspPolicy* bsp() const override { return this; }
  const MoePolicy* moe() const override { return this; }
  std::unique_ptr<MoeController> make_controller(const MoeRunInfo& info) const override {
    check(info);
    return make_backup_controller(moe_, info);
  }
  void check(const MoeRunInfo& shape) const override { check_backup_moe(*this, moe_, shape); }
  void check_gpus(std::int64_t /*gpus*/) const override {  // the bsp workload: the moe keys mean nothing there
    if (moe_.backup_slots) fail("backup_slots", "applies to the moe workload (standby expert copies); remove it here");
    if (moe_.next_node) fail("backup_on", "applies to the moe workload (where expert copies are); remove it here");
  }
  bool copies_work() const override { return attempts_drawn() > 1; }
  int attempts_drawn() const override { return quantile_ ? 2 : copies_; }
  int attempts_at_start() const override { return quantile_ ? 1 : copies_; }
  bool needs_worker_times() const override { return quantile_.has_value(); }
  std::optional<SimTime> speculate(std::span<const SimTime> finished_ns, std::int64_t gpus,
                                   SimTime now_rel) const override {
    if (!quantile_ || static_cast<std::int64_t>(finished_ns.size()) != quantile_count(*quantile_, gpus))
      return std::nullopt;
    std::vector<SimTime> finished(finished_ns.begin(), finished_ns.end());
    return launch_time(finished, multiplier_, now_rel);
  }
  std::unique_ptr<BspStepper> make_stepper(const BspSetup& setup) const override {
    if (quantile_) return std::make_unique<SpeculationStepper>(setup, *quantile_, multiplier_);
    return make_first_of_copies_stepper(setup, copies_);
  }
  BspOrderForm order_form() const override {
    if (!quantile_) return {copies_, 0, "", std::nullopt};
    return {2, 0, "", BspOrderForm::Speculation{*quantile_, multiplier_}};
  }

 private:
  int copies_;
  std::optional<double> quantile_;
  double multiplier_;
  BackupMoeParams moe_;
};

}  // namespace

std::unique_ptr<Policy> make_backup_policy(const JsonReader& n) {
  BackupMoeParams p;
  if (n.has("backup_slots")) p.backup_slots = static_cast<int>(n.integer("backup_slots", {}, Range{0.0, 65536.0}));
  p.next_node = n.string("backup_on", "node", {"node", "next_node"}) == "next_node";
  if (n.has("quantile")) {
    const double q = n.number("quantile", {}, open_unit_interval());
    const double multiplier = n.number("multiplier", 1.5, above(0));
    if (n.has("copies") && n.integer("copies") != 2)
      n.child("copies").fail("the trigger form (with 'quantile') launches one backup per slow task: "
                             "copies must be 2 or left out");
    p.quantile = q;
    p.multiplier = multiplier;
    return std::make_unique<BackupPolicy>(p);
  }
  if (n.has("multiplier")) n.child("multiplier").fail("'multiplier' needs 'quantile' (the trigger form)");
  p.copies = static_cast<int>(n.integer("copies", 2, Range{1.0, static_cast<double>(kMaxAttempts)}));
  return std::make_unique<BackupPolicy>(p);
}

}  // namespace tailsim
