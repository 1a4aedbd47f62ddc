// One data-parallel replica's pipeline schedule: the order in which each pipeline rank runs the forward
// and backward of every (model chunk, microbatch), and the times that order gives. Two engines compute the
// same times from the same durations (integer nanoseconds, so they agree exactly):
//  - replica_times_fast: the recurrence over (stage, microbatch), ranks advanced in turn while their next
//    task's input is there (no event queue; the hot path);
//  - replica_times_events: every task completion and p2p arrival is an event of the engine (the reference).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sim/core/time.hpp"

namespace tailsim {

enum class PipeSchedule { k1F1B, kGPipe, kInterleaved };

// Parses "1f1b", "gpipe", "interleaved"; the valid names for messages.
const std::vector<std::string>& pipe_schedule_names();
PipeSchedule pipe_schedule_from_name(const std::string& name);

struct PipeShape {
  int stages = 1;        // pipeline ranks p
  int microbatches = 1;  // m per step
  int chunks = 1;        // model chunks (virtual stages) per rank: > 1 only for interleaved
  PipeSchedule schedule = PipeSchedule::k1F1B;
  int virtual_stages() const { return stages * chunks; }
  int tasks() const { return 2 * stages * chunks * microbatches; }
};

// One task of a rank's order: the forward or backward of microbatch `mb` on the rank's chunk `chunk`.
struct PipeOp {
  bool backward = false;
  int chunk = 0;
  int mb = 0;
};

// Each rank's order (Megatron's schedules: 1F1B warmup / steady / cooldown; GPipe all forwards then all
// backwards; interleaved 1F1B with `chunks` chunks, which needs m a multiple of p).
std::vector<std::vector<PipeOp>> pipe_orders(const PipeShape& shape);

// The durations of one replica's step. Task (virtual stage v = chunk * p + rank, microbatch mb) is at index
// v * m + mb of fwd_ns and bwd_ns. p2p_fwd_ns[r]: activations from rank r to rank (r + 1) % p; p2p_bwd_ns[r]:
// gradients from rank (r + 1) % p back to r.
struct ReplicaDurations {
  std::vector<SimTime> fwd_ns, bwd_ns;
  std::vector<SimTime> p2p_fwd_ns, p2p_bwd_ns;
};

// Per pipeline rank: when its last backward started and ended (the gradients are complete at the end), and
// the step's busy time of all ranks.
struct TaskSpan {
  int rank = 0;  // pipeline rank (stage) within the replica
  PipeOp op;
  SimTime start_ns = 0, end_ns = 0;
};

struct ReplicaTimes {
  std::vector<SimTime> last_bwd_start_ns, flush_ns;
  SimTime busy_ns = 0;
  bool record = false;          // the fast path appends every task to `spans` (for --trace)
  std::vector<TaskSpan> spans;
};

void replica_times_fast(const PipeShape& shape, const std::vector<std::vector<PipeOp>>& orders,
                        const ReplicaDurations& d, ReplicaTimes& out);
// The reference engine; `events` (when given) is increased by the events it executed.
void replica_times_events(const PipeShape& shape, const std::vector<std::vector<PipeOp>>& orders,
                          const ReplicaDurations& d, ReplicaTimes& out, std::uint64_t* events = nullptr);

}  // namespace tailsim
