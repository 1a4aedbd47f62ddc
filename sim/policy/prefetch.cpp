// `prefetch`: offloaded experts (the straggler blog's "wake experts early"). Each GPU keeps `cache_experts` of
// its experts' weights per layer in HBM (ExpertCache, least recently used out), the others in host memory.
// After routing, every expert of the GPU that received tokens is an access: a hit when cached, else a miss
// whose weights load over the GPU's host link (configs/gpus host_link_bandwidth) before the GPU's experts
// can run (a stall when it outlasts the dense part and dispatch). Strategies decide what else is loaded
// ahead, while the current layer computes (loads that occupy the host link but are not waited for):
//  - lru: nothing (on demand only);
//  - next_layer: layer l + 1's `prefetch_k` experts predicted from layer l's routing (the generator's layer
//    similarity: expert e of layer l + 1 is the counterpart of expert e of layer l, hot where it was hot);
//  - previous_step: layer l + 1's `prefetch_k` busiest experts of the previous step.
// A layer whose experts were prefetched waits, with a fence on the host link, for those loads to land.
// prefetch_hit_rate = hits / accesses. The GPUs hold the workload's placement (experts are not moved).
#include <algorithm>
#include <numeric>

#include "sim/policy/expert_cache.hpp"
#include "sim/policy/policy.hpp"

namespace tailsim {

namespace {

enum class PrefetchStrategy { kLru, kNextLayer, kPreviousStep };

struct PrefetchParams {
  int cache_experts = 1;
  PrefetchStrategy strategy = PrefetchStrategy::kLru;
  int prefetch_k = 1;
};

class PrefetchController final : public MoeController {
 public:
  PrefetchController(const PrefetchParams& p, const MoeRunInfo& info)
      : p_(p), info_(info), experts_(static_cast<std::size_t>(info.experts)) {
    const auto cells = static_cast<std::size_t>(info.moe_layers) * static_cast<std::size_t>(info.gpus);
    caches_.assign(cells, ExpertCache(p.cache_experts));
    pending_.assign(cells, 0);
    previous_.assign(static_cast<std::size_t>(info.moe_layers) * experts_, 0);
  }

  void after_routing(MoeLayer& view, const ExpertPlacement& placement, MoeDecisions& d) override {
    if (view.backward) return;
    if (!warm_) warm(placement);
    const auto l = static_cast<std::size_t>(view.layer);
    ++clock_;
    for (std::int64_t g = 0; g < info_.gpus; ++g) {
      ExpertCache& cache = cell(l, g);
      if (pending_[l * gpus() + static_cast<std::size_t>(g)]) {  // wait for this layer's prefetches
        d.loads.push_back(WeightLoad{g, WeightLoad::kHostMemory, 0.0, true});
        pending_[l * gpus() + static_cast<std::size_t>(g)] = 0;
      }
      for (const ExpertPlacement::Slot& s : placement.slots(g)) {
        if (ExpertPlacement::share(s, view.counts[s.expert]) == 0) continue;
        ++d.cache_accesses;
        if (cache.touch(s.expert, clock_)) {
          ++d.cache_hits;
          continue;
        }
        cache.insert(s.expert, clock_);
        d.loads.push_back(WeightLoad{g, WeightLoad::kHostMemory, info_.expert_bytes, true});
      }
    }
    if (p_.strategy == PrefetchStrategy::kNextLayer && view.layer + 1 < info_.moe_layers)
      prefetch(l + 1, view.counts, placement, d);
    if (p_.strategy == PrefetchStrategy::kPreviousStep) {
      if (view.step > 0 && view.layer + 1 < info_.moe_layers)
        prefetch(l + 1, {&previous_[(l + 1) * experts_], experts_}, placement, d);
      std::copy(view.counts.begin(), view.counts.end(), previous_.begin() + static_cast<std::ptrdiff_t>(l * experts_));
    }
  }

 private:
  std::size_t gpus() const { return static_cast<std::size_t>(info_.gpus); }
  ExpertCache& cell(std::size_t layer, std::int64_t g) { return caches_[layer * gpus() + static_cast<std::size_t>(g)]; }

  // The deployment starts with each GPU's first cache_experts experts of every layer in HBM.
  void warm(const ExpertPlacement& placement) {
    warm_ = true;
    for (std::size_t l = 0; l < static_cast<std::size_t>(info_.moe_layers); ++l)
      for (std::int64_t g = 0; g < info_.gpus; ++g) {
        int n = 0;
        for (const ExpertPlacement::Slot& s : placement.slots(g))
          if (n++ < p_.cache_experts) cell(l, g).insert(s.expert, 0);
      }
  }

  // Loads into layer `next`'s caches each GPU's prefetch_k experts ranked highest by `rank` (ties: lower index),
  // those not cached yet; the layer waits for them (pending_).
  void prefetch(std::size_t next, std::span<const std::int64_t> rank, const ExpertPlacement& placement, MoeDecisions& d) {
    for (std::int64_t g = 0; g < info_.gpus; ++g) {
      order_.clear();
      for (const ExpertPlacement::Slot& s : placement.slots(g)) order_.push_back(s.expert);
      std::stable_sort(order_.begin(), order_.end(), [&](int a, int b) { return rank[a] > rank[b]; });
      ExpertCache& cache = cell(next, g);
      const int k = std::min<int>(p_.prefetch_k, static_cast<int>(order_.size()));
      for (int i = 0; i < k; ++i) {
        if (rank[order_[i]] == 0 || cache.contains(order_[i])) continue;
        cache.insert(order_[i], clock_);
        d.loads.push_back(WeightLoad{g, WeightLoad::kHostMemory, info_.expert_bytes, false});
        pending_[next * gpus() + static_cast<std::size_t>(g)] = 1;
      }
    }
  }

  PrefetchParams p_;
  MoeRunInfo info_;
  std::size_t experts_;
  std::vector<ExpertCache> caches_;     // layers x GPUs
  std::vector<std::uint8_t> pending_;   // layers x GPUs: prefetches on the way
  std::vector<std::int64_t> previous_;  // layers x experts: the previous step's counts (previous_step)
  std::vector<int> order_;
  std::int64_t clock_ = 0;
  bool warm_ = false;
};

class PrefetchPolicy final : public Policy, public MoePolicy {
 public:
  explicit PrefetchPolicy(PrefetchParams p) : Policy("prefetch", "prefetch"), p_(p) {}
  const MoePolicy* moe() const override { return this; }
  std::unique_ptr<MoeController> make_controller(const MoeRunInfo& info) const override {
    check(info);
    return std::make_unique<PrefetchController>(p_, info);
  }
  void check(const MoeRunInfo& info) const override {
    const std::int64_t per_gpu = std::max<std::int64_t>(1, info.experts / std::max<std::int64_t>(1, info.gpus));
    if (p_.cache_experts > per_gpu)
      fail("cache_experts", "expected at most the " + std::to_string(per_gpu) + " experts each GPU holds (" +
           std::to_string(info.experts) + " experts over " + std::to_string(info.gpus) + " GPUs), got " +
           std::to_string(p_.cache_experts));
    if (info.host_bandwidth <= 0)
      fail("cache_experts", "the offloaded experts load over the GPU's host link: the GPU needs a "
           "'host_link_bandwidth' (configs/gpus)");
  }

 private:
  PrefetchParams p_;
};

}  // namespace

std::unique_ptr<Policy> make_prefetch_policy(const JsonReader& n) {
  PrefetchParams p;
  p.cache_experts = static_cast<int>(n.integer("cache_experts", std::nullopt, Range{1.0, 65536.0}));
  const std::string s = n.string("strategy", "lru", {"lru", "next_layer", "previous_step"});
  p.strategy = s == "next_layer" ? PrefetchStrategy::kNextLayer
               : s == "previous_step" ? PrefetchStrategy::kPreviousStep
                                      : PrefetchStrategy::kLru;
  p.prefetch_k = static_cast<int>(n.integer("prefetch_k", 1, Range{1.0, static_cast<double>(p.cache_experts)}));
  return std::make_unique<PrefetchPolicy>(p);
}

}  // namespace tailsim
