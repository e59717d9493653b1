// Trained-model fields: kinflow::mlp_field against the MLP forward pass a user writes with
// Eigen by hand, and (in a build with the TorchScript adapter) against the same network run
// by libtorch through kinflow::torchscript_field, all on one thread.
//
// Two networks, both with the sinusoidal time embedding of the committed model (K = 4):
//   small: the committed 8gaussians model, 2 + 8 → 32 → 32 → 2, SiLU
//   wide:  random weights, 2 + 8 → 256 → 256 → 256 → 2, SiLU
// Benchmarks, for batches of B = 256 and 4096: one batched evaluation (float and double) and
// a whole sampling run (Euler, 100 steps, KTS gain and kinetic path energy on, float).
// Reported as time per sample-evaluation, with ratios in the same run.
//
// smoke-filter: small/.*/B:256

#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench_ratios.hpp"
#include "kinflow/data/random.hpp"
#include "kinflow/fields/shaped.hpp"
#include "kinflow/integrators/explicit_rk.hpp"
#include "kinflow/models/mlp.hpp"
#include "kinflow/models/mlp_npz.hpp"
#include "kinflow/schedules/kts.hpp"
#ifdef KINFLOW_HAVE_TORCHSCRIPT
#include <filesystem>
#include <unistd.h>

#include "kinflow/models/torchscript.hpp"
#endif

#ifndef KINFLOW_MODELS_DIR
#define KINFLOW_MODELS_DIR "examples/models"
#endif

namespace {

template <class S>
using matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
template <class S>
using vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;

constexpr int kSteps = 100;
const kinflow::kts_options kKts{.alpha0 = 0.1, .beta0 = 0.03, .tau = 0.6};

template <class S>
kinflow::mlp_field<S> make_model(bool wide) {
  const auto small = kinflow::load_mlp_field<S>(KINFLOW_MODELS_DIR "/fm_mlp_8gaussians.npz");
  if (!wide) return small;
  std::vector<kinflow::dense_layer<S>> layers;
  const std::vector<Eigen::Index> sizes{10, 256, 256, 256, 2};
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    kinflow::dense_layer<S> L;
    const auto W = kinflow::standard_normal<double>(sizes[l + 1], sizes[l], 100 + l);
    L.weight = (W / std::sqrt(static_cast<double>(sizes[l]))).template cast<S>();
    L.bias = vector<S>::Constant(sizes[l + 1], S(0.01));
    layers.push_back(std::move(L));
  }
  return kinflow::mlp_field<S>(std::move(layers), kinflow::mlp_activation::silu, small.time());
}

/// The forward pass as one writes it with Eigen without kinflow: the input with its time
/// rows, then one expression per layer (each allocating its result).
template <class S>
struct handwritten_mlp {
  std::vector<matrix<S>> W;
  std::vector<vector<S>> b;
  vector<S> freq;

  explicit handwritten_mlp(const kinflow::mlp_field<S>& f) : freq(f.time().frequencies) {
    for (const auto& L : f.layers()) W.push_back(L.weight), b.push_back(L.bias);
  }
  matrix<S> operator()(S t, const matrix<S>& X) const {
    const Eigen::Index d = X.rows(), K = freq.size();
    matrix<S> h(d + 2 * K, X.cols());
    h.topRows(d) = X;
    for (Eigen::Index k = 0; k < K; ++k) {
      h.row(d + k).setConstant(std::sin(freq(k) * t));
      h.row(d + K + k).setConstant(std::cos(freq(k) * t));
    }
    for (std::size_t l = 0; l + 1 < W.size(); ++l) {
      matrix<S> z = (W[l] * h).colwise() + b[l];
      h = z.array() / (S(1) + (-z.array()).exp());
    }
    return (W.back() * h).colwise() + b.back();
  }
};

void per_sample_eval(benchmark::State& state, double evals_per_iteration) {
  state.counters["sec/sample-eval"] = benchmark::Counter(
      evals_per_iteration, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

template <class S>
matrix<S> noise(Eigen::Index B) {
  return kinflow::standard_normal<double>(2, B, 7).template cast<S>();
}

// --- one batched evaluation ---------------------------------------------------------

/// Batched evaluations of a kinflow field at a time that moves between calls.
template <class S, class Field>
void eval_field(benchmark::State& state, Field& f) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const matrix<S> X = noise<S>(B);
  matrix<S> V(2, B);
  S t = S(0.3);
  for (auto _ : state) {
    f(t, X, V);
    benchmark::DoNotOptimize(V.data());
    t = t < S(0.9) ? t + S(0.01) : S(0.1);
  }
  per_sample_eval(state, static_cast<double>(B));
}

template <class S>
void eval_kinflow(benchmark::State& state, bool wide) {
  auto f = make_model<S>(wide);
  eval_field<S>(state, f);
}

template <class S>
void eval_handwritten(benchmark::State& state, bool wide) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const handwritten_mlp<S> f(make_model<S>(wide));
  const matrix<S> X = noise<S>(B);
  S t = S(0.3);
  for (auto _ : state) {
    matrix<S> V = f(t, X);
    benchmark::DoNotOptimize(V.data());
    t = t < S(0.9) ? t + S(0.01) : S(0.1);
  }
  per_sample_eval(state, static_cast<double>(B));
}

// --- a sampling run: Euler + KTS + KPE -----------------------------------------------

/// Whole sampling runs of a kinflow field through kinflow's integrator.
template <class Field>
void sample_field(benchmark::State& state, Field& f) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const matrix<float> X0 = noise<float>(B);
  const auto grid = kinflow::time_grid<>::uniform(kSteps);
  kinflow::fixed_step_options opt;
  opt.kpe.tau = kKts.tau;
  for (auto _ : state) {
    matrix<float> X = X0;
    auto r = kinflow::integrate(kinflow::shaped(f, kKts), kinflow::euler, grid, X, opt);
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(r.kpe.total.data());
  }
  per_sample_eval(state, static_cast<double>(B) * kSteps);
}

void sample_kinflow(benchmark::State& state, bool wide) {
  auto f = make_model<float>(wide);
  sample_field(state, f);
}

void sample_handwritten(benchmark::State& state, bool wide) {
  const auto B = static_cast<Eigen::Index>(state.range(0));
  const handwritten_mlp<float> f(make_model<float>(wide));
  const kinflow::kts_gain eta(kKts);
  const matrix<float> X0 = noise<float>(B);
  for (auto _ : state) {
    matrix<float> X = X0;
    Eigen::ArrayXf early = Eigen::ArrayXf::Zero(B), late = Eigen::ArrayXf::Zero(B);
    const double h = 1.0 / kSteps;
    for (int n = 0; n < kSteps; ++n) {
      const double t = n * h;
      matrix<float> V = static_cast<float>(eta(t)) * f(static_cast<float>(t), X);
      (t < kKts.tau ? early : late) += static_cast<float>(0.5 * h) * V.colwise().squaredNorm().transpose().array();
      X += static_cast<float>(h) * V;
    }
    benchmark::DoNotOptimize(X.data());
    benchmark::DoNotOptimize(late.data());
  }
  per_sample_eval(state, static_cast<double>(B) * kSteps);
}

#ifdef KINFLOW_HAVE_TORCHSCRIPT
/// The network as a TorchScript module (what nn.Linear and nn.SiLU run: aten::linear, aten::silu), saved
/// to a temporary file and loaded by kinflow::torchscript_field on one libtorch thread.
std::string torchscript_file(bool wide) {
  const auto f = make_model<double>(wide);
  torch::jit::Module m("kinflow_bench_mlp");
  const auto& layers = f.layers();
  auto tensor = [](const auto& e) {
    const matrix<double> rowmajor_t = e.transpose();  // Eigen column-major -> torch row-major
    return torch::from_blob(const_cast<double*>(rowmajor_t.data()), {e.rows(), e.cols()}, torch::kFloat64).clone();
  };
  std::string src = "def forward(self, t, x):\n    wt = t.reshape(-1, 1) * self.freq.reshape(1, -1)\n"
                    "    h = torch.cat([x, torch.sin(wt), torch.cos(wt)], dim=1)\n";
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const std::string n = std::to_string(l);
    m.register_parameter("w" + n, tensor(layers[l].weight), false);
    m.register_parameter("b" + n, tensor(matrix<double>(layers[l].bias)).reshape({-1}), false);
    src += "    h = torch.linear(h, self.w" + n + ", self.b" + n + ")\n";
    if (l + 1 < layers.size()) src += "    h = torch.silu(h)\n";
  }
  src += "    return h\n";
  m.register_buffer("freq", tensor(matrix<double>(f.time().frequencies)).reshape({-1}));
  m.define(src);
  const auto path = std::filesystem::temp_directory_path() /
                    ("kinflow_bench_mlp_" + std::string(wide ? "wide" : "small") + "_" +
                     std::to_string(::getpid()) + ".pt");
  m.save(path.string());
  return path.string();
}

template <class S>
kinflow::torchscript_field<S> torchscript_model(bool wide) {
  const std::string path = torchscript_file(wide);
  kinflow::torchscript_field<S> f(path, 2, {.threads = 1});
  std::filesystem::remove(path);
  return f;
}

template <class S>
void eval_torchscript(benchmark::State& state, bool wide) {
  auto f = torchscript_model<S>(wide);
  eval_field<S>(state, f);
}

void sample_torchscript(benchmark::State& state, bool wide) {
  auto f = torchscript_model<float>(wide);
  sample_field(state, f);
}
#endif

void register_all() {
  for (const bool wide : {false, true}) {
    const std::string net = wide ? "wide" : "small";
    auto reg = [&](const std::string& name, auto fn) {
      auto* b = benchmark::RegisterBenchmark(name.c_str(), fn, wide);
      for (long B : {256L, 4096L}) b->Arg(B);
      b->ArgName("B")->Unit(benchmark::kMicrosecond)->UseRealTime();
    };
    reg("eval/float/" + net + "/kinflow", eval_kinflow<float>);
    reg("eval/float/" + net + "/handwritten", eval_handwritten<float>);
    reg("eval/double/" + net + "/kinflow", eval_kinflow<double>);
    reg("eval/double/" + net + "/handwritten", eval_handwritten<double>);
    reg("sample/float/" + net + "/kinflow", sample_kinflow);
    reg("sample/float/" + net + "/handwritten", sample_handwritten);
#ifdef KINFLOW_HAVE_TORCHSCRIPT
    reg("eval/float/" + net + "/torchscript", eval_torchscript<float>);
    reg("eval/double/" + net + "/torchscript", eval_torchscript<double>);
    reg("sample/float/" + net + "/torchscript", sample_torchscript);
#endif
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  return kinflow_bench::run_with_ratios(argc, argv,
                                        {{"/kinflow/", "/handwritten/", "kinflow/hand-written"},
                                         {"/kinflow/", "/torchscript/", "kinflow/TorchScript"}});
}
