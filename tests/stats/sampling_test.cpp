#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <vector>

#include "sim/core/rng.hpp"
#include "sim/stats/distribution.hpp"
#include "sim/stats/sampling.hpp"

namespace tailsim {

namespace {

// Sample moments with the standard errors of the mean and of the variance (from the fourth moment).
struct Moments {
  double mean = 0, var = 0, se_mean = 0, se_var = 0;
};
Moments moments(const std::vector<double>& x) {
  const double n = static_cast<double>(x.size());
  Moments m;
  for (const double v : x) m.mean += v;
  m.mean /= n;
  double m2 = 0, m4 = 0;
  for (const double v : x) {
    const double d = (v - m.mean) * (v - m.mean);
    m2 += d;
    m4 += d * d;
  }
  m2 /= n;
  m4 /= n;
  m.var = m2 * n / (n - 1);
  m.se_mean = std::sqrt(m2 / n);
  m.se_var = std::sqrt(std::max(m4 - m2 * m2, 0.0) / n);
  return m;
}

double log_choose(double n, double k) { return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1); }

std::vector<double> binomial_pmf(std::int64_t n, double p) {
  std::vector<double> out(static_cast<std::size_t>(n) + 1);
  for (std::int64_t k = 0; k <= n; ++k)
    out[static_cast<std::size_t>(k)] =
        std::exp(log_choose(static_cast<double>(n), static_cast<double>(k)) + k * std::log(p) + (n - k) * std::log1p(-p));
  return out;
}

// The law of the sampler's normal branch: K = round(m + s (Z + g (Z^2 - 1) / 6)) clamped to [0, n], whose
// CDF at k is Phi(z_k) with z_k the root of the Cornish-Fisher polynomial at (k + 1/2 - m) / s.
std::vector<double> cornish_fisher_pmf(std::int64_t n, double q) {
  const double m = static_cast<double>(n) * q, s = std::sqrt(m * (1 - q)), a = (1 - 2 * q) / s / 6;
  std::vector<double> cdf(static_cast<std::size_t>(n) + 1, 1.0);
  for (std::int64_t k = 0; k < n; ++k) {
    const double t = (k + 0.5 - m) / s;
    const double disc = 1 + 4 * a * (a + t);  // a z^2 + z - (a + t) = 0, increasing branch
    const double z = a == 0 ? t : disc < 0 ? -HUGE_VAL : (-1 + std::sqrt(disc)) / (2 * a);
    cdf[static_cast<std::size_t>(k)] = normal_cdf(z);
  }
  std::vector<double> pmf(cdf.size());
  for (std::size_t k = 0; k < cdf.size(); ++k) pmf[k] = cdf[k] - (k ? cdf[k - 1] : 0.0);
  return pmf;
}

double total_variation(const std::vector<double>& a, const std::vector<double>& b) {
  double tv = 0;
  for (std::size_t k = 0; k < a.size(); ++k) tv += std::fabs(a[k] - b[k]);
  return tv / 2;
}

}  // namespace

TEST_CASE("sampled ziggurat normals have mean 0, variance 1 and the normal's tail probabilities") {
  RngStream rng(7, "test.normal", 0);
  const int n = 1'000'000;
  std::vector<double> x(n);
  fill_standard_normal(rng, x);
  for (int i = 0; i < n / 2; ++i) x[static_cast<std::size_t>(i)] = standard_normal(rng);  // both entry points
  const Moments m = moments(x);
  CHECK(std::fabs(m.mean) < 4 * m.se_mean);
  CHECK(std::fabs(m.var - 1.0) < 4 * m.se_var);
  // Beyond 2 (the wedges) and beyond 3.6541 (the ziggurat's tail algorithm): binomial standard errors.
  for (const double t : {1.0, 2.0, 3.0, 3.6541528853610088, 4.0}) {
    const double p = 2 * (1 - normal_cdf(t));
    const double freq = static_cast<double>(std::count_if(x.begin(), x.end(), [&](double v) { return std::fabs(v) > t; })) / n;
    INFO("P(|Z| > " << t << ")");
    CHECK(std::fabs(freq - p) < 4 * std::sqrt(p * (1 - p) / n) + 1e-7);
  }
}

TEST_CASE("sampled binomials have mean n p and variance n p (1 - p) within 4 standard errors, on both branches") {
  struct Case {
    std::int64_t n;
    double p;
  };
  for (const Case c : {Case{10, 0.3}, Case{100, 0.05}, Case{40, 0.9}, Case{1000, 0.5}, Case{65536, 0.01},
                       Case{3, 0.999}, Case{1'000'000'000, 1e-8}, Case{5000, 0.7}}) {
    RngStream rng(11, "test.binomial", static_cast<std::uint64_t>(c.n));
    std::vector<double> x(200'000);
    for (double& v : x) {
      const std::int64_t k = binomial(rng, c.n, c.p);
      REQUIRE(k >= 0);
      REQUIRE(k <= c.n);
      v = static_cast<double>(k);
    }
    const Moments m = moments(x);
    const double mean = c.n * c.p, var = c.n * c.p * (1 - c.p);
    INFO("n " << c.n << " p " << c.p << ": mean " << m.mean << " var " << m.var);
    CHECK(std::fabs(m.mean - mean) < 4 * m.se_mean + 1e-12);
    CHECK(std::fabs(m.var - var) < 4 * m.se_var + 1e-12);
  }
  RngStream rng(1);
  CHECK(binomial(rng, 0, 0.5) == 0);
  CHECK(binomial(rng, 17, 0.0) == 0);
  CHECK(binomial(rng, 17, 1.0) == 17);
}

TEST_CASE("the binomial sampler's normal branch stays within the documented total-variation distance") {
  // At the switch-over mean of 16 and beyond (sampling.hpp documents 2.5e-3, 1.2e-3, 8e-4 and 1e-4).
  struct Case {
    std::int64_t n;
    double q, bound;
  };
  for (const Case c : {Case{32, 0.5, 2.5e-3}, Case{40, 0.4, 2.5e-3}, Case{160, 0.1, 2.5e-3}, Case{16000, 0.001, 2.5e-3},
                       Case{64, 0.5, 1.2e-3}, Case{3200, 0.01, 1.2e-3}, Case{100, 0.5, 8e-4}, Case{1000, 0.05, 8e-4},
                       Case{2000, 0.1, 1.2e-4}}) {
    const double tv = total_variation(binomial_pmf(c.n, c.q), cornish_fisher_pmf(c.n, c.q));
    INFO("n " << c.n << " q " << c.q << ": TV " << tv);
    CHECK(tv < c.bound);
  }
  // And the sampler draws that law: a chi-square test of 400,000 draws at n = 40, q = 0.4 (mean 16).
  RngStream rng(5);
  const int draws = 400'000;
  std::vector<double> hist(41, 0.0);
  for (int i = 0; i < draws; ++i) hist[static_cast<std::size_t>(binomial(rng, 40, 0.4))] += 1;
  const std::vector<double> pmf = cornish_fisher_pmf(40, 0.4);
  double chi2 = 0;
  int cells = 0;
  for (std::size_t k = 0; k < pmf.size(); ++k) {
    if (pmf[k] * draws < 20) continue;
    chi2 += (hist[k] - pmf[k] * draws) * (hist[k] - pmf[k] * draws) / (pmf[k] * draws);
    ++cells;
  }
  CHECK(chi2 < cells + 5 * std::sqrt(2.0 * cells));
}

TEST_CASE("sampled multinomial counts sum to n with the multinomial's means, variances and covariances") {
  const std::vector<double> w = {5.0, 0.0, 1.0, 0.02, 2.5, 7.0, 0.4};  // 7 categories: not a power of two
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  for (const std::int64_t n : {std::int64_t{50}, std::int64_t{100'000}}) {
    for (const bool tree : {false, true}) {
      RngStream rng(3, tree ? "tree" : "sequential", static_cast<std::uint64_t>(n));
      MultinomialTree sampler(w.size());
      const int reps = 100'000;
      std::vector<std::vector<double>> x(w.size(), std::vector<double>(reps));
      std::vector<std::int64_t> counts(w.size());
      for (int r = 0; r < reps; ++r) {
        if (tree) sampler.sample(rng, n, w, counts);
        else multinomial(rng, n, w, counts);
        REQUIRE(std::accumulate(counts.begin(), counts.end(), std::int64_t{0}) == n);
        REQUIRE(counts[1] == 0);
        for (std::size_t i = 0; i < w.size(); ++i) x[i][static_cast<std::size_t>(r)] = static_cast<double>(counts[i]);
      }
      for (std::size_t i = 0; i < w.size(); ++i) {
        if (w[i] == 0) continue;
        const double p = w[i] / total;
        const Moments m = moments(x[i]);
        INFO((tree ? "tree" : "sequential") << " n " << n << " category " << i);
        CHECK(std::fabs(m.mean - n * p) < 4 * m.se_mean);
        CHECK(std::fabs(m.var - n * p * (1 - p)) < 4 * m.se_var);
      }
      // Cov(X0, X5) = -n p0 p5: the sample covariance against its standard error.
      const double p0 = w[0] / total, p5 = w[5] / total;
      std::vector<double> prod(reps);
      const Moments m0 = moments(x[0]), m5 = moments(x[5]);
      for (int r = 0; r < reps; ++r)
        prod[static_cast<std::size_t>(r)] = (x[0][static_cast<std::size_t>(r)] - m0.mean) * (x[5][static_cast<std::size_t>(r)] - m5.mean);
      const Moments mc = moments(prod);
      CHECK(std::fabs(mc.mean + n * p0 * p5) < 4 * mc.se_mean);
    }
  }
}

TEST_CASE("the multinomial tree sampler handles one category, zero-weight categories and rejects all-zero weights") {
  RngStream rng(2);
  MultinomialTree one(1);
  std::vector<std::int64_t> c1(1);
  one.sample(rng, 42, std::vector<double>{3.0}, c1);
  CHECK(c1[0] == 42);
  MultinomialTree five(5);
  std::vector<std::int64_t> c5(5);
  five.sample(rng, 1000, std::vector<double>{0, 0, 1, 0, 0}, c5);
  CHECK(c5 == std::vector<std::int64_t>{0, 0, 1000, 0, 0});
  CHECK_THROWS_AS(five.sample(rng, 10, std::vector<double>(5, 0.0), c5), std::invalid_argument);
  five.sample(rng, 0, std::vector<double>(5, 0.0), c5);  // nothing to place: fine
  CHECK(c5 == std::vector<std::int64_t>(5, 0));
  std::vector<std::int64_t> c3(3);
  CHECK_THROWS_AS(multinomial(rng, 5, std::vector<double>{0, 0, 0}, c3), std::invalid_argument);
}

TEST_CASE("samplers give the same draws for the same seed") {
  const std::vector<double> w = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<std::int64_t> a(9), b(9);
  RngStream r1(99, "x", 2), r2(99, "x", 2);
  MultinomialTree t1(9), t2(9);
  for (int i = 0; i < 100; ++i) {
    t1.sample(r1, 100'000 + i, w, a);
    t2.sample(r2, 100'000 + i, w, b);
    REQUIRE(a == b);
    REQUIRE(standard_gamma(r1, 0.5) == standard_gamma(r2, 0.5));
    REQUIRE(binomial(r1, 77, 0.2) == binomial(r2, 77, 0.2));
  }
}

TEST_CASE("sampled gamma, beta and Dirichlet draws have their analytic means and variances") {
  for (const double shape : {0.3, 1.0, 2.5, 40.0}) {
    RngStream rng(13, "gamma", 0);
    std::vector<double> x(200'000);
    for (double& v : x) v = standard_gamma(rng, shape);
    const Moments m = moments(x);
    INFO("shape " << shape);
    CHECK(std::fabs(m.mean - shape) < 4 * m.se_mean);
    CHECK(std::fabs(m.var - shape) < 4 * m.se_var);
  }
  {
    RngStream rng(17);
    const double a = 1.0, b = 7.0;
    std::vector<double> x(200'000);
    for (double& v : x) v = beta_variate(rng, a, b);
    const Moments m = moments(x);
    CHECK(std::fabs(m.mean - a / (a + b)) < 4 * m.se_mean);
    CHECK(std::fabs(m.var - a * b / ((a + b) * (a + b) * (a + b + 1))) < 4 * m.se_var);
  }
  {
    RngStream rng(19);
    const std::vector<double> alpha = {0.5, 1.0, 3.0};
    std::vector<double> out(3);
    std::vector<std::vector<double>> x(3, std::vector<double>(100'000));
    for (int r = 0; r < 100'000; ++r) {
      dirichlet(rng, alpha, out);
      REQUIRE(out[0] + out[1] + out[2] == doctest::Approx(1.0).epsilon(1e-12));
      for (int i = 0; i < 3; ++i) x[static_cast<std::size_t>(i)][static_cast<std::size_t>(r)] = out[static_cast<std::size_t>(i)];
    }
    for (std::size_t i = 0; i < 3; ++i) {
      const Moments m = moments(x[i]);
      CHECK(std::fabs(m.mean - alpha[i] / 4.5) < 4 * m.se_mean);
    }
  }
}

TEST_CASE("the incomplete beta matches closed forms and the tabulated beta quantile sampler inverts it") {
  CHECK(regularized_incomplete_beta(2, 3, 0.5) == doctest::Approx(0.6875).epsilon(1e-12));
  for (const double x : {0.01, 0.3, 0.77, 0.999}) {
    CHECK(regularized_incomplete_beta(1, 7, x) == doctest::Approx(1 - std::pow(1 - x, 7)).epsilon(1e-12));
    CHECK(regularized_incomplete_beta(2.5, 1, x) == doctest::Approx(std::pow(x, 2.5)).epsilon(1e-12));
  }
  for (const auto& [a, b] : {std::pair{1.0, 7.0}, std::pair{0.3, 2.1}, std::pair{50.0, 350.0}, std::pair{1.0, 1.0}}) {
    const BetaQuantileTable table(a, b);
    for (const double u : {1e-6, 0.01, 0.25, 0.5, 0.9, 0.999999}) {
      const double x = table.from_uniform(u);
      std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
      info_text << "Beta(" << a << ", " << b << ") at u = " << u;
      INFO(info_text.str());
      CHECK(x >= 0.0);
      CHECK(x <= 1.0);
      // Within one table step of the exact quantile: the CDF brackets u there.
      CHECK(regularized_incomplete_beta(a, b, std::max(0.0, x - 1.0 / 4096)) <= u + 1e-12);
      CHECK(regularized_incomplete_beta(a, b, std::min(1.0, x + 1.0 / 4096)) >= u - 1e-12);
    }
  }
}

}  // namespace tailsim
