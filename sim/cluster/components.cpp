#include "sim/cluster/components.hpp"

#include <algorithm>
#include <cmath>

namespace tailsim {

GpuArray::GpuArray(Simulator& sim, std::int64_t gpus, GpuListener& listener)
    : sim_(sim),
      id_(sim.add_handler(this)),
      listener_(listener),
      done_(static_cast<std::size_t>(gpus), 0),
      pending_(static_cast<std::size_t>(gpus) * kMaxAttempts, 0),
      running_(static_cast<std::size_t>(gpus), 0) {}

void GpuArray::start_task(std::int64_t gpu) {
  done_[gpu] = 0;
  running_[gpu] = 0;
}

void GpuArray::start_attempt(std::int64_t gpu, int attempt, SimTime duration_ns) {
  pending_[gpu * kMaxAttempts + attempt] = sim_.schedule_in(duration_ns, id_, 0, gpu * kMaxAttempts + attempt);
  running_[gpu] |= static_cast<std::uint8_t>(1u << attempt);
}

void GpuArray::abandon(std::int64_t gpu) {
  for (int a = 0; a < kMaxAttempts; ++a)
    if (running_[gpu] & (1u << a)) sim_.cancel(pending_[gpu * kMaxAttempts + a]);
  running_[gpu] = 0;
}

void GpuArray::handle(Simulator& sim, const Event& event) {
  const std::int64_t gpu = event.arg / kMaxAttempts;
  const int attempt = static_cast<int>(event.arg % kMaxAttempts);
  running_[gpu] &= static_cast<std::uint8_t>(~(1u << attempt));
  if (done_[gpu]) return;
  done_[gpu] = 1;
  abandon(gpu);  // the first attempt to finish wins; the others stop now
  listener_.on_task_done(sim, gpu, attempt);
}

SimTime Link::transfer(double bytes, std::uint32_t target, std::uint32_t kind, std::int64_t arg) {
  const SimTime start = std::max(sim_.now(), busy_until_);
  const auto serialization = static_cast<SimTime>(std::ceil(bytes / bandwidth_ * 1e9));
  busy_until_ = start + serialization;
  bytes_moved_ += bytes;
  const SimTime arrival = busy_until_ + latency_ns_;
  sim_.schedule_at(arrival, target, kind, arg);
  return arrival;
}

}  // namespace tailsim
