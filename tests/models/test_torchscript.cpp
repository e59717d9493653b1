// The TorchScript adapter against the Eigen MLP field on the same trained weights
// (examples/models/fm_mlp_8gaussians.{pt,npz}, one model exported both ways), and its errors.

#include "kinflow/models/torchscript.hpp"

#include "kinflow/data/random.hpp"
#include "kinflow/fields/guidance.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/models/mlp_npz.hpp"
#include "kinflow/schedules/time_grid.hpp"
#include "kinflow_catch.hpp"
#include "npz_writer.hpp"

#include <unistd.h>

#include <filesystem>
#include <string>

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

TEST_CASE("a class-conditional module: forward(t, x, c), guided like the Eigen network", "[torchscript]") {
  const std::string dir = models_dir().string();
  kinflow::torchscript_field<double> ts(dir + "/fm_cmlp_8gaussians.pt", 2, {1});
  const auto mlp = kinflow::load_mlp_field<double>(dir + "/fm_cmlp_8gaussians.npz");
  const auto X = kinflow::standard_normal<double, 2>(2, 90, 6);
  kinflow::class_labels C(90);
  for (Eigen::Index j = 0; j < 90; ++j) C(j) = j % 9 - 1;
  kinflow::batch<double, 2> V1(2, 90), V2(2, 90);
  ts(0.4, X, C, V1);
  mlp(0.4, X, C, V2);
  CHECK((V1 - V2).cwiseAbs().maxCoeff() <= 1e-12 * (1 + V2.cwiseAbs().maxCoeff()));
  const kinflow::sample_times<double> T = kinflow::sample_times<double>::LinSpaced(90, 0, 1);
  ts.velocity_at_times(T, X, C, V1);
  mlp.velocity_at_times(T, X, C, V2);
  CHECK((V1 - V2).cwiseAbs().maxCoeff() <= 1e-12 * (1 + V2.cwiseAbs().maxCoeff()));
  // Guided solves of the two agree (the module evaluated twice per stage, v_c and v_u).
  auto Xa = X, Xb = X;
  const auto grid = kinflow::time_grid<>::uniform(10);
  (void)kinflow::integrate(kinflow::guided(ts, C, {.scale = 2.5}), kinflow::rk4, grid, Xa);
  (void)kinflow::integrate(kinflow::guided(mlp, C, {.scale = 2.5}), kinflow::rk4, grid, Xb);
  CHECK((Xa - Xb).cwiseAbs().maxCoeff() <= 1e-11);
  // An unconditional module called with classes: its forward fails, named as such.
  kinflow::torchscript_field<double> plain(model(".pt"), 2, {1});
  CHECK_THROWS_WITH(plain(0.4, X, C, V1), kinflow_test::contains("fm_mlp_8gaussians.pt") &&
                                              kinflow_test::contains("class-conditional"));
  CHECK_THROWS_AS(ts(0.4, X, kinflow::class_labels::Zero(3), V1), kinflow::dimension_mismatch);
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
  // The interpreter's own error, on one line (its traceback through the module is dropped).
  try {
    wrong(0.1, X, V);
  } catch (const kinflow::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("cannot be multiplied") != std::string::npos);
    CHECK(what.find('\n') == std::string::npos);
  }

  kinflow::torchscript_field<double> ts(model(".pt"), 2);
  Eigen::MatrixXd X2 = Eigen::MatrixXd::Zero(2, 4), V3(3, 4);
  CHECK_THROWS_AS(ts(0.1, X2, V3), kinflow::dimension_mismatch);
}

namespace {

// A TorchScript module compiled here from source and saved to a temporary file, so that
// modules with deliberately wrong signatures or outputs need no committed fixtures.
struct scripted_module {
  std::filesystem::path path;
  explicit scripted_module(const std::string& name, const std::string& source) {
    torch::jit::Module m("kinflow_test_" + name);
    m.define(source);
    path = std::filesystem::temp_directory_path() /
           ("kinflow_test_" + name + "_" + std::to_string(::getpid()) + ".pt");
    m.save(path.string());
  }
  ~scripted_module() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  scripted_module(const scripted_module&) = delete;
  scripted_module& operator=(const scripted_module&) = delete;
};

}  // namespace

TEST_CASE("torchscript_field maps [B, d] tensors to kinflow's d x B layout", "[torchscript]") {
  // v_0 = t * x_1, v_1 = x_0 + 1, v_2 = -x_2: mixes the coordinates, so a transposed or
  // shifted layout on either side would give other numbers.
  const scripted_module mod("layout", R"(
def forward(self, t, x):
    return torch.stack([t * x[:, 1], x[:, 0] + 1.0, -x[:, 2]], dim=1)
)");
  const auto X = kinflow::standard_normal<double>(3, 7, 21);
  const kinflow::sample_times<double> T = kinflow::sample_times<double>::LinSpaced(7, 0.1, 0.7);
  auto check = [&](auto scalar) {
    using S = decltype(scalar);
    kinflow::torchscript_field<S> field(mod.path.string(), 3);
    const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> Xs = X.cast<S>();
    Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> V(3, 7);
    field.velocity_at_times(T.cast<S>(), Xs, V);
    for (Eigen::Index j = 0; j < 7; ++j) {
      CHECK(V(0, j) == Approx(static_cast<double>(static_cast<S>(T(j)) * Xs(1, j))).epsilon(1e-6));
      CHECK(V(1, j) == Approx(static_cast<double>(Xs(0, j)) + 1).epsilon(1e-6));
      CHECK(V(2, j) == -Xs(2, j));
    }
    field(S(0.5), Xs, V);
    CHECK(V.row(0).isApprox(S(0.5) * Xs.row(1)));
  };
  check(0.0);
  check(0.0f);
}

TEST_CASE("torchscript_field rejects modules whose output does not fit", "[torchscript][errors]") {
  using kinflow_test::contains;
  Eigen::MatrixXd X = Eigen::MatrixXd::Ones(2, 4), V(2, 4);

  const scripted_module column("column", "def forward(self, t, x):\n    return x[:, 0]\n");
  kinflow::torchscript_field<double> f1(column.path.string(), 2);
  CHECK_THROWS_AS(f1(0.5, X, V), kinflow::dimension_mismatch);
  CHECK_THROWS_WITH(f1(0.5, X, V), contains(column.path.string()) && contains("shape [4]") &&
                                       contains("expected [4, 2]"));

  const scripted_module transposed("transposed", "def forward(self, t, x):\n    return x.t()\n");
  kinflow::torchscript_field<double> f2(transposed.path.string(), 2);
  CHECK_THROWS_WITH(f2(0.5, X, V), contains("shape [2, 4]") && contains("expected [4, 2]"));

  const scripted_module wider("wider", "def forward(self, t, x):\n    return torch.cat([x, x], dim=1)\n");
  kinflow::torchscript_field<double> f3(wider.path.string(), 2);
  CHECK_THROWS_WITH(f3(0.5, X, V), contains("shape [4, 4]") && contains("expected [4, 2]"));

  const scripted_module tuple("tuple", "def forward(self, t, x):\n    return (x, t)\n");
  kinflow::torchscript_field<double> f4(tuple.path.string(), 2);
  CHECK_THROWS_WITH(f4(0.5, X, V), contains(tuple.path.string()) && contains("forward returned Tuple") &&
                                       contains("expected a Tensor[B, d]"));

  const scripted_module one_arg("one_arg", "def forward(self, x):\n    return x\n");
  kinflow::torchscript_field<double> f5(one_arg.path.string(), 2);
  CHECK_THROWS_WITH(f5(0.5, X, V), contains(one_arg.path.string()) &&
                                       contains("forward(t: Tensor[B], x: Tensor[B, d]) -> Tensor[B, d]"));

  // A module computing in another dtype is converted to the field's scalar.
  const scripted_module half("as_float", "def forward(self, t, x):\n    return (2.0 * x).float()\n");
  kinflow::torchscript_field<double> f6(half.path.string(), 2);
  f6(0.5, X, V);
  CHECK(V.isApprox(2.0 * X));
}
