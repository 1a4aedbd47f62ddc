// The `bsp` workload's keys (docs/scenarios.md): compute, engine, fail_slow.
#include <string>

#include "sim/workload/bsp.hpp"

namespace tailsim {

std::unique_ptr<Workload> make_bsp_workload(const JsonReader& n, const ClusterSpec& cluster) {
  auto compute = std::shared_ptr<const Distribution>(make_distribution(n.child("compute")));
  if (compute->min_value() < 0) n.child("compute").fail("compute times must be >= 0");
  const std::string engine = n.string("engine", "fast", {"fast", "batched", "events", "order_statistics"});
  const BspEngine kind = engine == "fast"      ? BspEngine::kFast
                         : engine == "batched" ? BspEngine::kBatched
                         : engine == "events"  ? BspEngine::kEvents
                                               : BspEngine::kOrderStatistics;
  if (kind == BspEngine::kOrderStatistics && cluster.noise)
    n.child("engine").fail("engine 'order_statistics' cannot run cluster.noise exactly: noise multiplies each task "
                           "by its own factor, so a group's times are no longer one distribution's draws "
                           "(\"engine\": \"fast\" runs it on batched draws)");
  std::vector<FailSlowSpec> fail_slow;
  if (const auto fs = n.optional_child("fail_slow")) {
    fail_slow = read_fail_slow(*fs);
    for (const FailSlowSpec& f : fail_slow)
      if (f.link) fs->fail("bsp workers exchange nothing but the barrier: only 'compute' fail-slow episodes apply");
    if (kind == BspEngine::kOrderStatistics)
      n.child("engine").fail("engine 'order_statistics' cannot run fail_slow exactly: an episode slows one worker for "
                             "a while, so a group's times are no longer one distribution's draws (\"engine\": "
                             "\"fast\" runs it on batched draws)");
  }
  const JsonReader engine_node = n.has("engine") ? n.child("engine") : n;
  auto w = std::make_unique<BspWorkload>(cluster, std::move(compute), kind,
                                         std::make_pair(engine_node.file(), engine_node.path_or_root()));
  w->set_fail_slow(std::move(fail_slow));
  return w;
}

}  // namespace tailsim
