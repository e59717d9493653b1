// A class-conditional MLP v(t, x, c) (one-hot class code with a null class, trained with
// label dropout by examples/models/train_conditional_mlp.py) against the velocities
// PyTorch computed for it in double precision (fm_cmlp_8gaussians_fixture.csv); its exact
// divergence against central differences; guidance of the network (w = 0 and w = 1 are
// the unconditional and conditional solves, its exact divergence that of the guided
// velocity); and bad classes and weight files.

#include "kinflow/models/mlp.hpp"
#include "kinflow/models/mlp_npz.hpp"

#include <array>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "kinflow/core/conditions.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/fields/guidance.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/schedules/time_grid.hpp"
#include "kinflow_catch.hpp"
#include "fixture_csv.hpp"
#include "npz_writer.hpp"

using namespace kinflow_test;
using kinflow::class_labels;

namespace {

using dyn = Eigen::MatrixXd;

struct fixture {
  kinflow::sample_times<double> t;
  dyn x, v;
  class_labels c;
};

fixture read_fixture() {
  const auto rows = read_fixture_rows("fm_cmlp_8gaussians_fixture.csv", "t,x0,x1,c,v0,v1");
  fixture f;
  const auto n = static_cast<Eigen::Index>(rows.size());
  f.t.resize(n);
  f.x.resize(2, n);
  f.v.resize(2, n);
  f.c.resize(n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto& r = rows[static_cast<std::size_t>(j)];
    f.t(j) = r[0];
    f.x.col(j) << r[1], r[2];
    f.c(j) = static_cast<Eigen::Index>(r[3]);
    f.v.col(j) << r[4], r[5];
  }
  return f;
}

template <class A>
double max_relative_error(const A& v, const dyn& ref) {
  double worst = 0;
  for (Eigen::Index j = 0; j < ref.cols(); ++j)
    worst = std::max(worst, (v.col(j).template cast<double>() - ref.col(j)).norm() / std::max(ref.col(j).norm(), 1.0));
  return worst;
}

template <class Scalar>
void check_fixture(double tol) {
  using mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  const auto field = kinflow::load_mlp_field<Scalar>((models_dir() / "fm_cmlp_8gaussians.npz").string());
  const fixture f = read_fixture();
  REQUIRE(f.t.size() >= 27);
  CHECK(field.classes() == 8);
  CHECK(f.c.minCoeff() == -1);
  CHECK(f.c.maxCoeff() == 7);
  const mat X = f.x.cast<Scalar>();
  const kinflow::sample_times<Scalar> T = f.t.cast<Scalar>();

  mat V(2, X.cols());
  field.velocity_at_times(T, X, f.c, V);  // one time and one class per column
  CHECK(max_relative_error(V, f.v) <= tol);

  mat V1(2, X.cols());  // one time per call (the first layer's time share folded in the bias)
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    mat x = X.col(j), v(2, 1);
    field(T(j), x, class_labels::Constant(1, f.c(j)), v);
    V1.col(j) = v;
  }
  CHECK(max_relative_error(V1, f.v) <= tol);

  // Without classes the network is its null class: the rows of class -1.
  mat U(2, X.cols());
  field.velocity_at_times(T, X, U);
  for (Eigen::Index j = 0; j < X.cols(); ++j)
    if (f.c(j) < 0) CHECK((U.col(j).template cast<double>() - f.v.col(j)).norm() <= tol * std::max(1.0, f.v.col(j).norm()));
}

}  // namespace

TEST_CASE("a class-conditional mlp_field reproduces PyTorch's forward pass", "[mlp][conditional]") {
  check_fixture<double>(1e-10);
  check_fixture<float>(1e-5);
}

TEST_CASE("the conditional network's exact divergence, and its pair of velocities", "[mlp][conditional]") {
  const auto field = kinflow::load_mlp_field<double>((models_dir() / "fm_cmlp_8gaussians.npz").string());
  dyn X(2, 9);
  X = 1.7 * kinflow::standard_normal<double, Eigen::Dynamic>(2, 9, 5);
  class_labels C(9);
  C << 0, 1, 2, 3, 4, 5, 6, 7, -1;
  for (const double t : {0.0, 0.35, 0.9}) {
    kinflow::per_sample<double> D;
    field.divergence(t, X, C, D);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      const double h = 1e-5;
      double fd = 0;
      for (int r = 0; r < 2; ++r) {
        dyn Xp = X.col(j), Xm = X.col(j), Vp(2, 1), Vm(2, 1);
        Xp(r, 0) += h;
        Xm(r, 0) -= h;
        field(t, Xp, class_labels::Constant(1, C(j)), Vp);
        field(t, Xm, class_labels::Constant(1, C(j)), Vm);
        fd += (Vp(r, 0) - Vm(r, 0)) / (2 * h);
      }
      CHECK(std::abs(D(j) - fd) <= 1e-6 * (1 + std::abs(fd)));
    }
    // The pair is the null class and the classes, with their divergences.
    dyn U, Vc, Vref(2, 9), Uref(2, 9);
    kinflow::per_sample<double> Du, Dc, Dplain;
    field.velocity_pair_and_divergence(t, X, C, U, Vc, Du, Dc);
    field(t, X, C, Vref);
    field(t, X, Uref);
    field.divergence(t, X, Dplain);
    CHECK(Vc == Vref);
    CHECK(U == Uref);
    dyn Vnull(2, 9);  // the null class of a call with classes: the bits of a call without
    field(t, X, class_labels::Constant(9, -1), Vnull);
    CHECK(Vnull == Uref);
    CHECK(Dc == D);
    CHECK(Du == Dplain);
    const kinflow::sample_times<double> T = kinflow::sample_times<double>::Constant(9, t);
    dyn Ut, Vt;
    kinflow::per_sample<double> Dut, Dct;
    field.velocity_pair_and_divergence_at_times(T, X, C, Ut, Vt, Dut, Dct);
    CHECK((Ut - U).cwiseAbs().maxCoeff() <= 1e-12);
    CHECK((Vt - Vc).cwiseAbs().maxCoeff() <= 1e-12);
    CHECK((Dct - Dc).cwiseAbs().maxCoeff() <= 1e-10);
  }
}

TEST_CASE("guidance of the conditional network", "[mlp][conditional][guidance]") {
  const auto field = kinflow::load_mlp_field<double>((models_dir() / "fm_cmlp_8gaussians.npz").string());
  const Eigen::Index B = 40;
  class_labels C(B);
  for (Eigen::Index j = 0; j < B; ++j) C(j) = j % 9 - 1;
  const dyn X0 = kinflow::standard_normal<double, Eigen::Dynamic>(2, B, 3);
  const auto grid = kinflow::time_grid<>::uniform(24);
  auto solve = [&](const auto& f) {
    dyn X = X0;
    (void)kinflow::integrate(f, kinflow::rk4, grid, X);
    return X;
  };
  // w = 0: the unconditional solve; w = 1: the conditional one (the same arithmetic, so
  // the same bits).
  CHECK(solve(kinflow::guided(field, C, {.scale = 0.0})) == solve(field));
  CHECK(solve(kinflow::guided(field, C, {.scale = 1.0})) == solve(kinflow::conditioned(field, C)));
  // Guidance moves the samples of a class towards that class (farther than w = 1 does) on
  // this trained net: the mean distance to the class centre (8gaussians' centres / 1.414).
  auto centre_distance = [&](const dyn& X) {
    double sum = 0;
    int n = 0;
    for (Eigen::Index j = 0; j < B; ++j) {
      if (C(j) < 0) continue;
      const double a = 2 * std::numbers::pi * static_cast<double>(C(j)) / 8;
      sum += (X.col(j) - Eigen::Vector2d(std::cos(a), std::sin(a)) * (4 / 1.414)).norm();
      ++n;
    }
    return sum / n;
  };
  const double d1 = centre_distance(solve(kinflow::guided(field, C, {.scale = 1.0})));
  const double d0 = centre_distance(solve(kinflow::guided(field, C, {.scale = 0.0})));
  INFO("mean distance to the class centre: w = 0 " << d0 << ", w = 1 " << d1);
  CHECK(d1 < 0.5 * d0);

  // The guided divergence (1 - w) div v_u + w div v_c is that of the guided velocity.
  const auto g = kinflow::guided(field, C, {.scale = 3.0});
  dyn X = X0, V;
  kinflow::per_sample<double> D;
  g.velocity_and_divergence(0.6, X, V, D);
  for (Eigen::Index j = 0; j < 9; ++j) {
    const double h = 1e-5;
    double fd = 0;
    for (int r = 0; r < 2; ++r) {
      dyn Xp = X.col(j), Xm = X.col(j), Vp, Vm;
      Xp(r, 0) += h;
      Xm(r, 0) -= h;
      const kinflow::batch_columns::scope one(j);
      g(0.6, Xp, Vp);
      g(0.6, Xm, Vm);
      fd += (Vp(r, 0) - Vm(r, 0)) / (2 * h);
    }
    CHECK(std::abs(D(j) - fd) <= 1e-6 * (1 + std::abs(fd)));
  }
}

TEST_CASE("conditional networks reject bad classes and bad weight files", "[mlp][conditional][errors]") {
  const auto field = kinflow::load_mlp_field<double>((models_dir() / "fm_cmlp_8gaussians.npz").string());
  dyn X = dyn::Zero(2, 3), V(2, 3);
  class_labels C(3);
  C << 0, 8, 1;
  CHECK_THROWS_WITH(field(0.5, X, C, V), contains("classes[1]") && contains("[0, 8)"));
  C << 0, -2, 1;
  CHECK_THROWS_WITH(field(0.5, X, C, V), contains("classes[1]") && contains("-2"));
  CHECK_THROWS_AS(field(0.5, X, class_labels::Zero(2), V), kinflow::dimension_mismatch);
  CHECK_THROWS_WITH(kinflow::conditioned(field, class_labels::Constant(3, 9)), contains("classes[0]"));

  // An unconditional network takes only the null class.
  const auto plain = kinflow::load_mlp_field<double>((models_dir() / "fm_mlp_8gaussians.npz").string());
  CHECK(plain.classes() == 0);
  CHECK_THROWS_WITH(plain(0.5, X, class_labels::Zero(3), V), contains("expected -1") && contains("no class input"));
  dyn Vn(2, 3), Vp(2, 3);
  plain(0.5, X, class_labels::Constant(3, -1), Vn);
  plain(0.5, X, Vp);
  CHECK(Vn == Vp);

  // Weight files: a 2-D net with raw time and 2 classes takes 2 + 1 + 3 inputs.
  auto npz = [](const std::string& classes_descr, const std::string& classes_shape, bytes classes_data,
                Eigen::Index in) {
    std::vector<double> w(static_cast<std::size_t>(2 * in), 0.25);
    return std::vector<npz_entry>{
        {"layers.0.weight", "<f8", "(2, " + std::to_string(in) + ")", f8(w)},
        {"layers.0.bias", "<f8", "(2,)", f8({0.1, -0.2})},
        text_entry("activation", "tanh"),
        text_entry("time_embedding", "raw"),
        {"classes", classes_descr, classes_shape, std::move(classes_data)},
    };
  };
  auto write = [](const std::string& name, const std::vector<npz_entry>& e) {
    return scratch().write(name, zip_stored(e));
  };
  bytes two(8, 0);
  two[0] = 2;
  const auto ok = kinflow::load_mlp_field<double>(write("c-ok.npz", npz("<i8", "()", two, 6)));
  CHECK(ok.classes() == 2);
  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(write("c-cols.npz", npz("<i8", "()", two, 3))),
                    contains("c-cols.npz") && contains("has 3 columns") && contains("classes + 1") &&
                        contains("2 + 1 + 3"));
  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(write("c-zero.npz", npz("<i8", "()", bytes(8, 0), 3))),
                    contains("c-zero.npz") && contains("'classes'") && contains("integer >= 1"));
  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(write("c-frac.npz", npz("<f8", "()", f8({2.5}), 6))),
                    contains("c-frac.npz") && contains("integer >= 1"));
  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(write("c-shape.npz", npz("<f8", "(2,)", f8({2, 2}), 6))),
                    contains("c-shape.npz") && contains("shape (2,)"));
  CHECK_THROWS_WITH(
      kinflow::mlp_field<double>(kinflow::load_mlp_field<double>(write("c-neg.npz", npz("<i8", "()", two, 6))).layers(),
                                 kinflow::mlp_activation::tanh, {}, kinflow::matrix_products::automatic, -1),
      contains("classes") && contains("-1"));
}
