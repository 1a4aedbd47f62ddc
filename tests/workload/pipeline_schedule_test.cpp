// Pipeline schedules against their textbook makespans, and the fast recurrence against the event engine.
#include <doctest/doctest.h>

#include <algorithm>

#include "sim/core/rng.hpp"
#include "sim/workload/pipeline_schedule.hpp"

namespace tailsim {

namespace {

// Durations with forward f and backward b on every virtual stage, except `slow` (-1: none) scaled by `factor`.
ReplicaDurations constant(const PipeShape& s, SimTime f, SimTime b, int slow = -1, SimTime factor = 1) {
  ReplicaDurations d;
  for (int v = 0; v < s.virtual_stages(); ++v)
    for (int mb = 0; mb < s.microbatches; ++mb) {
      const SimTime k = v % s.stages == slow ? factor : 1;
      d.fwd_ns.push_back(f * k);
      d.bwd_ns.push_back(b * k);
    }
  d.p2p_fwd_ns.assign(static_cast<std::size_t>(s.stages), 0);
  d.p2p_bwd_ns.assign(static_cast<std::size_t>(s.stages), 0);
  return d;
}

SimTime makespan(const PipeShape& s, const ReplicaDurations& d) {
  ReplicaTimes t;
  replica_times_fast(s, pipe_orders(s), d, t);
  return *std::max_element(t.flush_ns.begin(), t.flush_ns.end());
}

}  // namespace

TEST_CASE("1F1B with constant times takes (m + p - 1)(f + b)") {
  for (int p : {1, 2, 4, 8})
    for (int m : {1, 3, 8, 32}) {
      const PipeShape s{p, m, 1, PipeSchedule::k1F1B};
      CHECK(makespan(s, constant(s, 3, 7)) == (m + p - 1) * 10);
    }
}

TEST_CASE("GPipe with constant times takes (m + p - 1)(f + b)") {
  for (int p : {1, 3, 4})
    for (int m : {1, 4, 16}) {
      const PipeShape s{p, m, 1, PipeSchedule::kGPipe};
      CHECK(makespan(s, constant(s, 2, 5)) == (m + p - 1) * 7);
    }
}

TEST_CASE("1F1B with a slow last stage takes the sum of the stages plus (m - 1) times the slowest") {
  // T = sum_i (f_i + b_i) + (m - 1) max_i (f_i + b_i): the slowest stage sets the steady phase.
  for (int m : {1, 4, 8, 16}) {
    const PipeShape s{4, m, 1, PipeSchedule::k1F1B};
    const SimTime f = 10, b = 20, k = 3;
    CHECK(makespan(s, constant(s, f, b, 3, k)) == 3 * (f + b) + k * (f + b) + (m - 1) * k * (f + b));
  }
}

TEST_CASE("1F1B with a slow earlier stage lies between the slow stage's own work and that formula") {
  // Upstream of the last stage the warmup forwards overlap the slow stage's work, so the formula is an upper
  // bound there; the slow stage's m (f' + b') plus the other stages' share of one microbatch a lower one.
  for (int slow : {0, 1, 2})
    for (int m : {4, 8, 16}) {
      const PipeShape s{4, m, 1, PipeSchedule::k1F1B};
      const SimTime f = 10, b = 20, k = 3;
      const SimTime t = makespan(s, constant(s, f, b, slow, k));
      CHECK(t <= 3 * (f + b) + k * (f + b) + (m - 1) * k * (f + b));
      CHECK(t >= m * k * (f + b));
    }
}

TEST_CASE("interleaved 1F1B with v chunks shrinks the bubble to (p - 1)(f + b) / v") {
  for (int v : {2, 4})
    for (int m : {4, 8, 16}) {
      const PipeShape s{4, m, v, PipeSchedule::kInterleaved};
      const SimTime f = 2 * 3, b = 2 * 7;  // per chunk; the whole stage is v times that
      CHECK(makespan(s, constant(s, f, b)) == (m * v + s.stages - 1) * (f + b));
    }
}

TEST_CASE("every schedule runs each task once, a backward after its forward") {
  for (auto sched : {PipeSchedule::k1F1B, PipeSchedule::kGPipe, PipeSchedule::kInterleaved}) {
    const PipeShape s{4, 8, sched == PipeSchedule::kInterleaved ? 2 : 1, sched};
    int tasks = 0;
    for (const auto& o : pipe_orders(s)) tasks += static_cast<int>(o.size());
    CHECK(tasks == s.tasks());
  }
}

TEST_CASE("the fast recurrence and the event engine give the same times on the same draws") {
  for (auto sched : {PipeSchedule::k1F1B, PipeSchedule::kGPipe, PipeSchedule::kInterleaved}) {
    const PipeShape s{4, 8, sched == PipeSchedule::kInterleaved ? 2 : 1, sched};
    RngStream rng(7, "test/pipeline", 0);
    ReplicaDurations d = constant(s, 0, 0);
    for (auto& x : d.fwd_ns) x = 1000 + static_cast<SimTime>(rng.uniform() * 5000);
    for (auto& x : d.bwd_ns) x = 2000 + static_cast<SimTime>(rng.uniform() * 9000);
    for (auto& x : d.p2p_fwd_ns) x = static_cast<SimTime>(rng.uniform() * 300);
    for (auto& x : d.p2p_bwd_ns) x = static_cast<SimTime>(rng.uniform() * 300);
    ReplicaTimes fast, events;
    std::uint64_t n = 0;
    replica_times_fast(s, pipe_orders(s), d, fast);
    replica_times_events(s, pipe_orders(s), d, events, &n);
    CHECK(fast.flush_ns == events.flush_ns);
    CHECK(fast.last_bwd_start_ns == events.last_bwd_start_ns);
    CHECK(fast.busy_ns == events.busy_ns);
    CHECK(n >= static_cast<std::uint64_t>(s.tasks()));
  }
}

}  // namespace tailsim
