// The workload registry: every workload a scenario may name.
#include "sim/workload/bsp.hpp"
#include "sim/workload/moe.hpp"

namespace tailsim {

const WorkloadRegistry& workload_registry() {
  static const WorkloadRegistry registry = [] {
    WorkloadRegistry r("workloads");
    r.add("bsp", "bulk-synchronous steps: K workers compute, then meet at a barrier (the tail-at-scale model)",
          {{"compute", "distribution of a worker's compute time per step, seconds"},
           {"engine", "\"fast\" (batched draws, default) or \"events\" (every completion through the event queue)"}},
          make_bsp_workload);
    r.add("moe",
          "Mixture-of-Experts expert parallelism: per layer dense part, routing, dispatch, grouped experts, combine, barrier",
          {{"model", "a name in configs/models/ (see `tailsim list models`) or a model object"},
           {"mode", "\"inference\" (default: forward only) or \"training\" (forward, backward, gradient all-reduce)"},
           {"tokens_per_gpu", "tokens each GPU holds per step (integer >= 1, default 4096)"},
           {"routing", "router object (see `tailsim list routers`; default: generated, preset by top-k)"},
           {"cost", "expert cost model object (see `tailsim list cost-models`; default roofline)"},
           {"backward_factor", "backward compute / forward compute in training (> 0, default 2)"},
           {"dispatch", "\"hierarchical\" (default: a token crosses to each destination node once, then to each GPU "
                        "over NVLink, as DeepEP's normal kernels) or \"per_expert\" (one copy per (token, expert) pair, "
                        "as DeepEP's low-latency kernels)"}},
          make_moe_workload);
    return r;
  }();
  return registry;
}

}  // namespace tailsim
