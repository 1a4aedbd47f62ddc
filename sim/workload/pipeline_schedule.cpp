#include "sim/workload/pipeline_schedule.hpp"

#include <algorithm>
#include <stdexcept>

#include "sim/engine/simulator.hpp"

namespace tailsim {

const std::vector<std::string>& pipe_schedule_names() {
  static const std::vector<std::string> names = {"1f1b", "gpipe", "interleaved"};
  return names;
}

PipeSchedule pipe_schedule_from_name(const std::string& name) {
  if (name == "gpipe") return PipeSchedule::kGPipe;
  if (name == "interleaved") return PipeSchedule::kInterleaved;
  return PipeSchedule::k1F1B;
}

namespace {

// Megatron's interleaved schedule: the k-th forward of a rank is chunk (k / p) % v of microbatch
// (k / (p v)) p + k % p; backwards visit the chunks in reverse.
PipeOp interleaved_op(const PipeShape& s, int k, bool backward) {
  const int p = s.stages, v = s.chunks;
  const int chunk = (k / p) % v;
  return PipeOp{backward, backward ? v - 1 - chunk : chunk, (k / (p * v)) * p + k % p};
}

}  // namespace

std::vector<std::vector<PipeOp>> pipe_orders(const PipeShape& s) {
  const int p = s.stages, m = s.microbatches;
  std::vector<std::vector<PipeOp>> orders(static_cast<std::size_t>(p));
  for (int r = 0; r < p; ++r) {
    auto& o = orders[static_cast<std::size_t>(r)];
    if (s.schedule == PipeSchedule::kGPipe) {
      for (int mb = 0; mb < m; ++mb) o.push_back({false, 0, mb});
      for (int mb = 0; mb < m; ++mb) o.push_back({true, 0, mb});
      continue;
    }
    const bool inter = s.schedule == PipeSchedule::kInterleaved;
    const int total = inter ? m * s.chunks : m;
    int warmup = inter ? (p - r - 1) * 2 + (s.chunks - 1) * p : p - r - 1;
    if (inter && m == p) warmup = total;
    warmup = std::min(warmup, total);
    const auto op = [&](int k, bool backward) { return inter ? interleaved_op(s, k, backward) : PipeOp{backward, 0, k}; };
    for (int k = 0; k < warmup; ++k) o.push_back(op(k, false));
    for (int k = 0; k < total - warmup; ++k) {
      o.push_back(op(warmup + k, false));
      o.push_back(op(k, true));
    }
    for (int k = total - warmup; k < total; ++k) o.push_back(op(k, true));
  }
  return orders;
}

namespace {

// Where a task's input comes from and when it is there: -1 while not yet known.
struct Inputs {
  const PipeShape& s;
  const ReplicaDurations& d;
  int virtual_stage(int rank, const PipeOp& op) const { return op.chunk * s.stages + rank; }
  std::size_t index(int v, int mb) const {
    return static_cast<std::size_t>(v) * static_cast<std::size_t>(s.microbatches) + static_cast<std::size_t>(mb);
  }
  SimTime duration(int v, const PipeOp& op) const {
    return op.backward ? d.bwd_ns[index(v, op.mb)] : d.fwd_ns[index(v, op.mb)];
  }
};

}  // namespace

void replica_times_fast(const PipeShape& s, const std::vector<std::vector<PipeOp>>& orders,
                        const ReplicaDurations& d, ReplicaTimes& out) {
  const int p = s.stages, vs = s.virtual_stages();
  const Inputs in{s, d};
  const std::size_t n = static_cast<std::size_t>(vs) * static_cast<std::size_t>(s.microbatches);
  std::vector<SimTime> fwd_done(n, -1), bwd_done(n, -1);
  std::vector<std::size_t> pos(static_cast<std::size_t>(p), 0);
  std::vector<SimTime> free_at(static_cast<std::size_t>(p), 0);
  out.last_bwd_start_ns.assign(static_cast<std::size_t>(p), 0);
  out.flush_ns.assign(static_cast<std::size_t>(p), 0);
  out.busy_ns = 0;
  std::size_t remaining = static_cast<std::size_t>(s.tasks());
  while (remaining > 0) {
    bool progressed = false;
    for (int r = 0; r < p; ++r) {
      const auto& order = orders[static_cast<std::size_t>(r)];
      auto& at = pos[static_cast<std::size_t>(r)];
      for (; at < order.size(); ++at) {
        const PipeOp& op = order[at];
        const int v = in.virtual_stage(r, op);
        SimTime ready = 0;
        if (!op.backward && v > 0) {
          const SimTime prev = fwd_done[in.index(v - 1, op.mb)];
          if (prev < 0) break;
          ready = prev + d.p2p_fwd_ns[static_cast<std::size_t>((r + p - 1) % p)];
        } else if (op.backward && v < vs - 1) {
          const SimTime next = bwd_done[in.index(v + 1, op.mb)];
          if (next < 0) break;
          ready = next + d.p2p_bwd_ns[static_cast<std::size_t>(r)];
        }
        const SimTime dur = in.duration(v, op);
        const SimTime start = std::max(free_at[static_cast<std::size_t>(r)], ready);
        free_at[static_cast<std::size_t>(r)] = start + dur;
        (op.backward ? bwd_done : fwd_done)[in.index(v, op.mb)] = start + dur;
        if (op.backward) {
          out.last_bwd_start_ns[static_cast<std::size_t>(r)] = start;
          out.flush_ns[static_cast<std::size_t>(r)] = start + dur;
        }
        out.busy_ns += dur;
        if (out.record) out.spans.push_back({r, op, start, start + dur});
        --remaining;
        progressed = true;
      }
    }
    if (!progressed) throw std::logic_error("pipeline schedule: no rank can proceed (a cyclic order)");
  }
}

namespace {

// The reference: a rank starts its next task when it is free and the task's input has arrived; completions
// and p2p arrivals are events.
class ReplicaEvents final : public EventHandler {
 public:
  enum Kind : std::uint32_t { kDone, kArrive };
  ReplicaEvents(const PipeShape& s, const std::vector<std::vector<PipeOp>>& orders, const ReplicaDurations& d,
                ReplicaTimes& out)
      : s_(s), orders_(orders), d_(d), in_{s, d}, out_(out), self_(sim_.add_handler(this)) {
    const std::size_t n = static_cast<std::size_t>(s.virtual_stages()) * static_cast<std::size_t>(s.microbatches);
    fwd_in_.assign(n, false);
    bwd_in_.assign(n, false);
    const auto p = static_cast<std::size_t>(s.stages);
    pos_.assign(p, 0);
    busy_.assign(p, false);
    out.last_bwd_start_ns.assign(p, 0);
    out.flush_ns.assign(p, 0);
    out.busy_ns = 0;
  }
  std::uint64_t run() {
    for (int r = 0; r < s_.stages; ++r) try_start(r);
    sim_.run();
    return sim_.events_executed();
  }
  void handle(Simulator& sim, const Event& e) override {
    if (e.kind == kArrive) {
      const auto idx = static_cast<std::size_t>(e.arg >> 1);
      ((e.arg & 1) ? bwd_in_ : fwd_in_)[idx] = true;
      try_start(static_cast<int>((idx / static_cast<std::size_t>(s_.microbatches)) % static_cast<std::size_t>(s_.stages)));
      return;
    }
    const int r = static_cast<int>(e.arg), p = s_.stages;
    const PipeOp op = orders_[static_cast<std::size_t>(r)][pos_[static_cast<std::size_t>(r)]++];
    busy_[static_cast<std::size_t>(r)] = false;
    const int v = in_.virtual_stage(r, op);
    if (!op.backward && v < s_.virtual_stages() - 1)
      arrive(sim, d_.p2p_fwd_ns[static_cast<std::size_t>(r)], in_.index(v + 1, op.mb), false);
    if (op.backward) {
      out_.flush_ns[static_cast<std::size_t>(r)] = sim.now();
      if (v > 0) arrive(sim, d_.p2p_bwd_ns[static_cast<std::size_t>((r + p - 1) % p)], in_.index(v - 1, op.mb), true);
    }
    try_start(r);
  }

 private:
  void arrive(Simulator& sim, SimTime delay, std::size_t idx, bool backward) {
    sim.schedule_in(delay, self_, kArrive, static_cast<std::int64_t>(idx << 1 | (backward ? 1 : 0)));
  }
  void try_start(int r) {
    const auto ri = static_cast<std::size_t>(r);
    if (busy_[ri] || pos_[ri] == orders_[ri].size()) return;
    const PipeOp& op = orders_[ri][pos_[ri]];
    const int v = in_.virtual_stage(r, op);
    const std::size_t idx = in_.index(v, op.mb);
    const bool ready = op.backward ? (v == s_.virtual_stages() - 1 || bwd_in_[idx]) : (v == 0 || fwd_in_[idx]);
    if (!ready) return;
    busy_[ri] = true;
    const SimTime dur = in_.duration(v, op);
    if (op.backward) out_.last_bwd_start_ns[ri] = sim_.now();
    out_.busy_ns += dur;
    sim_.schedule_in(dur, self_, kDone, r);
  }

  const PipeShape& s_;
  const std::vector<std::vector<PipeOp>>& orders_;
  const ReplicaDurations& d_;
  Inputs in_;
  ReplicaTimes& out_;
  Simulator sim_;
  std::uint32_t self_;
  std::vector<bool> fwd_in_, bwd_in_, busy_;
  std::vector<std::size_t> pos_;
};

}  // namespace

void replica_times_events(const PipeShape& s, const std::vector<std::vector<PipeOp>>& orders,
                          const ReplicaDurations& d, ReplicaTimes& out, std::uint64_t* events) {
  ReplicaEvents run(s, orders, d, out);
  const std::uint64_t n = run.run();
  if (events) *events += n;
}

}  // namespace tailsim
