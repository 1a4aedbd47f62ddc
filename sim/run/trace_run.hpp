// `--trace FILE`: re-runs the first steps of every sweep point with a TraceSink attached and writes the
// timeline (sim/cluster/trace_sink.hpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sim/scenario/scenario.hpp"

namespace tailsim {

// Writes the timeline of the first `steps` steps (at most the steps of replication 0) of every sweep point
// and policy of `scenario` to `file`, atomically (temporary file + rename). Each point runs once more, on
// this thread, with the RunRequest the runner gives its replication 0 (same seed, point index, replication),
// so the trace shows the very draws of the run's first steps; a bsp workload is traced through its event
// path, which agrees with the fast path step for step. `models` are build_all_points(scenario).
// Throws InputError (path "--trace-steps") when steps < 1 or the trace would exceed kMaxTraceEvents, and
// (path = file) when the file cannot be written.
void write_trace(const Scenario& scenario, const std::vector<PointModel>& models, const std::string& file,
                 std::int64_t steps);

}  // namespace tailsim
