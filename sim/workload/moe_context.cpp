// Decode with a drawn context length (sim/workload/moe.hpp): every step, each GPU's batch_per_gpu requests
// draw their KV lengths from their own stream ("moe/context"), so adding it leaves the routing, noise and
// policy draws as they were. A GPU's core attention follows the sum of its requests' lengths, so the GPU
// whose requests hold the longest contexts finishes its dense part last: the layer's dispatch waits for it.
#include <algorithm>
#include <cmath>

#include "sim/workload/moe_run.hpp"

namespace tailsim {

void MoeRun::draw_contexts() {
  const AttentionRoofline roof = attention_roofline(c_.cluster.gpu, core_attention_dtype(c_.model.dtype));
  const double bytes = kCoreAttentionBytesPerElement;
  // With two_batch, a GPU's first ceil(T / 2) requests form micro-batch 0, the rest micro-batch 1.
  const std::int64_t split = two_batch_ ? (c_.tokens_per_gpu + 1) / 2 : c_.tokens_per_gpu;
  for (std::int64_t g = 0; g < gpus_; ++g) {
    double kv_entries[2] = {0, 0};  // whole KV entries, each draw rounded (and kept within [0, 10^12]), summed in order
    for (std::int64_t r = 0; r < c_.tokens_per_gpu; ++r)
      kv_entries[r < split ? 0 : 1] += std::round(std::clamp(c_.context->from_uniform(context_stream_.uniform()), 0.0, 1e12));
    const auto i = static_cast<std::size_t>(g);
    if (!two_batch_) {
      core_s_[i] = roof.time_s(decode_attention(*c_.model.attention, kv_entries[0], bytes));
      continue;
    }
    for (const int m : {0, 1}) core_micro_[m][i] = roof.time_s(decode_attention(*c_.model.attention, kv_entries[m], bytes));
  }
}

}  // namespace tailsim
