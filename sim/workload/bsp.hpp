// The bulk-synchronous workload: each step every worker computes (a draw from `compute` x its GPU's noise
// and slowdown factor), then all meet at a barrier. Engines:
//  - batched: independent workers are drawn in chunks and reduced per step; only the barrier release of
//    each step is an event. Cost per worker-step is a raw uniform and a compare.
//  - events: every attempt completion, speculative launch and barrier release goes through the event
//    queue, with GpuArray and Barrier components. It gives batched's results on the same draws.
//  - order_statistics: per group of identical workers and step, one draw of the group's maximum (or of its
//    m + 1 largest, for drop_slowest), exact in law (sim/stats/order_statistics.hpp); nothing grows with K.
//    Exact without noise and for policies with an order-statistics form (BspPolicy::order_form).
//  - fast (default): order_statistics where it is exact, batched elsewhere.
#pragma once
#include <memory>

#include "sim/stats/distribution.hpp"
#include "sim/workload/pipeline_failslow.hpp"
#include "sim/workload/workload.hpp"

namespace tailsim {

enum class BspEngine { kFast, kBatched, kEvents, kOrderStatistics };

class BspWorkload final : public Workload {
 public:
  // `engine_at`: where the scenario chose the engine ("file", "/workload/engine"), for refusals.
  BspWorkload(ClusterSpec cluster, std::shared_ptr<const Distribution> compute, BspEngine engine,
              std::pair<std::string, std::string> engine_at = {})
      : cluster_(std::move(cluster)), compute_(std::move(compute)), engine_(engine), engine_at_(std::move(engine_at)) {}
  void check_policy(const Policy& policy) const override;
  std::string gpu_not_needed() const override { return "compute is a distribution"; }
  std::vector<PolicyTally> run(const RunRequest& request) const override;
  std::uint64_t working_bytes(std::size_t policies) const override;
  std::uint64_t working_bytes_for(std::span<const Policy* const> policies) const override;
  std::string engine_used(std::span<const Policy* const> policies) const override;
  GpuLimit gpu_limit(std::span<const Policy* const> policies) const override;
  double step_work() const override { return static_cast<double>(cluster_.gpus); }
  void count_held(HeldBytes& held) const override;
  TraceSize trace_size(std::span<const Policy* const> policies) const override;

  std::vector<PolicyTally> run_fast(const RunRequest& request) const;
  std::vector<PolicyTally> run_events(const RunRequest& request) const;
  std::vector<PolicyTally> run_order_statistics(const RunRequest& request) const;
  // Why the order_statistics engine cannot run these policies exactly here; "" when it can.
  std::string order_statistics_refusal(std::span<const Policy* const> policies) const;
  const ClusterSpec& cluster() const { return cluster_; }
  // Compute fail-slow episodes (sim/workload/pipeline_failslow.hpp): a worker's primary task slowed while
  // one lasts (backups run on spare GPUs); both engines draw them alike.
  void set_fail_slow(std::vector<FailSlowSpec> specs) { fail_slow_ = std::move(specs); }

 private:
  BspSetup setup(std::span<const Policy* const> policies) const;
  int attempts_drawn(std::span<const Policy* const> policies) const;

  ClusterSpec cluster_;
  std::shared_ptr<const Distribution> compute_;
  BspEngine engine_;
  std::pair<std::string, std::string> engine_at_;
  std::vector<FailSlowSpec> fail_slow_;
};

// drop_slowest's m beyond which the order_statistics engine declines (it keeps the m + 1 largest of each
// group every step; batched keeps every worker, which is cheaper there).
inline constexpr std::int64_t kMaxOrderStatisticsDropped = 1 << 20;

std::unique_ptr<Workload> make_bsp_workload(const JsonReader& node, const ClusterSpec& cluster);

}  // namespace tailsim
