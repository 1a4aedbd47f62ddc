// Timelines of the first steps of a run in the Chrome Trace Event Format, for https://ui.perfetto.dev: one
// process per (sweep point, policy), one track (thread) per GPU and per link port, one complete event ("X")
// per phase. Workloads emit through a TraceSink only when RunRequest::trace is set; without one they do not
// touch this code. sim/run/trace_run.hpp runs the points that fill it. Times are the simulator's integer nanoseconds, written as exact microseconds ("12.345").
#pragma once
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/cluster/cluster.hpp"
#include "sim/config/json_reader.hpp"
#include "sim/core/time.hpp"

namespace tailsim {

// Events one trace may hold (about 150 bytes each in the file): Perfetto loads it in a browser tab.
inline constexpr std::int64_t kMaxTraceEvents = 2'000'000;

// The "args" of one event: JSON object members in the order added.
class TraceArgs {
 public:
  template <std::integral T>
  TraceArgs& add(std::string_view key, T value) {
    return add_integer(key, static_cast<std::int64_t>(value));
  }
  TraceArgs& add(std::string_view key, double value);  // non-finite values are written as null
  TraceArgs& add(std::string_view key, std::string_view value);
  TraceArgs& flag(std::string_view key);  // key: true
  const std::string& members() const { return members_; }

 private:
  TraceArgs& add_integer(std::string_view key, std::int64_t value);
  std::string members_;  // "\"key\":value,..." without braces
};

// Collects the events of one trace file. Not thread-safe: a trace is recorded on one thread, in a fixed
// order, so the same scenario gives the same bytes.
class TraceSink {
 public:
  explicit TraceSink(std::int64_t max_events = kMaxTraceEvents);

  // Names the processes of the runs that follow ("cluster.gpus=64"); empty: processes are named by policy.
  void begin_point(std::string title);
  // Starts the process of one policy's run; the tracks and slices that follow belong to it.
  void begin_process(std::string_view policy_label);
  // Adds a track to the current process, shown below the ones added before; returns its id.
  std::int64_t add_track(std::string_view name);
  // One track per GPU ("GPU 7", slow GPUs marked with their factor) or, with `port`, per GPU port
  // ("GPU 7 nvlink"); returns the id of GPU 0's track: GPU k's is that id + k.
  std::int64_t add_gpu_tracks(std::span<const WorkerGroup> groups, std::string_view port = {});
  // A complete event on `track` over [start_ns, end_ns) of simulated time; nothing when it is empty.
  // Throws InputError once the trace holds more than max_events.
  void slice(std::int64_t track, std::string_view name, SimTime start_ns, SimTime end_ns,
             const TraceArgs& args = {});

  std::int64_t events() const { return events_; }
  // The whole JSON document, {"traceEvents": [...], "displayTimeUnit": "ns", "metadata": {...}}; the sink
  // is empty afterwards.
  std::string finish(const Json& metadata);

 private:
  void begin_event();  // counts the event against the limit and writes the separator
  void metadata(std::string_view kind, std::int64_t tid, std::string_view name, std::int64_t sort_index);

  std::int64_t max_events_;
  std::int64_t events_ = 0;
  std::string doc_;  // the document so far: the header and every event
  std::string point_title_;
  std::int64_t pid_ = 0;       // current process, from 1
  std::int64_t next_tid_ = 1;  // track ids are unique over the whole trace
  std::int64_t tracks_in_process_ = 0;
};

}  // namespace tailsim
