#include "sim/workload/pipeline_failslow.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "sim/config/configs.hpp"

namespace tailsim {

namespace {

// One entry: in steps (`rate_per_rank_step`, `duration_steps`), or, with a step time (a preset), in time
// (`rate_per_rank_hour`, `duration_s`).
FailSlowSpec read_entry(const JsonReader& e, double step_s) {
  e.expect_object();
  FailSlowSpec spec;
  spec.link = e.string("kind", {}, {"compute", "link"}) == "link";
  if (step_s > 0) {
    spec.rate_per_rank_step = e.number("rate_per_rank_hour", {}, at_least(0.0)) * step_s / 3600.0;
    if (spec.rate_per_rank_step > 1) e.child("rate_per_rank_hour").fail("more than one episode per rank and step at this step_s");
    spec.duration_steps = std::shared_ptr<const Distribution>(make_distribution(e.child("duration_s")));
    spec.steps_per_duration_unit = 1.0 / step_s;
  } else {
    spec.rate_per_rank_step = e.number("rate_per_rank_step", {}, Range{0.0, 1.0});
    spec.duration_steps = std::shared_ptr<const Distribution>(make_distribution(e.child("duration_steps")));
  }
  spec.factor = std::shared_ptr<const Distribution>(make_distribution(e.child("factor")));
  if (spec.factor->min_value() <= 0) e.child("factor").fail("a slowdown factor must be > 0");
  e.finish();
  return spec;
}

}  // namespace

std::vector<FailSlowSpec> read_fail_slow(const JsonReader& n) {
  std::vector<FailSlowSpec> out;
  if (n.value().is_array()) {
    for (const JsonReader& e : n.elements()) out.push_back(read_entry(e, 0));
    return out;
  }
  n.expect_object();
  const double step_s = n.duration_s("step_s", {}, above(0.0));
  const ConfigDoc doc = load_config(n.child("preset"), "noise", n.string("preset"));
  n.finish();
  const JsonReader preset(doc.json, doc.file);
  preset.mark_read("description");
  preset.mark_read("source");
  for (const JsonReader& e : preset.child("fail_slow").elements()) out.push_back(read_entry(e, step_s));
  preset.finish();
  return out;
}

FailSlowEpisodes::FailSlowEpisodes(const std::vector<FailSlowSpec>& specs, std::int64_t ranks, std::uint64_t seed,
                                   std::uint64_t replication)
    : specs_(specs), ranks_(ranks), state_(specs.size() * static_cast<std::size_t>(ranks)) {
  for (std::size_t i = 0; i < specs.size(); ++i) streams_.emplace_back(seed, "pipeline/fail_slow/" + std::to_string(i), replication);
  for (std::size_t i = 0; i < specs.size(); ++i)
    for (std::int64_t r = 0; r < ranks; ++r) state_[i * static_cast<std::size_t>(ranks) + static_cast<std::size_t>(r)].next = gap(i) - 1;
}

std::int64_t FailSlowEpisodes::gap(std::size_t spec) {
  // Geometric gaps between arrivals: P(an episode starts at a given step) = rate.
  const double rate = specs_[spec].rate_per_rank_step;
  if (rate <= 0) return INT64_MAX / 2;
  if (rate >= 1) return 1;
  const double g = std::floor(std::log(streams_[spec].uniform()) / std::log1p(-rate)) + 1;
  return g > 1e15 ? INT64_MAX / 2 : static_cast<std::int64_t>(g);
}

void FailSlowEpisodes::at_step(std::int64_t step, std::vector<double>& compute, std::vector<double>& link) {
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const FailSlowSpec& spec = specs_[i];
    for (std::int64_t r = 0; r < ranks_; ++r) {
      State& st = state_[i * static_cast<std::size_t>(ranks_) + static_cast<std::size_t>(r)];
      while (st.next <= step) {  // an arrival: it replaces any episode still running
        const double d = spec.duration_steps->from_uniform(streams_[i].uniform()) * spec.steps_per_duration_unit;
        st.end = st.next + std::max<std::int64_t>(1, std::llround(d));
        st.factor = spec.factor->from_uniform(streams_[i].uniform());
        st.next += gap(i);
        ++started_;
      }
      if (step < st.end) (spec.link ? link : compute)[static_cast<std::size_t>(r)] *= st.factor;
    }
  }
}

void FailSlowEpisodes::end(std::int64_t rank) {
  for (std::size_t i = 0; i < specs_.size(); ++i) state_[i * static_cast<std::size_t>(ranks_) + static_cast<std::size_t>(rank)].end = -1;
}

}  // namespace tailsim
