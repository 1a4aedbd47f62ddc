#include "sim/stats/sampling.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace tailsim {

namespace {

// Ziggurat tables for the 256-layer normal (Marsaglia & Tsang 2000; Doornik 2005). x[i] are the layer
// edges from x[0] = V / f(R) (the base strip, which includes the tail) down to x[256] = 0; ratio[i] =
// x[i + 1] / x[i] is the part of layer i that lies wholly under the density.
struct Ziggurat {
  static constexpr int kLayers = 256;
  static constexpr double kR = 3.6541528853610088;       // start of the tail
  static constexpr double kV = 0.00492867323399;         // area of each layer
  std::array<double, kLayers + 1> x{};
  std::array<double, kLayers> ratio{};

  Ziggurat() {
    double f = std::exp(-0.5 * kR * kR);
    x[0] = kV / f;
    x[1] = kR;
    x[kLayers] = 0.0;
    for (int i = 2; i < kLayers; ++i) {
      x[i] = std::sqrt(-2.0 * std::log(kV / x[i - 1] + f));
      f = std::exp(-0.5 * x[i] * x[i]);
    }
    for (int i = 0; i < kLayers; ++i) ratio[i] = x[i + 1] / x[i];
  }
};

const Ziggurat& ziggurat() {
  static const Ziggurat z;
  return z;
}

// The slow paths of the ziggurat: the tail beyond R (Marsaglia 1964) and the wedges between layers.
[[gnu::noinline]] double ziggurat_slow(RngStream& rng, const Ziggurat& z, int layer, double u) {
  if (layer == 0) {
    double t, y;
    do {
      t = -std::log(rng.uniform()) / Ziggurat::kR;
      y = -std::log(rng.uniform());
    } while (y + y < t * t);
    return u < 0 ? -(Ziggurat::kR + t) : Ziggurat::kR + t;
  }
  const double v = u * z.x[layer];
  const double f0 = std::exp(-0.5 * (z.x[layer] * z.x[layer] - v * v));
  const double f1 = std::exp(-0.5 * (z.x[layer + 1] * z.x[layer + 1] - v * v));
  if (f1 + rng.uniform() * (f0 - f1) < 1.0) return v;
  return std::nan("");  // rejected: the caller draws again
}

// One normal from one raw draw: the fast path (about 99 %) uses only `raw`; the wedge and tail paths take
// further draws from the stream, and a rejection starts again from a fresh raw draw.
inline double normal_from_raw(std::uint64_t raw, RngStream& rng, const Ziggurat& z) {
  for (;;) {
    const int layer = static_cast<int>(raw & 0xFF);
    // The top 53 bits as a signed uniform in [-1, 1); disjoint from the layer bits.
    const double u = static_cast<double>(raw >> 11) * 0x1.0p-52 - 1.0;
    if (std::fabs(u) < z.ratio[layer]) [[likely]] return u * z.x[layer];
    const double v = ziggurat_slow(rng, z, layer, u);
    if (!std::isnan(v)) return v;
    raw = rng.next();
  }
}

inline double normal_from(RngStream& rng, const Ziggurat& z) { return normal_from_raw(rng.next(), rng, z); }

// 1 / sqrt(x) for x >= 1 without a division or a square root (they dominate a binomial draw otherwise):
// the bit-level first guess (Lomont's constant for doubles, relative error < 3.5e-2) and three Newton steps
// (relative error < 3e-11, well below the approximation error of the sampler that uses it).
inline double inverse_sqrt(double x) {
  double y = std::bit_cast<double>(0x5FE6EB50C7B537A9ull - (std::bit_cast<std::uint64_t>(x) >> 1));
  const double h = 0.5 * x;
  y = y * (1.5 - h * y * y);
  y = y * (1.5 - h * y * y);
  y = y * (1.5 - h * y * y);
  return y;
}

// 1 / k for small k: the inversion loop multiplies instead of dividing (a division is ~4x the latency).
struct Reciprocals {
  std::array<double, 256> of{};
  Reciprocals() {
    for (std::size_t k = 1; k < of.size(); ++k) of[k] = 1.0 / static_cast<double>(k);
  }
};
const Reciprocals& reciprocals() {
  static const Reciprocals r;
  return r;
}

// Exact inversion for a small mean: P(0) = (1 - q)^n, P(k) = P(k - 1) (n - k + 1) / k q / (1 - q).
std::int64_t binomial_inversion(double u, std::int64_t n, double q) {
  const double nd = static_cast<double>(n);
  const double mean = nd * q;
  const double odds = q / (1.0 - q);
  double pk = std::exp(nd * std::log1p(-q));
  // Rounding can leave u above the summed probabilities; stop where the remaining mass is negligible
  // (beyond 40 standard deviations).
  const auto limit = std::min<std::int64_t>(n, static_cast<std::int64_t>(mean + 40.0 * std::sqrt(mean) + 40.0));
  const double* inv = reciprocals().of.data();
  std::int64_t k = 0;
  while (u > pk && k < limit) {
    u -= pk;
    ++k;
    pk *= odds * (nd - static_cast<double>(k) + 1.0) * (k < 256 ? inv[k] : 1.0 / static_cast<double>(k));
  }
  return k;
}

// Normal approximation with the first Cornish-Fisher term (the binomial's skewness g1), then rounding to
// the nearest integer (the continuity correction). The kurtosis term was tried: it does not lower the
// total-variation distance, which rounding dominates.
inline std::int64_t binomial_normal(std::uint64_t raw, RngStream& rng, std::int64_t n, double q, const Ziggurat& zig) {
  const double nd = static_cast<double>(n);
  const double mean = nd * q;
  const double var = mean * (1.0 - q);  // >= kBinomialInversionMean / 2 = 8
  const double inv_sd = inverse_sqrt(var);
  const double sd = var * inv_sd;
  const double g1 = (1.0 - 2.0 * q) * inv_sd;
  const double z = normal_from_raw(raw, rng, zig);
  const double w = z + g1 * (1.0 / 6.0) * (z * z - 1.0);
  const double x = mean + sd * w + 0.5;
  if (!(x >= 1.0)) return 0;
  if (x >= nd) return n;
  return static_cast<std::int64_t>(x);  // truncation of a positive x + 0.5: round half up
}

// Binomial(n, p) with its first draw given as `raw` (the inversion's uniform or the normal's ziggurat draw).
inline std::int64_t binomial_from_raw(std::uint64_t raw, RngStream& rng, std::int64_t n, double p, const Ziggurat& zig) {
  if (n <= 0 || !(p > 0)) return 0;
  if (p >= 1) return n;
  const bool flip = p > 0.5;
  const double q = flip ? 1.0 - p : p;
  const std::int64_t k = static_cast<double>(n) * q < kBinomialInversionMean
                             ? binomial_inversion(raw_to_open_uniform(raw), n, q)
                             : binomial_normal(raw, rng, n, q, zig);
  return flip ? n - k : k;
}

inline std::int64_t binomial_with(RngStream& rng, std::int64_t n, double p, const Ziggurat& zig) {
  return binomial_from_raw(rng.next(), rng, n, p, zig);
}

// log Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error about 1e-15). std::lgamma writes the
// global signgam, a data race when runs build tables on several threads.
double log_gamma(double x) {
  static constexpr double kCoef[9] = {0.99999999999980993,  676.5203681218851,     -1259.1392167224028,
                                      771.32342877765313,   -176.61502916214059,   12.507343278686905,
                                      -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7};
  if (x < 0.5) return std::log(M_PI / std::sin(M_PI * x)) - log_gamma(1.0 - x);
  x -= 1.0;
  double a = kCoef[0];
  const double t = x + 7.5;
  for (int i = 1; i < 9; ++i) a += kCoef[i] / (x + i);
  return 0.5 * std::log(2.0 * M_PI) + (x + 0.5) * std::log(t) - t + std::log(a);
}

// Continued fraction for the incomplete beta (modified Lentz), as in Numerical Recipes' betacf.
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300, kEps = 1e-15;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0, d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 100000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < kEps) break;
  }
  return h;
}

}  // namespace

double standard_normal(RngStream& rng) { return normal_from(rng, ziggurat()); }

void fill_standard_normal(RngStream& rng, std::span<double> out) {
  const Ziggurat& z = ziggurat();
  std::uint64_t raw[64];
  for (std::size_t i = 0; i < out.size(); i += 64) {
    const std::size_t m = std::min<std::size_t>(64, out.size() - i);
    rng.fill(std::span<std::uint64_t>(raw, m));
    for (std::size_t j = 0; j < m; ++j) out[i + j] = normal_from_raw(raw[j], rng, z);
  }
}

double standard_gamma(RngStream& rng, double shape) {
  if (!(shape > 0)) throw std::invalid_argument("standard_gamma: shape must be > 0");
  if (shape < 1.0) {
    // G_a = G_{a+1} U^(1/a), in logs so that tiny shapes underflow to 0 rather than to NaN.
    const double g = standard_gamma(rng, shape + 1.0);
    return std::exp(std::log(g) + std::log(rng.uniform()) / shape);
  }
  const Ziggurat& zig = ziggurat();
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = normal_from(rng, zig);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = rng.uniform();
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return d * v;
  }
}

double beta_variate(RngStream& rng, double a, double b) {
  const double x = standard_gamma(rng, a);
  const double y = standard_gamma(rng, b);
  const double s = x + y;
  // Both gammas can underflow to 0 for tiny shapes; the mean a / (a + b) is then the least-biased answer.
  return s > 0 ? x / s : a / (a + b);
}

void dirichlet(RngStream& rng, std::span<const double> alpha, std::span<double> out) {
  if (alpha.size() != out.size()) throw std::invalid_argument("dirichlet: alpha and out differ in size");
  double sum = 0;
  for (std::size_t i = 0; i < out.size(); ++i) sum += out[i] = standard_gamma(rng, alpha[i]);
  if (sum > 0) {
    for (double& v : out) v /= sum;
  } else {  // every gamma underflowed (all shapes tiny): the largest shape takes the mass
    std::fill(out.begin(), out.end(), 0.0);
    if (!out.empty()) out[static_cast<std::size_t>(std::max_element(alpha.begin(), alpha.end()) - alpha.begin())] = 1.0;
  }
}

void symmetric_dirichlet(RngStream& rng, double alpha, std::span<double> out) {
  double sum = 0;
  for (double& v : out) sum += v = standard_gamma(rng, alpha);
  if (sum > 0) {
    for (double& v : out) v /= sum;
  } else {
    std::fill(out.begin(), out.end(), 0.0);
    if (!out.empty()) out[0] = 1.0;
  }
}

std::int64_t binomial(RngStream& rng, std::int64_t n, double p) { return binomial_with(rng, n, p, ziggurat()); }

void multinomial(RngStream& rng, std::int64_t n, std::span<const double> weights, std::span<std::int64_t> counts) {
  if (weights.size() != counts.size()) throw std::invalid_argument("multinomial: weights and counts differ in size");
  double remaining = 0;
  for (const double w : weights) remaining += w;
  if (n > 0 && !(remaining > 0 && std::isfinite(remaining)))
    throw std::invalid_argument("multinomial: weights must be >= 0 with a positive, finite sum");
  const Ziggurat& zig = ziggurat();
  std::int64_t left = n;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    // The last category with weight takes what is left, whatever the rounding of `remaining`.
    const double q = weights[i] >= remaining ? 1.0 : weights[i] / remaining;
    counts[i] = binomial_with(rng, left, q, zig);
    left -= counts[i];
    remaining -= weights[i];
  }
  if (left > 0) {  // rounding left mass in zero-weight tail categories: give it to the last weighted one
    for (std::size_t i = weights.size(); i-- > 0;)
      if (weights[i] > 0) {
        counts[i] += left;
        break;
      }
  }
}

MultinomialTree::MultinomialTree(std::size_t categories) : categories_(categories), leaves_(1) {
  while (leaves_ < categories_) leaves_ *= 2;
  weight_.assign(2 * leaves_, 0.0);
  count_.assign(2 * leaves_, 0.0);
  raw_.assign(leaves_, 0);
  p_.assign(leaves_, 0.0);
  normal_.assign(leaves_, 0.0);
}

// The splits of one tree level are independent, so each level is a loop over its nodes in plain double
// arithmetic (counts are exact integers in doubles up to 2^53; rounding by adding and subtracting 2^52),
// which the compiler vectorizes, instead of a long dependent chain per node.
void MultinomialTree::sample(RngStream& rng, std::int64_t n, std::span<const double> weights,
                             std::span<std::int64_t> counts) {
  if (weights.size() != categories_ || counts.size() != categories_)
    throw std::invalid_argument("MultinomialTree::sample: weights and counts must have categories() entries");
  if (n < 0 || n > (std::int64_t{1} << 52)) throw std::invalid_argument("MultinomialTree::sample: n must be in [0, 2^52]");
  const std::size_t m = leaves_;
  // Local pointers: the compiler need not reload the vectors' data after each store.
  double* weight = weight_.data();
  double* count = count_.data();
  std::copy(weights.begin(), weights.end(), weight + m);
  for (std::size_t i = m - 1; i >= 1; --i) weight[i] = weight[2 * i] + weight[2 * i + 1];
  if (n > 0 && !(weight[1] > 0 && std::isfinite(weight[1])))
    throw std::invalid_argument("multinomial: weights must be >= 0 with a positive, finite sum");
  count[1] = static_cast<double>(n);
  if (m > 1) {
    const Ziggurat& zig = ziggurat();
    std::uint64_t* raw = raw_.data();
    double* ps = p_.data();
    double* normal = normal_.data();
    // Per split: the left share p (0 under an empty node).
    for (std::size_t i = 1; i < m; ++i) ps[i] = std::min(weight[2 * i] / std::max(weight[i], 1e-300), 1.0);
    rng.fill(std::span<std::uint64_t>(raw + 1, m - 1));  // one raw draw per split
    for (std::size_t i = 1; i < m; ++i) normal[i] = normal_from_raw(raw[i], rng, zig);
    constexpr double kRound = 0x1.0p52;  // x + 2^52 - 2^52 rounds 0 <= x < 2^52 to the nearest integer
    for (std::size_t first = 1; first < m; first *= 2) {
      const std::size_t last = 2 * first;
      // Every split of the level by the normal approximation (an empty node, p = 0 or p = 1 gives 0 or c) ...
      for (std::size_t i = first; i < last; ++i) {
        const double c = count[i], p = ps[i];
        const double mean = c * p;
        const double var = mean * (1.0 - p);
        // No std::sqrt (errno) nor std::max here: either would stop the loop vectorizing. An empty split has
        // var = 0, a huge isd and sd = 0, hence x = 0.
        const double isd = inverse_sqrt(var + 0x1.0p-1000);
        const double sd = var * isd;
        const double g1 = (1.0 - 2.0 * p) * isd;
        const double z = normal[i];
        const double x = std::min(std::max(mean + sd * (z + g1 * (1.0 / 6.0) * (z * z - 1.0)), 0.0), c);
        const double left = (x + kRound) - kRound;
        count[2 * i] = left;
        count[2 * i + 1] = c - left;
      }
      // ... then exact inversion where the smaller side's mean is small (rare when counts are large).
      for (std::size_t i = first; i < last; ++i) {
        const double c = count[i], p = ps[i];
        const double q = std::min(p, 1.0 - p);
        if (c * q < kBinomialInversionMean && q > 0 && c > 0) [[unlikely]] {
          const auto ci = static_cast<std::int64_t>(c);
          const std::int64_t k = binomial_inversion(raw_to_open_uniform(raw[i]), ci, q);
          const double left = static_cast<double>(p > 0.5 ? ci - k : k);
          count[2 * i] = left;
          count[2 * i + 1] = c - left;
        }
      }
    }
  }
  for (std::size_t e = 0; e < categories_; ++e) counts[e] = static_cast<std::int64_t>(count[m + e]);
}

double regularized_incomplete_beta(double a, double b, double x) {
  if (!(a > 0 && b > 0)) throw std::invalid_argument("regularized_incomplete_beta: a and b must be > 0");
  if (!(x > 0)) return 0.0;
  if (x >= 1) return 1.0;
  const double log_front =
      log_gamma(a + b) - log_gamma(a) - log_gamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b;
}

BetaQuantileTable::BetaQuantileTable(double a, double b, int intervals) : a_(a), b_(b) {
  if (!(a > 0 && b > 0) || intervals < 2) throw std::invalid_argument("BetaQuantileTable: a, b > 0, intervals >= 2");
  cdf_.resize(static_cast<std::size_t>(intervals) + 1);
  for (int j = 0; j <= intervals; ++j)
    cdf_[static_cast<std::size_t>(j)] = regularized_incomplete_beta(a, b, static_cast<double>(j) / intervals);
  cdf_.front() = 0.0;
  cdf_.back() = 1.0;
  for (std::size_t j = 1; j < cdf_.size(); ++j) cdf_[j] = std::max(cdf_[j], cdf_[j - 1]);  // monotone despite rounding
  guide_.resize(static_cast<std::size_t>(intervals));
  std::size_t j = 0;
  for (std::size_t i = 0; i < guide_.size(); ++i) {
    const double level = static_cast<double>(i) / static_cast<double>(guide_.size());
    while (j + 1 < cdf_.size() - 1 && cdf_[j + 1] <= level) ++j;
    guide_[i] = static_cast<int>(j);
  }
}

double BetaQuantileTable::from_uniform(double u) const {
  const std::size_t cells = cdf_.size() - 1;
  const std::size_t g = std::min(guide_.size() - 1, static_cast<std::size_t>(u * static_cast<double>(guide_.size())));
  std::size_t j = static_cast<std::size_t>(guide_[g]);
  while (j + 1 < cells && cdf_[j + 1] <= u) ++j;
  const double lo = cdf_[j], hi = cdf_[j + 1];
  const double frac = hi > lo ? std::clamp((u - lo) / (hi - lo), 0.0, 1.0) : 0.5;
  return (static_cast<double>(j) + frac) / static_cast<double>(cells);
}

}  // namespace tailsim
