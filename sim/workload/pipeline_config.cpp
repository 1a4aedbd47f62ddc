// The `pipeline` workload's keys (see docs/training.md for each key, its default and valid values).
#include <algorithm>
#include <filesystem>

#include "sim/config/files.hpp"
#include "sim/workload/pipeline.hpp"

namespace tailsim {

namespace {

const LinkSpec& link_between(const ClusterSpec& c, std::int64_t a, std::int64_t b) {
  return a / c.gpus_per_node == b / c.gpus_per_node ? c.nvlink : c.nic;
}

SimTime transfer_ns(const JsonReader& n, const char* key, const ClusterSpec& c, const LinkSpec& link, double bytes) {
  if (bytes <= 0) return 0;
  if (link.bandwidth_bytes_per_s <= 0)
    n.child(key).fail(std::string("the cluster gives no ") + (&link == &c.nic ? "nic" : "nvlink") +
                      " bandwidth: set cluster.gpu or cluster." + (&link == &c.nic ? "nic" : "nvlink"));
  return seconds_to_ns(link.latency_s + bytes / link.bandwidth_bytes_per_s);
}

// Rank factors: the cluster's slow_gpus groups, then `stage_factors`, then each `slow` entry.
std::vector<double> rank_factors(const JsonReader& n, const ClusterSpec& cluster, PipelineConfig& cfg) {
  cfg.stage_factor.assign(static_cast<std::size_t>(cfg.shape.stages), 1.0);
  std::vector<double> f(static_cast<std::size_t>(cluster.gpus), 1.0);
  for (const WorkerGroup& g : cluster.groups())
    for (std::int64_t r = g.first; r < g.first + g.count; ++r) f[static_cast<std::size_t>(r)] = g.factor;
  const int p = cfg.shape.stages;
  const auto each_rank = [&](auto&& pick, double factor) {
    for (int d = 0; d < cfg.dp; ++d)
      for (int s = 0; s < p; ++s)
        if (pick(d, s, cfg.rank(d, s))) f[static_cast<std::size_t>(cfg.rank(d, s))] *= factor;
  };
  if (const auto sf = n.optional_child("stage_factors")) {
    const auto items = sf->elements();
    if (static_cast<int>(items.size()) != p) sf->fail_expected("an array of pp = " + std::to_string(p) + " factors");
    for (int s = 0; s < p; ++s) {
      const double k = items[static_cast<std::size_t>(s)].as_number(above(0));
      cfg.stage_factor[static_cast<std::size_t>(s)] = k;
      each_rank([&](int, int st, std::int64_t) { return st == s; }, k);
    }
  }
  if (const auto slow = n.optional_child("slow"))
    for (const JsonReader& e : slow->elements()) {
      e.expect_object();
      // An entry with from_step / until_step is an episode: its factor applies to those steps only.
      const std::int64_t from = e.integer("from_step", 0, at_least(0));
      const std::int64_t until = e.integer("until_step", -1, at_least(-1));
      if (until >= 0 && until <= from) e.child("until_step").fail_expected("a step after from_step = " + std::to_string(from));
      const bool episode = e.has("from_step") || e.has("until_step");
      const std::vector<double> kept = f;
      const double k = e.number("factor", {}, above(0));
      const int kinds = e.has("ranks") + e.has("stage") + e.has("node") + e.has("dp_rank");
      if (kinds != 1) e.fail("expected exactly one of 'ranks', 'stage', 'node', 'dp_rank'");
      if (e.has("ranks")) {
        for (const JsonReader& r : e.array("ranks")) {
          const auto rank = static_cast<std::int64_t>(r.as_number(Range{0.0, static_cast<double>(cluster.gpus - 1)}));
          f[static_cast<std::size_t>(rank)] *= k;
        }
      } else if (e.has("stage")) {
        const auto stage = e.integer("stage", {}, Range{0.0, static_cast<double>(p - 1)});
        each_rank([&](int, int s, std::int64_t) { return s == stage; }, k);
      } else if (e.has("node")) {
        const auto node = e.integer("node", {}, Range{0.0, static_cast<double>(cluster.nodes() - 1)});
        each_rank([&](int, int, std::int64_t r) { return r / cluster.gpus_per_node == node; }, k);
      } else {
        const auto dp = e.integer("dp_rank", {}, Range{0.0, static_cast<double>(cfg.dp - 1)});
        each_rank([&](int d, int, std::int64_t) { return d == dp; }, k);
      }
      e.finish();
      if (!episode) continue;
      SlowEpisode ep{{}, k, from, until};
      for (std::size_t r = 0; r < f.size(); ++r)
        if (f[r] != kept[r]) ep.ranks.push_back(static_cast<std::int64_t>(r));
      f = kept;
      cfg.episodes.push_back(std::move(ep));
    }
  return f;
}

void read_links(const JsonReader& n, const ClusterSpec& cluster, PipelineConfig& cfg) {
  const int p = cfg.shape.stages;
  const double p2p = n.size_bytes("p2p_bytes", 0.0, at_least(0));
  const double grads = n.size_bytes("grad_bytes", 0.0, at_least(0));
  for (int d = 0; d < cfg.dp; ++d)
    for (int s = 0; s < p; ++s) {
      const LinkSpec& l = link_between(cluster, cfg.rank(d, s), cfg.rank(d, (s + 1) % p));
      cfg.p2p_fwd_ns.push_back(transfer_ns(n, "p2p_bytes", cluster, l, p2p));
      cfg.p2p_bwd_ns.push_back(transfer_ns(n, "p2p_bytes", cluster, l, p2p));
    }
  cfg.phase.overlap = n.boolean("overlap_grad_reduce", false);
  cfg.phase.buckets = static_cast<int>(n.integer("buckets", 4, Range{1.0, 1024.0}));
  const SimTime optimizer = seconds_to_ns(n.duration_s("optimizer", 0.0, at_least(0)));
  for (int s = 0; s < p; ++s) {
    // A ring all-reduce: 2 (dp - 1) / dp of the bytes over the slowest link of the stage's replicas.
    bool cross = false;
    for (int d = 1; d < cfg.dp; ++d) cross = cross || &link_between(cluster, cfg.rank(0, s), cfg.rank(d, s)) == &cluster.nic;
    const LinkSpec& l = cross ? cluster.nic : cluster.nvlink;
    const double steps = 2.0 * (cfg.dp - 1);
    if (grads > 0 && cfg.dp > 1) transfer_ns(n, "grad_bytes", cluster, l, grads);  // fails without a bandwidth
    cfg.phase.reduce_ns.push_back(grads > 0 && cfg.dp > 1
        ? seconds_to_ns(steps * l.latency_s + steps / cfg.dp * grads / l.bandwidth_bytes_per_s) : 0);
    cfg.phase.tail_ns.push_back(optimizer);
  }
}

void read_shape(const JsonReader& n, const ClusterSpec& cluster, PipelineConfig& cfg, const PipelineTrace* trace) {
  PipeShape& s = cfg.shape;
  s.stages = static_cast<int>(trace ? n.integer("pp", trace->pp, Range{1.0, 4096.0}) : n.integer("pp", {}, Range{1.0, 4096.0}));
  if (trace && s.stages != trace->pp) n.child("pp").fail("the trace has pp = " + std::to_string(trace->pp));
  if (cluster.gpus % s.stages != 0)
    n.child("pp").fail("pp = " + std::to_string(s.stages) + " does not divide the cluster's " +
                       std::to_string(cluster.gpus) + " ranks (cluster.gpus = dp x pp)");
  cfg.dp = static_cast<int>(cluster.gpus / s.stages);
  if (n.has("dp") && n.integer("dp", {}, at_least(1)) != cfg.dp)
    n.child("dp").fail("dp x pp must equal cluster.gpus = " + std::to_string(cluster.gpus) + " (dp = " + std::to_string(cfg.dp) + ")");
  if (trace && cfg.dp != trace->dp)
    n.fail("the trace has dp = " + std::to_string(trace->dp) + ", pp = " + std::to_string(trace->pp) + ": set cluster.gpus to " + std::to_string(trace->dp * trace->pp));
  s.microbatches = static_cast<int>(trace ? n.integer("microbatches", trace->microbatches, Range{1.0, 1e6})
                                          : n.integer("microbatches", 8, Range{1.0, 1e6}));
  if (trace && s.microbatches != trace->microbatches) n.child("microbatches").fail("the trace has " + std::to_string(trace->microbatches) + " microbatches");
  s.schedule = pipe_schedule_from_name(n.string("schedule", "1f1b", pipe_schedule_names()));
  if (s.schedule == PipeSchedule::kInterleaved) {
    if (trace) n.child("schedule").fail("a trace replay runs 1f1b or gpipe (the traces have one model chunk per rank)");
    s.chunks = static_cast<int>(n.integer("virtual_stages", 2, Range{2.0, 64.0}));
    if (s.microbatches % s.stages != 0)
      n.child("microbatches").fail("the interleaved schedule needs microbatches a multiple of pp = " + std::to_string(s.stages));
  } else if (n.has("virtual_stages")) {
    n.child("virtual_stages").fail("only the interleaved schedule has virtual stages");
  }
}

std::shared_ptr<const PipelineTrace> read_trace(const JsonReader& t) {
  t.expect_object();
  std::filesystem::path path = t.string("file");
  if (path.is_relative() && !t.file().empty()) path = std::filesystem::path(t.file()).parent_path() / path;
  const std::string format = t.string("format", "bytedance", pipeline_trace_formats());
  const int dp = static_cast<int>(t.integer("dp", 0, at_least(0))), pp = static_cast<int>(t.integer("pp", 0, at_least(0)));
  t.finish();
  const std::string file = path.string();
  return parse_shared<PipelineTrace>("pipeline-trace:" + format + ":" + std::to_string(dp) + ":" + std::to_string(pp) + ":" + file,
                                     [&] { return read_pipeline_trace(file, format, dp, pp); });
}

// One distribution for every stage, or an array of pp distributions (one per stage).
std::vector<std::shared_ptr<const Distribution>> per_stage_distributions(const JsonReader& n, int stages) {
  std::vector<JsonReader> nodes;
  if (n.value().is_array()) {
    nodes = n.elements();
    if (static_cast<int>(nodes.size()) != stages)
      n.fail_expected("a distribution or an array of pp = " + std::to_string(stages) + " distributions");
  } else {
    nodes.assign(static_cast<std::size_t>(stages), n);
  }
  std::vector<std::shared_ptr<const Distribution>> out;
  for (std::size_t s = 0; s < nodes.size(); ++s) {
    if (s > 0 && !n.value().is_array()) {
      out.push_back(out.front());
      continue;
    }
    out.push_back(std::shared_ptr<const Distribution>(make_distribution(nodes[s])));
    if (out.back()->min_value() < 0) nodes[s].fail("compute times must be >= 0");
  }
  return out;
}

WhatIfSpec read_whatif(const JsonReader& w, const PipelineConfig& cfg) {
  w.expect_object();
  WhatIfSpec spec;
  if (w.has("ranks"))
    for (const JsonReader& r : w.array("ranks"))
      spec.ranks.push_back(static_cast<std::int64_t>(r.as_number(Range{0.0, static_cast<double>(cfg.dp * cfg.shape.stages - 1)})));
  if (w.has("stages"))
    for (const JsonReader& s : w.array("stages"))
      spec.stages.push_back(static_cast<int>(s.as_number(Range{0.0, static_cast<double>(cfg.shape.stages - 1)})));
  spec.decompose = w.boolean("decompose", false);
  w.finish();
  return spec;
}

}  // namespace

std::unique_ptr<Workload> make_pipeline_workload(const JsonReader& n, const ClusterSpec& cluster) {
  PipelineConfig cfg;
  if (const auto t = n.optional_child("trace")) cfg.trace = read_trace(*t);
  read_shape(n, cluster, cfg, cfg.trace.get());
  cfg.stage_major = n.string("placement", "replica_major", {"replica_major", "stage_major"}) == "stage_major";
  cfg.events = n.string("engine", "fast", {"fast", "events"}) == "events";
  if (!cfg.trace) {
    cfg.forward = per_stage_distributions(n.child("forward"), cfg.shape.stages);
    if (n.has("backward")) {
      cfg.backward = per_stage_distributions(n.child("backward"), cfg.shape.stages);
    } else {
      cfg.backward_factor = n.number("backward_factor", 2.0, above(0));
    }
  }
  cfg.rank_factor = rank_factors(n, cluster, cfg);
  read_links(n, cluster, cfg);
  if (cfg.trace) {
    // A replay's p2p and post-flush costs are the trace's medians (the ops around the flush include the
    // gradient reduce-scatter and the optimizer), plus any `optimizer` given.
    const PipelineTrace& t = *cfg.trace;
    for (int d = 0; d < cfg.dp; ++d)
      for (int s = 0; s < t.pp; ++s) {
        cfg.p2p_fwd_ns[static_cast<std::size_t>(d * t.pp + s)] = seconds_to_ns(t.p2p_fwd_s[static_cast<std::size_t>(s)]);
        cfg.p2p_bwd_ns[static_cast<std::size_t>(d * t.pp + s)] = seconds_to_ns(t.p2p_bwd_s[static_cast<std::size_t>(s)]);
      }
    for (int s = 0; s < t.pp; ++s) cfg.phase.tail_ns[static_cast<std::size_t>(s)] += seconds_to_ns(t.tail_s[static_cast<std::size_t>(s)]);
  }
  if (const auto w = n.optional_child("whatif")) cfg.whatif = read_whatif(*w, cfg);
  if (const auto fs = n.optional_child("fail_slow")) cfg.fail_slow = read_fail_slow(*fs);
  return std::make_unique<PipelineWorkload>(cluster, std::move(cfg));
}

}  // namespace tailsim
