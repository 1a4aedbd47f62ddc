// The event engine: integer time, a pending-event set ordered totally by (time, sequence) so ties run
// first-in-first-out, a run loop, and cancellation. It knows nothing of GPUs: components implement
// EventHandler and receive small POD events addressed to them.
#pragma once
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "sim/core/time.hpp"

namespace tailsim {

using EventId = std::uint64_t;  // the event's sequence number: unique within one Simulator

struct Event {
  SimTime time;          // when it fires
  EventId seq;           // scheduling order; breaks ties in time
  std::uint32_t target;  // index of the handler (see Simulator::add_handler)
  std::uint32_t kind;    // handler-defined event kind
  std::int64_t arg;      // handler-defined payload (a worker index, a flow id, ...)
};

class Simulator;

class EventHandler {
 public:
  virtual ~EventHandler() = default;
  virtual void handle(Simulator& sim, const Event& event) = 0;
};

class Simulator {
 public:
  // Registers a component; events scheduled to the returned index are delivered to it. Not owned.
  std::uint32_t add_handler(EventHandler* handler);

  // Schedules an event `delay` ns from now (delay >= 0). Returns its id, usable with cancel().
  EventId schedule_in(SimTime delay, std::uint32_t target, std::uint32_t kind, std::int64_t arg = 0);
  EventId schedule_at(SimTime time, std::uint32_t target, std::uint32_t kind, std::int64_t arg = 0);
  // Cancels a pending event; cancelling one that already ran or was cancelled is a no-op.
  void cancel(EventId id);

  // Runs events in (time, seq) order until none is left, stop() is called, or time would pass `until`.
  void run(SimTime until = kMaxSimTime);
  void stop() { stopped_ = true; }

  SimTime now() const { return now_; }
  std::uint64_t events_executed() const { return executed_; }
  bool idle() const { return heap_.empty(); }

 private:
  static bool before(const Event& a, const Event& b) {
    return a.time < b.time || (a.time == b.time && a.seq < b.seq);
  }
  void push(const Event& e);
  Event pop();

  std::vector<Event> heap_;  // 4-ary min-heap on (time, seq)
  std::vector<EventHandler*> handlers_;
  std::unordered_set<EventId> cancelled_;  // membership only; never iterated
  SimTime now_ = 0;
  EventId next_seq_ = 0;
  std::uint64_t executed_ = 0;
  bool stopped_ = false;
};

}  // namespace tailsim
