// `evict` on the moe workload. The detector's per-step measure of a GPU is the sum over the step's layers
// of its compute factor (its kernels' time on the same work relative to a nominal GPU, as NVIDIA's detector
// times the same kernels on every rank). A GPU that leaves service is replaced by a healthy spare while
// `spares` last (the spare loads the GPU's expert weights from storage over its NIC), else its experts
// move to the GPUs in service hosting the fewest experts, each copied from the leaving GPU over NVLink or the
// NIC. The copies are weight loads of the next step's forward layers (every MoE layer has its own experts),
// which the experts of the receiving GPU wait for: the workload charges the bytes and the stall. A GPU whose
// experts moved away keeps its share of the dense layers (attention is data-parallel over the GPUs).
#include <algorithm>
#include <utility>

#include "sim/policy/evict.hpp"

namespace tailsim {

namespace {

class EvictMoeController final : public MoeController {
 public:
  EvictMoeController(const EvictParams& params, const MoeRunInfo& info)
      : evict_(params, info.gpus),
        node_size_(std::max<std::int64_t>(1, info.gpus_per_node)),
        expert_bytes_(info.expert_bytes),
        measure_(static_cast<std::size_t>(info.gpus), 0.0),
        gone_(static_cast<std::size_t>(info.gpus), 0),
        held_(static_cast<std::size_t>(info.gpus), 0) {}

  void before_routing(const MoeLayer& layer, ExpertPlacement&, MoeDecisions& d) override {
    if (layer.backward || layer.step != loads_step_) return;
    d.loads.insert(d.loads.end(), pending_.begin(), pending_.end());
  }

  void after_layer(const MoeLayer&, const MoeLayerOutcome& o) override {
    for (std::size_t g = 0; g < measure_.size(); ++g)
      measure_[g] += o.compute_factor.empty() ? 1.0 : o.compute_factor[g];
  }

  void between_steps(std::int64_t next_step, ExpertPlacement& placement) override {
    spares_.clear();
    pending_.clear();
    const std::vector<std::int64_t> leaving = evict_.end_step(measure_);
    std::fill(measure_.begin(), measure_.end(), 0.0);
    if (leaving.empty()) return;
    loads_step_ = next_step;
    std::vector<std::vector<std::int64_t>> hosts(static_cast<std::size_t>(placement.experts()));
    for (int e = 0; e < placement.experts(); ++e)
      hosts[static_cast<std::size_t>(e)].assign(placement.hosts(e).begin(), placement.hosts(e).end());
    for (std::int64_t g = 0; g < placement.gpus(); ++g)
      held_[static_cast<std::size_t>(g)] = static_cast<std::int64_t>(placement.slots(g).size());
    std::vector<std::int64_t> moving;
    for (const std::int64_t g : leaving) {
      if (evict_.take_spare()) {
        spares_.push_back(g);
        evict_.replaced(g);
        evictions_.push_back({g, next_step, true});
        const auto experts = static_cast<double>(placement.slots(g).size());
        if (experts > 0) pending_.push_back({g, -1, experts * expert_bytes_, true});
        continue;
      }
      if (in_service() == 1) continue;  // the last GPU keeps its experts
      gone_[static_cast<std::size_t>(g)] = 1;
      evictions_.push_back({g, next_step, false});
      moving.push_back(g);
    }
    // Every GPU leaving is out before any expert moves, so none lands on another one leaving.
    for (const std::int64_t g : moving)
      for (std::vector<std::int64_t>& h : hosts)
        if (std::find(h.begin(), h.end(), g) != h.end()) move(h, g);
    placement = ExpertPlacement(placement.gpus(), hosts);
  }

  std::vector<std::int64_t> replaced_by_spares() override { return spares_; }
  std::span<const Eviction> evictions() const override { return evictions_; }

 private:
  std::int64_t in_service() const {
    return static_cast<std::int64_t>(std::count(gone_.begin(), gone_.end(), 0));
  }

  // Moves GPU `from`'s replica of an expert (hosts: its GPUs) to the GPU in service with the fewest experts
  // that does not host it yet (ties: one in `from`'s node, so the copy goes over NVLink; then the lowest
  // index); the expert just loses the replica when no GPU is left.
  void move(std::vector<std::int64_t>& hosts, std::int64_t from) {
    hosts.erase(std::find(hosts.begin(), hosts.end(), from));
    std::int64_t best = -1;
    for (std::int64_t g = 0; g < static_cast<std::int64_t>(gone_.size()); ++g) {
      if (gone_[static_cast<std::size_t>(g)] || std::find(hosts.begin(), hosts.end(), g) != hosts.end())
        continue;
      if (best < 0 || rank(g, from) < rank(best, from)) best = g;
    }
    if (best < 0) {
      if (hosts.empty()) hosts.push_back(from);  // nowhere to go: it stays
      return;
    }
    hosts.push_back(best);
    ++held_[static_cast<std::size_t>(best)];
    pending_.push_back({best, from, expert_bytes_, true});
  }

  std::pair<std::int64_t, bool> rank(std::int64_t g, std::int64_t from) const {
    return {held_[static_cast<std::size_t>(g)], g / node_size_ != from / node_size_};
  }

  EvictController evict_;
  std::int64_t node_size_;
  double expert_bytes_;          // one expert's weights in one layer
  std::vector<double> measure_;  // per GPU: the step's summed compute factors
  std::vector<char> gone_;
  std::vector<std::int64_t> held_;  // per GPU: the experts it hosts
  std::vector<std::int64_t> spares_;
  std::vector<Eviction> evictions_;
  std::vector<WeightLoad> pending_;  // the next step's loads, issued in each of its forward MoE layers
  std::int64_t loads_step_ = -1;
};

}  // namespace

std::unique_ptr<MoeController> EvictPolicy::make_controller(const MoeRunInfo& info) const {
  return std::make_unique<EvictMoeController>(params_, info);
}

void EvictPolicy::check(const MoeRunInfo&) const {}

}  // namespace tailsim
