// The workload registry: every workload a scenario may name.
#include "sim/workload/bsp.hpp"
#include "sim/workload/moe.hpp"
#include "sim/workload/pipeline.hpp"

namespace tailsim {

const WorkloadRegistry& workload_registry() {
  static const WorkloadRegistry registry = [] {
    WorkloadRegistry r("workloads");
    r.add("bsp", "bulk-synchronous steps: K workers compute, then meet at a barrier (the tail-at-scale model)",
          {{"compute", "distribution of a worker's compute time per step, seconds"},
           {"engine", "\"fast\" (batched draws, default) or \"events\" (every completion through the event queue)"},
           {"fail_slow", "compute fail-slow episodes per worker, as the pipeline workload's (entries or a preset)"}},
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
                        "as DeepEP's low-latency kernels)"},
           {"fail_slow", "fail-slow episodes per GPU, as the pipeline workload's: compute (every layer) or link (its "
                         "all-to-all time)"}},
          make_moe_workload);
    r.add("pipeline",
          "pipeline-parallel training: dp x pp ranks run a 1F1B / GPipe / interleaved schedule, p2p between stages, "
          "gradient all-reduce and optimizer after the flush, the step ends at the data-parallel barrier",
          {{"pp", "pipeline stages (integer >= 1, dividing cluster.gpus; dp = cluster.gpus / pp)"},
           {"dp", "data-parallel replicas (optional check: dp x pp = cluster.gpus)"},
           {"microbatches", "microbatches per step (integer >= 1, default 8)"},
           {"schedule", "\"1f1b\" (default), \"gpipe\" or \"interleaved\""},
           {"virtual_stages", "model chunks per rank with the interleaved schedule (2..64, default 2)"},
           {"forward", "distribution of one microbatch's forward on one stage, seconds, or an array of pp (one per stage)"},
           {"backward", "distribution of its backward, seconds (default: backward_factor x a forward draw)"},
           {"backward_factor", "backward / forward without `backward` (> 0, default 2)"},
           {"stage_factors", "per-stage compute factors, pp numbers > 0 (default all 1)"},
           {"slow", "slow ranks: [{ranks: [...] | stage | node | dp_rank, factor}]"},
           {"p2p_bytes", "activation (and gradient) bytes per microbatch between stages (default 0)"},
           {"grad_bytes", "gradient bytes per rank all-reduced across replicas (default 0)"},
           {"overlap_grad_reduce", "bucketed all-reduce overlapped with the last backward (default false)"},
           {"buckets", "gradient buckets (1..1024, default 4)"},
           {"optimizer", "optimizer step time after the all-reduce (default 0)"},
           {"placement", "\"replica_major\" (default: rank = d x pp + stage) or \"stage_major\" (stage x dp + d)"},
           {"engine", "\"fast\" (per-replica recurrence, default) or \"events\" (every task through the event queue)"},
           {"trace", "replay {file, format: bytedance (default) | simple, dp, pp} instead of drawing task times"},
           {"fail_slow", "episodes arriving at random: [{kind: compute | link, rate_per_rank_step, duration_steps, factor}], "
                         "or a preset {preset: NAME in configs/noise, step_s}"},
           {"whatif", "counterfactual {ranks: [...], stages: [...], decompose: bool}; {} fixes every rank"}},
          make_pipeline_workload);
    return r;
  }();
  return registry;
}

}  // namespace tailsim
