// Event-driven cluster components: GPUs running task attempts, barriers, and links. Components hold state
// and handle their own events; owners learn of completions through small listener interfaces.
#pragma once
#include <cstdint>
#include <vector>

#include "sim/cluster/cluster.hpp"
#include "sim/engine/simulator.hpp"

namespace tailsim {

class GpuListener {
 public:
  virtual ~GpuListener() = default;
  // Task `gpu` finished: its first attempt to complete was `attempt`, `now` is the completion time.
  virtual void on_task_done(Simulator& sim, std::int64_t gpu, int attempt) = 0;
};

// K GPUs, each running one task per step as up to kMaxAttempts racing attempts (the first to finish wins,
// the others are cancelled). Per-GPU state lives in arrays, one handler for all GPUs.
class GpuArray final : public EventHandler {
 public:
  GpuArray(Simulator& sim, std::int64_t gpus, GpuListener& listener);
  void start_task(std::int64_t gpu);  // clears the task's state at the start of a step
  void start_attempt(std::int64_t gpu, int attempt, SimTime duration_ns);
  void abandon(std::int64_t gpu);  // cancels every running attempt (drop-slowest)
  bool done(std::int64_t gpu) const { return done_[gpu]; }
  void handle(Simulator& sim, const Event& event) override;

 private:
  Simulator& sim_;
  std::uint32_t id_;
  GpuListener& listener_;
  std::vector<char> done_;
  std::vector<EventId> pending_;  // gpus * kMaxAttempts event ids
  std::vector<std::uint8_t> running_;  // bitmask of running attempts per GPU
};

// Counts arrivals; once `quorum` are in, schedules a release event (kind, arg) to its owner at the
// current time, so the release is ordered after every event already queued for that instant.
class Barrier {
 public:
  Barrier(Simulator& sim, std::uint32_t owner, std::uint32_t release_kind)
      : sim_(sim), owner_(owner), release_kind_(release_kind) {}
  void arm(std::int64_t quorum) {
    quorum_ = quorum;
    arrived_ = 0;
  }
  void arrive() {
    if (++arrived_ == quorum_) sim_.schedule_in(0, owner_, release_kind_);
  }
  std::int64_t arrived() const { return arrived_; }

 private:
  Simulator& sim_;
  std::uint32_t owner_;
  std::uint32_t release_kind_;
  std::int64_t quorum_ = 0;
  std::int64_t arrived_ = 0;
};

// A point-to-point link: transfers are serialized first-in-first-out at `bandwidth` and arrive `latency`
// after they leave. On arrival an event (kind, arg) goes to the transfer's target.
class Link {
 public:
  Link(Simulator& sim, double bandwidth_bytes_per_s, SimTime latency_ns)
      : sim_(sim), bandwidth_(bandwidth_bytes_per_s), latency_ns_(latency_ns) {}
  // Returns the arrival time of the transfer.
  SimTime transfer(double bytes, std::uint32_t target, std::uint32_t kind, std::int64_t arg);
  SimTime busy_until() const { return busy_until_; }
  double bytes_moved() const { return bytes_moved_; }

 private:
  Simulator& sim_;
  double bandwidth_;
  SimTime latency_ns_;
  SimTime busy_until_ = 0;
  double bytes_moved_ = 0;
};

}  // namespace tailsim
