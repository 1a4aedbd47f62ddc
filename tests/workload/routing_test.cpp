#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "sim/workload/routing_models.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

// Builds a router from JSON text as if it were the "routing" object of `scenario` (relative trace paths
// resolve against the scenario's folder).
std::unique_ptr<Router> router(const std::string& text, RouterContext context,
                               const std::string& scenario = "test.json") {
  static std::vector<std::unique_ptr<Json>> keep;  // readers point into the JSON
  keep.push_back(std::make_unique<Json>(Json::parse(text)));
  return make_router(JsonReader(*keep.back(), scenario, "/routing"), context);
}

std::string router_error(const std::string& text, RouterContext context, const std::string& scenario = "test.json") {
  try {
    router(text, context, scenario);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

double skew(const std::vector<double>& v) {
  const double total = std::accumulate(v.begin(), v.end(), 0.0);
  return *std::max_element(v.begin(), v.end()) / (total / static_cast<double>(v.size()));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<std::size_t> order(v.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < order.size(); ++i) r[order[i]] = static_cast<double>(i);
  return r;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size()), mean = (n - 1) / 2;
  double cov = 0, va = 0, vb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    cov += (ra[i] - mean) * (rb[i] - mean);
    va += (ra[i] - mean) * (ra[i] - mean);
    vb += (rb[i] - mean) * (rb[i] - mean);
  }
  return cov / std::sqrt(va * vb);
}

// E[Spearman] of n pairs from a bivariate normal whose population Spearman is rho_s (Moran 1948).
double expected_spearman(double rho_s, double n) {
  const double r = 2 * std::sin(M_PI * rho_s / 6);
  return 6 / (M_PI * (n + 1)) * (std::asin(r) + (n - 2) * std::asin(r / 2));
}

std::vector<double> as_doubles(const std::vector<std::int64_t>& c) { return {c.begin(), c.end()}; }

// ---- measured routing (models/routing/expert_counts.csv) ------------------------------------------------

struct MeasuredCell {
  std::string domain;
  int layer = 0;
  std::vector<double> counts;
};

std::vector<MeasuredCell> read_measured(const std::string& model, const std::string& selection) {
  std::ifstream in(std::string(TAILSIM_SOURCE_DIR) + "/models/routing/expert_counts.csv");
  REQUIRE(in);
  std::string line;
  std::getline(in, line);
  std::map<std::pair<std::string, int>, MeasuredCell> cells;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string f[6];
    for (std::string& x : f) std::getline(ss, x, ',');
    if (f[0] != model || f[2] != selection) continue;
    MeasuredCell& c = cells[{f[1], std::stoi(f[3])}];
    c.domain = f[1];
    c.layer = std::stoi(f[3]);
    const auto e = static_cast<std::size_t>(std::stoi(f[4]));
    if (c.counts.size() <= e) c.counts.resize(e + 1);
    c.counts[e] = std::stod(f[5]);
  }
  std::vector<MeasuredCell> out;
  for (auto& [key, c] : cells) out.push_back(c);
  return out;
}

// Expected max/mean of a batch of n tokens drawn independently from measured routing: each token includes
// expert e with probability pi_e = k count_e / total, so expert e's count is Binomial(n, pi_e); the weak
// dependence between experts (O(1/E)) is neglected: P(max <= m) = prod_e P(X_e <= m).
double iid_batch_skew(const std::vector<double>& counts, int n, int k) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  const std::size_t experts = counts.size();
  std::vector<double> prod(static_cast<std::size_t>(n) + 1, 1.0);
  for (const double c : counts) {
    const double pi = std::min(1.0, k * c / total);
    double cdf = 0;
    for (int j = 0; j <= n; ++j) {
      double pmf;
      if (pi <= 0) pmf = j == 0;
      else if (pi >= 1) pmf = j == n;
      else
        pmf = std::exp(std::lgamma(n + 1.0) - std::lgamma(j + 1.0) - std::lgamma(n - j + 1.0) + j * std::log(pi) +
                       (n - j) * std::log1p(-pi));
      cdf = std::min(1.0, cdf + pmf);
      prod[static_cast<std::size_t>(j)] *= cdf;
    }
  }
  double expected_max = 0;
  for (int j = 0; j < n; ++j) expected_max += 1 - prod[static_cast<std::size_t>(j)];
  return expected_max / (static_cast<double>(n) * k / static_cast<double>(experts));
}

struct Calibration {
  // measured
  double pooled = 0, pooled_min = 0, pooled_max = 0;  // long run, pooled over domains: mean (min, max) of layers
  double domain = 0, domain_min = 0, domain_max = 0;  // one domain: median (min, max) over cells
  std::vector<double> batch_domain, batch_pooled;     // iid batches from one domain / from the pooled routing
  // generated
  double gen_aggregate = 0, gen_workload = 0;
  std::vector<double> gen_batch;
};

const std::vector<int> kBatchTokens = {512, 2048, 4096};

Calibration calibrate(const std::string& model, const std::string& selection, const std::string& preset, int layers,
                      int experts, int top_k) {
  Calibration cal;
  const std::vector<MeasuredCell> cells = read_measured(model, selection);
  REQUIRE(!cells.empty());
  std::vector<double> domain_skews, pooled_skews;
  cal.batch_domain.assign(kBatchTokens.size(), 0.0);
  cal.batch_pooled.assign(kBatchTokens.size(), 0.0);
  for (const int layer : {0, 7, 15}) {
    std::vector<double> pooled(static_cast<std::size_t>(experts), 0.0);
    for (const MeasuredCell& c : cells) {
      if (c.layer != layer) continue;
      domain_skews.push_back(skew(c.counts));
      for (std::size_t e = 0; e < pooled.size(); ++e) pooled[e] += c.counts[e];
      for (std::size_t b = 0; b < kBatchTokens.size(); ++b) cal.batch_domain[b] += iid_batch_skew(c.counts, kBatchTokens[b], top_k);
    }
    pooled_skews.push_back(skew(pooled));
    for (std::size_t b = 0; b < kBatchTokens.size(); ++b) cal.batch_pooled[b] += iid_batch_skew(pooled, kBatchTokens[b], top_k) / 3;
  }
  for (double& v : cal.batch_domain) v /= static_cast<double>(domain_skews.size());
  cal.pooled = std::accumulate(pooled_skews.begin(), pooled_skews.end(), 0.0) / 3;
  cal.pooled_min = *std::min_element(pooled_skews.begin(), pooled_skews.end());
  cal.pooled_max = *std::max_element(pooled_skews.begin(), pooled_skews.end());
  cal.domain = median(domain_skews);
  cal.domain_min = *std::min_element(domain_skews.begin(), domain_skews.end());
  cal.domain_max = *std::max_element(domain_skews.begin(), domain_skews.end());

  // The generator on the model's shape, 8 seeds. Aggregate: 102 steps of 2048 tokens (the measured
  // 208,896 tokens per layer). One workload: a batch whose content is shared by all its tokens (one group),
  // large enough that sampling noise vanishes. Per batch: 50 steps per layer at each batch size.
  const GeneratedRoutingParams params = *routing_preset(preset);
  std::vector<double> aggregate, workload;
  cal.gen_batch.assign(kBatchTokens.size(), 0.0);
  std::vector<double> batches(kBatchTokens.size(), 0.0);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(experts));
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    const RouterContext ctx{layers, experts, top_k, seed, 0};
    GeneratedRouter r(params, ctx);
    std::vector<std::vector<double>> sum(static_cast<std::size_t>(layers), std::vector<double>(static_cast<std::size_t>(experts)));
    for (int step = 0; step < 102; ++step)
      for (int l = 0; l < layers; ++l) {
        r.route(step, l, 2048, counts);
        for (int e = 0; e < experts; ++e) sum[static_cast<std::size_t>(l)][static_cast<std::size_t>(e)] += static_cast<double>(counts[static_cast<std::size_t>(e)]);
      }
    for (const auto& s : sum) aggregate.push_back(skew(s));
    GeneratedRoutingParams one_group = params;
    one_group.group_tokens = 1'000'000'000;
    GeneratedRouter w(one_group, ctx);
    for (int step = 0; step < 4; ++step)
      for (int l = 0; l < layers; ++l) {
        w.route(step, l, 20'000'000, counts);
        workload.push_back(skew(as_doubles(counts)));
      }
    for (std::size_t b = 0; b < kBatchTokens.size(); ++b) {
      GeneratedRouter g(params, RouterContext{layers, experts, top_k, seed, 1 + b});
      for (int step = 0; step < 50; ++step)
        for (int l = 0; l < layers; ++l) {
          g.route(step, l, kBatchTokens[b], counts);
          cal.gen_batch[b] += skew(as_doubles(counts));
          batches[b] += 1;
        }
    }
  }
  for (std::size_t b = 0; b < kBatchTokens.size(); ++b) cal.gen_batch[b] /= batches[b];
  cal.gen_aggregate = median(aggregate);
  cal.gen_workload = median(workload);
  return cal;
}

std::string fixed(double v) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(2);
  os << v;
  return os.str();
}

}  // namespace

// ---- invariants and determinism --------------------------------------------------------------------------

TEST_CASE("generated routing sums to tokens x top_k and never gives an expert more than every token") {
  struct Shape {
    int layers, experts, top_k;
  };
  for (const std::string cfg : {R"({"type":"generated","preset":"olmoe"})", R"({"type":"generated","preset":"mixtral"})",
                                R"({"type":"generated","preset":"uniform"})",
                                R"({"type":"generated","skew":{"zipf":3},"batch_noise":2,"phases":[{"steps":3,"volatility":0.5}]})",
                                R"({"type":"generated","skew":{"dirichlet":0.05}})"}) {
    for (const Shape s : {Shape{3, 16, 8}, Shape{2, 8, 2}, Shape{2, 8, 8}, Shape{2, 256, 8}, Shape{1, 1, 1}, Shape{2, 5, 3}}) {
      auto r = router(cfg, RouterContext{s.layers, s.experts, s.top_k, 42, 0});
      std::vector<std::int64_t> counts(static_cast<std::size_t>(s.experts));
      for (int step = 0; step < 30; ++step)
        for (int l = 0; l < s.layers; ++l) {
          const std::int64_t tokens = std::vector<std::int64_t>{0, 1, 2, 7, 100, 8192}[static_cast<std::size_t>(step % 6)];
          r->route(step, l, tokens, counts);
          INFO(cfg << " experts " << s.experts << " top_k " << s.top_k << " tokens " << tokens);
          REQUIRE(std::accumulate(counts.begin(), counts.end(), std::int64_t{0}) == tokens * s.top_k);
          for (const std::int64_t c : counts) {
            REQUIRE(c >= 0);
            REQUIRE(c <= tokens);
          }
        }
    }
  }
}

TEST_CASE("generated routing repeats for the same seed, differs between replications and keeps the model across points") {
  const std::string cfg = R"({"type":"generated","preset":"olmoe","phases":[{"steps":5,"volatility":0.1}]})";
  auto a = router(cfg, RouterContext{4, 64, 8, 7, 1});
  auto b = router(cfg, RouterContext{4, 64, 8, 7, 1});
  auto c = router(cfg, RouterContext{4, 64, 8, 7, 2});
  std::vector<std::int64_t> ca(64), cb(64), cc(64);
  bool differs = false;
  for (int step = 0; step < 20; ++step)
    for (int l = 0; l < 4; ++l) {
      a->route(step, l, 4096, ca);
      b->route(step, l, 4096, cb);
      c->route(step, l, 4096, cc);
      REQUIRE(ca == cb);
      differs = differs || ca != cc;
    }
  CHECK(differs);
  // The long-run popularity is the model: the same at every sweep point and replication.
  const GeneratedRouter p0(*routing_preset("olmoe"), RouterContext{4, 64, 8, 7, 0});
  const GeneratedRouter p9(*routing_preset("olmoe"), RouterContext{4, 64, 8, 7, 5});
  for (int l = 0; l < 4; ++l)
    CHECK(std::equal(p0.base_shares(l).begin(), p0.base_shares(l).end(), p9.base_shares(l).begin()));
}

TEST_CASE("routing counts do not depend on whether gate scores are drawn") {
  const std::string cfg = R"({"type":"generated","preset":"mixtral"})";
  auto a = router(cfg, RouterContext{2, 8, 2, 5, 0});
  auto b = router(cfg, RouterContext{2, 8, 2, 5, 0});
  std::vector<std::int64_t> ca(8), cb(8);
  std::vector<double> scores(1000);
  for (int step = 0; step < 10; ++step)
    for (int l = 0; l < 2; ++l) {
      a->route(step, l, 1000, ca);
      b->route(step, l, 1000, cb);
      REQUIRE(ca == cb);
      b->gate_scores(3, std::span<double>(scores.data(), static_cast<std::size_t>(cb[3])));
    }
}

TEST_CASE("routing counts are unbiased for the long-run popularity when nothing varies") {
  GeneratedRoutingParams p;
  p.skew_family = SkewFamily::kZipf;
  p.skew = 1.0;
  p.batch_noise = 0;
  p.phases = {{1, 0.0}};
  GeneratedRouter r(p, RouterContext{1, 16, 2, 3, 0});
  const int steps = 20'000;
  const std::int64_t tokens = 1000;
  std::vector<double> sum(16), sum2(16);
  std::vector<std::int64_t> counts(16);
  for (int step = 0; step < steps; ++step) {
    r.route(step, 0, tokens, counts);
    for (std::size_t e = 0; e < 16; ++e) {
      sum[e] += static_cast<double>(counts[e]);
      sum2[e] += static_cast<double>(counts[e] * counts[e]);
    }
  }
  const auto shares = r.base_shares(0);
  for (std::size_t e = 0; e < 16; ++e) {
    const double mean = sum[e] / steps, var = sum2[e] / steps - mean * mean;
    const double expect = shares[e] * tokens * 2;
    INFO("expert " << e);
    CHECK(std::fabs(mean - expect) < 4 * std::sqrt(var / steps));
    // The multinomial on tokens x top_k slots: variance n p (1 - p) with n = 2000.
    CHECK(var == doctest::Approx(2000 * shares[e] * (1 - shares[e])).epsilon(0.05));
  }
  // Zipf exponent 1 over 16 experts: shares 1 / (r H_16).
  double h = 0;
  for (int i = 1; i <= 16; ++i) h += 1.0 / i;
  CHECK(*std::max_element(shares.begin(), shares.end()) == doctest::Approx(1 / h).epsilon(1e-9));
}

TEST_CASE("routing popularity is capped at 1 / top_k, the most a token's distinct picks allow") {
  GeneratedRoutingParams p;
  p.skew = 3.0;  // Zipf 3 over 16 experts: the top expert would take 83 % of the picks
  GeneratedRouter r(p, RouterContext{1, 16, 8, 3, 0});
  const auto shares = r.base_shares(0);
  CHECK(std::accumulate(shares.begin(), shares.end(), 0.0) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(*std::max_element(shares.begin(), shares.end()) == doctest::Approx(1.0 / 8).epsilon(1e-12));
  CHECK(*std::min_element(shares.begin(), shares.end()) < 0.01);
}

// ---- calibration -----------------------------------------------------------------------------------------

TEST_CASE("routing presets land within tolerance of the measured OLMoE and Mixtral skew") {
  // Skew is max/mean of the per-expert token count. Tolerances are on the excess skew - 1 (a uniform router
  // has skew 1 up to sampling noise, so a relative tolerance on the skew itself would say little for
  // Mixtral): within 20 %, about 4 standard errors of the generator's median over 8 seeds.
  struct Model {
    std::string name, selection, preset;
    int layers, experts, top_k;
  };
  std::string table =
      "\n| preset | quantity | measured | preset |\n|---|---|---|---|\n";
  for (const Model& m : {Model{"allenai/OLMoE-1B-7B-0924", "top8", "olmoe", 16, 64, 8},
                         Model{"mistralai/Mixtral-8x7B-v0.1", "top2", "mixtral", 32, 8, 2}}) {
    const Calibration c = calibrate(m.name, m.selection, m.preset, m.layers, m.experts, m.top_k);
    table += "| " + m.preset + " | long run, pooled over domains | " + fixed(c.pooled) + " (" + fixed(c.pooled_min) + "-" +
             fixed(c.pooled_max) + ") | " + fixed(c.gen_aggregate) + " |\n";
    table += "| " + m.preset + " | one domain (workload) | " + fixed(c.domain) + " (" + fixed(c.domain_min) + "-" +
             fixed(c.domain_max) + ") | " + fixed(c.gen_workload) + " |\n";
    for (std::size_t b = 0; b < kBatchTokens.size(); ++b)
      table += "| " + m.preset + " | batch of " + std::to_string(kBatchTokens[b]) + " tokens | " + fixed(c.batch_domain[b]) +
               " (pooled " + fixed(c.batch_pooled[b]) + ") | " + fixed(c.gen_batch[b]) + " |\n";
    const auto close = [](double generated, double measured) {
      return std::fabs((generated - 1) - (measured - 1)) <= 0.2 * (measured - 1);
    };
    INFO(m.preset << table);
    CHECK(close(c.gen_aggregate, c.pooled));
    CHECK(close(c.gen_workload, c.domain));
    CHECK(close(c.gen_batch[0], c.batch_domain[0]));  // 512 tokens: one document
    CHECK(close(c.gen_batch[1], c.batch_domain[1]));  // 2048 tokens: one document
    // 4096 tokens hold two documents: between a batch of one domain and one of the pooled routing.
    CHECK(c.gen_batch[2] <= c.batch_domain[2] * 1.02);
    CHECK(c.gen_batch[2] >= c.batch_pooled[2] * 0.98);
    // A batch is more skewed than the long run, and smaller batches more so.
    CHECK(c.gen_batch[0] > c.gen_aggregate);
    CHECK(c.gen_batch[1] > c.gen_batch[2]);
  }
  MESSAGE("routing calibration (max/mean per layer):" << table);
}

TEST_CASE("routing presets' layer correlation lies within the cross-layer estimates from OLMoE's data") {
  std::ifstream in(std::string(TAILSIM_SOURCE_DIR) + "/models/routing/crosslayer_estimates.csv");
  REQUIRE(in);
  std::string line;
  std::getline(in, line);
  std::map<std::string, std::vector<double>> implied;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string f[7];
    for (std::string& x : f) std::getline(ss, x, ',');
    implied[f[0]].push_back(std::stod(f[6]));
  }
  for (const auto& [model, preset] : {std::pair{std::string("allenai/OLMoE-1B-7B-0924"), "olmoe"},
                                      std::pair{std::string("mistralai/Mixtral-8x7B-v0.1"), "mixtral"}}) {
    std::vector<double> v = implied[model];
    REQUIRE(v.size() >= 8);
    std::sort(v.begin(), v.end());
    const double q1 = v[v.size() / 4], q3 = v[v.size() * 3 / 4];
    std::ostringstream info_text;  // (clang 14 cannot capture structured bindings in INFO's lambda)
    info_text << preset << ": interquartile range " << q1 << " - " << q3 << ", median " << median(v);
    INFO(info_text.str());
    CHECK(routing_preset(preset)->layer_correlation >= q1);
    CHECK(routing_preset(preset)->layer_correlation <= q3);
  }
}

// ---- layer correlation and drift -------------------------------------------------------------------------

TEST_CASE("routing achieves the requested Spearman correlation between consecutive layers") {
  for (const double rho : {0.0, 0.5, 0.9}) {
    for (const SkewFamily family : {SkewFamily::kZipf, SkewFamily::kDirichlet}) {
      GeneratedRoutingParams p;
      p.skew_family = family;
      p.skew = 1.0;
      p.layer_correlation = rho;
      const int layers = 400;
      GeneratedRouter r(p, RouterContext{layers, 64, 8, 11, 0});
      double sum = 0;
      for (int l = 1; l < layers; ++l) {
        const auto a = r.base_shares(l - 1), b = r.base_shares(l);
        sum += spearman({a.begin(), a.end()}, {b.begin(), b.end()});
      }
      // One pair's Spearman has a standard deviation below 0.13 at n = 64; 399 overlapping pairs: < 0.01.
      INFO("requested " << rho);
      CHECK(std::fabs(sum / (layers - 1) - expected_spearman(rho, 64)) < 0.012);
    }
  }
  // The batch's content noise is correlated the same way: with a uniform base, per-step counts of
  // consecutive layers (with negligible sampling noise) have the requested rank correlation.
  GeneratedRoutingParams p;
  p.skew = 0.0;
  p.layer_correlation = 0.9;
  p.batch_noise = 1.0;
  p.group_tokens = 1'000'000'000;
  p.phases = {{1, 0.0}};
  GeneratedRouter r(p, RouterContext{2, 64, 8, 5, 0});
  std::vector<std::int64_t> c0(64), c1(64);
  double sum = 0;
  const int steps = 400;
  for (int step = 0; step < steps; ++step) {
    r.route(step, 0, 10'000'000, c0);
    r.route(step, 1, 10'000'000, c1);
    sum += spearman(as_doubles(c0), as_doubles(c1));
  }
  CHECK(std::fabs(sum / steps - expected_spearman(0.9, 64)) < 0.012);
}

TEST_CASE("routing drift: a stable phase moves popularity less than a fluctuating one, at the requested rate") {
  GeneratedRoutingParams p;
  p.skew = 0.0;  // uniform base: every change in the counts is drift (and small sampling noise)
  p.batch_noise = 0;
  p.phases = {{200, 0.05}, {1, 0.005}};
  GeneratedRouter r(p, RouterContext{1, 64, 8, 9, 0});
  std::vector<std::vector<double>> log_counts;
  std::vector<std::int64_t> counts(64);
  for (int step = 0; step < 400; ++step) {
    r.route(step, 0, 10'000'000, counts);
    std::vector<double> v(64);
    for (std::size_t e = 0; e < 64; ++e) v[e] = std::log(static_cast<double>(counts[e]));
    log_counts.push_back(v);
  }
  // Standard deviation of the change over 10 steps, across experts and start steps; the change of the
  // log-share is the walk's increment less its mean over experts.
  const auto change_sd = [&](int from, int to) {
    double s2 = 0;
    int n = 0;
    for (int t = from; t + 10 <= to; t += 10) {
      std::vector<double> d(64);
      for (std::size_t e = 0; e < 64; ++e) d[e] = log_counts[static_cast<std::size_t>(t + 10)][e] - log_counts[static_cast<std::size_t>(t)][e];
      const double mean = std::accumulate(d.begin(), d.end(), 0.0) / 64;
      for (const double x : d) s2 += (x - mean) * (x - mean);
      n += 63;
    }
    return std::sqrt(s2 / n);
  };
  const double fluctuating = change_sd(0, 200), stable = change_sd(200, 399);
  INFO("drift over 10 steps: fluctuating " << fluctuating << ", stable " << stable);
  CHECK(fluctuating == doctest::Approx(0.05 * std::sqrt(10.0)).epsilon(0.1));
  CHECK(stable < fluctuating / 4);
  CHECK(r.volatility_at(199) == 0.05);
  CHECK(r.volatility_at(200) == 0.005);
  CHECK(r.volatility_at(1'000'000) == 0.005);
}

TEST_CASE("routing drift with reversion settles at the stationary spread v / sqrt(1 - (1 - r)^2)") {
  GeneratedRoutingParams p;
  p.skew = 0.0;
  p.batch_noise = 0;
  p.layer_correlation = 0;
  p.phases = {{1, 0.05}};
  p.reversion = 0.05;
  const int layers = 8;
  GeneratedRouter r(p, RouterContext{layers, 64, 8, 21, 0});
  std::vector<std::int64_t> counts(64);
  double s2 = 0;
  int n = 0;
  for (int step = 0; step < 1000; ++step)
    for (int l = 0; l < layers; ++l) {
      r.route(step, l, 10'000'000, counts);
      if (step < 200 || step % 50 != 0) continue;  // settled; samples 50 steps apart are nearly independent
      std::vector<double> v(64);
      for (std::size_t e = 0; e < 64; ++e) v[e] = std::log(static_cast<double>(counts[e]));
      const double mean = std::accumulate(v.begin(), v.end(), 0.0) / 64;
      for (const double x : v) s2 += (x - mean) * (x - mean);
      n += 63;
    }
  CHECK(std::sqrt(s2 / n) == doctest::Approx(0.05 / std::sqrt(1 - 0.95 * 0.95)).epsilon(0.1));
  // Steps may jump: the increment then has the summed variance (a jump of 100 steps is about stationary).
  GeneratedRouter j(p, RouterContext{1, 64, 8, 22, 0});
  j.route(0, 0, 1000, counts);
  j.route(100, 0, 10'000'000, counts);
  std::vector<double> v(64);
  for (std::size_t e = 0; e < 64; ++e) v[e] = std::log(static_cast<double>(counts[e]));
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / 64;
  double jump2 = 0;
  for (const double x : v) jump2 += (x - mean) * (x - mean);
  CHECK(std::sqrt(jump2 / 63) == doctest::Approx(0.16).epsilon(0.3));
  CHECK_THROWS_AS(j.route(50, 0, 10, counts), std::logic_error);
}

// ---- gate scores -----------------------------------------------------------------------------------------

TEST_CASE("routing gate scores follow Beta(beta, (k - 1) beta) with mean 1 / k and are drawn on demand") {
  auto r = router(R"({"type":"generated","preset":"olmoe","gate_concentration":2})", RouterContext{1, 64, 8, 1, 0});
  std::vector<std::int64_t> counts(64);
  std::vector<double> all;
  for (int step = 0; step < 200; ++step) {
    r->route(step, 0, 4096, counts);
    const int e = step % 64;
    std::vector<double> s(static_cast<std::size_t>(counts[static_cast<std::size_t>(e)]));
    r->gate_scores(e, s);
    all.insert(all.end(), s.begin(), s.end());
  }
  REQUIRE(all.size() > 10'000);
  double mean = 0, m2 = 0;
  for (const double s : all) {
    REQUIRE(s > 0.0);
    REQUIRE(s < 1.0);
    mean += s;
  }
  mean /= static_cast<double>(all.size());
  for (const double s : all) m2 += (s - mean) * (s - mean);
  const double var = m2 / static_cast<double>(all.size());
  const double a = 2, b = 14, exact_var = a * b / ((a + b) * (a + b) * (a + b + 1));
  CHECK(std::fabs(mean - 0.125) < 4 * std::sqrt(exact_var / static_cast<double>(all.size())));
  CHECK(var == doctest::Approx(exact_var).epsilon(0.05));
  std::vector<double> too_many(static_cast<std::size_t>(counts[0]) + 1);
  CHECK_THROWS_AS(r->gate_scores(0, too_many), std::invalid_argument);
}

// ---- JSON --------------------------------------------------------------------------------------------------

TEST_CASE("routing JSON errors name the path, the expectation and the valid choices") {
  const RouterContext ctx{2, 8, 2, 1, 0};
  CHECK(router_error(R"({"type":"generated"})", ctx).find("needs 'preset' (one of deepseek-v3, deepseek-v3-decode, mixtral, olmoe, uniform), 'skew'") !=
        std::string::npos);
  CHECK(router_error(R"({"type":"generated","preset":"olmo"})", ctx).find("/routing/preset: unknown value 'olmo' (did you mean 'olmoe'?)") !=
        std::string::npos);
  CHECK(router_error(R"({"type":"generated","skew":{"zipf":1,"dirichlet":2}})", ctx).find("/routing/skew: expected exactly one of") !=
        std::string::npos);
  CHECK(router_error(R"({"type":"generated","skew":{"dirichlet":0}})", ctx).find("/routing/skew/dirichlet: expected a number > 0") !=
        std::string::npos);
  CHECK(router_error(R"({"type":"generated","preset":"olmoe","layer_correlation":1.5})", ctx)
            .find("/routing/layer_correlation: expected a number >= 0 and <= 1, got 1.5") != std::string::npos);
  CHECK(router_error(R"({"type":"generated","preset":"olmoe","layer_corelation":0.5})", ctx).find("unknown key 'layer_corelation' (did you mean 'layer_correlation'?") !=
        std::string::npos);
  CHECK(router_error(R"({"type":"generated","preset":"olmoe","phases":[]})", ctx).find("/routing/phases: expected a non-empty array") !=
        std::string::npos);
  CHECK(router_error(R"({"type":"generated","preset":"olmoe","phases":[{"steps":0,"volatility":0.1}]})", ctx)
            .find("/routing/phases/0/steps: expected an integer >= 1") != std::string::npos);
  CHECK(router_error(R"({"type":"generated","preset":"olmoe","phases":[{"steps":10,"vol":0.1}]})", ctx)
            .find("/routing/phases/0") != std::string::npos);
  CHECK(router_error(R"({"type":"generated","preset":"olmoe"})", RouterContext{2, 4, 8, 1, 0}).find("experts >= top_k") !=
        std::string::npos);
  CHECK(router_error(R"({"type":"replay"})", ctx).find("/routing/type: unknown value 'replay'") != std::string::npos);
  // A preset's values can be overridden key by key.
  auto r = router(R"({"type":"generated","preset":"olmoe","skew":{"zipf":0.5},"batch_noise":0})", RouterContext{2, 64, 8, 1, 0});
  const auto* g = dynamic_cast<const GeneratedRouter*>(r.get());
  REQUIRE(g != nullptr);
  CHECK(g->params().skew_family == SkewFamily::kZipf);
  CHECK(g->params().skew == 0.5);
  CHECK(g->params().batch_noise == 0.0);
  CHECK(g->params().layer_correlation == 0.9);
}

// ---- trace replay ----------------------------------------------------------------------------------------

TEST_CASE("trace routing replays the file exactly, cycles its steps and rescales other token counts") {
  const std::string path = test::write_temp("routing-trace.csv",
                                            "# layer-by-layer expert counts\n"
                                            "step,layer,e0,e1,e2\n"
                                            "0,0,5,3,2\n"
                                            "0,1,4,4,2\n"
                                            "1,0,1,5,4\n"
                                            "1,1,9,1,0\n");
  const std::string scenario = (std::filesystem::path(path).parent_path() / "scenario.json").string();
  auto r = router(R"({"type":"trace","file":"routing-trace.csv"})", RouterContext{2, 3, 2, 1, 0}, scenario);
  std::vector<std::int64_t> c(3);
  r->route(0, 0, 5, c);
  CHECK(c == std::vector<std::int64_t>{5, 3, 2});
  r->route(0, 1, 5, c);
  CHECK(c == std::vector<std::int64_t>{4, 4, 2});
  r->route(1, 0, 5, c);
  CHECK(c == std::vector<std::int64_t>{1, 5, 4});
  r->route(2, 0, 5, c);  // steps cycle: step 2 replays step 0
  CHECK(c == std::vector<std::int64_t>{5, 3, 2});
  r->route(3, 1, 5, c);  // 9 > 5 tokens: capped, the excess spread over the room (4 and 5) as 2 and 2
  CHECK(c == std::vector<std::int64_t>{5, 3, 2});
  r->route(4, 0, 10, c);  // twice the tokens: exact doubling
  CHECK(c == std::vector<std::int64_t>{10, 6, 4});
  r->route(4, 0, 3, c);  // 6 picks: cumulative rounding of 3, 1.8, 1.2
  CHECK(c == std::vector<std::int64_t>{3, 2, 1});
  r->route(4, 0, 0, c);
  CHECK(c == std::vector<std::int64_t>{0, 0, 0});
  std::vector<double> scores(3);
  r->gate_scores(1, std::span<double>(scores.data(), 0));
  r->route(4, 0, 5, c);
  r->gate_scores(1, scores);
  for (const double s : scores) CHECK((s > 0 && s < 1));
  // An absolute path works too.
  auto abs = router(R"({"type":"trace","file":")" + path + R"("})", RouterContext{2, 3, 2, 1, 0});
  abs->route(0, 1, 5, c);
  CHECK(c == std::vector<std::int64_t>{4, 4, 2});
}

TEST_CASE("trace routing rejects a file whose shape or values do not fit the model, naming file and line") {
  const auto error = [](const std::string& name, const std::string& content, RouterContext ctx) {
    const std::string path = test::write_temp(name, content);
    const std::string scenario = (std::filesystem::path(path).parent_path() / "scenario.json").string();
    return router_error(R"({"type":"trace","file":")" + name + R"("})", ctx, scenario);
  };
  const RouterContext three_layers{3, 3, 2, 1, 0}, one_layer{1, 3, 2, 1, 0};
  const std::string good_header = "step,layer,e0,e1,e2\n";
  // Every message starts with the scenario and the JSON path of 'file', then the trace and its line.
  std::string e = error("t1.csv", "step,layer,e0,e1\n0,0,1,1\n", three_layers);
  CHECK(e.find("scenario.json: /routing/file: ") != std::string::npos);
  CHECK(e.find("t1.csv line 1: the header has 2 expert columns, the model has 3 experts") != std::string::npos);
  e = error("t2.csv", good_header + "0,0,1,1,0\n0,1,1,1,0\n1,0,1,1,0\n", three_layers);
  CHECK(e.find("t2.csv line 4: step 0 has 2 layers, the model has 3 MoE layers") != std::string::npos);
  e = error("t3.csv", good_header + "0,0,1,1,0\n0,1,1,1,0\n", one_layer);
  CHECK(e.find("t3.csv line 3: layer 1 is out of range: the model has 1 MoE layers (0..0)") != std::string::npos);
  e = error("t4.csv", good_header + "0,0,1,abc,0\n", one_layer);
  CHECK(e.find("t4.csv line 2: e1: expected a non-negative integer count, got 'abc'") != std::string::npos);
  e = error("t5.csv", good_header + "0,0,1,1,-3\n", one_layer);
  CHECK(e.find("t5.csv line 2: e2: expected a non-negative integer count, got '-3'") != std::string::npos);
  e = error("t6.csv", good_header + "0,0,1.5,1,0\n", one_layer);
  CHECK(e.find("t6.csv line 2: e0: expected a non-negative integer count, got '1.5'") != std::string::npos);
  e = error("t7.csv", good_header + "0,0,1,1\n", one_layer);
  CHECK(e.find("t7.csv line 2: expected 5 fields (step, layer and 3 expert columns e0..e2), got 4") != std::string::npos);
  e = error("t8.csv", good_header + "0,0,1,1,0\n0,1,1,1,0\n", three_layers);
  CHECK(e.find("t8.csv line 3: the file ends inside step 0, after 2 of its 3 layers") != std::string::npos);
  e = error("t9.csv", good_header + "0,0,0,0,0\n", one_layer);
  CHECK(e.find("t9.csv line 2: the counts of step 0 layer 0 sum to 0") != std::string::npos);
  e = error("t10.csv", good_header + "0,0,1,1,0\n2,0,1,1,0\n", one_layer);
  CHECK(e.find("t10.csv line 3: expected step 1 layer 0, got step 2 layer 0") != std::string::npos);
  e = error("t11.csv", "layer,step,e0,e1,e2\n", one_layer);
  CHECK(e.find("t11.csv line 1: expected the header 'step,layer,e0,...,e2'") != std::string::npos);
  e = error("t12.csv", "step,layer,e0,e2,e1\n", one_layer);
  CHECK(e.find("t12.csv line 1: column 4 is 'e2', expected 'e1'") != std::string::npos);
  e = error("t13.csv", "", one_layer);
  CHECK(e.find("the trace is empty") != std::string::npos);
  e = error("t14.csv", good_header, one_layer);
  CHECK(e.find("the trace has a header but no rows") != std::string::npos);
  CHECK(router_error(R"({"type":"trace","file":"no-such-trace.csv"})", one_layer).find("cannot open trace file") !=
        std::string::npos);
  CHECK(router_error(R"({"type":"trace"})", one_layer).find("/routing: missing required key 'file'") != std::string::npos);
}

// ---- the benchmark's shape ---------------------------------------------------------------------------------
// (Its cost per route() call is measured by tools/bench_routing, not here: timing has no place in the tests.)

TEST_CASE("routing at a DeepSeek-V3-like shape: 256 experts, top-8, 8192 tokens, 61 layers, with drift") {
  auto r = router(R"({"type":"generated","preset":"olmoe","phases":[{"steps":100,"volatility":0.05},{"steps":1,"volatility":0.001}]})",
                  RouterContext{61, 256, 8, 3, 0});
  std::vector<std::int64_t> counts(256);
  std::int64_t checksum = 0;
  for (int step = 0; step < 20; ++step)
    for (int l = 0; l < 61; ++l) {
      r->route(step, l, 8192, counts);
      checksum += counts[static_cast<std::size_t>(l)];
    }
  CHECK(checksum > 0);
}

}  // namespace tailsim
