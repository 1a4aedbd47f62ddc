#include "sim/run/trace_run.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "sim/cluster/trace_sink.hpp"
#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "sim/run/runner.hpp"

namespace tailsim {

void write_trace(const Scenario& sc, const std::vector<PointModel>& models, const std::string& file,
                 std::int64_t steps) {
  if (models.size() != sc.points.size()) throw std::invalid_argument("write_trace: one model per sweep point");
  if (steps < 1)
    throw InputError("", "--trace-steps", "expected an integer >= 1, got " + std::to_string(steps));
  // Replication 0 runs the first steps of every point; it takes the remainder, so it is the longest.
  const std::int64_t traced =
      std::min(steps, sc.steps / sc.replications + (sc.steps % sc.replications > 0 ? 1 : 0));
  TraceSize size;
  for (const PointModel& m : models) {
    const TraceSize point = m.workload->trace_size(m.policy_views());
    size.per_step += point.per_step * static_cast<double>(m.policies.size());
    size.once += point.once * static_cast<double>(m.policies.size());
  }
  const double events = size.once + size.per_step * static_cast<double>(traced);
  if (events > static_cast<double>(kMaxTraceEvents)) {
    const auto fit =
        static_cast<std::int64_t>((static_cast<double>(kMaxTraceEvents) - size.once) / size.per_step);
    throw InputError(
        "", "--trace-steps",
        "a trace of " + std::to_string(traced) + " steps would hold about " +
            std::to_string(std::llround(events)) + " events, more than the limit of " +
            std::to_string(kMaxTraceEvents) + ": " +
            (fit > 0 ? "trace " + std::to_string(fit) + " steps or fewer (--trace-steps " +
                           std::to_string(fit) + "), or fewer sweep points"
                     : "even one step is too many; trace fewer sweep points or fewer GPUs (--set, "
                       "--sweep)"));
  }
  TraceSink sink;
  for (std::size_t p = 0; p < models.size(); ++p) {
    sink.begin_point(sc.points[p].label());
    const std::vector<const Policy*> views = models[p].policy_views();
    RunRequest req = make_run_request(sc, 0, traced, views);  // as the runner's replication 0
    req.trace = &sink;
    models[p].workload->run(req);
  }
  const Json metadata = {{"generator", "tailsim"}, {"scenario", sc.name},
                         {"seed", sc.seed},        {"replication", 0},
                         {"steps", traced},        {"time", "simulated; ts and dur in microseconds"}};
  write_atomically(file, sink.finish(metadata));
}

}  // namespace tailsim
