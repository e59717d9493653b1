// The mergeable posterior state of the closed-form engine: a training set split into
// shards (uneven, one of a single point), each shard's partial state taken from a field over
// that shard, merged, and finished by the field of the whole set, gives the velocity, log
// density and posterior trace of the long-double reference (closed_form_reference.hpp) —
// for direct (d = 2) and product-based (d = 64) distances, at times up to t = 1. The merge
// is commutative bit for bit, the empty state is its identity, and bad merges are errors.
#include "kinflow_catch.hpp"

#include <kinflow/fields/empirical.hpp>
#include <kinflow/fields/gaussian_mixture.hpp>
#include <kinflow/fields/posterior_state.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "closed_form_reference.hpp"

namespace {

using kinflow_test::ld;
using kinflow_test::ld_matrix;
using kinflow_test::ld_vector;
using matrix = Eigen::MatrixXd;
using field = kinflow::empirical_field<double>;
using state = kinflow::posterior_state<double>;

// Columns [begin, end) of Y.
matrix shard(const matrix& Y, Eigen::Index begin, Eigen::Index end) {
  return Y.middleCols(begin, end - begin);
}

bool same_bits(const state& a, const state& b) {
  const auto n = static_cast<std::size_t>(a.size() * state::record_size(a.dim()));
  return a.dim() == b.dim() && a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), n * sizeof(double)) == 0;
}

// Largest |a - b| / (1 + |b|) over the entries.
double rel_err(const matrix& a, const ld_matrix& b) {
  double e = 0;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i < a.rows(); ++i)
      e = std::max(e, static_cast<double>(std::abs(static_cast<ld>(a(i, j)) - b(i, j)) /
                                          (1 + std::abs(b(i, j)))));
  return e;
}

void check_sharded(Eigen::Index d, kinflow::distance_method distances, std::uint64_t seed) {
  kinflow_test::test_rng rng(seed);
  const Eigen::Index n = 157, b = 23;
  matrix Y(d, n), X(d, b);
  rng.fill_normal(Y);
  rng.fill_normal(X, 1.3);
  kinflow::empirical_options<double> opt;
  opt.threads = 1;
  opt.distances = distances;
  const field whole(Y, opt);
  // Uneven shards; the last one holds a single point.
  const std::vector<Eigen::Index> cuts{0, 61, 100, 156, 157};
  std::vector<field> parts;
  for (std::size_t s = 0; s + 1 < cuts.size(); ++s) parts.emplace_back(shard(Y, cuts[s], cuts[s + 1]), opt);

  for (const double t : {0.0, 0.35, 0.9, 0.999, 1.0}) {
    CAPTURE(d, t);
    const kinflow::posterior_request request{.mean = true};
    state forward = parts[0].partial_state(t, X, request);
    for (std::size_t s = 1; s < parts.size(); ++s) forward.merge(parts[s].partial_state(t, X, request));
    state backward = parts.back().partial_state(t, X, request);
    for (std::size_t s = parts.size() - 1; s-- > 0;) backward.merge(parts[s].partial_state(t, X, request));

    matrix V_forward, V_backward, V_whole;
    whole.velocity_from(t, X, forward, V_forward);
    whole.velocity_from(t, X, backward, V_backward);
    whole(t, X, V_whole);
    const kinflow::per_sample<double> logp = whole.log_density_from(t, forward);

    // The reference, sample by sample in long double.
    const ld sigma = whole.sigma(t);
    ld_matrix V_ref(d, b);
    ld_vector logp_ref(b);
    for (Eigen::Index j = 0; j < b; ++j) {
      const auto r = kinflow_test::empirical_reference(Y.cast<ld>(), X.col(j).cast<ld>(), t, sigma);
      V_ref.col(j) = r.velocity;
      logp_ref(j) = r.log_density;
    }
    // Rounding of v = (m - x)/σ_t grows as 1/σ_t; the whole field is held to the same bound.
    const double tol = 1e-12 / sigma;
    CHECK(rel_err(V_forward, V_ref) < tol);
    CHECK(rel_err(V_backward, V_ref) < tol);
    CHECK(rel_err(V_whole, V_ref) < tol);
    for (Eigen::Index j = 0; j < b; ++j)
      CHECK(std::abs(logp(j) - static_cast<double>(logp_ref(j))) <
            1e-12 * (1 + std::abs(static_cast<double>(logp_ref(j)))));
  }
}

}  // namespace

TEST_CASE("posterior_state: shards merged and finished equal the whole field", "[posterior_state]") {
  check_sharded(2, kinflow::distance_method::automatic, 1);
  check_sharded(64, kinflow::distance_method::expanded, 2);
  check_sharded(64, kinflow::distance_method::direct, 3);
}

TEST_CASE("posterior_state: the merged trace is the posterior covariance's", "[posterior_state]") {
  kinflow_test::test_rng rng(7);
  const Eigen::Index d = 3, n = 90, b = 11;
  matrix Y(d, n), X(d, b);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  const field a(shard(Y, 0, 40)), c(shard(Y, 40, n));
  const double t = 0.6;
  const kinflow::posterior_request request{.mean = true, .trace = true};
  state s = a.partial_state(t, X, request);
  s.merge(c.partial_state(t, X, request));
  const field whole(Y);
  for (Eigen::Index j = 0; j < b; ++j) {
    const auto r =
        kinflow_test::empirical_reference(Y.cast<ld>(), X.col(j).cast<ld>(), t, whole.sigma(t));
    const double trace = s.deviation_sum(j) / s.weight_sum(j);
    CHECK(std::abs(trace - static_cast<double>(r.trace)) < 1e-12 * (1 + static_cast<double>(r.trace)));
    const Eigen::VectorXd mean = s.weighted_sum(j) / s.weight_sum(j);
    CHECK(rel_err(mean, r.mean) < 1e-13);
  }
  // The divergence finished from the merged state: the long-double reference's trace through
  // div v = t/σ³ tr Cov - d/σ, and the whole field's own exact divergence.
  const kinflow::per_sample<double> D = whole.divergence_from(t, s);
  kinflow::per_sample<double> D_whole;
  whole.divergence(t, X, D_whole);
  const double sigma = whole.sigma(t);
  for (Eigen::Index j = 0; j < b; ++j) {
    const auto r = kinflow_test::empirical_reference(Y.cast<ld>(), X.col(j).cast<ld>(), t, sigma);
    const double want = t / (sigma * sigma * sigma) * static_cast<double>(r.trace) - static_cast<double>(d) / sigma;
    CHECK(std::abs(D(j) - want) < 1e-12 * (1 + std::abs(want)));
    CHECK(std::abs(D(j) - D_whole(j)) < 1e-12 * (1 + std::abs(want)));
  }
}

TEST_CASE("posterior_state: merge is commutative bit for bit, the empty state its identity",
          "[posterior_state]") {
  kinflow_test::test_rng rng(11);
  const Eigen::Index d = 5, b = 17;
  matrix Ya(d, 30), Yb(d, 45), X(d, b);
  rng.fill_normal(Ya);
  rng.fill_normal(Yb, 3.0);  // far apart: maxima differ by many orders of weight
  Yb.array() += 4.0;
  rng.fill_normal(X);
  const field fa(Ya), fb(Yb);
  const kinflow::posterior_request request{.mean = true, .trace = true};
  for (const double t : {0.2, 0.95}) {
    const state a = fa.partial_state(t, X, request), c = fb.partial_state(t, X, request);
    state ab = a, ba = c;
    ab.merge(c);
    ba.merge(a);
    CHECK(same_bits(ab, ba));
    for (Eigen::Index j = 0; j < b; ++j) {
      CHECK(std::isfinite(ab.log_sum(j)));
      CHECK(std::isfinite(ab.deviation_sum(j)));
      CHECK(ab.weight_sum(j) >= 1.0);  // the largest term is exp(0)
    }
    const state empty(d, b, request);
    state left = empty, right = a;
    left.merge(a);
    right.merge(empty);
    CHECK(same_bits(left, a));
    CHECK(same_bits(right, a));
  }
}

TEST_CASE("posterior_state: smoothed-field shards merge too", "[posterior_state]") {
  // Equal weights and stds: every shard's logits are the whole field's, so its merged state
  // finishes to the whole field's velocity.
  kinflow_test::test_rng rng(5);
  const Eigen::Index d = 2, n = 64, b = 9;
  matrix Y(d, n), X(d, b);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  const double s = 0.2;
  const auto whole = kinflow::smoothed_empirical(Y, s);
  const auto first = kinflow::smoothed_empirical(shard(Y, 0, 20), s);
  const auto second = kinflow::smoothed_empirical(shard(Y, 20, n), s);
  for (const double t : {0.1, 0.7, 1.0}) {
    state merged = first.partial_state(t, X);
    merged.merge(second.partial_state(t, X));
    matrix V, V_whole;
    whole.velocity_from(t, X, merged, V);
    whole(t, X, V_whole);
    CHECK((V - V_whole).cwiseAbs().maxCoeff() < 1e-13 * (1 + V_whole.cwiseAbs().maxCoeff()));
    const auto logp = whole.log_density_from(t, merged);
    const auto logp_whole = whole.log_density(t, X);
    CHECK((logp - logp_whole).cwiseAbs().maxCoeff() < 1e-13 * (1 + logp_whole.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE("posterior_state: bad shapes and requests are errors", "[posterior_state]") {
  state a(3, 4, {.mean = true}), wrong_dim(2, 4, {.mean = true}), wrong_size(3, 5, {.mean = true}),
      no_mean(3, 4);
  CHECK_THROWS_AS(a.merge(wrong_dim), kinflow::dimension_mismatch);
  CHECK_THROWS_AS(a.merge(wrong_size), kinflow::dimension_mismatch);
  CHECK_THROWS_WITH(a.merge(no_mean), Catch::Matchers::Contains("same statistics"));
  CHECK_THROWS_WITH(state(0, 3), Catch::Matchers::Contains("d (dimension"));
  CHECK_THROWS_WITH(state(2, -1), Catch::Matchers::Contains("queries"));

  matrix Y = matrix::Random(3, 10), X = matrix::Random(3, 4), V;
  const field f(Y);
  CHECK_THROWS_WITH(f.velocity_from(0.5, X, no_mean, V), Catch::Matchers::Contains("request.mean"));
  CHECK_THROWS_WITH((void)f.divergence_from(0.5, a), Catch::Matchers::Contains("request.trace"));
  CHECK_THROWS_AS((void)f.divergence_from(0.5, state(2, 4, {.mean = true, .trace = true})),
                  kinflow::dimension_mismatch);
  CHECK_THROWS_AS(f.velocity_from(0.5, X, wrong_size, V), kinflow::dimension_mismatch);
  const matrix X5 = matrix::Random(3, 5);
  CHECK_THROWS_AS(f.velocity_from(0.5, X5, a, V), kinflow::dimension_mismatch);
}

TEST_CASE("posterior_state: one time per column gives each column's state at its own time",
          "[posterior_state]") {
  kinflow_test::test_rng rng(13);
  const Eigen::Index d = 4, n = 50, b = 6;
  matrix Y(d, n), X(d, b);
  rng.fill_normal(Y);
  rng.fill_normal(X);
  kinflow::empirical_options<double> opt;
  opt.threads = 1;
  const field f(Y, opt);
  kinflow::sample_times<double> T(b);
  T << 0.0, 0.2, 0.5, 0.8, 0.999, 1.0;
  const kinflow::posterior_request request{.mean = true, .trace = true};
  const state at_times = f.partial_state_at_times(T, X, request);
  for (Eigen::Index j = 0; j < b; ++j) {
    CAPTURE(j);
    const matrix x = X.col(j);
    const state single = f.partial_state(T(j), x, request);
    const auto size = static_cast<std::size_t>(state::record_size(d));
    CHECK(std::memcmp(at_times.record(j), single.record(0), size * sizeof(double)) == 0);
  }
  CHECK_THROWS_AS(f.partial_state_at_times(kinflow::sample_times<double>(b + 1), X, request),
                  kinflow::dimension_mismatch);
}
