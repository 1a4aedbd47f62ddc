#include <stdexcept>
#include <string>

#include "sim/policy/moe_policy.hpp"

namespace tailsim {

ExpertPlacement::ExpertPlacement(std::int64_t gpus, const std::vector<std::vector<std::int64_t>>& hosts)
    : gpus_(gpus) {
  if (gpus < 1) throw std::invalid_argument("ExpertPlacement: gpus must be >= 1, got " + std::to_string(gpus));
  offsets_.reserve(hosts.size() + 1);
  gpu_offsets_.assign(static_cast<std::size_t>(gpus) + 1, 0);
  for (std::size_t e = 0; e < hosts.size(); ++e) {
    if (hosts[e].empty()) throw std::invalid_argument("ExpertPlacement: expert " + std::to_string(e) + " has no host");
    for (const std::int64_t g : hosts[e]) {
      if (g < 0 || g >= gpus)
        throw std::invalid_argument("ExpertPlacement: expert " + std::to_string(e) + " placed on GPU " +
                                    std::to_string(g) + " of " + std::to_string(gpus));
      hosts_.push_back(g);
      ++gpu_offsets_[static_cast<std::size_t>(g) + 1];
    }
    offsets_.push_back(static_cast<std::int64_t>(hosts_.size()));
  }
  // The inverse map by counting sort: each GPU's slots in increasing expert order.
  for (std::size_t g = 0; g < static_cast<std::size_t>(gpus); ++g) gpu_offsets_[g + 1] += gpu_offsets_[g];
  slots_.resize(hosts_.size());
  std::vector<std::int64_t> fill(gpu_offsets_.begin(), gpu_offsets_.end() - 1);
  for (std::size_t e = 0; e < hosts.size(); ++e) {
    const auto r = static_cast<int>(hosts[e].size());
    for (int j = 0; j < r; ++j)
      slots_[static_cast<std::size_t>(fill[static_cast<std::size_t>(hosts[e][static_cast<std::size_t>(j)])]++)] =
          Slot{static_cast<int>(e), j, r};
  }
}

ExpertPlacement ExpertPlacement::blocked(int experts, std::int64_t gpus) {
  if (experts < 1 || gpus < 1 || (gpus <= experts && experts % gpus != 0) || (gpus > experts && gpus % experts != 0))
    throw std::invalid_argument("ExpertPlacement::blocked: " + std::to_string(experts) + " experts over " +
                                std::to_string(gpus) + " GPUs (one must divide the other)");
  std::vector<std::vector<std::int64_t>> hosts(static_cast<std::size_t>(experts));
  if (gpus <= experts) {
    const std::int64_t per_gpu = experts / gpus;
    for (int e = 0; e < experts; ++e) hosts[static_cast<std::size_t>(e)] = {e / per_gpu};
  } else {
    for (int e = 0; e < experts; ++e)
      for (std::int64_t g = e; g < gpus; g += experts) hosts[static_cast<std::size_t>(e)].push_back(g);
  }
  return ExpertPlacement(gpus, hosts);
}

}  // namespace tailsim
