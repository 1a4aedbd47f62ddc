// Token-level routing (Router::route_tokens, the tokens engine): every token picks top_k distinct experts
// with the inclusion probabilities the counts engine's multinomial has as means; gate scores are Dirichlet;
// a trace's counts are dealt to tokens exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "sim/workload/routing_models.hpp"

namespace tailsim {

namespace {

// Checks the structure of one layer-step's tokens: top_k distinct experts each, counts their tally,
// preference weights count + 1, and a token's scores summing to 1.
void check_tokens(const MoeTokens& t, std::span<const std::int64_t> counts, std::int64_t tokens, int top_k) {
  REQUIRE(t.tokens == tokens);
  REQUIRE(t.experts.size() == static_cast<std::size_t>(tokens * top_k));
  std::vector<std::int64_t> tally(counts.size(), 0);
  bool distinct = true, sums = true;
  for (std::int64_t i = 0; i < tokens; ++i) {
    const auto first = t.experts.begin() + i * top_k;
    std::vector<std::int32_t> mine(first, first + top_k);
    std::sort(mine.begin(), mine.end());
    distinct = distinct && std::adjacent_find(mine.begin(), mine.end()) == mine.end();
    for (const std::int32_t e : mine) ++tally[static_cast<std::size_t>(e)];
    const double sum = std::accumulate(t.scores.begin() + i * top_k, t.scores.begin() + (i + 1) * top_k, 0.0);
    sums = sums && (top_k == 1 || std::fabs(sum - 1.0) < 1e-12);
  }
  CHECK(distinct);
  CHECK(sums);
  CHECK(std::equal(tally.begin(), tally.end(), counts.begin()));
  for (std::size_t e = 0; e < counts.size(); ++e) CHECK(t.popularity[e] == static_cast<double>(counts[e]) + 1.0);
}

}  // namespace

TEST_CASE("route_tokens: each token picks top_k distinct experts, expert e with probability top_k x its share") {
  // A fixed popularity (Zipf 1 over 4 experts, no drift, no content noise): shares 0.48, 0.24, 0.16, 0.12,
  // so with top-2 a token picks the first expert with probability 0.96. Its count over T tokens is
  // Binomial(T, pi): mean T pi, variance T pi (1 - pi) (0.04 T for the first expert, where the counts
  // engine's multinomial on 2T picks has 0.50 T: a token cannot pick an expert twice).
  GeneratedRoutingParams p;
  p.skew = 1.0;
  p.layer_correlation = 0.0;
  p.phases = {{1, 0.0}};
  const RouterContext rc{1, 4, 2, 11, 0};
  GeneratedRouter router(p, rc);
  const std::span<const double> shares = router.base_shares(0);
  const std::int64_t tokens = 64;
  const int steps = 3000;
  std::vector<std::int64_t> counts(4);
  std::vector<double> sum(4, 0.0), sum2(4, 0.0);
  MoeTokens t;
  for (int s = 0; s < steps; ++s) {
    router.route_tokens(s, 0, tokens, counts, t);
    if (s == 0) check_tokens(t, counts, tokens, 2);
    for (std::size_t e = 0; e < 4; ++e) {
      sum[e] += static_cast<double>(counts[e]);
      sum2[e] += static_cast<double>(counts[e]) * static_cast<double>(counts[e]);
    }
  }
  for (std::size_t e = 0; e < 4; ++e) {
    const double pi = 2 * shares[e], n = steps;
    const double mean = sum[e] / n, var = (sum2[e] - n * mean * mean) / (n - 1);
    const double exact_var = static_cast<double>(tokens) * pi * (1 - pi);
    INFO("expert " << e << ": pi " << pi);
    CHECK(std::fabs(mean - static_cast<double>(tokens) * pi) < 4 * std::sqrt(exact_var / n));
    // The sample variance's relative standard error is sqrt((2 + excess kurtosis) / n), the binomial's excess
    // kurtosis below 1 here (0.31 for the first expert): within 4 of them.
    CHECK(var == doctest::Approx(exact_var).epsilon(4 * std::sqrt(3.0 / n)));
  }
  CHECK(2 * *std::max_element(shares.begin(), shares.end()) == doctest::Approx(0.96).epsilon(0.01));
}

TEST_CASE("route_tokens: a pair's gate score is Beta(beta, (k - 1) beta), as the counts engine draws it") {
  GeneratedRoutingParams p = *routing_preset("olmoe");
  p.gate_concentration = 0.5;
  GeneratedRouter router(p, RouterContext{2, 64, 8, 5, 0});
  std::vector<std::int64_t> counts(64);
  MoeTokens t;
  double n = 0, sum = 0, sum2 = 0;
  for (int s = 0; s < 20; ++s)
    for (int l = 0; l < 2; ++l) {
      router.route_tokens(s, l, 256, counts, t);
      if (s == 0 && l == 0) check_tokens(t, counts, 256, 8);
      for (const double x : t.scores) {
        n += 1;
        sum += x;
        sum2 += x * x;
      }
    }
  // Beta(0.5, 3.5): mean 1/8, variance a b / ((a + b)^2 (a + b + 1)) = 1.75 / 80.
  const double mean = sum / n, var = sum2 / n - mean * mean, exact_var = 1.75 / 80;
  CHECK(std::fabs(mean - 0.125) < 1e-9);  // a token's 8 scores sum to 1
  CHECK(var == doctest::Approx(exact_var).epsilon(4 * std::sqrt(2.0 / (n / 8))));
}

TEST_CASE("route_tokens on a trace deals its counts to tokens exactly") {
  RoutingTrace trace;
  trace.layers = 1;
  trace.experts = 4;
  trace.steps = 2;
  trace.counts = {10, 2, 3, 1, 4, 4, 4, 4};
  trace.totals = {16, 16};
  const RouterContext rc{1, 4, 2, 3, 0};
  TraceRouter router(trace, rc, 1.0);
  TraceRouter again(trace, rc, 1.0);
  std::vector<std::int64_t> counts(4), expected(4);
  MoeTokens t, u;
  for (int s = 0; s < 3; ++s) {
    router.route(s, 0, 10, expected);
    TraceRouter fresh(trace, rc, 1.0);
    fresh.route_tokens(s, 0, 10, counts, t);
    CHECK(counts == expected);  // an expert with a pair on every token (10 of 10) is dealt to each one
    check_tokens(t, counts, 10, 2);
    again.route_tokens(s, 0, 10, counts, u);
    if (s == 0) CHECK(u.experts == t.experts);  // a fixed function of the seed
  }
}

}  // namespace tailsim

namespace tailsim {

namespace {

// The most groups one token's experts come from, over a layer-step (groups of `size` contiguous experts).
int widest_token(const MoeTokens& t, int top_k, int size) {
  int widest = 0;
  for (std::int64_t i = 0; i < t.tokens; ++i) {
    std::vector<std::int32_t> groups;
    for (int j = 0; j < top_k; ++j) groups.push_back(t.experts[static_cast<std::size_t>(i * top_k + j)] / size);
    std::sort(groups.begin(), groups.end());
    widest = std::max(widest, static_cast<int>(std::unique(groups.begin(), groups.end()) - groups.begin()));
  }
  return widest;
}

}  // namespace

TEST_CASE("route_tokens with a group limit: no token reaches more groups than the limit") {
  // DeepSeek-V3's shape at a quarter scale: 64 experts in 8 groups, top-8 from at most 4 groups, skewed
  // (log-normal popularity, group offsets, drift and content noise as the deepseek-v3 preset).
  GeneratedRoutingParams p = *routing_preset("deepseek-v3");
  const RouterContext rc{2, 64, 8, 7, 0};
  GeneratedRouter limited(p, rc);
  p.group_limit = 0;
  GeneratedRouter free(p, rc);
  std::vector<std::int64_t> counts(64), group_pairs(8, 0);
  MoeTokens t;
  int widest_limited = 0, widest_free = 0;
  for (int s = 0; s < 20; ++s)
    for (int l = 0; l < 2; ++l) {
      limited.route_tokens(s, l, 512, counts, t);
      check_tokens(t, counts, 512, 8);
      widest_limited = std::max(widest_limited, widest_token(t, 8, 8));
      free.route_tokens(s, l, 512, counts, t);
      widest_free = std::max(widest_free, widest_token(t, 8, 8));
    }
  CHECK(widest_limited <= 4);
  CHECK(widest_free > 4);  // without the limit, top-8 of 64 reaches 5 or more groups of 8
}

TEST_CASE("route_tokens with a group limit keeps each expert's marginal, top_k x its share") {
  // Fixed shares (no drift, no content noise), 64 experts in 8 groups, top-8 from at most 4 groups: each
  // expert's mean count over 300 steps of 512 tokens is 512 x 8 x share, within 5 standard errors.
  GeneratedRoutingParams p = *routing_preset("deepseek-v3");
  p.batch_noise = 0;
  p.phases = {{1, 0.0}};
  const RouterContext rc{1, 64, 8, 5, 0};
  GeneratedRouter router(p, rc);
  const std::vector<double> shares(router.base_shares(0).begin(), router.base_shares(0).end());
  const int steps = 300;
  const std::int64_t tokens = 512;
  std::vector<std::int64_t> counts(64);
  std::vector<double> sum(64, 0.0);
  MoeTokens t;
  for (int s = 0; s < steps; ++s) {
    router.route_tokens(s, 0, tokens, counts, t);
    for (std::size_t e = 0; e < 64; ++e) sum[e] += static_cast<double>(counts[e]);
  }
  for (std::size_t e = 0; e < 64; ++e) {
    const double pi = 8 * shares[e], expected = static_cast<double>(tokens) * pi;
    INFO("expert " << e << ": pi " << pi);
    CHECK(std::fabs(sum[e] / steps - expected) <= 5 * std::sqrt(static_cast<double>(tokens) * pi * (1 - pi) / steps) + 1e-9);
  }
}

}  // namespace tailsim
