// kinflow-sample: sample a closed-form flow-matching field on a toy dataset (or a CSV
// training set), or a trained model (--model), measure every sample's kinetic path energy,
// optionally shape the velocity with Kinetic Trajectory Shaping, and report memorization
// and distribution metrics.
//
// Writes DIR/samples.csv, DIR/summary.json, DIR/train.csv (the training set used) and, with
// --trajectories K, DIR/trajectories.csv.
// Run with --help for every option.

#include <kinflow/kinflow.hpp>
#include <kinflow/data/csv.hpp>
#include <kinflow/data/random.hpp>
#include <kinflow/data/toy2d.hpp>
#include <kinflow/metrics/density.hpp>
#include <kinflow/metrics/memorization.hpp>
#include <kinflow/metrics/nearest_neighbors.hpp>
#include <kinflow/metrics/rank_correlation.hpp>
#include <kinflow/metrics/wasserstein.hpp>
#include <kinflow/models/mlp.hpp>
#if KINFLOW_HAVE_TORCHSCRIPT
#include <kinflow/models/torchscript.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "example_cli.hpp"

namespace {

using kinflow_examples::json_escape;
using kinflow_examples::to_double;
using kinflow_examples::to_long;
using kinflow_examples::usage_error;

// ---------------------------------------------------------------------------------------
// Command line

struct settings {
  std::string dataset = "8gaussians";
  std::string train_file;
  long n_train = 1000;
  long samples = 2000;
  std::string noise_file;
  long seed = 0;
  std::string field = "empirical";  // empirical | smoothed:S | gmm | model (with --model)
  std::string model;                // --model FILE (.npz, or .pt with TorchScript support)
  double smoothing = 0;             // S of smoothed:S
  double sigma_min = 0;
  std::string solver = "euler";
  long steps = 100;
  std::string grid = "uniform";  // uniform | cosine | edm | shift:S | energy
  double shift = 1;
  double rtol = 1e-5, atol = 1e-5;
  std::string precision = "double";
  kinflow::kts_options kts{};
  std::string kpe = "stage";
  long trajectories = 0;
  std::string out = "kinflow-out";
  bool quiet = false;
  bool likelihood = false;  // --likelihood: per-sample log-likelihood beside the KPE
  long probes = 1;          // Hutchinson probes when the field has no exact divergence
};

const char* const kHelp =
    "kinflow-sample: sample a closed-form flow-matching field or a trained model, measure each\n"
    "sample's kinetic path energy (KPE), optionally apply Kinetic Trajectory Shaping (KTS),\n"
    "and report memorization and distribution metrics.\n"
    "\n"
    "Input\n"
    "  --dataset NAME       toy training set: 8gaussians moons checkerboard 2spirals pinwheel\n"
    "                       circles rings swissroll 25gaussians (default 8gaussians)\n"
    "  --train FILE.csv     training set from CSV instead (N rows of d numbers; any d)\n"
    "  --n-train N          training points drawn from --dataset (default 1000)\n"
    "  --samples B          samples to draw (default 2000)\n"
    "  --noise FILE.csv     initial noise x0 from CSV instead (B rows of d numbers, in order)\n"
    "  --seed S             seed of the dataset and the noise (default 0)\n"
    "Field\n"
    "  --field F            empirical (memorizes), smoothed:S (Gaussian of std S at every\n"
    "                       training point), gmm (exact mixture of 8gaussians/25gaussians)\n"
    "  --sigma-min V        sigma_min of the empirical field, in [0, 1) (default 0)\n"
    "  --model FILE         a trained velocity field instead of --field: MLP weights (.npz,\n"
    "                       see examples/models/README.md)"
#if KINFLOW_HAVE_TORCHSCRIPT
    " or a TorchScript module\n"
    "                       (.pt, forward(t[B], x[B, d]) -> v[B, d])"
#endif
    ". The training set (--dataset,\n"
    "                       --train) is then only the reference of the memorization metrics:\n"
    "                       give the model's own, e.g. --train\n"
    "                       examples/models/fm_mlp_8gaussians_train.csv\n"
    "Solver\n"
    "  --solver NAME        euler midpoint heun ralston rk4 (fixed grid), dopri5 tsit5 bs32\n"
    "                       (adaptive) (default euler)\n"
    "  --steps N            fixed-grid steps (default 100)\n"
    "  --grid G             uniform cosine edm shift:S energy (default uniform)\n"
    "  --rtol V --atol V    adaptive tolerances (default 1e-5 both)\n"
    "  --precision P        float or double (default double)\n"
    "Kinetic Trajectory Shaping (eta = 1 + alpha before tau, 1 - beta after)\n"
    "  --alpha0 V --beta0 V --tau V --k V       (defaults 0 0 0.6 3: KTS off)\n"
    "  --early linear|constant|exponential      (default linear)\n"
    "  --late exponential|linear|constant       (default exponential)\n"
    "Kinetic path energy and output\n"
    "  --kpe stage|left     quadrature: the integrator's stages, or the paper's left Riemann sum\n"
    "  --likelihood         also the model log-likelihood of every sample (natural log, column\n"
    "                       log_likelihood; its mean in summary.json), from the same solve:\n"
    "                       log N(x0) - integral of div v, with the field's exact divergence\n"
    "                       (empirical, smoothed, gmm, .npz models) or Hutchinson's estimate\n"
    "  --probes P           Hutchinson probes per stage and sample (default 1; fields without\n"
    "                       an exact divergence, e.g. TorchScript models)\n"
    "  --trajectories K     also write the paths of the first K samples\n"
    "  --out DIR            output directory (default kinflow-out): samples.csv, summary.json,\n"
    "                       train.csv, and trajectories.csv with --trajectories\n"
    "  --quiet              no progress on stderr\n"
    "  --help               this text\n";

/// The embedded pairs, which choose their own steps.
bool is_adaptive(const std::string& solver) { return solver == "dopri5" || solver == "tsit5" || solver == "bs32"; }

kinflow::kts_form to_form(const std::string& flag, const std::string& v) {
  if (v == "linear") return kinflow::kts_form::linear;
  if (v == "constant") return kinflow::kts_form::constant;
  if (v == "exponential") return kinflow::kts_form::exponential;
  usage_error(flag + " = '" + v + "' is invalid; expected linear, constant or exponential");
}

void require_one_of(const std::string& flag, const std::string& v, std::initializer_list<const char*> ok) {
  std::string list;
  for (const char* o : ok) {
    if (v == o) return;
    list += list.empty() ? o : std::string(", ") + o;
  }
  usage_error(flag + " = '" + v + "' is invalid; expected one of " + list);
}

settings parse(int argc, char** argv) {
  settings s;
  bool field_set = false;
  const double inf = std::numeric_limits<double>::infinity();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      std::exit(0);
    }
    if (a == "--quiet") {
      s.quiet = true;
      continue;
    }
    if (a == "--likelihood") {
      s.likelihood = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) usage_error("unexpected argument '" + a + "' (options start with --)");
    static const char* const known[] = {"--dataset", "--train", "--n-train", "--samples", "--noise", "--seed",
                                        "--field", "--sigma-min", "--solver", "--steps", "--grid", "--rtol",
                                        "--atol", "--precision", "--alpha0", "--beta0", "--tau", "--k",
                                        "--early", "--late", "--kpe", "--trajectories", "--out", "--model",
                                        "--probes"};
    if (std::find(std::begin(known), std::end(known), a) == std::end(known)) usage_error("unknown option '" + a + "'");
    if (i + 1 >= argc) usage_error(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--field") field_set = true;
    if (a == "--dataset") s.dataset = v;
    else if (a == "--train") s.train_file = v;
    else if (a == "--n-train") s.n_train = to_long(a, v, 1, 10000000);
    else if (a == "--samples") s.samples = to_long(a, v, 1, 100000000);
    else if (a == "--noise") s.noise_file = v;
    else if (a == "--seed") s.seed = to_long(a, v, 0, std::numeric_limits<long>::max());
    else if (a == "--field") {
      if (v.rfind("smoothed:", 0) == 0) {
        s.field = "smoothed";
        s.smoothing = to_double(a + " smoothed:S", v.substr(9), 1e-12, inf);
      } else {
        require_one_of(a, v, {"empirical", "smoothed:S", "gmm"});
        s.field = v;
      }
    } else if (a == "--sigma-min") s.sigma_min = to_double(a, v, 0, 1, true);
    else if (a == "--solver") {
      require_one_of(a, v, {"euler", "midpoint", "heun", "ralston", "rk4", "dopri5", "tsit5", "bs32"});
      s.solver = v;
    } else if (a == "--steps") s.steps = to_long(a, v, 1, 10000000);
    else if (a == "--grid") {
      if (v.rfind("shift:", 0) == 0) {
        s.grid = "shift";
        s.shift = to_double(a + " shift:S", v.substr(6), 1e-12, inf);
      } else {
        require_one_of(a, v, {"uniform", "cosine", "edm", "shift:S", "energy"});
        s.grid = v;
      }
    } else if (a == "--rtol") s.rtol = to_double(a, v, 1e-15, 1);
    else if (a == "--atol") s.atol = to_double(a, v, 0, 1);
    else if (a == "--precision") {
      require_one_of(a, v, {"float", "double"});
      s.precision = v;
    } else if (a == "--alpha0") s.kts.alpha0 = to_double(a, v, 0, inf);
    else if (a == "--beta0") s.kts.beta0 = to_double(a, v, 0, inf);
    else if (a == "--tau") s.kts.tau = to_double(a, v, 0, 1);
    else if (a == "--k") s.kts.k = to_double(a, v, 1e-12, inf);
    else if (a == "--early") s.kts.early_form = to_form(a, v);
    else if (a == "--late") s.kts.late_form = to_form(a, v);
    else if (a == "--kpe") {
      require_one_of(a, v, {"stage", "left"});
      s.kpe = v;
    } else if (a == "--probes") s.probes = to_long(a, v, 1, 1000);
    else if (a == "--trajectories") s.trajectories = to_long(a, v, 0, 100000000);
    else if (a == "--out") s.out = v;
    else if (a == "--model") {
      if (v.empty()) usage_error("--model needs a file name");
      s.model = v;
    } else usage_error("unknown option '" + a + "'");
  }
  if (!s.model.empty()) {
    if (field_set) usage_error("--field and --model exclude each other: --model is the field");
    if (s.sigma_min != 0) usage_error("--sigma-min applies to the empirical field, not to --model");
    s.field = "model";
  }
  if (!s.train_file.empty() && s.field == "gmm")
    usage_error("--field gmm needs a Gaussian-mixture --dataset (8gaussians or 25gaussians), not --train");
  if (s.field == "gmm" && s.dataset != "8gaussians" && s.dataset != "25gaussians")
    usage_error("--field gmm = exact mixture field: --dataset must be 8gaussians or 25gaussians, not '" +
                s.dataset + "'");
  try {  // KTS parameters are checked together (η must stay positive on [0, 1])
    (void)kinflow::kts_gain(s.kts);
  } catch (const kinflow::invalid_argument& e) {
    usage_error(std::string("--alpha0/--beta0/--tau/--k/--early/--late: ") + e.what());
  }
  if (is_adaptive(s.solver) && s.grid != "uniform")
    usage_error("--grid applies to fixed-step solvers; " + s.solver + " chooses its own steps");
  return s;
}

}  // namespace

namespace {

// ---------------------------------------------------------------------------------------
// Sampling

template <class Scalar>
using dyn_batch = kinflow::batch<Scalar, Eigen::Dynamic>;

/// What one run produces, besides the samples themselves.
template <class Scalar>
struct run_output {
  kinflow::solve_result<Scalar> result;
  std::vector<double> grid;                 // fixed-step grid actually used (empty for dopri5)
  std::vector<std::vector<double>> paths;   // rows: sample, step, t, x...
  std::string divergence;                   // with --likelihood: "exact" or "hutchinson"
};

/// Prints progress on stderr every 10% of a long run.
struct progress_meter {
  bool enabled;
  std::size_t total;
  std::size_t next = 1;
  void operator()(std::size_t done) {
    if (!enabled || total == 0) return;
    while (next <= 10 && done * 10 >= next * total) {
      std::fprintf(stderr, "\rkinflow-sample: %3zu%%", next * 10);
      if (next == 10) std::fputc('\n', stderr);
      std::fflush(stderr);
      ++next;
    }
  }
};

/// The options every solve shares: the KPE quadrature, its split and the likelihood.
/// A shaped field names its own τ (the adaptive solves break there and the energy is split
/// there); with KTS off the split is still --tau's, and adaptive steps end there too.
template <class Options>
void set_path_options(Options& opt, const settings& s) {
  if (kinflow::kts_gain(s.kts).is_identity()) {
    opt.kpe.tau = s.kts.tau;
    // Adaptive steps end at the split too, so that early and late are exactly the energy
    // of [0, τ] and [τ, 1] (a shaped field makes its τ a breakpoint by itself).
    if constexpr (requires { opt.breakpoints; })
      if (s.kts.tau > 0 && s.kts.tau < 1) opt.breakpoints = {s.kts.tau};
  }
  opt.kpe.quadrature = s.kpe == "left" ? kinflow::kpe_quadrature::left_riemann : kinflow::kpe_quadrature::stage;
  opt.likelihood.enabled = s.likelihood;
  opt.likelihood.divergence.hutchinson.probes = static_cast<int>(s.probes);
  opt.likelihood.divergence.hutchinson.seed = static_cast<std::uint64_t>(s.seed);
}

template <class Scalar, class Field, std::size_t S>
void run_fixed(Field& field, const kinflow::butcher_tableau<S>& method, const settings& s,
               dyn_batch<Scalar>& X, run_output<Scalar>& out) {
  const auto steps = static_cast<std::size_t>(s.steps);
  kinflow::time_grid<double> grid = [&] {
    if (s.grid == "cosine") return kinflow::time_grid<>::cosine(steps);
    if (s.grid == "edm") return kinflow::time_grid<>::edm(steps);
    if (s.grid == "shift") return kinflow::time_grid<>::shifted(steps, s.shift);
    if (s.grid == "energy") {  // pilot: up to 256 samples on a fine uniform grid
      const dyn_batch<Scalar> pilot = X.leftCols(std::min<Eigen::Index>(X.cols(), 256));
      return kinflow::pilot_energy_grid(field, method, pilot, steps);
    }
    return kinflow::time_grid<>::uniform(steps);
  }();
  out.grid = grid.times();
  kinflow::fixed_step_options opt;
  set_path_options(opt, s);
  const Eigen::Index K = std::min<Eigen::Index>(s.trajectories, X.cols());
  auto record = [&](std::size_t step, double t, const dyn_batch<Scalar>& x) {
    for (Eigen::Index i = 0; i < K; ++i) {
      std::vector<double> row{static_cast<double>(i), static_cast<double>(step), t};
      for (Eigen::Index r = 0; r < x.rows(); ++r) row.push_back(static_cast<double>(x(r, i)));
      out.paths.push_back(std::move(row));
    }
  };
  record(0, grid[0], X);
  const bool long_run = !s.quiet && static_cast<double>(X.cols()) * static_cast<double>(steps) * S > 2e6;
  if (K == 0 && !long_run) {  // no observer: the integrator may tile the batch
    out.result = kinflow::integrate(field, method, grid, X, opt);
    return;
  }
  progress_meter meter{long_run, steps};
  out.result = kinflow::integrate(field, method, grid, X, opt, [&](const auto& view) {
    record(view.step + 1, grid[view.step + 1], view.x);
    meter(view.step + 1);
  });
}

template <class Scalar, class Field, std::size_t S>
void run_adaptive(Field& field, const kinflow::embedded_tableau<S>& method, const settings& s,
                  dyn_batch<Scalar>& X, run_output<Scalar>& out) {
  kinflow::adaptive_options opt;
  opt.rtol = s.rtol;
  opt.atol = s.atol;
  set_path_options(opt, s);
  const Eigen::Index K = std::min<Eigen::Index>(s.trajectories, X.cols());
  std::vector<long> steps_of(static_cast<std::size_t>(K), 0);
  for (Eigen::Index i = 0; i < K; ++i) {
    std::vector<double> row{static_cast<double>(i), 0.0, 0.0};
    for (Eigen::Index r = 0; r < X.rows(); ++r) row.push_back(static_cast<double>(X(r, i)));
    out.paths.push_back(std::move(row));
  }
  out.result = kinflow::integrate_adaptive(field, method, 0.0, 1.0, X, opt, [&](const auto& v) {
    if (v.sample >= K) return;
    auto& n = steps_of[static_cast<std::size_t>(v.sample)];
    std::vector<double> row{static_cast<double>(v.sample), static_cast<double>(++n), static_cast<double>(v.t + v.dt)};
    for (Eigen::Index r = 0; r < X.rows(); ++r) row.push_back(static_cast<double>(v.x()(r)));
    out.paths.push_back(std::move(row));
  });
}

template <class Scalar, class Field>
run_output<Scalar> sample_with(Field&& inner, const settings& s, dyn_batch<Scalar>& X) {
  // KTS wraps every field; with alpha0 = beta0 = 0 the gain is the identity and the
  // results are bit-identical to the unshaped field's.
  auto field = kinflow::shaped(std::forward<Field>(inner), kinflow::kts_gain(s.kts));
  run_output<Scalar> out;
  out.divergence = kinflow::divergence_evaluator<decltype(field), Scalar, Eigen::Dynamic>::field_has_divergence
                       ? "exact"
                       : "hutchinson";
  if (s.solver == "euler") run_fixed(field, kinflow::euler, s, X, out);
  else if (s.solver == "midpoint") run_fixed(field, kinflow::midpoint, s, X, out);
  else if (s.solver == "heun") run_fixed(field, kinflow::heun, s, X, out);
  else if (s.solver == "ralston") run_fixed(field, kinflow::ralston, s, X, out);
  else if (s.solver == "rk4") run_fixed(field, kinflow::rk4, s, X, out);
  else if (s.solver == "tsit5") run_adaptive(field, kinflow::tsit5, s, X, out);
  else if (s.solver == "bs32") run_adaptive(field, kinflow::bs32, s, X, out);
  else run_adaptive(field, kinflow::dopri5, s, X, out);
  return out;
}

}  // namespace

namespace {

// ---------------------------------------------------------------------------------------
// Data

struct mixture {
  Eigen::VectorXd weights, stds;
  Eigen::MatrixXd means;  // d × K
};

/// The exact mixture behind a Gaussian-mixture toy dataset (defaults of its recipe).
mixture dataset_mixture(const std::string& name) {
  mixture m;
  if (name == "8gaussians") {
    const kinflow::toy::eight_gaussians_options o;
    m.means.resize(2, o.components);
    for (int k = 0; k < o.components; ++k) {
      const double th = 2.0 * 3.14159265358979323846 * k / o.components;
      m.means(0, k) = o.radius * std::cos(th) / o.divisor;
      m.means(1, k) = o.radius * std::sin(th) / o.divisor;
    }
    m.stds = Eigen::VectorXd::Constant(o.components, o.std / o.divisor);
  } else {  // 25gaussians
    const kinflow::toy::twenty_five_gaussians_options o;
    const double mid = 0.5 * (o.grid - 1);
    m.means.resize(2, o.grid * o.grid);
    for (int a = 0; a < o.grid; ++a)
      for (int b = 0; b < o.grid; ++b) {
        m.means(0, a * o.grid + b) = o.spacing * (a - mid) / o.divisor;
        m.means(1, a * o.grid + b) = o.spacing * (b - mid) / o.divisor;
      }
    m.stds = Eigen::VectorXd::Constant(o.grid * o.grid, o.std / o.divisor);
  }
  m.weights = Eigen::VectorXd::Constant(m.means.cols(), 1.0 / static_cast<double>(m.means.cols()));
  return m;
}

/// Training set, held-out set (named datasets only) and initial noise, in double.
struct inputs {
  dyn_batch<double> train, heldout, noise;
};

inputs load_inputs(const settings& s) {
  inputs in;
  const auto seed = static_cast<std::uint64_t>(s.seed);
  auto read = [](const char* flag, const std::string& file) {
    try {
      return kinflow::read_csv(file).points;
    } catch (const kinflow::invalid_argument& e) {
      usage_error(std::string(flag) + ": " + e.what());
    }
  };
  if (!s.train_file.empty()) {
    in.train = read("--train", s.train_file);
  } else {
    if (!kinflow::is_dataset_name(s.dataset)) {
      std::string names;
      for (auto n : kinflow::dataset_names) names += (names.empty() ? "" : ", ") + std::string(n);
      usage_error("--dataset = '" + s.dataset + "' is invalid; expected one of " + names);
    }
    in.train = kinflow::make_dataset(s.dataset, s.n_train, seed);
    // Held-out data of the same distribution, from an unrelated seed.
    in.heldout = kinflow::make_dataset(s.dataset, std::max<long>(s.samples, 1000), seed ^ 0x9e3779b97f4a7c15ULL);
  }
  if (!s.noise_file.empty()) {
    in.noise = read("--noise", s.noise_file);
    if (in.noise.rows() != in.train.rows())
      usage_error("--noise has " + std::to_string(in.noise.rows()) + " numbers per row, the training set " +
                  std::to_string(in.train.rows()));
  } else {
    in.noise = kinflow::standard_normal<double>(in.train.rows(), s.samples, seed + 1);
  }
  return in;
}
}  // namespace

namespace {

// ---------------------------------------------------------------------------------------
// Output

struct sample_metrics {
  Eigen::VectorXd nn_dist, nn_ratio;  // per sample: d1, d1/d2 to the training set
  std::vector<char> memorized;        // d1/d2 < 1/3
  double f_mem = 0, f_mem_lo = 0, f_mem_hi = 0;
  double heldout_nn = 0;              // mean distance to the nearest held-out point
  double sliced_w2 = -1;              // to held-out data (named datasets)
  bool has_memorization = false;
  Eigen::VectorXd log_density;        // at each landing point (see log_density_kind)
  std::string log_density_kind;       // "exact" (mixture fields) or "knn" (of the training set)
  double spearman_kpe_log_density = 0;
};

/// Memorization against the training set, distances to held-out data, and the local
/// density at each landing point. Samples that did not stay finite are left out of the
/// summaries (their per-sample columns are NaN).
sample_metrics compute_metrics(const inputs& in, const dyn_batch<double>& X, const Eigen::VectorXd& kpe,
                               const Eigen::VectorXd* exact_log_density, const settings& s) {
  sample_metrics m;
  const Eigen::Index B = X.cols();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<Eigen::Index> ok;
  for (Eigen::Index i = 0; i < B; ++i)
    if (X.col(i).allFinite() && std::isfinite(kpe(i))) ok.push_back(i);
  m.nn_dist = Eigen::VectorXd::Constant(B, nan);
  m.nn_ratio = Eigen::VectorXd::Constant(B, nan);
  m.memorized.assign(static_cast<std::size_t>(B), 0);
  m.log_density = Eigen::VectorXd::Constant(B, nan);
  if (ok.empty()) return m;
  dyn_batch<double> Xf(X.rows(), static_cast<Eigen::Index>(ok.size()));
  Eigen::VectorXd kf(Xf.cols());
  for (std::size_t j = 0; j < ok.size(); ++j) {
    Xf.col(static_cast<Eigen::Index>(j)) = X.col(ok[j]);
    kf(static_cast<Eigen::Index>(j)) = kpe(ok[j]);
  }
  if (in.train.cols() >= 2) {
    kinflow::memorization_options mo;
    mo.seed = static_cast<std::uint64_t>(s.seed);
    const auto mem = kinflow::memorization(Xf, in.train, mo);
    for (std::size_t j = 0; j < ok.size(); ++j) {
      const auto jj = static_cast<Eigen::Index>(j);
      m.nn_dist(ok[j]) = mem.d1(jj);
      m.nn_ratio(ok[j]) = mem.ratio(jj);
      m.memorized[static_cast<std::size_t>(ok[j])] = mem.memorized(jj) ? 1 : 0;
    }
    m.f_mem = mem.fraction;
    m.f_mem_lo = mem.ci_low;
    m.f_mem_hi = mem.ci_high;
    m.has_memorization = true;
  }
  if (in.heldout.cols() > 0) {
    m.heldout_nn = kinflow::nearest_distances(Xf, in.heldout).mean();
    kinflow::sliced_wasserstein_options so;
    so.seed = static_cast<std::uint64_t>(s.seed);
    m.sliced_w2 = kinflow::sliced_wasserstein2(Xf, in.heldout, so);
  }
  Eigen::VectorXd ld(Xf.cols());
  if (exact_log_density) {
    m.log_density_kind = "exact";
    for (std::size_t j = 0; j < ok.size(); ++j) ld(static_cast<Eigen::Index>(j)) = (*exact_log_density)(ok[j]);
  } else if (in.train.cols() > 10) {
    m.log_density_kind = "knn";
    ld = kinflow::knn_log_density(Xf, in.train);
  }
  if (!m.log_density_kind.empty()) {
    for (std::size_t j = 0; j < ok.size(); ++j) m.log_density(ok[j]) = ld(static_cast<Eigen::Index>(j));
    if (ok.size() >= 3) m.spearman_kpe_log_density = kinflow::spearman(kf, ld);
  }
  return m;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// Mean log-likelihood over the samples whose solve succeeded (the others' values are
/// not finite), and their number.
template <class Scalar>
std::pair<double, long> mean_log_likelihood(const kinflow::solve_result<Scalar>& r) {
  double sum = 0;
  long n = 0;
  for (Eigen::Index i = 0; i < r.log_likelihood.size(); ++i)
    if (r.status[static_cast<std::size_t>(i)] == kinflow::solve_status::success) {
      sum += static_cast<double>(r.log_likelihood(i));
      ++n;
    }
  return {n > 0 ? sum / static_cast<double>(n) : 0.0, n};
}

template <class Scalar>
void write_samples(const std::filesystem::path& file, const dyn_batch<Scalar>& X,
                   const kinflow::solve_result<Scalar>& r, const sample_metrics* m) {
  std::ofstream f(file);
  if (!f) throw std::runtime_error("cannot write " + file.string());
  f << std::setprecision(std::numeric_limits<Scalar>::max_digits10);
  for (Eigen::Index k = 0; k < X.rows(); ++k) f << "x_" << k << ',';
  f << "kpe,kpe_early,kpe_late,nfe,status";
  if (m && m->has_memorization) f << ",nn_dist,nn_ratio,memorized";
  if (m && !m->log_density_kind.empty()) f << ",log_density";
  const bool lik = r.log_likelihood.size() == X.cols();
  if (lik) f << ",log_likelihood";
  f << '\n';
  for (Eigen::Index i = 0; i < X.cols(); ++i) {
    for (Eigen::Index k = 0; k < X.rows(); ++k) f << X(k, i) << ',';
    f << r.kpe.total(i) << ',' << r.kpe.early(i) << ',' << r.kpe.late(i) << ',' << r.nfe(i) << ','
      << kinflow::to_string(r.status[static_cast<std::size_t>(i)]);
    if (m && m->has_memorization)
      f << ',' << m->nn_dist(i) << ',' << m->nn_ratio(i) << ','
        << (m->memorized[static_cast<std::size_t>(i)] ? 1 : 0);
    if (m && !m->log_density_kind.empty()) f << ',' << m->log_density(i);
    if (lik) f << ',' << r.log_likelihood(i);
    f << '\n';
  }
}

void write_paths(const std::filesystem::path& file, const std::vector<std::vector<double>>& paths, Eigen::Index d) {
  std::ofstream f(file);
  if (!f) throw std::runtime_error("cannot write " + file.string());
  f << std::setprecision(17) << "sample,step,t";
  for (Eigen::Index k = 0; k < d; ++k) f << ",x_" << k;
  f << '\n';
  for (const auto& row : paths) {
    f << static_cast<long>(row[0]) << ',' << static_cast<long>(row[1]);
    for (std::size_t c = 2; c < row.size(); ++c) f << ',' << row[c];
    f << '\n';
  }
}

template <class Scalar>
void write_summary(const std::filesystem::path& file, const settings& s, const inputs& in,
                   const run_output<Scalar>& out, const sample_metrics* m, double seconds) {
  std::ofstream f(file);
  if (!f) throw std::runtime_error("cannot write " + file.string());
  const auto& r = out.result;
  std::vector<double> e(static_cast<std::size_t>(r.kpe.total.size()));
  for (std::size_t i = 0; i < e.size(); ++i) e[i] = static_cast<double>(r.kpe.total(static_cast<Eigen::Index>(i)));
  auto q = [&](double p) { return quantile(e, p); };
  f << std::setprecision(10) << "{\n";
  f << "  \"kinflow_version\": \"" << KINFLOW_VERSION_STRING << "\",\n";
  f << "  \"settings\": {\n";
  f << "    \"dataset\": \"" << json_escape(s.train_file.empty() ? s.dataset : "") << "\",\n";
  f << "    \"train_file\": \"" << json_escape(s.train_file) << "\",\n";
  f << "    \"noise_file\": \"" << json_escape(s.noise_file) << "\",\n";
  f << "    \"n_train\": " << in.train.cols() << ",\n    \"samples\": " << in.noise.cols()
    << ",\n    \"dim\": " << in.train.rows() << ",\n    \"seed\": " << s.seed << ",\n";
  f << "    \"field\": \"" << s.field << "\",\n    \"model\": \"" << json_escape(s.model) << "\",\n    \"smoothing\": " << s.smoothing
    << ",\n    \"sigma_min\": " << s.sigma_min << ",\n";
  f << "    \"solver\": \"" << s.solver << "\",\n    \"steps\": " << s.steps << ",\n    \"grid\": \"" << s.grid
    << "\",\n    \"shift\": " << s.shift << ",\n    \"rtol\": " << s.rtol << ",\n    \"atol\": " << s.atol
    << ",\n    \"precision\": \"" << s.precision << "\",\n";
  f << "    \"kts\": {\"alpha0\": " << s.kts.alpha0 << ", \"beta0\": " << s.kts.beta0 << ", \"tau\": " << s.kts.tau
    << ", \"k\": " << s.kts.k << ", \"early\": \"" << kinflow::to_string(s.kts.early_form) << "\", \"late\": \""
    << kinflow::to_string(s.kts.late_form) << "\", \"integral_of_eta\": " << kinflow::kts_gain(s.kts).integral() << "},\n";
  f << "    \"kpe_quadrature\": \"" << s.kpe << "\",\n    \"likelihood\": " << (s.likelihood ? "true" : "false")
    << ",\n    \"probes\": " << s.probes << "\n  },\n";
  f << "  \"kpe\": {\"mean\": " << r.kpe.total.template cast<double>().mean() << ", \"early_mean\": "
    << r.kpe.early.template cast<double>().mean() << ", \"late_mean\": " << r.kpe.late.template cast<double>().mean()
    << ", \"q05\": " << q(0.05) << ", \"q25\": " << q(0.25) << ", \"median\": " << q(0.5) << ", \"q75\": " << q(0.75)
    << ", \"q95\": " << q(0.95) << ", \"max\": " << q(1.0) << "},\n";
  f << "  \"nfe_mean\": " << r.nfe.template cast<double>().mean() << ",\n";
  if (r.log_likelihood.size() > 0) {
    const auto [mean, n] = mean_log_likelihood(r);
    f << "  \"log_likelihood\": {\"mean\": " << mean << ", \"samples\": " << n << ", \"divergence\": \""
      << out.divergence << "\"},\n";
  }
  f << "  \"status\": {";
  bool first = true;
  for (auto st : {kinflow::solve_status::success, kinflow::solve_status::max_steps_reached,
                  kinflow::solve_status::dt_underflow, kinflow::solve_status::non_finite}) {
    f << (first ? "" : ", ") << '"' << kinflow::to_string(st) << "\": " << r.count(st);
    first = false;
  }
  f << "},\n";
  if (m && !m->log_density_kind.empty())
    f << "  \"log_density\": {\"kind\": \"" << m->log_density_kind << "\", \"spearman_with_kpe\": "
      << m->spearman_kpe_log_density << "},\n";
  if (m && m->has_memorization) {
    f << "  \"memorization\": {\"f_mem\": " << m->f_mem << ", \"ci95\": [" << m->f_mem_lo << ", " << m->f_mem_hi
      << "], \"rule\": \"d1/d2 < 1/3\"},\n";
    f << "  \"nn_dist_train_mean\": " << m->nn_dist.array().isNaN().select(0.0, m->nn_dist.array()).sum() /
             std::max<double>(1.0, static_cast<double>((!m->nn_dist.array().isNaN()).count())) << ",\n";
  }
  if (m) {
    if (m->sliced_w2 >= 0)
      f << "  \"heldout\": {\"nn_dist_mean\": " << m->heldout_nn << ", \"sliced_w2\": " << m->sliced_w2 << "},\n";
  }
  f << "  \"wall_seconds\": " << seconds << "\n}\n";
}

}  // namespace

namespace {

/// Samples the trained model of --model: MLP weights (.npz) or, in a build with the
/// TorchScript adapter, a TorchScript module (.pt). Its dimension must be the data's.
template <class Scalar>
void sample_model(const settings& s, Eigen::Index n_train, dyn_batch<Scalar>& X, run_output<Scalar>& out) {
  auto report = [&] {
    if (!s.quiet)
      std::fprintf(stderr, "kinflow-sample: %ld samples in %ld-D from the model %s (memorization against %ld "
                   "training points), %s\n", static_cast<long>(X.cols()), static_cast<long>(X.rows()),
                   s.model.c_str(), static_cast<long>(n_train), s.solver.c_str());
  };
  const std::string ext = std::filesystem::path(s.model).extension().string();
  auto load = [&](auto&& make) {  // file errors name the flag, like every argument error
    try {
      return make();
    } catch (const kinflow::model_file_error& e) {
      usage_error(std::string("--model: ") + e.what());
    }
  };
  if (ext == ".pt") {
#if KINFLOW_HAVE_TORCHSCRIPT
    auto field = load([&] { return kinflow_examples::load_torchscript_checked<Scalar>(s.model, X); });
    report();
    out = sample_with(field, s, X);
    return;
#else
    usage_error("--model = '" + s.model + "': TorchScript modules need a build with "
                "-DKINFLOW_WITH_TORCH=ON and libtorch-dev; use the model's .npz weights");
#endif
  }
  auto field = load([&] { return kinflow::load_mlp_field<Scalar>(s.model); });
  if (field.dim() != X.rows())
    usage_error("--model = '" + s.model + "' is a " + std::to_string(field.dim()) + "-D field, the training set is " +
                std::to_string(X.rows()) + "-D");
  report();
  out = sample_with(field, s, X);
}

template <class Scalar>
int run(const settings& s) {
  const auto start = std::chrono::steady_clock::now();
  const inputs in = load_inputs(s);
  const dyn_batch<Scalar> train = in.train.template cast<Scalar>();
  dyn_batch<Scalar> X = in.noise.template cast<Scalar>();
  if (!s.quiet && s.field != "model")  // (sample_model reports once the model is loaded)
    std::fprintf(stderr, "kinflow-sample: %ld samples in %ld-D, %s field on %ld training points, %s\n",
                 static_cast<long>(X.cols()), static_cast<long>(X.rows()), s.field.c_str(),
                 static_cast<long>(train.cols()), s.solver.c_str());

  run_output<Scalar> out;
  Eigen::VectorXd exact_log_density;  // log p_1 at the landing points, for mixture fields
  auto landing_density = [&](const auto& field) {
    exact_log_density = field.log_density(Scalar(1), X).template cast<double>();
  };
  if (s.field == "empirical") {
    kinflow::empirical_options<Scalar> o;
    o.sigma_min = static_cast<Scalar>(s.sigma_min);
    out = sample_with(kinflow::empirical_field<Scalar>(kinflow::keep_reference, train, o), s, X);
  } else if (s.field == "smoothed") {
    const auto field = kinflow::smoothed_empirical(kinflow::keep_reference, train, static_cast<Scalar>(s.smoothing));
    out = sample_with(field, s, X);
    landing_density(field);
  } else if (s.field == "model") {
    sample_model(s, train.cols(), X, out);
  } else {
    const mixture mix = dataset_mixture(s.dataset);
    const dyn_batch<Scalar> means = mix.means.cast<Scalar>();
    const kinflow::gaussian_mixture_field<Scalar> field(mix.weights.cast<Scalar>(), means, mix.stds.cast<Scalar>());
    out = sample_with(field, s, X);
    landing_density(field);
  }

  // Memorization against the training set, distances to held-out data of the dataset,
  // and the local density at the landing points.
  const sample_metrics m = compute_metrics(in, X.template cast<double>(), out.result.kpe.total.template cast<double>(),
                                           exact_log_density.size() ? &exact_log_density : nullptr, s);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::filesystem::create_directories(s.out);
  const std::filesystem::path dir(s.out);
  write_samples(dir / "samples.csv", X, out.result, &m);
  write_summary(dir / "summary.json", s, in, out, &m, seconds);
  {  // the training set used, so that every run can be reproduced and plotted
    std::vector<std::string> names;
    for (Eigen::Index k = 0; k < in.train.rows(); ++k) names.push_back("x_" + std::to_string(k));
    kinflow::write_csv(dir / "train.csv", in.train, names);
  }
  if (s.trajectories > 0) write_paths(dir / "trajectories.csv", out.paths, X.rows());

  std::printf("kinflow-sample: %ld samples -> %s/samples.csv, summary.json, train.csv%s\n", static_cast<long>(X.cols()),
              s.out.c_str(), s.trajectories > 0 ? ", trajectories.csv" : "");
  std::printf("  KPE mean %.4f (early %.4f, late %.4f), NFE %.1f per sample, %zu/%ld succeeded\n",
              static_cast<double>(out.result.kpe.total.mean()), static_cast<double>(out.result.kpe.early.mean()),
              static_cast<double>(out.result.kpe.late.mean()), out.result.nfe.template cast<double>().mean(),
              out.result.count(kinflow::solve_status::success), static_cast<long>(X.cols()));
  if (out.result.log_likelihood.size() > 0)
    std::printf("  log-likelihood mean %.4f (%s divergence)\n", mean_log_likelihood(out.result).first,
                out.divergence.c_str());
  if (m.has_memorization) std::printf("  F_mem %.4f [%.4f, %.4f] (d1/d2 < 1/3)", m.f_mem, m.f_mem_lo, m.f_mem_hi);
  if (!m.log_density_kind.empty())
    std::printf(", Spearman(KPE, %s log density) %+.3f", m.log_density_kind.c_str(), m.spearman_kpe_log_density);
  if (m.sliced_w2 >= 0) std::printf(", sliced W2 to held-out %.4f", m.sliced_w2);
  std::printf(", %.2f s\n", seconds);
  return out.result.all_success() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  kinflow_examples::program_name = "kinflow-sample";
  const settings s = parse(argc, argv);
  try {
    return s.precision == "float" ? run<float>(s) : run<double>(s);
  } catch (const kinflow::invalid_argument& e) {
    std::fprintf(stderr, "kinflow-sample: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kinflow-sample: error: %s\n", e.what());
    return 1;
  }
}
