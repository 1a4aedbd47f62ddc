#include "sim/engine/simulator.hpp"

#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace tailsim {

std::uint32_t Simulator::add_handler(EventHandler* handler) {
  handlers_.push_back(handler);
  return static_cast<std::uint32_t>(handlers_.size() - 1);
}

std::string clock_overflow_message(double seconds) {
  std::ostringstream os;
  os << "a simulated duration of " << std::setprecision(4) << seconds
     << " s does not fit the clock (at most about 73 years; check heavy-tailed distributions, e.g. pareto with "
        "shape <= 1, and absurd durations)";
  return os.str();
}

EventId Simulator::schedule_at(SimTime time, std::uint32_t target, std::uint32_t kind, std::int64_t arg) {
  if (time < now_) throw std::logic_error("Simulator: event scheduled in the past");
  if (target >= handlers_.size()) throw std::logic_error("Simulator: event for an unknown handler");
  const EventId id = next_seq_++;
  push(Event{time, id, target, kind, arg});
  return id;
}

EventId Simulator::schedule_in(SimTime delay, std::uint32_t target, std::uint32_t kind, std::int64_t arg) {
  if (delay < 0) throw std::logic_error("Simulator: negative delay");
  if (delay > kMaxSimTime - now_)
    throw ClockOverflow("simulated time would pass about 73 years (the integer clock's range); use fewer steps");
  return schedule_at(now_ + delay, target, kind, arg);
}

void Simulator::cancel(EventId id) {
  if (id < next_seq_) cancelled_.insert(id);
}

void Simulator::run(SimTime until) {
  stopped_ = false;
  while (!heap_.empty() && !stopped_) {
    if (heap_.front().time > until) break;
    const Event e = pop();
    if (!cancelled_.empty() && cancelled_.erase(e.seq) > 0) continue;
    now_ = e.time;
    ++executed_;
    handlers_[e.target]->handle(*this, e);
  }
  // Ids of cancelled events that already ran can never match again; drop them when the queue drains.
  if (heap_.empty()) cancelled_.clear();
}

void Simulator::push(const Event& e) {
  std::size_t i = heap_.size();
  heap_.push_back(e);
  while (i > 0) {
    const std::size_t parent = (i - 1) / 4;
    if (!before(e, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = e;
}

Event Simulator::pop() {
  const Event top = heap_.front();
  const Event last = heap_.back();
  heap_.pop_back();
  const std::size_t n = heap_.size();
  if (n == 0) return top;
  std::size_t i = 0;
  for (;;) {
    const std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t best = first;
    const std::size_t end = first + 4 < n ? first + 4 : n;
    for (std::size_t c = first + 1; c < end; ++c)
      if (before(heap_[c], heap_[best])) best = c;
    if (!before(heap_[best], last)) break;
    heap_[i] = heap_[best];
    i = best;
  }
  heap_[i] = last;
  return top;
}

}  // namespace tailsim
