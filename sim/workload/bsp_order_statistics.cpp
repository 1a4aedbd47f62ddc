// The bsp workload's order_statistics engine: per group of identical workers and step, the group's largest
// worker time (and, for drop_slowest, its m + 1 largest) is drawn directly from its exact law, so a step
// costs O(groups) draws whatever K is (sim/stats/order_statistics.hpp). Every policy of the run reads the
// same uniforms of a group and step (a comonotone coupling): none's maximum and backup's maximum of minima
// are both increasing functions of one uniform, which keeps paired differences between policies tight.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "sim/core/rng.hpp"
#include "sim/policy/evict.hpp"
#include "sim/stats/order_statistics.hpp"
#include "sim/workload/bsp.hpp"
#include "sim/workload/bsp_speculation.hpp"

namespace tailsim {

namespace {

// A group's draws: each step, the upper tails of its largest workers, shared by every policy. The largest
// comes from one stream and the next ones (drop_slowest) from another, so that a policy's draws do not
// depend on which other policies run beside it; and each group has its own streams.
struct GroupDraws {
  double n = 0;                 // workers in the group
  RngStream largest, next;      // uniforms of the largest worker, and of the ones below it
  std::vector<double> uniforms, tails;  // this step: the uniforms and the upper tails of the largest workers
};

// How many of a group's largest workers a policy needs each step: 1, or m + 1 for drop_slowest (at most n).
std::int64_t needed(const BspOrderForm& form, std::int64_t n) { return std::min(n, form.dropped + 1); }

// One policy's step from its groups' tails: the barrier release (ns) and the busy time (seconds).
class OrderStatisticsPolicy {
 public:
  OrderStatisticsPolicy(const BspOrderForm& form, const std::vector<WorkerGroup>& groups, const Distribution& compute,
                        const RunRequest& req)
      : form_(form) {
    if (form.speculation) {  // one healthy group (order_statistics_refusal)
      speculation_.emplace(compute, groups.at(0).count, *form.speculation, req.seed, req.replication);
      return;
    }
    for (const WorkerGroup& g : groups) {
      laws_.emplace_back(compute, g.factor, form.copies);
      busy_mean_s_ += static_cast<double>(g.count) * laws_.back().mean();
    }
  }

  BspStepResult step(const std::vector<GroupDraws>& groups) {
    if (speculation_) return speculation_->step(groups[0].uniforms[0]);
    BspStepResult r;
    if (form_.dropped == 0) {
      for (std::size_t g = 0; g < groups.size(); ++g)
        r.step_ns = std::max(r.step_ns, seconds_to_ns(laws_[g].upper_quantile(groups[g].tails[0])));
      r.busy_s = busy_mean_s_;
    } else {
      // The (m + 1)-th largest of all workers is among the m + 1 largest of each group.
      top_ns_.clear();
      for (std::size_t g = 0; g < groups.size(); ++g) {
        const auto k = static_cast<std::size_t>(needed(form_, static_cast<std::int64_t>(groups[g].n)));
        for (std::size_t j = 0; j < k; ++j) top_ns_.push_back(seconds_to_ns(laws_[g].upper_quantile(groups[g].tails[j])));
      }
      const auto m = static_cast<std::ptrdiff_t>(form_.dropped);
      std::nth_element(top_ns_.begin(), top_ns_.begin() + m, top_ns_.end(), std::greater<>());
      r.step_ns = top_ns_[static_cast<std::size_t>(m)];
      // Busy = sum of min(t, release): every worker's time, less what the m dropped ones would still have
      // run. The sum is replaced by its expectation (unbiased, as for `none`); the m dropped are known.
      SimTime beyond = 0;
      for (std::ptrdiff_t i = 0; i < m; ++i) beyond += top_ns_[static_cast<std::size_t>(i)] - r.step_ns;
      r.busy_s = busy_mean_s_ - ns_to_seconds(beyond);
    }
    // Losing copies run until the winner finishes, then are cancelled (as batched).
    r.extra_s = static_cast<double>(form_.copies - 1) * r.busy_s;
    return r;
  }

 private:
  BspOrderForm form_;
  std::optional<ExactSpeculation> speculation_;
  std::vector<WorkerLaw> laws_;  // per group
  double busy_mean_s_ = 0;       // E[sum of the K worker times], seconds
  std::vector<SimTime> top_ns_;
};

std::vector<BspOrderForm> forms_of(std::span<const Policy* const> policies) {
  std::vector<BspOrderForm> out;
  for (const Policy* p : policies) out.push_back(p->bsp()->order_form());
  return out;
}

}  // namespace

std::string BspWorkload::order_statistics_refusal(std::span<const Policy* const> policies) const {
  if (cluster_.noise) return "cluster.noise multiplies each task by its own factor";
  if (!fail_slow_.empty()) return "fail-slow episodes slow single workers for a while";
  for (const Policy* p : policies) {
    if (!p->bsp()) continue;  // check_policy refuses it
    const BspOrderForm form = p->bsp()->order_form();
    if (!form.refusal.empty()) return form.refusal;
    if (form.speculation && (cluster_.groups().size() != 1 || cluster_.groups()[0].factor != 1.0))
      return "speculation (backup with 'quantile') on slow GPUs: its quorum and median mix workers of different "
             "laws, which have no exact order statistics here";
    if (form.dropped > kMaxOrderStatisticsDropped)
      return "drop_slowest with m = " + std::to_string(form.dropped) + " keeps the m + 1 largest of each group " +
             "every step (m <= " + std::to_string(kMaxOrderStatisticsDropped) + " here)";
  }
  return "";
}

std::string BspWorkload::engine_used(std::span<const Policy* const> policies) const {
  switch (engine_) {
    case BspEngine::kBatched: return "batched";
    case BspEngine::kEvents: return "events";
    case BspEngine::kOrderStatistics: return "order_statistics";
    case BspEngine::kFast: break;
  }
  return order_statistics_refusal(policies).empty() ? "order_statistics" : "batched";
}

Workload::GpuLimit BspWorkload::gpu_limit(std::span<const Policy* const> policies) const {
  const std::string engine = engine_used(policies);
  if (engine == "order_statistics")
    return {kMaxGpus, "the order_statistics engine's memory does not grow with K"};
  std::string why = "engine '" + engine + "' keeps per-GPU arrays, whose memory grows with K";
  if (engine_ != BspEngine::kEvents && engine_ != BspEngine::kBatched)
    why += "; the order_statistics engine, which goes to " + std::to_string(kMaxGpus) + ", cannot run here: " +
           order_statistics_refusal(policies);
  return {kMaxGpusWithArrays, why};
}

std::uint64_t BspWorkload::working_bytes_for(std::span<const Policy* const> policies) const {
  if (engine_used(policies) != "order_statistics") {
    // evict: per rank, its detector's window of times and its state (sim/policy/evict.hpp).
    std::uint64_t detectors = 0;
    for (const Policy* p : policies)
      if (const EvictParams* e = p->evict())
        detectors += static_cast<std::uint64_t>(cluster_.gpus) * (8 * static_cast<std::uint64_t>(e->window) + 48);
    return working_bytes(policies.size()) + detectors;
  }
  // Per group: its stream and the uniforms and tails of its largest workers; per policy and group: a law
  // and the largest workers' times. Nothing per GPU.
  std::uint64_t bytes = 1u << 12;
  for (const WorkerGroup& g : cluster_.groups()) {
    std::int64_t most = 1;
    for (const BspOrderForm& f : forms_of(policies)) most = std::max(most, needed(f, g.count));
    bytes += 256 + 16 * static_cast<std::uint64_t>(most) * (1 + policies.size()) + 64 * policies.size();
  }
  return bytes;
}

std::vector<PolicyTally> BspWorkload::run_order_statistics(const RunRequest& req) const {
  const std::vector<BspOrderForm> forms = forms_of(req.policies);
  const std::vector<WorkerGroup> group_list = cluster_.groups();
  std::vector<GroupDraws> groups;
  for (std::size_t gi = 0; gi < group_list.size(); ++gi) {
    const WorkerGroup& wg = group_list[gi];
    GroupDraws g;
    g.n = static_cast<double>(wg.count);
    const std::string name = "bsp/order_statistics/" + std::to_string(gi);
    g.largest = RngStream(req.seed, name, req.replication);
    g.next = RngStream(req.seed, name + "/next", req.replication);
    std::int64_t most = 1;
    for (const BspOrderForm& f : forms) most = std::max(most, needed(f, wg.count));
    g.uniforms.resize(static_cast<std::size_t>(most));
    g.tails.resize(static_cast<std::size_t>(most));
    groups.push_back(std::move(g));
  }
  std::vector<OrderStatisticsPolicy> policies;
  for (const BspOrderForm& f : forms) policies.emplace_back(f, group_list, *compute_, req);
  std::vector<PolicyTally> tallies = make_tallies(req);
  for (std::int64_t step = 0; step < req.steps; ++step) {
    for (GroupDraws& g : groups) {
      g.uniforms[0] = g.largest.uniform();
      for (std::size_t j = 1; j < g.uniforms.size(); ++j) g.uniforms[j] = g.next.uniform();
      top_upper_tails(g.uniforms, g.n, g.tails);
    }
    for (std::size_t p = 0; p < policies.size(); ++p) {
      const BspStepResult r = policies[p].step(groups);
      tallies[p].add_step(r.step_ns, cluster_.gpus, r.busy_s, r.extra_s);
      tallies[p].events += 1;  // the barrier release
    }
  }
  return tallies;
}

}  // namespace tailsim
