// Steps of fixed-grid integration do not allocate: Eigen's runtime malloc check is armed
// from inside the first step's observer call until the last one, so every later step
// (field evaluation, stage combinations, the KPE accumulator, the observer) runs with
// heap allocation forbidden. An allocation makes eigen_assert throw. The same for the
// stochastic samplers.

#include <stdexcept>

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(x) \
  do {                  \
    if (!(x)) throw std::runtime_error("eigen_assert: " #x); \
  } while (false)

#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/integrators/stochastic.hpp"
#include "kinflow_catch.hpp"

namespace {
struct linear_field {  // v = A x + t, written into V without temporaries
  template <class X, class V>
  void operator()(double t, const X& x, V& v) const {
    v.row(0) = -x.row(1);
    v.row(1) = x.row(0);
    v.array() += t;
  }
};

struct allocating_field {  // evaluates into a heap temporary first
  template <class X, class V>
  void operator()(double, const X& x, V& v) const {
    Eigen::MatrixXd tmp = -x;
    v = tmp;
  }
};

// The observer that forbids heap allocation from inside the first step's call until the
// last one's, in a solve of `steps` steps; `inside` counts the steps seen in between and
// `last` (when given) receives the last step's index.
auto malloc_window(std::size_t steps, std::size_t& inside, std::size_t* last = nullptr) {
  return [steps, &inside, last](const auto& view) {
    if (view.step == 0)
      Eigen::internal::set_is_malloc_allowed(false);
    else
      ++inside;
    if (last != nullptr) *last = view.step;
    if (view.step + 1 == steps) Eigen::internal::set_is_malloc_allowed(true);
  };
}

// Runs `solve()`, allowing heap allocation again however it ends.
template <class Solve>
void reopening(Solve&& solve) {
  try {
    solve();
  } catch (...) {
    Eigen::internal::set_is_malloc_allowed(true);
    throw;
  }
  Eigen::internal::set_is_malloc_allowed(true);
}

template <class Field = linear_field, std::size_t S>
void run_without_malloc(const kinflow::butcher_tableau<S>& method, kinflow::kpe_options kpe,
                        Field field = {}) {
  kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Random(2, 257);
  const auto grid = kinflow::time_grid<>::uniform(16);
  std::size_t steps_checked = 0;
  reopening([&] {
    kinflow::integrate(field, method, grid, X, {.kpe = kpe}, malloc_window(grid.steps(), steps_checked));
  });
  CHECK(steps_checked == 15);
}
}  // namespace

TEST_CASE("the malloc check is armed (an allocation inside the window throws)", "[no_malloc]") {
  Eigen::internal::set_is_malloc_allowed(false);
  CHECK_THROWS(Eigen::MatrixXd(50, 50));
  Eigen::internal::set_is_malloc_allowed(true);
}

TEST_CASE("an allocating field is caught inside the integration window", "[no_malloc]") {
  CHECK_THROWS(run_without_malloc(kinflow::euler, {}, allocating_field{}));
}

TEST_CASE("fixed-grid steps do not allocate", "[no_malloc]") {
  kinflow::kpe_options stage, left, profiled, off;
  left.quadrature = kinflow::kpe_quadrature::left_riemann;
  profiled.profile = kinflow::kpe_profile::per_sample;
  off.enabled = false;
  for (const auto& kpe : {stage, left, profiled, off}) {
    CHECK_NOTHROW(run_without_malloc(kinflow::euler, kpe));
    CHECK_NOTHROW(run_without_malloc(kinflow::heun, kpe));
    CHECK_NOTHROW(run_without_malloc(kinflow::rk4, kpe));
  }
}

namespace {
struct linear_field_with_divergence : linear_field {  // div v = 0 (a rotation)
  void divergence(double, const kinflow::batch<double, 2>& X, kinflow::per_sample<double>& D) const {
    D.resize(X.cols());
    D.setZero();
  }
};
}  // namespace

TEST_CASE("fixed-grid steps carrying integrals and the likelihood do not allocate", "[no_malloc]") {
  kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Random(2, 257);
  const auto grid = kinflow::time_grid<>::uniform(16);
  std::size_t steps_checked = 0;
  kinflow::fixed_step_options opt;
  opt.likelihood.enabled = true;
  auto g = [](double, const auto& x, const auto& v) { return x.dot(v); };
  reopening([&] {
    CHECK_NOTHROW(kinflow::integrate(linear_field_with_divergence{}, kinflow::rk4, grid, X, opt, kinflow::along(g),
                                     malloc_window(grid.steps(), steps_checked)));
  });
  CHECK(steps_checked == 15);
}

TEST_CASE("stochastic steps do not allocate", "[no_malloc][stochastic]") {
  // The window opens in the first step's observer call and closes in the last one's: every
  // step between (drift, score from the velocity, the noise draws, the energies, the user's
  // integral, a last-step rule) runs with heap allocation forbidden.
  const auto grid = kinflow::time_grid<>::uniform(16);
  auto g = [](double, const auto& x, const auto& v) { return x.dot(v); };
  for (const auto* method : {&kinflow::sde_euler, &kinflow::sde_heun, &kinflow::renoise_euler}) {
    for (const auto rule : {kinflow::last_step_rule::method, kinflow::last_step_rule::euler}) {
      INFO(method->name << (rule == kinflow::last_step_rule::euler ? ", Euler last step" : ""));
      kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Random(2, 257);
      kinflow::stochastic_options o;
      o.diffusion.form = kinflow::diffusion_form::linear;
      o.noise_seed = 3;
      o.last_step = rule;
      std::size_t steps_seen = 0, last = 0;
      reopening([&] {
        CHECK_NOTHROW(kinflow::integrate(linear_field{}, *method, grid, X, o, kinflow::along(g),
                                         malloc_window(grid.steps(), steps_seen, &last)));
      });
      CHECK(steps_seen == 15);
      CHECK(last == 15);
    }
  }
  // The window is armed for these solves too: an allocating field is caught.
  kinflow::batch<double, 2> X = kinflow::batch<double, 2>::Random(2, 33);
  auto arm = [&](const auto& view) {
    Eigen::internal::set_is_malloc_allowed(view.step + 1 == grid.steps());
  };
  kinflow::stochastic_options o;
  o.diffusion.form = kinflow::diffusion_form::linear;
  CHECK_THROWS(kinflow::integrate(allocating_field{}, kinflow::sde_euler, grid, X, o, arm));
  Eigen::internal::set_is_malloc_allowed(true);
}
