// The MLP velocity field against independent forward passes: the fixtures PyTorch computed
// in double precision (examples/models/*_fixture.csv, written by train_fm_mlp.py) and a
// 2-2-2 net whose outputs were worked out by hand for each activation; loader errors; and
// the field inside the integrators.

#include "kinflow/models/mlp.hpp"
#include "kinflow/models/mlp_npz.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "kinflow/data/random.hpp"
#include "kinflow/integrators/adaptive.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/schedules/time_grid.hpp"
#include "kinflow_catch.hpp"
#include "fixture_csv.hpp"
#include "npz_writer.hpp"

using namespace kinflow_test;

namespace {

struct fixture {
  kinflow::sample_times<double> t;
  kinflow::batch<double, 2> x, v;
};

fixture read_fixture(const std::string& name) {
  const auto rows = read_fixture_rows(name, "t,x0,x1,v0,v1");
  fixture f;
  const auto n = static_cast<Eigen::Index>(rows.size());
  f.t.resize(n);
  f.x.resize(2, n);
  f.v.resize(2, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    const auto& r = rows[static_cast<std::size_t>(j)];
    f.t(j) = r[0];
    f.x.col(j) << r[1], r[2];
    f.v.col(j) << r[3], r[4];
  }
  return f;
}

// Largest ‖v - ref‖ / max(‖ref‖, 1) over the columns.
template <class A, class B>
double max_relative_error(const A& v, const B& ref) {
  double worst = 0;
  for (Eigen::Index j = 0; j < ref.cols(); ++j) {
    const double e = (v.col(j).template cast<double>() - ref.col(j)).norm();
    worst = std::max(worst, e / std::max(ref.col(j).norm(), 1.0));
  }
  return worst;
}

template <class Scalar>
void check_against_fixture(const std::string& weights, const std::string& csv, double tol) {
  const auto field = kinflow::load_mlp_field<Scalar>((models_dir() / weights).string());
  const fixture f = read_fixture(csv);
  REQUIRE(f.t.size() >= 16);
  CHECK(field.dim() == 2);
  INFO(weights << " in " << (sizeof(Scalar) == 4 ? "float" : "double"));

  // One batched call with a time per column.
  kinflow::batch<Scalar, 2> X = f.x.cast<Scalar>();
  kinflow::batch<Scalar, 2> V(2, X.cols());
  field.velocity_at_times(f.t.cast<Scalar>(), X, V);
  CHECK(max_relative_error(V, f.v) <= tol);

  // One time per call, dynamic-size batches of one column.
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> V1(2, X.cols());
  for (Eigen::Index j = 0; j < X.cols(); ++j) {
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x = X.col(j), v(2, 1);
    field(static_cast<Scalar>(f.t(j)), x, v);
    V1.col(j) = v;
  }
  CHECK(max_relative_error(V1, f.v) <= tol);
}

// The hand-worked 2-2-2 net: W0 = [0.5 -1 2; 1.5 0.25 -0.5] (inputs x0, x1, t),
// b0 = (0.1, -1.2), W1 = [1 -2; 0.5 0.75], b1 = (0.3, -0.4).
// At x = (0.8, -0.6), t = 0.3 the pre-activations are z = (1.7, -0.3).
template <class Scalar>
std::vector<kinflow::dense_layer<Scalar>> hand_layers(bool sinusoidal) {
  kinflow::dense_layer<Scalar> l0, l1;
  if (sinusoidal) {
    l0.weight.resize(2, 4);
    l0.weight << 0.5, -1.0, 2.0, 1.0, 1.5, 0.25, -0.5, -1.0;
  } else {
    l0.weight.resize(2, 3);
    l0.weight << 0.5, -1.0, 2.0, 1.5, 0.25, -0.5;
  }
  l0.bias.resize(2);
  l0.bias << 0.1, -1.2;
  l1.weight.resize(2, 2);
  l1.weight << 1.0, -2.0, 0.5, 0.75;
  l1.bias.resize(2);
  l1.bias << 0.3, -0.4;
  return {l0, l1};
}

}  // namespace

TEST_CASE("mlp_field reproduces PyTorch's forward pass (trained 8gaussians model)", "[mlp]") {
  // SiLU, sinusoidal time embedding, float32 weights evaluated by PyTorch in double.
  check_against_fixture<double>("fm_mlp_8gaussians.npz", "fm_mlp_8gaussians_fixture.csv", 1e-10);
  check_against_fixture<float>("fm_mlp_8gaussians.npz", "fm_mlp_8gaussians_fixture.csv", 1e-5);
}

TEST_CASE("mlp_field reproduces PyTorch's forward pass (GELU, raw time)", "[mlp]") {
  check_against_fixture<double>("gelu_raw_time.npz", "gelu_raw_time_fixture.csv", 1e-10);
  check_against_fixture<float>("gelu_raw_time.npz", "gelu_raw_time_fixture.csv", 1e-5);
}

TEST_CASE("a 2-2-2 net worked out by hand, each activation", "[mlp]") {
  // v = W1 σ(z) + b1 with z = (1.7, -0.3):
  //   relu: σ(z) = (1.7, 0)                        -> v = (2.0, 0.45)
  //   tanh: σ(z) = (0.93540907060, -0.29131261245) -> v = (1.8180342955, -0.1507799240)
  //   silu: z/(1+e^-z) = (1.43309061, -0.12822676) -> v = (1.9927435393, 0.2229540910)
  //   gelu: ½z(1+erf(z/√2)) = (1.62412, -0.11464)  -> v = (2.1534918600, 0.3261494266)
  struct expected { kinflow::mlp_activation a; double v0, v1; };
  const expected cases[] = {
      {kinflow::mlp_activation::relu, 2.0, 0.45},
      {kinflow::mlp_activation::tanh, 1.8180342955062805, -0.15077992403714355},
      {kinflow::mlp_activation::silu, 1.9927435392709956, 0.2229540909616189},
      {kinflow::mlp_activation::gelu, 2.1534918599971054, 0.3261494266477528},
  };
  for (const auto& c : cases) {
    INFO("activation " << static_cast<int>(c.a));
    const kinflow::mlp_field<double> f(hand_layers<double>(false), c.a);
    CHECK(f.dim() == 2);
    Eigen::Vector2d x(0.8, -0.6);
    const Eigen::VectorXd v = f(0.3, Eigen::VectorXd(x));
    CHECK(v(0) == Approx(c.v0).epsilon(1e-14));
    CHECK(v(1) == Approx(c.v1).margin(1e-14));

    const kinflow::mlp_field<float> ff(hand_layers<float>(false), c.a);
    kinflow::batch<float, 2> X(2, 4), V(2, 4);
    X.colwise() = Eigen::Vector2f(0.8f, -0.6f);
    ff(0.3f, X, V);
    for (Eigen::Index j = 0; j < 4; ++j) {
      CHECK(V(0, j) == Approx(c.v0).epsilon(1e-6));
      CHECK(V(1, j) == Approx(c.v1).margin(1e-6));
    }
  }
}

TEST_CASE("a sinusoidal time embedding worked out by hand", "[mlp]") {
  // One frequency ω = π: inputs (x0, x1, sin πt, cos πt). At t = 1/6: (0.8, -0.6, 1/2, √3/2),
  // z0 = 0.4 + 0.6 + 1 + √3/2 + 0.1 = 2.9660254038, z1 = 1.2 - 0.15 - 0.25 - √3/2 - 1.2 =
  // -1.2660254038; SiLU; v = (3.6776311839, 0.8015322967).
  kinflow::time_features<double> time;
  time.encoding = kinflow::time_encoding::sinusoidal;
  time.frequencies = Eigen::VectorXd::Constant(1, std::numbers::pi);
  const kinflow::mlp_field<double> f(hand_layers<double>(true), kinflow::mlp_activation::silu, time);
  CHECK(f.dim() == 2);
  CHECK(f.time().size() == 2);
  const Eigen::VectorXd v = f(1.0 / 6.0, Eigen::VectorXd(Eigen::Vector2d(0.8, -0.6)));
  CHECK(v(0) == Approx(3.6776311839293285).epsilon(1e-14));
  CHECK(v(1) == Approx(0.8015322966503723).epsilon(1e-14));
}

TEST_CASE("batched calls: columns are independent, one time or a time per column", "[mlp]") {
  const auto f = kinflow::load_mlp_field<double>((models_dir() / "fm_mlp_8gaussians.npz").string());
  const auto X = kinflow::standard_normal<double, 2>(2, 37, 5);
  kinflow::batch<double, 2> V(2, 37), Vt(2, 37);
  f(0.4, X, V);
  kinflow::sample_times<double> T = kinflow::sample_times<double>::Constant(37, 0.4);
  f.velocity_at_times(T, X, Vt);
  // One shared time folds the time features into the first bias: the same sums in another
  // order, so the two paths agree to rounding.
  CHECK((V - Vt).cwiseAbs().maxCoeff() <= 1e-14 * (1 + Vt.cwiseAbs().maxCoeff()));
  for (Eigen::Index j = 0; j < 37; j += 9) {
    const Eigen::VectorXd vj = f(0.4, Eigen::VectorXd(X.col(j)));
    CHECK((vj - V.col(j)).norm() <= 1e-12 * V.col(j).norm());
  }
  // Varying batch sizes reuse or resize the buffers without stale values.
  kinflow::batch<double, 2> V3(2, 3);
  f(0.4, X.leftCols(3).eval(), V3);
  CHECK((V3 - V.leftCols(3)).norm() <= 1e-12 * V3.norm());
  kinflow::batch<double, 2> V4(2, 37);
  f(0.4, X, V4);
  CHECK(V4 == V);
  // An input Eigen cannot read in place (an expression) takes the unfolded path.
  kinflow::batch<double, 2> V5(2, 37);
  f(0.4, X * 1.0, V5);
  CHECK((V5 - Vt).cwiseAbs().maxCoeff() <= 1e-14 * (1 + Vt.cwiseAbs().maxCoeff()));
  CHECK((V5 - V).cwiseAbs().maxCoeff() <= 1e-14 * (1 + V.cwiseAbs().maxCoeff()));
}

TEST_CASE("the trained field integrates with rk4 and with dopri5", "[mlp]") {
  const auto f = kinflow::load_mlp_field<double>((models_dir() / "fm_mlp_8gaussians.npz").string());
  auto X = kinflow::standard_normal<double, 2>(2, 400, 11);
  const int N = 20;
  const auto r = kinflow::integrate(f, kinflow::rk4, kinflow::time_grid<>::uniform(N), X);
  CHECK(X.allFinite());
  CHECK((r.nfe.array() == 4 * N).all());
  // The model learned 8gaussians: centres at radius 4/1.414 ≈ 2.83. Most samples land near
  // that circle (a loose check of the trained weights, not of the integrator).
  const Eigen::ArrayXd radius = X.colwise().norm().transpose().array();
  const double near_ring = static_cast<double>(((radius - 2.83).abs() < 0.8).count()) / 400.0;
  CHECK(near_ring > 0.8);

  auto Y = kinflow::standard_normal<double, 2>(2, 50, 11);
  const auto ra = kinflow::integrate_adaptive(f, kinflow::dopri5, 0.0, 1.0, Y);
  CHECK(Y.allFinite());
  for (const auto s : ra.status) CHECK(s == kinflow::solve_status::success);
  // Same noise, same field: dopri5 at its default tolerances agrees with rk4 on 20 steps.
  CHECK((Y - X.leftCols(50)).cwiseAbs().maxCoeff() < 1e-2);

  auto Xf = kinflow::standard_normal<float, 2>(2, 64, 11);
  const auto ff = kinflow::load_mlp_field<float>((models_dir() / "fm_mlp_8gaussians.npz").string());
  kinflow::integrate(ff, kinflow::rk4, kinflow::time_grid<>::uniform(N), Xf);
  CHECK((Xf.cast<double>() - X.leftCols(64)).cwiseAbs().maxCoeff() < 1e-3);
}

TEST_CASE("wrong dimensions are rejected", "[mlp][errors]") {
  const kinflow::mlp_field<double> f(hand_layers<double>(false), kinflow::mlp_activation::relu);
  Eigen::MatrixXd X(3, 4), V(3, 4), V2(2, 5), X2(2, 4);
  CHECK_THROWS_AS(f(0.1, X, V), kinflow::dimension_mismatch);
  X2.setZero();
  CHECK_THROWS_AS(f(0.1, X2, V2), kinflow::dimension_mismatch);
  Eigen::MatrixXd V4(2, 4);
  CHECK_THROWS_AS(f.velocity_at_times(kinflow::sample_times<double>::Zero(3), X2, V4),
                  kinflow::dimension_mismatch);
}

TEST_CASE("the constructor checks that the layers chain", "[mlp][errors]") {
  using kinflow::mlp_activation;
  CHECK_THROWS_WITH(kinflow::mlp_field<double>({}, mlp_activation::relu),
                    kinflow_test::contains("layers.size() = 0"));
  auto bad_bias = hand_layers<double>(false);
  bad_bias[1].bias.resize(3);
  CHECK_THROWS_WITH(kinflow::mlp_field<double>(bad_bias, mlp_activation::relu),
                    kinflow_test::contains("layers[1].bias.size() = 3"));
  auto bad_chain = hand_layers<double>(false);
  bad_chain[1].weight.resize(2, 3);
  bad_chain[1].weight.setOnes();
  CHECK_THROWS_WITH(kinflow::mlp_field<double>(bad_chain, mlp_activation::relu),
                    kinflow_test::contains("layers[1].weight.cols() = 3") &&
                        kinflow_test::contains("previous layer (2)"));
  // Sinusoidal time needs 2K inputs for time: the 3-input first layer fits K = 1/2 only.
  kinflow::time_features<double> time;
  time.encoding = kinflow::time_encoding::sinusoidal;
  time.frequencies = Eigen::VectorXd::Ones(1);
  CHECK_THROWS_WITH(kinflow::mlp_field<double>(hand_layers<double>(false), mlp_activation::relu, time),
                    kinflow_test::contains("layers[0].weight.cols() = 3") &&
                        kinflow_test::contains("2 + 2"));
  time.frequencies.resize(0);
  CHECK_THROWS_WITH(kinflow::mlp_field<double>(hand_layers<double>(true), mlp_activation::relu, time),
                    kinflow_test::contains("at least one frequency"));
  auto nan_layers = hand_layers<double>(false);
  nan_layers[0].weight(0, 0) = std::nan("");
  CHECK_THROWS_WITH(kinflow::mlp_field<double>(nan_layers, mlp_activation::relu),
                    kinflow_test::contains("finite"));
}

namespace {

// The hand net as an .npz, with the given changes.
std::vector<npz_entry> hand_npz() {
  return {
      {"layers.0.weight", "<f8", "(2, 3)", f8({0.5, -1.0, 2.0, 1.5, 0.25, -0.5})},
      {"layers.0.bias", "<f8", "(2,)", f8({0.1, -1.2})},
      {"layers.1.weight", "<f4", "(2, 2)", f4({1.0f, -2.0f, 0.5f, 0.75f})},
      {"layers.1.bias", "<f4", "(2,)", f4({0.3f, -0.4f})},
      text_entry("activation", "tanh"),
      text_entry("time_embedding", "raw"),
  };
}

std::vector<npz_entry> without(std::vector<npz_entry> e, const std::string& name) {
  std::erase_if(e, [&](const npz_entry& x) { return x.name == name; });
  return e;
}

std::vector<npz_entry> replaced(std::vector<npz_entry> e, const npz_entry& r) {
  for (auto& x : e)
    if (x.name == r.name) x = r;
  return e;
}

std::string write(const std::string& name, const std::vector<npz_entry>& e) {
  return scratch().write(name, zip_stored(e));
}

}  // namespace

TEST_CASE("load_mlp_field reads the documented convention", "[mlp][loader]") {
  const auto f = kinflow::load_mlp_field<double>(write("hand.npz", hand_npz()));
  CHECK(f.activation() == kinflow::mlp_activation::tanh);
  CHECK(f.time().encoding == kinflow::time_encoding::raw);
  REQUIRE(f.layers().size() == 2);
  CHECK(f.layers()[0].weight(1, 2) == -0.5);  // row-major (out, in) as in nn.Linear
  const Eigen::VectorXd v = f(0.3, Eigen::VectorXd(Eigen::Vector2d(0.8, -0.6)));
  // Layer 1 is stored as float32 here: its biases 0.3 and -0.4 are rounded to float.
  CHECK(v(0) == Approx(1.8180342955062805).epsilon(1e-7));
  CHECK(v(1) == Approx(-0.15077992403714355).epsilon(1e-6));

  // Fortran-ordered weights and a numpy str for the metadata mean the same.
  auto e = replaced(hand_npz(), {"layers.0.weight", "<f8", "(2, 3)",
                                 f8({0.5, 1.5, -1.0, 0.25, 2.0, -0.5}), true});
  bytes u;
  for (const char c : std::string("tanh")) u.insert(u.end(), {static_cast<unsigned char>(c), 0, 0, 0});
  e = replaced(e, {"activation", "<U4", "()", u});
  const auto g = kinflow::load_mlp_field<double>(write("fortran.npz", e));
  CHECK(g.layers()[0].weight == f.layers()[0].weight);
  CHECK(g.activation() == kinflow::mlp_activation::tanh);
}

TEST_CASE("load_mlp_field errors name the file and the problem", "[mlp][loader][errors]") {
  using kinflow_test::contains;
  const std::string missing = scratch().write("x", {}) + "-missing.npz";
  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(missing),
                    contains(missing) && contains("no such file"));

  const bytes whole = read_bytes(models_dir() / "fm_mlp_8gaussians.npz");
  const std::string cut = scratch().write(
      "cut-model.npz", bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(whole.size() / 2)));
  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(cut), contains("cut-model.npz") && contains("truncated"));

  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(write("m1.npz", without(hand_npz(), "activation"))),
                    contains("m1.npz") && contains("no array 'activation'"));
  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(write("m2.npz", without(hand_npz(), "layers.1.bias"))),
                    contains("m2.npz") && contains("no array 'layers.1.bias'"));
  {
    auto e = hand_npz();
    for (auto& x : e) {
      if (x.name.rfind("layers.", 0) == 0) x.name = "net" + x.name.substr(6);
    }
    CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(write("m3.npz", e)),
                      contains("m3.npz") && contains("no array 'layers.0.weight'") &&
                          contains("net.0.weight"));
  }
  CHECK_THROWS_WITH(
      kinflow::load_mlp_field<double>(write("s1.npz", replaced(hand_npz(), {"layers.0.bias", "<f8", "(3,)", f8({1, 2, 3})}))),
      contains("s1.npz") && contains("entry 'layers.0.bias'") && contains("shape (3,)") &&
          contains("expected (2,)"));
  CHECK_THROWS_WITH(
      kinflow::load_mlp_field<double>(write("s2.npz", replaced(hand_npz(), {"layers.1.weight", "<f8", "(2, 3)", f8({1, 2, 3, 4, 5, 6})}))),
      contains("s2.npz") && contains("entry 'layers.1.weight'") && contains("has 3 columns") &&
          contains("output size 2"));
  CHECK_THROWS_WITH(
      kinflow::load_mlp_field<double>(write("s3.npz", replaced(hand_npz(), {"layers.0.weight", "<f8", "(2, 4)", f8({1, 2, 3, 4, 5, 6, 7, 8})}))),
      contains("s3.npz") && contains("entry 'layers.0.weight'") && contains("has 4 columns") &&
          contains("2 + 1"));
  CHECK_THROWS_WITH(
      kinflow::load_mlp_field<double>(write("s4.npz", replaced(hand_npz(), {"layers.0.weight", "<f8", "(6,)", f8({1, 2, 3, 4, 5, 6})}))),
      contains("s4.npz") && contains("expected a 2-D numeric array") && contains("shape (6,)"));
  CHECK_THROWS_WITH(
      kinflow::load_mlp_field<double>(write("d1.npz", replaced(hand_npz(), {"layers.0.bias", "<c8", "(2,)", bytes(16, 0)}))),
      contains("d1.npz") && contains("unsupported dtype '<c8'"));
  CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(scratch().write("z1.npz", zip_stored(hand_npz(), 8))),
                    contains("z1.npz") && contains("compressed entry") && contains("numpy.savez"));
  CHECK_THROWS_WITH(
      kinflow::load_mlp_field<double>(write("a1.npz", replaced(hand_npz(), text_entry("activation", "swish")))),
      contains("a1.npz") && contains("unknown activation 'swish'") && contains("silu, relu, tanh or gelu"));
  CHECK_THROWS_WITH(
      kinflow::load_mlp_field<double>(write("a2.npz", replaced(hand_npz(), {"activation", "<f8", "()", f8({1})}))),
      contains("a2.npz") && contains("entry 'activation'") && contains("expected a string"));
  CHECK_THROWS_WITH(
      kinflow::load_mlp_field<double>(write("t1.npz", replaced(hand_npz(), text_entry("time_embedding", "fourier")))),
      contains("t1.npz") && contains("unknown time embedding 'fourier'"));
  CHECK_THROWS_WITH(
      kinflow::load_mlp_field<double>(write("t2.npz", replaced(hand_npz(), text_entry("time_embedding", "sinusoidal")))),
      contains("t2.npz") && contains("no array 'time_frequencies'"));
  {
    auto e = hand_npz();
    e.push_back({"layers.3.weight", "<f8", "(2, 2)", f8({1, 2, 3, 4})});
    CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(write("u1.npz", e)),
                      contains("u1.npz") && contains("entry 'layers.3.weight'") &&
                          contains("unexpected array"));
  }
  {
    auto e = hand_npz();
    e.push_back({"layers.0.weight", "<f8", "(2, 3)", f8({std::nan(""), 0, 0, 0, 0, 0})});
    e.erase(e.begin());
    CHECK_THROWS_WITH(kinflow::load_mlp_field<double>(write("n1.npz", e)),
                      contains("n1.npz") && contains("finite"));
  }
  CHECK_THROWS_AS(kinflow::load_mlp_field<double>(missing), kinflow::model_file_error);
}

TEST_CASE("batches larger than a tile give the per-column results", "[mlp]") {
  // A hidden layer of 1024 doubles per column: tiles of 256 KiB / 8 KiB = 32, raised to the
  // smallest tile, 64 columns; batches of 1, 50, 200 and 300 cross zero to four tile edges.
  std::vector<kinflow::dense_layer<double>> layers(3);
  const Eigen::Index sizes[] = {2 + 1, 1024, 16, 2};
  for (std::size_t l = 0; l < 3; ++l) {
    layers[l].weight = kinflow::standard_normal<double>(sizes[l + 1], sizes[l], 40 + l) /
                       std::sqrt(static_cast<double>(sizes[l]));
    layers[l].bias = kinflow::standard_normal<double>(sizes[l + 1], 1, 50 + l);
  }
  const kinflow::mlp_field<double> f(layers, kinflow::mlp_activation::tanh);
  CHECK(f.tile_columns() == 64);
  for (const Eigen::Index B : {Eigen::Index{200}, Eigen::Index{50}, Eigen::Index{300}, Eigen::Index{1}}) {
    INFO("B = " << B);
    const auto X = kinflow::standard_normal<double, 2>(2, B, 60);
    const kinflow::sample_times<double> T = kinflow::sample_times<double>::LinSpaced(B, 0.0, 1.0);
    kinflow::batch<double, 2> V(2, B), Vt(2, B);
    f(0.7, X, V);
    f.velocity_at_times(T, X, Vt);
    double worst = 0, worst_t = 0;
    for (Eigen::Index j = 0; j < B; ++j) {
      // The net by hand, one column at a time: tanh(W1 tanh(W0 [x; t] + b0) + b1) ...
      auto column = [&](double t) {
        Eigen::VectorXd h(3);
        h << X(0, j), X(1, j), t;
        for (std::size_t l = 0; l < 3; ++l) {
          Eigen::VectorXd z = layers[l].weight * h + layers[l].bias;
          h = l + 1 < 3 ? Eigen::VectorXd(z.array().tanh()) : z;
        }
        return h;
      };
      worst = std::max(worst, (column(0.7) - V.col(j)).cwiseAbs().maxCoeff());
      worst_t = std::max(worst_t, (column(T(j)) - Vt.col(j)).cwiseAbs().maxCoeff());
    }
    CHECK(worst <= 1e-12);
    CHECK(worst_t <= 1e-12);
  }
}

// ---------------------------------------------------------------------------------------
// Divergence.

static_assert(kinflow::divergence_field<kinflow::mlp_field<double>, double, 2>);
static_assert(kinflow::divergence_field<const kinflow::mlp_field<float>, float, Eigen::Dynamic>);
static_assert(kinflow::per_column_time_divergence_field<const kinflow::mlp_field<double>, double, 5>);

namespace {

// A random net d + time features -> hidden... -> d, weights N(0, 1/fan_in) as in the tile test.
std::vector<kinflow::dense_layer<double>> random_layers(Eigen::Index d, Eigen::Index time_inputs,
                                                        const std::vector<Eigen::Index>& hidden,
                                                        std::uint64_t seed) {
  std::vector<Eigen::Index> sizes{d + time_inputs};
  sizes.insert(sizes.end(), hidden.begin(), hidden.end());
  sizes.push_back(d);
  std::vector<kinflow::dense_layer<double>> layers(sizes.size() - 1);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    layers[l].weight = kinflow::standard_normal<double>(sizes[l + 1], sizes[l], seed + 2 * l) /
                       std::sqrt(static_cast<double>(sizes[l]));
    layers[l].bias = 0.5 * kinflow::standard_normal<double>(sizes[l + 1], 1, seed + 2 * l + 1);
  }
  return layers;
}

template <class Scalar>
std::vector<kinflow::dense_layer<Scalar>> cast_layers(const std::vector<kinflow::dense_layer<double>>& layers) {
  std::vector<kinflow::dense_layer<Scalar>> out(layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    out[l].weight = layers[l].weight.cast<Scalar>();
    out[l].bias = layers[l].bias.cast<Scalar>();
  }
  return out;
}

kinflow::time_features<double> make_time(bool sinusoidal) {
  kinflow::time_features<double> time;
  if (sinusoidal) {
    time.encoding = kinflow::time_encoding::sinusoidal;
    time.frequencies.resize(2);
    time.frequencies << 1.0, 3.0;
  }
  return time;
}

// Smallest |pre-activation| of the hidden layers at (x, t), computed here plainly: how far
// column x is from a kink of a ReLU net.
double kink_margin(const std::vector<kinflow::dense_layer<double>>& layers, const kinflow::time_features<double>& time,
                   const Eigen::VectorXd& x, double t) {
  Eigen::VectorXd h(x.size() + time.size());
  h.head(x.size()) = x;
  if (time.encoding == kinflow::time_encoding::raw) {
    h(x.size()) = t;
  } else {
    const Eigen::Index K = time.frequencies.size();
    for (Eigen::Index k = 0; k < K; ++k) {
      h(x.size() + k) = std::sin(time.frequencies(k) * t);
      h(x.size() + K + k) = std::cos(time.frequencies(k) * t);
    }
  }
  double margin = std::numeric_limits<double>::infinity();
  for (std::size_t l = 0; l + 1 < layers.size(); ++l) {
    const Eigen::VectorXd z = layers[l].weight * h + layers[l].bias;
    margin = std::min(margin, z.cwiseAbs().minCoeff());
    h = z.cwiseMax(0.0);
  }
  return margin;
}

// Σ_r (v_r(x + h e_r) - v_r(x - h e_r)) / (2h) from the field's own velocity.
double central_divergence(const kinflow::mlp_field<double>& f, double t, const Eigen::VectorXd& x, double h) {
  double sum = 0;
  for (Eigen::Index r = 0; r < x.size(); ++r) {
    Eigen::VectorXd xp = x, xm = x;
    xp(r) += h;
    xm(r) -= h;
    sum += (f(t, xp)(r) - f(t, xm)(r)) / (2 * h);
  }
  return sum;
}

}  // namespace

TEST_CASE("mlp_field divergence matches central differences, each activation", "[mlp][divergence]") {
  using kinflow::mlp_activation;
  int checked_relu = 0, skipped_relu = 0;
  for (const auto act : {mlp_activation::silu, mlp_activation::relu, mlp_activation::tanh, mlp_activation::gelu}) {
    for (const Eigen::Index d : {Eigen::Index{2}, Eigen::Index{5}}) {
      for (const bool sinusoidal : {false, true}) {
        const auto time = make_time(sinusoidal);
        const auto layers = random_layers(d, time.size(), {16, 12}, 100 + static_cast<std::uint64_t>(d) + (sinusoidal ? 7 : 0));
        const kinflow::mlp_field<double> f(layers, act, time);
        const Eigen::Index B = 12;
        const auto X = (1.5 * kinflow::standard_normal<double>(d, B, 300 + static_cast<std::uint64_t>(d))).eval();
        for (const double t : {0.0, 0.35, 1.0}) {
          kinflow::per_sample<double> D;
          f.divergence(t, X, D);
          REQUIRE(D.size() == B);
          REQUIRE(D.allFinite());
          for (Eigen::Index j = 0; j < B; ++j) {
            INFO("activation " << static_cast<int>(act) << " d = " << d << " sinusoidal " << sinusoidal
                               << " t = " << t << " column " << j);
            const Eigen::VectorXd x = X.col(j);
            const double v_abs = f(t, x).cwiseAbs().maxCoeff();
            if (act == mlp_activation::relu) {
              // Piecewise linear: away from a kink the central difference is exact but for
              // rounding, about sqrt(2d) ε |v| / h ≈ 7e-10 |v| at h = 1e-6 (observed: below
              // 3e-10); a step changes a pre-activation by at most h Σ|W| < 1e-4, so columns
              // within 1e-3 of a kink are skipped (and counted).
              if (kink_margin(layers, time, x, t) < 1e-3) {
                ++skipped_relu;
                continue;
              }
              ++checked_relu;
              CHECK(std::abs(D(j) - central_divergence(f, t, x, 1e-6)) <= 1e-8 * (1 + v_abs));
            } else {
              // Richardson-extrapolated central differences, (4 C(h/2) - C(h))/3: truncation
              // O(h⁴) ≈ 1e-12 for these O(1)-scaled nets at h = 1e-3, rounding about
              // sqrt(2d) ε |v| / h ≈ 1e-12 |v| (observed: below 1e-12). 1e-10 leaves a
              // margin of ~100 for the constants; a wrong derivative or a missing layer is O(1).
              const double fd = (4 * central_divergence(f, t, x, 5e-4) - central_divergence(f, t, x, 1e-3)) / 3;
              CHECK(std::abs(D(j) - fd) <= 1e-10 * (1 + v_abs + std::abs(fd)));
            }
          }
        }
      }
    }
  }
  CHECK(checked_relu > 8 * skipped_relu);
}

TEST_CASE("mlp_field divergence of the hand-worked 2-2-2 net", "[mlp][divergence]") {
  // J = W1 diag(σ'(z)) W0[:, :2]; tr J = Σ_i σ'(z_i) Σ_r W1(r, i) W0(i, r)
  //      = σ'(1.7)·(1·0.5 + 0.5·(-1)) + σ'(-0.3)·(-2·1.5 + 0.75·0.25) = -2.8125 σ'(-0.3).
  //   relu: σ'(-0.3) = 0                                   -> 0
  //   tanh: 1 - tanh²(0.3)                                 -> -2.5738227051373945
  //   silu: s(1 + z(1 - s)), s = 1/(1 + e^{0.3})           -> -0.9906187209781423
  //   gelu: ½(1 + erf(-0.3/√2)) - 0.3 e^{-0.045}/√(2π)     -> -0.7528281557987535
  struct expected { kinflow::mlp_activation a; double div; };
  const expected cases[] = {
      {kinflow::mlp_activation::relu, 0.0},
      {kinflow::mlp_activation::tanh, -2.5738227051373945},
      {kinflow::mlp_activation::silu, -0.9906187209781423},
      {kinflow::mlp_activation::gelu, -0.7528281557987535},
  };
  for (const auto& c : cases) {
    INFO("activation " << static_cast<int>(c.a));
    const kinflow::mlp_field<double> f(hand_layers<double>(false), c.a);
    kinflow::batch<double, 2> X(2, 3);
    X.colwise() = Eigen::Vector2d(0.8, -0.6);
    const kinflow::per_sample<double> D = f.divergence(0.3, X);
    for (Eigen::Index j = 0; j < 3; ++j) CHECK(D(j) == Approx(c.div).epsilon(1e-14).margin(1e-15));
    const kinflow::mlp_field<float> ff(hand_layers<float>(false), c.a);
    kinflow::per_sample<float> Df;
    ff.divergence(0.3f, X.cast<float>().eval(), Df);
    CHECK(Df(0) == Approx(c.div).epsilon(1e-5).margin(1e-6));
  }
}

TEST_CASE("mlp_field divergence_at_times: each column at its own time", "[mlp][divergence]") {
  for (const bool sinusoidal : {false, true}) {
    const auto time = make_time(sinusoidal);
    const Eigen::Index d = 5;
    // A wide hidden layer: tiles of tile_columns() / d columns, so 300 columns cross tiles.
    const auto layers = random_layers(d, time.size(), {512, 24}, 500);
    const kinflow::mlp_field<double> f(layers, kinflow::mlp_activation::silu, time);
    REQUIRE(f.divergence_tile_columns() == f.tile_columns() / d);
    const Eigen::Index B = 300;
    REQUIRE(B > 2 * f.divergence_tile_columns());
    const auto X = kinflow::standard_normal<double>(d, B, 600);
    const kinflow::sample_times<double> T = kinflow::sample_times<double>::LinSpaced(B, 0.0, 1.0);
    kinflow::per_sample<double> Dt, D1;
    f.divergence_at_times(T, X, Dt);
    REQUIRE(Dt.size() == B);
    double worst = 0, scale = 1;
    for (Eigen::Index j = 0; j < B; ++j) {
      const Eigen::MatrixXd xj = X.col(j);
      f.divergence(T(j), xj, D1);
      // One shared time folds φ(t) into the first bias (as for velocities): the same sums in
      // another order, equal up to rounding.
      worst = std::max(worst, std::abs(D1(0) - Dt(j)));
      scale = std::max(scale, std::abs(Dt(j)));
      kinflow::per_sample<double> Dj;
      f.divergence_at_times(T.segment(j, 1), xj, Dj);
      CHECK(std::abs(Dj(0) - Dt(j)) <= 1e-13 * (1 + std::abs(Dt(j))));
    }
    CHECK(worst <= 1e-13 * scale);
    // A shared time through both forms.
    kinflow::per_sample<double> Ds, Dc;
    f.divergence(0.4, X, Ds);
    f.divergence_at_times(kinflow::sample_times<double>::Constant(B, 0.4), X, Dc);
    CHECK((Ds - Dc).cwiseAbs().maxCoeff() <= 1e-13 * (1 + Dc.cwiseAbs().maxCoeff()));
    // An input expression takes the unfolded path; the returning overload gives the same.
    CHECK((f.divergence(0.4, X * 1.0) - Dc).cwiseAbs().maxCoeff() <= 1e-13 * (1 + Dc.cwiseAbs().maxCoeff()));
    CHECK(f.divergence(0.4, X) == Ds);
    // Smaller batches reuse the buffers without stale values.
    kinflow::per_sample<double> D3;
    f.divergence(0.4, X.leftCols(3).eval(), D3);
    CHECK((D3 - Ds.head(3)).cwiseAbs().maxCoeff() <= 1e-13 * (1 + Ds.head(3).cwiseAbs().maxCoeff()));

    // float agrees with double to float rounding.
    const kinflow::mlp_field<float> ff(cast_layers<float>(layers), kinflow::mlp_activation::silu,
                                       {time.encoding, time.frequencies.cast<float>()});
    kinflow::per_sample<float> Df;
    ff.divergence_at_times(T.cast<float>(), X.cast<float>().eval(), Df);
    CHECK((Df.cast<double>() - Dt).cwiseAbs().maxCoeff() <= 1e-4 * (1 + Dt.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE("mlp_field divergence: one linear layer, errors", "[mlp][divergence]") {
  // v = W [x; t] + b: div v = W(0, 0) + W(1, 1), whatever x and t.
  std::vector<kinflow::dense_layer<double>> one(1);
  one[0].weight.resize(2, 3);
  one[0].weight << 0.5, -1.0, 2.0, 1.5, 0.25, -0.5;
  one[0].bias = Eigen::Vector2d(0.1, -1.2);
  const kinflow::mlp_field<double> f(one, kinflow::mlp_activation::tanh);
  const auto X = kinflow::standard_normal<double, 2>(2, 4, 1);
  const kinflow::per_sample<double> D = f.divergence(0.7, X);
  CHECK((D.array() == 0.75).all());
  kinflow::per_sample<double> Dt;
  f.divergence_at_times(kinflow::sample_times<double>::LinSpaced(4, 0, 1), X, Dt);
  CHECK((Dt.array() == 0.75).all());

  const kinflow::mlp_field<double> g(hand_layers<double>(false), kinflow::mlp_activation::relu);
  Eigen::MatrixXd bad(3, 4);
  bad.setZero();
  kinflow::per_sample<double> E;
  CHECK_THROWS_AS(g.divergence(0.1, bad, E), kinflow::dimension_mismatch);
  CHECK_THROWS_AS(g.divergence_at_times(kinflow::sample_times<double>::Zero(3), X, E), kinflow::dimension_mismatch);
}
