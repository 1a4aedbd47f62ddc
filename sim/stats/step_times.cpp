#include "sim/stats/step_times.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

#include "sim/core/bytes.hpp"

namespace tailsim {

namespace {

constexpr std::size_t kSubBuckets = 1024;  // per power of two; values below kSubBuckets ns are exact
constexpr std::size_t kBuckets = kSubBuckets + 53 * kSubBuckets;

__extension__ using Int128 = __int128;

}  // namespace

struct StepTimes::Sketch {
  std::vector<std::uint64_t> counts = std::vector<std::uint64_t>(kBuckets, 0);
  std::uint64_t n = 0;
  Int128 sum = 0;
  long double mean = 0, m2 = 0;  // Welford, merged with Chan et al.'s formula
  SimTime max = 0;

  void add(SimTime v) {
    ++counts[bucket_of(v)];
    ++n;
    sum += v;
    const long double d = static_cast<long double>(v) - mean;
    mean += d / static_cast<long double>(n);
    m2 += d * (static_cast<long double>(v) - mean);
    max = n == 1 ? v : std::max(max, v);
  }
  void merge(const Sketch& o) {
    if (o.n == 0) return;
    for (std::size_t b = 0; b < kBuckets; ++b) counts[b] += o.counts[b];
    const long double na = static_cast<long double>(n), nb = static_cast<long double>(o.n);
    const long double d = o.mean - mean;
    mean += d * nb / (na + nb);
    m2 += o.m2 + d * d * na * nb / (na + nb);
    max = n == 0 ? o.max : std::max(max, o.max);
    n += o.n;
    sum += o.sum;
  }
};

StepTimes::StepTimes(bool sketch) {
  if (sketch) sketch_ = std::make_unique<Sketch>();
}
StepTimes::StepTimes(const StepTimes& o) : values_(o.values_) {
  if (o.sketch_) sketch_ = std::make_unique<Sketch>(*o.sketch_);
}
StepTimes& StepTimes::operator=(const StepTimes& o) {
  if (this != &o) {
    values_ = o.values_;
    sketch_ = o.sketch_ ? std::make_unique<Sketch>(*o.sketch_) : nullptr;
  }
  return *this;
}
StepTimes::StepTimes() = default;
StepTimes::StepTimes(StepTimes&&) noexcept = default;
StepTimes& StepTimes::operator=(StepTimes&&) noexcept = default;
StepTimes::~StepTimes() = default;

std::size_t StepTimes::size() const { return sketch_ ? sketch_->n : values_.size(); }

void StepTimes::reserve(std::size_t n) {
  if (!sketch_) values_.reserve(n);
}

void StepTimes::add(SimTime ns) {
  if (sketch_) sketch_->add(ns);
  else values_.push_back(ns);
}

void StepTimes::merge(const StepTimes& other) {
  if (!sketch_ && !other.sketch_) {
    values_.insert(values_.end(), other.values_.begin(), other.values_.end());
    return;
  }
  if (!sketch_) {  // exact + sketch: the exact values join a sketch
    sketch_ = std::make_unique<Sketch>();
    for (const SimTime v : values_) sketch_->add(v);
    std::vector<SimTime>().swap(values_);
  }
  if (other.sketch_) {
    sketch_->merge(*other.sketch_);
  } else {
    for (const SimTime v : other.values_) sketch_->add(v);
  }
}

bool StepTimes::operator==(const StepTimes& o) const {
  if (is_sketch() != o.is_sketch()) return false;
  if (!sketch_) return values_ == o.values_;
  return sketch_->n == o.sketch_->n && sketch_->sum == o.sketch_->sum && sketch_->max == o.sketch_->max &&
         sketch_->counts == o.sketch_->counts;
}

std::size_t StepTimes::bucket_of(SimTime ns) {
  const auto v = static_cast<std::uint64_t>(std::max<SimTime>(ns, 0));
  if (v < kSubBuckets) return static_cast<std::size_t>(v);
  const int e = std::bit_width(v) - 1;  // >= 10
  const std::uint64_t m = (v >> (e - 10)) & (kSubBuckets - 1);
  return kSubBuckets + static_cast<std::size_t>(e - 10) * kSubBuckets + static_cast<std::size_t>(m);
}

double StepTimes::bucket_value(std::size_t b) {
  if (b < kSubBuckets) return static_cast<double>(b);
  const std::size_t k = b - kSubBuckets;
  const int shift = static_cast<int>(k / kSubBuckets);
  const double lower = std::ldexp(static_cast<double>(kSubBuckets + k % kSubBuckets), shift);
  const double width = std::ldexp(1.0, shift);
  return lower + (width - 1.0) / 2.0;  // midpoint of the integers [lower, lower + width - 1]
}

StepTimeSummary StepTimes::summarize() && {
  if (!sketch_) return summarize_steps(std::move(values_));
  const Sketch& s = *sketch_;
  StepTimeSummary out;
  out.count = static_cast<std::int64_t>(s.n);
  if (s.n == 0) return out;
  const double n = static_cast<double>(s.n);
  out.mean = static_cast<double>(s.sum) / n * 1e-9;
  out.stddev = s.n > 1 ? std::sqrt(static_cast<double>(s.m2 / static_cast<long double>(s.n - 1))) * 1e-9 : 0.0;
  const double half = 1.959963984540054 * out.stddev / std::sqrt(n);
  out.ci95_low = out.mean - half;
  out.ci95_high = out.mean + half;
  out.max = ns_to_seconds(s.max);
  // Order statistic r (0-based) read at its bucket's value; the top one is the exact maximum.
  const auto at_rank = [&](std::uint64_t r) {
    if (r + 1 >= s.n) return static_cast<double>(s.max);
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      seen += s.counts[b];
      if (seen > r) return std::min(bucket_value(b), static_cast<double>(s.max));
    }
    return static_cast<double>(s.max);
  };
  const auto quantile = [&](double q) {  // numpy's linear method on the bucket values
    const double h = q * (n - 1);
    const auto lo = static_cast<std::uint64_t>(std::floor(h));
    const double a = at_rank(lo), b = at_rank(std::min(lo + 1, s.n - 1));
    return (a + (h - static_cast<double>(lo)) * (b - a)) * 1e-9;
  };
  out.p50 = quantile(0.50);
  out.p90 = quantile(0.90);
  out.p99 = quantile(0.99);
  out.p999 = quantile(0.999);
  return out;
}

void StepTimes::serialize(std::string& out) const {
  put_bytes(out, static_cast<std::uint8_t>(sketch_ ? 1 : 0));
  if (!sketch_) {
    put_bytes(out, static_cast<std::uint64_t>(values_.size()));
    out.append(reinterpret_cast<const char*>(values_.data()), values_.size() * sizeof(SimTime));
    return;
  }
  const Sketch& s = *sketch_;
  put_bytes(out, s.n);
  put_bytes(out, s.sum);
  put_bytes(out, s.mean);
  put_bytes(out, s.m2);
  put_bytes(out, s.max);
  out.append(reinterpret_cast<const char*>(s.counts.data()), s.counts.size() * sizeof(std::uint64_t));
}

StepTimes StepTimes::deserialize(const std::string& in, std::size_t& pos) {
  const bool sketch = take_bytes<std::uint8_t>(in, pos) != 0;
  StepTimes t(sketch);
  if (!sketch) {
    t.values_.resize(take_bytes<std::uint64_t>(in, pos));
    take_raw(in, pos, t.values_.data(), t.values_.size() * sizeof(SimTime));
    return t;
  }
  Sketch& s = *t.sketch_;
  s.n = take_bytes<std::uint64_t>(in, pos);
  s.sum = take_bytes<Int128>(in, pos);
  s.mean = take_bytes<long double>(in, pos);
  s.m2 = take_bytes<long double>(in, pos);
  s.max = take_bytes<SimTime>(in, pos);
  take_raw(in, pos, s.counts.data(), s.counts.size() * sizeof(std::uint64_t));
  return t;
}

}  // namespace tailsim
