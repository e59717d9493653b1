// The TorchScript adapter against the Eigen MLP field on the same trained weights
// (examples/models/fm_mlp_8gaussians.{pt,npz}, one model exported both ways), and its errors.

#include "kinflow/models/torchscript.hpp"

#include "kinflow/data/random.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/models/mlp.hpp"
#include "kinflow/schedules/time_grid.hpp"
#include "kinflow_catch.hpp"
#include "npz_writer.hpp"

using kinflow_test::models_dir;

namespace {
std::string model(const char* ext) { return (models_dir() / ("fm_mlp_8gaussians" + std::string(ext))).string(); }
}  // namespace

TEST_CASE("torchscript_field agrees with mlp_field on the same weights", "[torchscript]") {
  kinflow::torchscript_field<double> ts(model(".pt"), 2, {1});
  const auto mlp = kinflow::load_mlp_field<double>(model(".npz"));
  CHECK(ts.dim() == 2);
  const auto X = kinflow::standard_normal<double, 2>(2, 300, 4);
  kinflow::batch<double, 2> V1(2, 300), V2(2, 300);
  for (const double t : {0.0, 0.3, 1.0}) {
    ts(t, X, V1);
    mlp(t, X, V2);
    CHECK((V1 - V2).cwiseAbs().maxCoeff() <= 1e-12 * (1 + V2.cwiseAbs().maxCoeff()));
  }
  const kinflow::sample_times<double> T = kinflow::sample_times<double>::LinSpaced(300, 0, 1);
  ts.velocity_at_times(T, X, V1);
  mlp.velocity_at_times(T, X, V2);
  CHECK((V1 - V2).cwiseAbs().maxCoeff() <= 1e-12 * (1 + V2.cwiseAbs().maxCoeff()));

  // A non-contiguous input (a block of a wider matrix) is staged, with the same result.
  Eigen::MatrixXd wide(3, 300);
  wide.topRows(2) = X;
  wide.row(2).setZero();
  Eigen::MatrixXd Vb(2, 300);
  ts(0.3, wide.topRows(2), Vb);
  mlp(0.3, X, V2);
  CHECK((Vb - V2).cwiseAbs().maxCoeff() <= 1e-12 * (1 + V2.cwiseAbs().maxCoeff()));
}

TEST_CASE("torchscript_field in float, and inside rk4", "[torchscript]") {
  kinflow::torchscript_field<float> tf(model(".pt"), 2);
  const auto mlp = kinflow::load_mlp_field<double>(model(".npz"));
  auto X = kinflow::standard_normal<double, 2>(2, 200, 8);
  kinflow::batch<float, 2> Xf = X.cast<float>(), Vf(2, 200);
  kinflow::batch<double, 2> V(2, 200);
  tf(0.6f, Xf, Vf);
  mlp(0.6, X, V);
  CHECK((Vf.cast<double>() - V).cwiseAbs().maxCoeff() <= 1e-5 * (1 + V.cwiseAbs().maxCoeff()));

  kinflow::torchscript_field<double> ts(model(".pt"), 2);
  auto Y = X;
  const int N = 20;
  const auto r = kinflow::integrate(ts, kinflow::rk4, kinflow::time_grid<>::uniform(N), X);
  kinflow::integrate(mlp, kinflow::rk4, kinflow::time_grid<>::uniform(N), Y);
  CHECK((r.nfe.array() == 4 * N).all());
  CHECK((X - Y).cwiseAbs().maxCoeff() <= 1e-10);
}

TEST_CASE("torchscript_field errors name the file and the problem", "[torchscript][errors]") {
  using kinflow_test::contains;
  const std::string missing = model(".pt") + "-missing";
  CHECK_THROWS_WITH(kinflow::torchscript_field<double>(missing, 2), contains(missing) && contains("no such file"));
  CHECK_THROWS_WITH(kinflow::torchscript_field<double>(model(".npz"), 2),
                    contains("fm_mlp_8gaussians.npz") && contains("not a loadable TorchScript module"));
  CHECK_THROWS_WITH(kinflow::torchscript_field<double>(model(".pt"), 0), contains("dim = 0"));
  CHECK_THROWS_WITH(kinflow::torchscript_field<double>(model(".pt"), 2, {-1}), contains("threads = -1"));

  // The module takes 2-D states: a 3-D field makes forward fail inside the module.
  kinflow::torchscript_field<double> wrong(model(".pt"), 3);
  Eigen::MatrixXd X = Eigen::MatrixXd::Zero(3, 4), V(3, 4);
  CHECK_THROWS_WITH(wrong(0.1, X, V), contains("fm_mlp_8gaussians.pt") && contains("forward(t[B], x[B, d]) failed"));

  kinflow::torchscript_field<double> ts(model(".pt"), 2);
  Eigen::MatrixXd X2 = Eigen::MatrixXd::Zero(2, 4), V3(3, 4);
  CHECK_THROWS_AS(ts(0.1, X2, V3), kinflow::dimension_mismatch);
}
