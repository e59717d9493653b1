// The MLP's parts, each against its definition: the activations σ computed step by step in
// long double, their derivatives σ' against central differences of those definitions, and
// the time features φ(t) written out from their formula.

#include "kinflow/models/mlp_layers.hpp"

#include <array>
#include <cmath>
#include <numbers>

#include "kinflow_catch.hpp"

namespace {

using kinflow::mlp_activation;

constexpr std::array<mlp_activation, 4> all_activations{mlp_activation::silu, mlp_activation::relu,
                                                        mlp_activation::tanh, mlp_activation::gelu};

// σ(z) from the formulas of the file documentation, in long double.
long double reference(mlp_activation a, long double z) {
  switch (a) {
    case mlp_activation::silu:
      return z / (1.0L + std::exp(-z));
    case mlp_activation::relu:
      return z > 0 ? z : 0.0L;
    case mlp_activation::tanh:
      return std::tanh(z);
    case mlp_activation::gelu:
      return 0.5L * z * (1.0L + std::erf(z / std::sqrt(2.0L)));
  }
  return 0;
}

Eigen::MatrixXd sample_points() {
  Eigen::MatrixXd z(3, 7);
  z << -6.0, -2.5, -1.0, -0.3, 0.0, 0.2, 0.7,  //
      1.0, 1.9, 3.3, 5.0, 8.0, -0.05, -4.0,     //
      0.5, -0.75, 2.25, -3.5, 0.01, 12.0, -9.0;
  return z;
}

}  // namespace

TEST_CASE("mlp_activate matches each activation's definition", "[models][mlp_layers]") {
  for (const auto a : all_activations) {
    CAPTURE(static_cast<int>(a));
    const Eigen::MatrixXd z = sample_points();
    Eigen::MatrixXd h = z;
    kinflow::detail::mlp_activate(a, h);
    for (Eigen::Index i = 0; i < z.size(); ++i) {
      const auto ref = static_cast<double>(reference(a, z(i)));
      CHECK(h(i) == Approx(ref).epsilon(1e-13).margin(1e-14));  // GELU: 1 + erf cancels for z < 0
    }
  }
}

TEST_CASE("mlp_derivative_and_activate: σ' against central differences, σ as mlp_activate",
          "[models][mlp_layers]") {
  for (const auto a : all_activations) {
    CAPTURE(static_cast<int>(a));
    const Eigen::MatrixXd z = sample_points();
    Eigen::MatrixXd h = z, slope(z.rows(), z.cols()), activated = z;
    kinflow::detail::mlp_derivative_and_activate(a, h, slope);
    kinflow::detail::mlp_activate(a, activated);
    CHECK(h == activated);  // the same network on the divergence pass as on the velocity pass
    const long double step = 1e-6L;
    for (Eigen::Index i = 0; i < z.size(); ++i) {
      const long double x = z(i);
      if (a == mlp_activation::relu && std::abs(x) < 10 * step) continue;  // the kink
      const auto fd =
          static_cast<double>((reference(a, x + step) - reference(a, x - step)) / (2 * step));
      CAPTURE(x);
      CHECK(slope(i) == Approx(fd).epsilon(1e-9).margin(1e-11));
    }
  }
  // ReLU at its kink: σ'(0) = 0 by the stated convention.
  Eigen::MatrixXd zero = Eigen::MatrixXd::Zero(1, 1), s(1, 1);
  kinflow::detail::mlp_derivative_and_activate(mlp_activation::relu, zero, s);
  CHECK(s(0) == 0.0);
}

TEST_CASE("SiLU and GELU stay finite far out on both sides", "[models][mlp_layers]") {
  for (const auto a : all_activations) {
    Eigen::MatrixXd z(1, 4);
    z << -800.0, -40.0, 40.0, 800.0;
    Eigen::MatrixXd h = z, slope(1, 4);
    kinflow::detail::mlp_derivative_and_activate(a, h, slope);
    CHECK(h.allFinite());
    CHECK(slope.allFinite());
    // Far out every activation is 0 (left) or the identity / 1 (right), with slope 0 or 1
    // (tanh: ±1 with slope 0).
    CHECK(std::abs(h(0) - (a == mlp_activation::tanh ? -1.0 : 0.0)) < 1e-12);
    CHECK(std::abs(h(3) - (a == mlp_activation::tanh ? 1.0 : 800.0)) < 1e-12);
    CHECK(std::abs(slope(0)) < 1e-12);
    CHECK(std::abs(slope(3) - (a == mlp_activation::tanh ? 0.0 : 1.0)) < 1e-12);
  }
}

TEST_CASE("time features: raw t, or the sines then the cosines", "[models][mlp_layers]") {
  kinflow::time_features<double> raw;
  CHECK(raw.size() == 1);
  kinflow::time_features<double> sinusoidal{kinflow::time_encoding::sinusoidal,
                                            Eigen::Vector3d(1.0, std::numbers::pi, 10.0)};
  CHECK(sinusoidal.size() == 6);

  const kinflow::sample_times<double> T = (Eigen::RowVector4d() << 0.0, 0.25, 0.6, 1.0).finished();
  for (const auto* time : {&raw, &sinusoidal}) {
    const Eigen::Index first_row = 2;  // as if below a 2-D state
    Eigen::MatrixXd in = Eigen::MatrixXd::Constant(first_row + time->size(), T.size(), -7.0);
    kinflow::detail::mlp_time_rows(*time, T, in, first_row);
    CHECK((in.topRows(first_row).array() == -7.0).all());  // the state rows are left alone
    for (Eigen::Index j = 0; j < T.size(); ++j) {
      Eigen::VectorXd phi(time->size());
      kinflow::detail::mlp_time_features(*time, T(j), phi);
      Eigen::VectorXd expected(time->size());
      if (time->encoding == kinflow::time_encoding::raw) {
        expected << T(j);
      } else {
        const auto& w = time->frequencies;
        expected << std::sin(w(0) * T(j)), std::sin(w(1) * T(j)), std::sin(w(2) * T(j)),
            std::cos(w(0) * T(j)), std::cos(w(1) * T(j)), std::cos(w(2) * T(j));
      }
      CHECK((phi - expected).cwiseAbs().maxCoeff() < 1e-15);
      CHECK((in.col(j).bottomRows(time->size()) - expected).cwiseAbs().maxCoeff() < 1e-15);
    }
  }
}
