// `backup` on the moe workload: hedging. Each MoE layer, once every GPU's expert finish is known, a GPU that
// straggles gets a backup copy of the tokens it has not processed yet on a GPU holding its experts; the
// first to finish wins (the workload charges it: sim/workload/moe_control.cpp).
//  - Trigger form (`quantile`, `multiplier`): Spark's rule as on bsp (the same code,
//    speculation_threshold): once `quantile` of the GPUs have finished their experts, the GPUs still running
//    past multiplier x the median finish are hedged, launched then.
//  - Fixed form: the GPUs the cluster declares slow (slow_gpus) are hedged in every layer from the start.
// Who holds the copies: with `backup_slots` b > 0, each GPU keeps b standby copies, the experts of b / m
// other GPUs (m = the experts a GPU hosts), the first b / m in GPU g's search order: `backup_on` "node"
// (default) searches g's own node first (g + 1, g + 2, ... cyclically in the node: its tokens and results
// cross NVLink), then the next nodes; "next_node" searches the next nodes first (the same local rank, then
// the next ones), so a slow node's GPUs are not each other's backups, at the price of the NIC. With b = 0
// the placement's own replicas serve (K > E): GPU g's backups are the GPUs hosting all of its experts, in
// the same order.
// A straggler goes to its backup GPU that finished earliest, if one finished by the launch (fixed form: one
// not declared slow); else it is not hedged.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "sim/policy/backup.hpp"
#include "sim/policy/policy.hpp"

namespace tailsim {

namespace {

std::int64_t hosted_per_gpu(const MoeRunInfo& s) { return std::max<std::int64_t>(1, s.experts / std::max<std::int64_t>(1, s.gpus)); }

// GPU g's candidate backups in search order (every other GPU once): its node's GPUs from g + 1 cyclically,
// then the other nodes' from g + n on (n = GPUs per node); or, next_node, those first.
void search_order(const MoeRunInfo& s, bool next_node, std::int64_t g, std::vector<std::int64_t>& out) {
  const std::int64_t n = std::min(s.gpus_per_node, s.gpus), first = g - g % n, k = s.gpus;
  out.clear();
  const auto own = [&] {
    for (std::int64_t j = 1; j < n && first + (g - first + j) % n < k; ++j) out.push_back(first + (g - first + j) % n);
  };
  if (!next_node) own();
  for (std::int64_t j = 0; j < k; ++j) {
    const std::int64_t h = (g + n + j) % k;
    if (h / n != g / n) out.push_back(h);
  }
  if (next_node) own();
}

std::string decimal(double bytes, double unit, const char* name) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f %s", bytes / unit, name);
  return buf;
}

class BackupController final : public MoeController {
 public:
  BackupController(const BackupMoeParams& p, const MoeRunInfo& info)
      : p_(p), info_(info), slots_(backup_slots_of(p, info)), slow_(static_cast<std::size_t>(info.gpus), 0) {
    for (const WorkerGroup& g : info.groups)
      if (g.factor > 1.0) std::fill(slow_.begin() + g.first, slow_.begin() + g.first + g.count, 1);
  }

  std::optional<double> standby_bytes_per_gpu() const override {
    return static_cast<double>(slots_) * info_.expert_bytes * static_cast<double>(info_.moe_layers);
  }

  void after_routing(MoeLayer& /*layer*/, const ExpertPlacement& placement, MoeDecisions& /*d*/) override {
    if (backups_.empty()) find_backups(placement);
  }

  void on_stragglers(const MoeLayer& /*layer*/, std::span<const double> finish, MoeDecisions& d) override {
    if (backups_.empty()) return;
    const std::int64_t k = info_.gpus;
    if (!p_.quantile) {
      for (std::int64_t g = 0; g < k; ++g)
        if (slow_[static_cast<std::size_t>(g)]) hedge(g, 0.0, finish, d);
      return;
    }
    sorted_.assign(finish.begin(), finish.end());
    const std::int64_t quorum = speculation_quorum(*p_.quantile, k);
    std::nth_element(sorted_.begin(), sorted_.begin() + (quorum - 1), sorted_.end());
    const double t_quorum = sorted_[static_cast<std::size_t>(quorum - 1)];
    sorted_.resize(static_cast<std::size_t>(quorum));
    const double launch = std::max(t_quorum, speculation_threshold(sorted_, p_.multiplier));
    for (std::int64_t g = 0; g < k; ++g)
      if (finish[g] > launch) hedge(g, launch, finish, d);
  }

 private:
  // GPU g's work goes to its backup that finished earliest (lowest in search order on ties) among those
  // free by the launch (fixed form: not declared slow).
  void hedge(std::int64_t g, double at_s, std::span<const double> finish, MoeDecisions& d) const {
    std::int64_t best = -1;
    for (const std::int64_t h : backups_[static_cast<std::size_t>(g)]) {
      const bool free = p_.quantile ? finish[h] <= at_s : !slow_[static_cast<std::size_t>(h)];
      if (free && (best < 0 || finish[h] < finish[best])) best = h;
    }
    if (best >= 0) d.hedges.push_back(Hedge{g, best, at_s});
  }

  void find_backups(const ExpertPlacement& placement) {
    const std::int64_t k = info_.gpus;
    backups_.assign(static_cast<std::size_t>(k), {});
    if (k < 2) return;
    const std::int64_t wanted = slots_ / hosted_per_gpu(info_);
    std::vector<std::int64_t> order;
    for (std::int64_t g = 0; g < k; ++g) {
      std::vector<std::int64_t>& out = backups_[static_cast<std::size_t>(g)];
      search_order(info_, p_.next_node, g, order);
      for (const std::int64_t h : order) {
        if (slots_ > 0) {
          out.push_back(h);
          if (static_cast<std::int64_t>(out.size()) == wanted) break;
        } else if (hosts_all(placement, h, g)) {
          out.push_back(h);
        }
      }
    }
  }

  // Whether GPU h hosts every expert GPU g hosts.
  static bool hosts_all(const ExpertPlacement& placement, std::int64_t h, std::int64_t g) {
    for (const ExpertPlacement::Slot& s : placement.slots(g)) {
      const auto hosts = placement.hosts(s.expert);
      if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) return false;
    }
    return true;
  }

  BackupMoeParams p_;
  MoeRunInfo info_;
  int slots_;
  std::vector<std::uint8_t> slow_;  // per GPU: declared slow (fixed form)
  std::vector<std::vector<std::int64_t>> backups_;  // per GPU: the GPUs holding its experts, in search order
  std::vector<double> sorted_;
};

}  // namespace

int backup_slots_of(const BackupMoeParams& p, const MoeRunInfo& shape) {
  if (shape.gpus < 2) return 0;  // nothing to back up onto
  if (p.backup_slots) return *p.backup_slots;
  return shape.gpus > shape.experts ? 0 : static_cast<int>(hosted_per_gpu(shape));
}

void check_backup_moe(const Policy& policy, const BackupMoeParams& p, const MoeRunInfo& shape) {
  if (!p.quantile && p.copies != 2)
    policy.fail("copies", "expected 2 or left out on the moe workload (one backup copy of each slow GPU's experts), got " +
                              std::to_string(p.copies));
  const int slots = backup_slots_of(p, shape);
  if (shape.gpus < 2) return;
  const std::int64_t m = hosted_per_gpu(shape);
  const std::string per = " (" + std::to_string(shape.experts) + " experts over " + std::to_string(shape.gpus) + " GPUs)";
  if (slots == 0 && shape.gpus <= shape.experts)
    policy.fail("backup_slots", "expected a multiple of the " + std::to_string(m) + " experts each GPU hosts" + per +
                                    ": with no standby copies a backup needs replicas (more GPUs than experts), got 0");
  if (slots % m != 0)
    policy.fail("backup_slots", "expected a multiple of the " + std::to_string(m) + " experts each GPU hosts" + per +
                                    ", so that each copy holds a whole GPU's experts, got " + std::to_string(slots));
  if (slots / m > shape.gpus - 1)
    policy.fail("backup_slots", "expected at most " + std::to_string(m * (shape.gpus - 1)) + " (copies of the experts of "
                                    "every other GPU" + per + "), got " + std::to_string(slots));
  const double held = static_cast<double>(m + slots) * shape.expert_bytes * shape.moe_layers;
  if (shape.gpu_memory_bytes > 0 && held > shape.gpu_memory_bytes)
    policy.fail("backup_slots", "expected copies that fit the GPU's memory: (" + std::to_string(m) + " hosted + " +
                                    std::to_string(slots) + " standby) experts x " + std::to_string(shape.moe_layers) +
                                    " layers x " + decimal(shape.expert_bytes, 1e6, "MB") + " = " + decimal(held, 1e9, "GB") + ", more than its " +
                                    decimal(shape.gpu_memory_bytes, 1e9, "GB") + ", got " + std::to_string(slots));
}

std::unique_ptr<MoeController> make_backup_controller(const BackupMoeParams& p, const MoeRunInfo& info) {
  return std::make_unique<BackupController>(p, info);
}

}  // namespace tailsim
