#include "sim/stats/distribution.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <sstream>

#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "sim/stats/samples_file.hpp"

namespace tailsim {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

class Constant final : public Distribution {
 public:
  explicit Constant(double v) : v_(v) {}
  double from_uniform(double) const override { return v_; }
  double upper_quantile(double) const override { return v_; }
  double survival(double x) const override { return x < v_ ? 1.0 : 0.0; }
  double mean() const override { return v_; }
  double min_value() const override { return v_; }

 private:
  double v_;
};

class Uniform final : public Distribution {
 public:
  Uniform(double lo, double hi) : lo_(lo), hi_(hi) {}
  double from_uniform(double u) const override { return lo_ + u * (hi_ - lo_); }
  double upper_quantile(double q) const override { return hi_ - q * (hi_ - lo_); }
  double survival(double x) const override {
    if (x < lo_) return 1.0;
    return x >= hi_ ? 0.0 : (hi_ - x) / (hi_ - lo_);
  }
  double mean() const override { return 0.5 * (lo_ + hi_); }
  double min_value() const override { return lo_; }

 private:
  double lo_, hi_;
};

class Exponential final : public Distribution {
 public:
  explicit Exponential(double rate) : rate_(rate) {}
  double from_uniform(double u) const override { return -std::log1p(-u) / rate_; }
  double upper_quantile(double q) const override { return -std::log(q) / rate_; }
  double survival(double x) const override { return x <= 0 ? 1.0 : std::exp(-rate_ * x); }
  double mean() const override { return 1.0 / rate_; }
  double min_value() const override { return 0.0; }

 private:
  double rate_;
};

// Normal clipped at `min` (values below min become min), so durations stay non-negative.
class Normal final : public Distribution {
 public:
  Normal(double mean, double sd, double min) : mu_(mean), sd_(sd), min_(min) {}
  double from_uniform(double u) const override { return std::max(min_, mu_ + sd_ * normal_quantile(u)); }
  // Phi^-1(1 - q) = -Phi^-1(q): exact for the tiniest q, where 1 - q would round to 1.
  double upper_quantile(double q) const override { return std::max(min_, mu_ - sd_ * normal_quantile(q)); }
  double survival(double x) const override {
    if (x < min_) return 1.0;
    if (sd_ == 0) return mu_ > x ? 1.0 : 0.0;
    return 0.5 * std::erfc((x - mu_) / (sd_ * M_SQRT2));
  }
  double mean() const override {
    if (sd_ == 0) return std::max(min_, mu_);
    // E[max(a, X)] = a Phi(alpha) + mu (1 - Phi(alpha)) + sd phi(alpha), alpha = (a - mu) / sd.
    const double alpha = (min_ - mu_) / sd_;
    const double pdf = std::exp(-0.5 * alpha * alpha) / std::sqrt(2.0 * M_PI);
    const double cdf = normal_cdf(alpha);
    return min_ * cdf + mu_ * (1.0 - cdf) + sd_ * pdf;
  }
  double min_value() const override { return min_; }

 private:
  double mu_, sd_, min_;
};

class ShiftedLognormal final : public Distribution {
 public:
  ShiftedLognormal(double shift, double mu, double sigma) : shift_(shift), mu_(mu), sigma_(sigma) {}
  double from_uniform(double u) const override { return shift_ + std::exp(mu_ + sigma_ * normal_quantile(u)); }
  double upper_quantile(double q) const override { return shift_ + std::exp(mu_ - sigma_ * normal_quantile(q)); }
  double survival(double x) const override {
    if (x <= shift_) return 1.0;
    if (sigma_ == 0) return shift_ + std::exp(mu_) > x ? 1.0 : 0.0;
    return 0.5 * std::erfc((std::log(x - shift_) - mu_) / (sigma_ * M_SQRT2));
  }
  double mean() const override { return shift_ + std::exp(mu_ + 0.5 * sigma_ * sigma_); }
  double min_value() const override { return shift_; }

 private:
  double shift_, mu_, sigma_;
};

class Pareto final : public Distribution {
 public:
  Pareto(double scale, double shape) : scale_(scale), shape_(shape) {}
  double from_uniform(double u) const override { return scale_ * std::pow(1.0 - u, -1.0 / shape_); }
  double upper_quantile(double q) const override { return scale_ * std::pow(q, -1.0 / shape_); }
  double survival(double x) const override { return x < scale_ ? 1.0 : std::pow(x / scale_, -shape_); }
  double mean() const override { return shape_ > 1 ? scale_ * shape_ / (shape_ - 1) : kInf; }
  double min_value() const override { return scale_; }

 private:
  double scale_, shape_;
};

// A finite mixture: u picks the component by the cumulative weights and is rescaled inside it, so one
// uniform gives one draw (not monotone in u across components).
class Mixture final : public Distribution {
 public:
  Mixture(std::vector<double> weights, std::vector<std::unique_ptr<Distribution>> parts)
      : parts_(std::move(parts)) {
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    double acc = 0;
    for (double w : weights) {
      acc += w / total;
      cumulative_.push_back(acc);
    }
    cumulative_.back() = 1.0;
  }
  double from_uniform(double u) const override {
    std::size_t i = std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin();
    if (i >= parts_.size()) i = parts_.size() - 1;
    const double lo = i == 0 ? 0.0 : cumulative_[i - 1];
    const double width = cumulative_[i] - lo;
    const double v = std::clamp((u - lo) / width, 0x1.0p-53, 1.0 - 0x1.0p-53);
    return parts_[i]->from_uniform(v);
  }
  bool monotone() const override { return parts_.size() == 1 && parts_[0]->monotone(); }
  // No closed form: the survival function inverted to the last bit of a double.
  double upper_quantile(double q) const override {
    return smallest_with_survival_at_most([this](double x) { return survival(x); }, q);
  }
  double survival(double x) const override {
    double s = 0, lo = 0;
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      s += (cumulative_[i] - lo) * parts_[i]->survival(x);
      lo = cumulative_[i];
    }
    return s;
  }
  void count_held(HeldBytes& held) const override {
    held.add(cumulative_.capacity() * sizeof(double));
    for (const auto& p : parts_) {
      held.add(64);
      p->count_held(held);
    }
  }
  double mean() const override {
    double m = 0, lo = 0;
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      m += (cumulative_[i] - lo) * parts_[i]->mean();
      lo = cumulative_[i];
    }
    return m;
  }
  double min_value() const override {
    double m = kInf;
    for (const auto& p : parts_) m = std::min(m, p->min_value());
    return m;
  }

 private:
  std::vector<std::unique_ptr<Distribution>> parts_;
  std::vector<double> cumulative_;
};

// Resampling of observed values (the empirical distribution): u picks sample floor(u n) of the sorted
// samples, so the mean is exactly the sample mean and draws are monotone in u.
// The samples are shared: every sweep point that reads the same file resamples one sorted copy.
class Empirical final : public Distribution {
 public:
  explicit Empirical(std::shared_ptr<const std::vector<double>> sorted) : sorted_(std::move(sorted)) {
    mean_ = std::accumulate(sorted_->begin(), sorted_->end(), 0.0) / static_cast<double>(sorted_->size());
  }
  double from_uniform(double u) const override {
    const std::vector<double>& s = *sorted_;
    const auto i = std::min(s.size() - 1, static_cast<std::size_t>(u * static_cast<double>(s.size())));
    return s[i];
  }
  // Sample n - 1 - floor(q n): from_uniform(1 - q) without rounding 1 - q.
  double upper_quantile(double q) const override {
    const std::vector<double>& s = *sorted_;
    const auto above = std::min(s.size() - 1, static_cast<std::size_t>(q * static_cast<double>(s.size())));
    return s[s.size() - 1 - above];
  }
  double survival(double x) const override {
    const std::vector<double>& s = *sorted_;
    const auto above = s.end() - std::upper_bound(s.begin(), s.end(), x);
    return static_cast<double>(above) / static_cast<double>(s.size());
  }
  double mean() const override { return mean_; }
  double min_value() const override { return sorted_->front(); }
  void count_held(HeldBytes& held) const override {
    held.add_shared(sorted_.get(), sorted_->capacity() * sizeof(double));
  }

 private:
  std::shared_ptr<const std::vector<double>> sorted_;
  double mean_ = 0;
};

std::vector<double> sorted(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  values.shrink_to_fit();  // held for the whole run
  return values;
}

DistributionRegistry build_registry() {
  DistributionRegistry r("distributions");
  r.add("constant", "always the same value", {{"value", "the value (seconds or a factor), >= 0"}},
        [](const JsonReader& n) { return std::make_unique<Constant>(n.duration_s("value", {}, at_least(0))); });
  r.add("uniform", "uniform between min and max",
        {{"min", "lower bound, >= 0"}, {"max", "upper bound, >= min"}}, [](const JsonReader& n) {
          const double lo = n.duration_s("min", {}, at_least(0));
          const double hi = n.duration_s("max", {}, at_least(lo));
          return std::make_unique<Uniform>(lo, hi);
        });
  r.add("exponential", "exponential with a rate or a mean (memoryless; E[max of K] = H_K / rate)",
        {{"rate", "events per unit, > 0 (or give mean)"}, {"mean", "1 / rate, > 0"}}, [](const JsonReader& n) {
          if (n.has("rate") == n.has("mean")) n.fail("exponential needs exactly one of 'rate' or 'mean'");
          const double rate = n.has("rate") ? n.number("rate", {}, above(0)) : 1.0 / n.duration_s("mean", {}, above(0));
          return std::make_unique<Exponential>(rate);
        });
  r.add("normal", "Gaussian clipped at min (default 0): a light tail",
        {{"mean", "the mean before clipping"}, {"stddev", "standard deviation, >= 0"}, {"min", "clip value, default 0"}},
        [](const JsonReader& n) {
          return std::make_unique<Normal>(n.duration_s("mean"), n.duration_s("stddev", {}, at_least(0)),
                                          n.duration_s("min", 0.0));
        });
  r.add("lognormal", "exp(N(mu, sigma^2)): a heavy right tail",
        {{"mu", "mean of the log"}, {"sigma", "stddev of the log, >= 0"}}, [](const JsonReader& n) {
          return std::make_unique<ShiftedLognormal>(0.0, n.number("mu"), n.number("sigma", {}, at_least(0)));
        });
  r.add("shifted_lognormal", "shift + exp(N(mu, sigma^2)): a floor plus interference (the textbook model)",
        {{"shift", "the floor, >= 0"}, {"mu", "mean of the log"}, {"sigma", "stddev of the log, >= 0"}},
        [](const JsonReader& n) {
          return std::make_unique<ShiftedLognormal>(n.duration_s("shift", {}, at_least(0)), n.number("mu"),
                                                    n.number("sigma", {}, at_least(0)));
        });
  r.add("pareto", "scale * U^(-1/shape): a power-law tail (mean infinite for shape <= 1)",
        {{"scale", "the minimum, > 0"}, {"shape", "tail index, > 0"}}, [](const JsonReader& n) {
          return std::make_unique<Pareto>(n.duration_s("scale", {}, above(0)), n.number("shape", {}, above(0)));
        });
  r.add("mixture", "a weighted mixture of distributions (e.g. 99% healthy, 1% hiccup)",
        {{"components", "array of {weight > 0, dist: a distribution}"}}, [](const JsonReader& n) {
          std::vector<double> weights;
          std::vector<std::unique_ptr<Distribution>> parts;
          const auto items = n.array("components");
          if (items.empty()) n.child("components").fail_expected("a non-empty array of {weight, dist}");
          double total = 0;
          for (const JsonReader& c : items) {
            c.expect_object();
            weights.push_back(c.number("weight", {}, above(0)));
            total += weights.back();
            parts.push_back(make_distribution(c.child("dist")));
            c.finish();
          }
          if (!std::isfinite(total))
            n.child("components").fail("the weights add up to more than the largest number (they are relative: scale them down)");
          return std::make_unique<Mixture>(std::move(weights), std::move(parts));
        });
  r.add("empirical", "resample observed values, from a file (one number per line) or an inline list",
        {{"file", "path relative to the scenario (one value per line, '#' comments)"},
         {"samples", "inline array of values >= 0"}},
        [](const JsonReader& n) {
          if (n.has("file") == n.has("samples")) n.fail("empirical needs exactly one of 'file' or 'samples'");
          if (n.has("file"))  // read and sorted once per run, however many points and policies use it
            return std::make_unique<Empirical>(parse_shared<std::vector<double>>(
                "samples:" + samples_path(n, "file"), [&] { return sorted(read_samples_file(n, "file")); }));
          std::vector<double> samples;
          for (const JsonReader& s : n.array("samples")) samples.push_back(s.as_number(at_least(0)));
          if (samples.empty()) n.child("samples").fail_expected("a non-empty array of numbers");
          return std::make_unique<Empirical>(std::make_shared<const std::vector<double>>(sorted(std::move(samples))));
        });
  return r;
}

}  // namespace

const DistributionRegistry& distribution_registry() {
  static const DistributionRegistry registry = build_registry();
  return registry;
}

std::unique_ptr<Distribution> make_distribution(const JsonReader& node) {
  return distribution_registry().build(node);
}

double Distribution::expected_min(int copies) const {
  if (copies <= 1) return mean();
  // The quantile function against the density of the minimum's uniform, c (1 - u)^(c - 1), which tames
  // the upper tail.
  const double c = copies;
  return integrate_unit_interval([&](double u) { return from_uniform(u) * c * std::pow(1.0 - u, c - 1.0); });
}

double integrate_unit_interval(const std::function<double(double)>& f) {
  static constexpr double kX[5] = {0.1488743389816312, 0.4333953941292472, 0.6794095682990244,
                                   0.8650633666889845, 0.9739065285171717};
  static constexpr double kW[5] = {0.2955242247147529, 0.2692667193099963, 0.2190863625159820,
                                   0.1494513491505806, 0.0666713443086881};
  std::vector<double> edges = {0.0};
  for (int e = -16; e <= -1; ++e) edges.push_back(std::pow(10.0, e));
  for (double x : {0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}) edges.push_back(x);
  for (int e = -1; e >= -16; --e) edges.push_back(1.0 - std::pow(10.0, e));
  edges.push_back(1.0);
  double total = 0;
  for (std::size_t p = 0; p + 1 < edges.size(); ++p) {
    const double a = edges[p], b = edges[p + 1], half = 0.5 * (b - a), mid = 0.5 * (a + b);
    if (!(b > a)) continue;
    for (int i = 0; i < 5; ++i) {
      for (const double sign : {-1.0, 1.0}) {
        const double u = mid + sign * half * kX[i];
        if (u <= 0 || u >= 1) continue;
        total += half * kW[i] * f(u);
      }
    }
  }
  return total;
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

double normal_quantile(double p) {
  // Wichura, M. J. (1988) Algorithm AS 241: The percentage points of the normal distribution (PPND16).
  const double q = p - 0.5;
  if (std::fabs(q) <= 0.425) {
    const double r = 0.180625 - q * q;
    return q *
           (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r +
                45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r +
             133.14166789178437745) * r + 3.387132872796366608) /
           (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r +
                21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r +
             42.313330701600911252) * r + 1.0);
  }
  double r = q < 0 ? p : 1.0 - p;
  r = std::sqrt(-std::log(r));
  double val;
  if (r <= 5.0) {
    r -= 1.6;
    val = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r + 0.24178072517745061177) * r +
               1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r +
            4.6303378461565452959) * r + 1.42343711074968357734) /
          (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r +
               0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r +
            2.05319162663775882187) * r + 1.0);
  } else {
    r -= 5.0;
    val = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r +
               0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r +
            5.4637849111641143699) * r + 6.6579046435011037772) /
          (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r +
               7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r +
            0.59983220655588793769) * r + 1.0);
  }
  return q < 0 ? -val : val;
}

}  // namespace tailsim
