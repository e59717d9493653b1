// kinflow-trained: sample a trained flow-matching network, measure every sample's kinetic
// path energy and memorization, and run the Goldilocks sweep of Kinetic Trajectory Shaping
// (alpha0, beta0, tau) on it, next to the exact empirical field of the same training set.
//
// By default it uses the committed 8gaussians model (examples/models/fm_mlp_8gaussians.*,
// trained by examples/models/train_fm_mlp.py on the 32 points of
// fm_mlp_8gaussians_train.csv). The network is evaluated by kinflow::mlp_field (Eigen) and,
// when kinflow was configured with -DKINFLOW_WITH_TORCH=ON and libtorch was found, also by
// kinflow::torchscript_field; the two adapters must give the same samples and energies.
//
// Writes DIR/summary.json, DIR/sweep.csv (one row per field and KTS setting),
// DIR/samples_model.csv and DIR/samples_empirical.csv (unshaped runs, per-sample energy and
// memorization), DIR/samples_model_best.csv (the KTS setting closest to held-out data) and
// DIR/train.csv. Run with --help for every option.

#include <kinflow/kinflow.hpp>
#include <kinflow/data/csv.hpp>
#include <kinflow/data/random.hpp>
#include <kinflow/data/toy2d.hpp>
#include <kinflow/metrics/memorization.hpp>
#include <kinflow/metrics/nearest_neighbors.hpp>
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
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <exception>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "example_cli.hpp"

#ifndef KINFLOW_MODELS_DIR
#define KINFLOW_MODELS_DIR "examples/models"
#endif

namespace {

namespace fs = std::filesystem;
using kinflow_examples::to_double;
using kinflow_examples::to_long;
using kinflow_examples::usage_error;

// ---------------------------------------------------------------------------------------
// Command line

struct settings {
  std::string model = std::string(KINFLOW_MODELS_DIR) + "/fm_mlp_8gaussians.npz";
  std::string torchscript;  // empty: the model path with .pt, when that file exists
  std::string train = std::string(KINFLOW_MODELS_DIR) + "/fm_mlp_8gaussians_train.csv";
  std::string dataset = "8gaussians";  // held-out data; "none" for no distribution metrics
  long samples = 2000;
  long steps = 100;
  long seed = 0;
  long threads = 0;  // 0: all hardware threads
  std::vector<double> alpha0{0, 0.1, 0.2, 0.4};
  std::vector<double> beta0{0, 0.0125, 0.025, 0.0375, 0.05};
  std::vector<double> tau{0.4, 0.6, 0.8};
  double k = 3;
  std::string out = "kinflow-trained-out";
  bool quick = false;
};

const char* const kHelp =
    "kinflow-trained: sample a trained flow-matching network, measure each sample's kinetic\n"
    "path energy (KPE) and memorization, and sweep Kinetic Trajectory Shaping (KTS) over\n"
    "alpha0 x beta0 x tau, next to the exact empirical field of the same training set.\n"
    "Euler steps on a uniform grid (the paper's sampler); KTS gain eta = 1 + alpha before\n"
    "tau (linear ramp), 1 - beta after (exponential with rate k).\n"
    "\n"
    "  --model FILE.npz       weights for kinflow::mlp_field\n"
    "                         (default: the committed 8gaussians model)\n"
    "  --torchscript FILE.pt  the same model as TorchScript, sampled as well and compared\n"
    "                         (default: the --model path with .pt, if present; needs a build\n"
    "                         with -DKINFLOW_WITH_TORCH=ON)\n"
    "  --train FILE.csv       the model's training set (memorization and the empirical field)\n"
    "  --dataset NAME         toy dataset the training set was drawn from, for held-out data\n"
    "                         (default 8gaussians; none: no held-out metrics)\n"
    "  --samples B            samples per run (default 2000)\n"
    "  --steps N              Euler steps (default 100)\n"
    "  --seed S               seed of the noise and the held-out data (default 0)\n"
    "  --alpha0 LIST          sweep values, comma-separated (default 0,0.1,0.2,0.4)\n"
    "  --beta0 LIST           (default 0,0.0125,0.025,0.0375,0.05; with the exponential\n"
    "                         landing beta0 <= 1/(e^k - 1), 0.0524 for k = 3)\n"
    "  --tau LIST             (default 0.4,0.6,0.8)\n"
    "  --k V                  rate of the exponential late gain (default 3)\n"
    "  --threads T            runs of the sweep in parallel (default: all hardware threads)\n"
    "  --quick                500 samples, 40 steps, a 2 x 2 x 2 sweep (a smoke run)\n"
    "  --out DIR              output directory (default kinflow-trained-out)\n"
    "  --help                 this text\n";

std::vector<double> to_list(const std::string& flag, const std::string& v, double lo, double hi) {
  std::vector<double> list;
  std::stringstream in(v);
  std::string item;
  while (std::getline(in, item, ',')) list.push_back(to_double(flag, item, lo, hi));
  if (list.empty() || v.back() == ',') usage_error(flag + " = '" + v + "' is invalid; expected a comma-separated list of numbers");
  return list;
}

settings parse(int argc, char** argv) {
  settings s;
  bool samples_set = false, steps_set = false, grid_set = false;
  const double inf = std::numeric_limits<double>::infinity();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      std::exit(0);
    }
    if (a == "--quick") {
      s.quick = true;
      continue;
    }
    static const char* const known[] = {"--model", "--torchscript", "--train", "--dataset", "--samples",
                                        "--steps", "--seed", "--alpha0", "--beta0", "--tau", "--k",
                                        "--threads", "--out"};
    if (std::find(std::begin(known), std::end(known), a) == std::end(known))
      usage_error("unknown option '" + a + "' (see --help)");
    if (i + 1 >= argc) usage_error(a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--model") s.model = v;
    else if (a == "--torchscript") s.torchscript = v;
    else if (a == "--train") s.train = v;
    else if (a == "--dataset") s.dataset = v;
    else if (a == "--samples") s.samples = to_long(a, v, 2, 100000000), samples_set = true;
    else if (a == "--steps") s.steps = to_long(a, v, 1, 10000000), steps_set = true;
    else if (a == "--seed") s.seed = to_long(a, v, 0, std::numeric_limits<long>::max());
    else if (a == "--alpha0") s.alpha0 = to_list(a, v, 0, inf), grid_set = true;
    else if (a == "--beta0") s.beta0 = to_list(a, v, 0, inf), grid_set = true;
    else if (a == "--tau") s.tau = to_list(a, v, 0, 1), grid_set = true;
    else if (a == "--k") s.k = to_double(a, v, 1e-12, inf);
    else if (a == "--threads") s.threads = to_long(a, v, 0, 4096);
    else s.out = v;
  }
  if (s.quick) {
    if (!samples_set) s.samples = 500;
    if (!steps_set) s.steps = 40;
    if (!grid_set) s.alpha0 = {0, 0.2}, s.beta0 = {0, 0.05}, s.tau = {0.5, 0.8};
  }
  if (s.dataset != "none" && !kinflow::is_dataset_name(s.dataset)) {
    std::string names;
    for (auto n : kinflow::dataset_names) names += (names.empty() ? "" : ", ") + std::string(n);
    usage_error("--dataset = '" + s.dataset + "' is invalid; expected none or one of " + names);
  }
  for (double a0 : s.alpha0)
    for (double b0 : s.beta0)
      for (double t : s.tau) try {
          (void)kinflow::kts_gain(kinflow::kts_options{.alpha0 = a0, .beta0 = b0, .tau = t, .k = s.k});
        } catch (const kinflow::invalid_argument& e) {
          usage_error(std::string("--alpha0/--beta0/--tau/--k: ") + e.what());
        }
  return s;
}

// ---------------------------------------------------------------------------------------
// Sampling and metrics

using matrix = Eigen::MatrixXd;
template <class Scalar>
using dyn_batch = kinflow::batch<Scalar, Eigen::Dynamic>;

kinflow::kts_options kts_of(const settings& s, double alpha0, double beta0, double tau) {
  return {.alpha0 = alpha0, .beta0 = beta0, .tau = tau, .k = s.k};
}

/// Euler on a uniform grid with the KTS gain; the energy is split at τ.
template <class Scalar, class Field>
kinflow::solve_result<Scalar> sample(Field& field, const kinflow::kts_options& kts, long steps, dyn_batch<Scalar>& X) {
  auto shaped = kinflow::shaped(field, kts);
  kinflow::fixed_step_options opt;
  // A shaped field splits its energy at its own τ; the unshaped runs of the sweep (KTS
  // off) are split at the same τ, so that they compare with the shaped ones.
  if (shaped.gain().is_identity()) opt.kpe.tau = kts.tau;
  return kinflow::integrate(shaped, kinflow::euler, kinflow::time_grid<>::uniform(static_cast<std::size_t>(steps)),
                            X, opt);
}

/// The data every run is measured against.
struct references {
  matrix train, heldout;
  std::optional<kinflow::nearest_neighbor_index<double>> train_index, heldout_index;
};

/// One run's summary.
struct run_metrics {
  double kpe = 0, kpe_early = 0, kpe_late = 0;
  double f_mem = 0, f_mem_lo = 0, f_mem_hi = 0;
  double nn_train = 0;    // mean distance to the nearest training point
  double nn_heldout = 0;  // mean distance to the nearest held-out point (NaN without)
  double sliced_w2 = 0;   // to held-out data (NaN without)
  long not_finite = 0;    // samples that left the finite numbers (left out of the metrics)
  std::vector<Eigen::Index> finite;  // the columns the metrics are over
  kinflow::memorization_result mem;  // per sample of `finite`, in that order
};

template <class Scalar>
run_metrics measure(const dyn_batch<Scalar>& X, const kinflow::solve_result<Scalar>& r, const references& ref,
                    const settings& s) {
  run_metrics m;
  std::vector<Eigen::Index> ok;
  for (Eigen::Index i = 0; i < X.cols(); ++i)
    if (X.col(i).allFinite() && std::isfinite(static_cast<double>(r.kpe.total(i)))) ok.push_back(i);
  m.not_finite = static_cast<long>(X.cols()) - static_cast<long>(ok.size());
  m.finite = ok;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  m.kpe = m.kpe_early = m.kpe_late = m.f_mem = m.f_mem_lo = m.f_mem_hi = nan;
  m.nn_train = m.nn_heldout = m.sliced_w2 = nan;
  if (ok.size() < 2) {
    m.finite.clear();  // too few for metrics: none computed
    return m;
  }
  matrix Xd(X.rows(), static_cast<Eigen::Index>(ok.size()));
  Eigen::VectorXd e(Xd.cols()), ee(Xd.cols()), el(Xd.cols());
  for (std::size_t j = 0; j < ok.size(); ++j) {
    const auto jj = static_cast<Eigen::Index>(j);
    Xd.col(jj) = X.col(ok[j]).template cast<double>();
    e(jj) = static_cast<double>(r.kpe.total(ok[j]));
    ee(jj) = static_cast<double>(r.kpe.early(ok[j]));
    el(jj) = static_cast<double>(r.kpe.late(ok[j]));
  }
  m.kpe = e.mean(), m.kpe_early = ee.mean(), m.kpe_late = el.mean();
  kinflow::memorization_options mo;
  mo.seed = static_cast<std::uint64_t>(s.seed);
  m.mem = kinflow::memorization(Xd, *ref.train_index, mo);
  m.f_mem = m.mem.fraction, m.f_mem_lo = m.mem.ci_low, m.f_mem_hi = m.mem.ci_high;
  m.nn_train = m.mem.d1.mean();
  if (ref.heldout.cols() > 0) {
    m.nn_heldout = ref.heldout_index->nearest_distance(Xd).mean();
    m.sliced_w2 = kinflow::sliced_wasserstein2(Xd, ref.heldout, {.projections = 256, .seed = 1});
  }
  return m;
}

/// One row of the sweep.
struct sweep_row {
  std::string field;  // "model" or "empirical"
  double alpha0 = 0, beta0 = 0, tau = 0;
  run_metrics m;
};

// ---------------------------------------------------------------------------------------
// Output

template <class Scalar>
void write_samples(const fs::path& file, const dyn_batch<Scalar>& X, const kinflow::solve_result<Scalar>& r,
                   const references& ref) {
  // Per-sample memorization over every sample (non-finite ones get NaN distances).
  std::ofstream f(file);
  if (!f) throw std::runtime_error("cannot write " + file.string());
  f << std::setprecision(std::numeric_limits<Scalar>::max_digits10);
  for (Eigen::Index k = 0; k < X.rows(); ++k) f << "x_" << k << ',';
  f << "kpe,kpe_early,kpe_late,nn_dist,nn_ratio,memorized\n";
  for (Eigen::Index i = 0; i < X.cols(); ++i) {
    for (Eigen::Index k = 0; k < X.rows(); ++k) f << X(k, i) << ',';
    f << r.kpe.total(i) << ',' << r.kpe.early(i) << ',' << r.kpe.late(i) << ',';
    if (X.col(i).allFinite()) {
      const auto nn = ref.train_index->query(X.col(i).template cast<double>(), 2);
      const double d1 = nn.distances(0, 0), d2 = nn.distances(1, 0);
      const double ratio = d1 == 0 ? 0.0 : d1 / d2;
      f << d1 << ',' << ratio << ',' << (ratio < 1.0 / 3.0 ? 1 : 0) << '\n';
    } else {
      f << "nan,nan,0\n";
    }
  }
}

void write_sweep(const fs::path& file, const std::vector<sweep_row>& rows) {
  std::ofstream f(file);
  if (!f) throw std::runtime_error("cannot write " + file.string());
  f << std::setprecision(10);
  f << "field,alpha0,beta0,tau,kpe_mean,kpe_early_mean,kpe_late_mean,f_mem,f_mem_lo,f_mem_hi,nn_train_mean,"
       "nn_heldout_mean,sliced_w2,not_finite\n";
  for (const auto& r : rows)
    f << r.field << ',' << r.alpha0 << ',' << r.beta0 << ',' << r.tau << ',' << r.m.kpe << ',' << r.m.kpe_early << ','
      << r.m.kpe_late << ',' << r.m.f_mem << ',' << r.m.f_mem_lo << ',' << r.m.f_mem_hi << ',' << r.m.nn_train << ','
      << r.m.nn_heldout << ',' << r.m.sliced_w2 << ',' << r.m.not_finite << '\n';
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

std::string json_string(const std::string& v) { return "\"" + kinflow_examples::json_escape(v) + "\""; }

std::string json_metrics(const run_metrics& m) {
  std::ostringstream os;
  os << "{\"kpe_mean\": " << json_number(m.kpe) << ", \"kpe_early_mean\": " << json_number(m.kpe_early)
     << ", \"kpe_late_mean\": " << json_number(m.kpe_late) << ", \"f_mem\": " << json_number(m.f_mem)
     << ", \"f_mem_ci95\": [" << json_number(m.f_mem_lo) << ", " << json_number(m.f_mem_hi)
     << "], \"nn_train_mean\": " << json_number(m.nn_train) << ", \"nn_heldout_mean\": " << json_number(m.nn_heldout)
     << ", \"sliced_w2\": " << json_number(m.sliced_w2) << ", \"not_finite\": " << m.not_finite << "}";
  return os.str();
}

/// Largest differences between two runs of the same sampler with different adapters.
struct agreement {
  double max_dx = 0;       // max |x_a - x_b| over samples and coordinates
  double max_rel_de = 0;   // max |E_a - E_b| / E_b
};

template <class Scalar>
agreement compare_runs(const dyn_batch<Scalar>& Xa, const kinflow::solve_result<Scalar>& ra,
                       const dyn_batch<Scalar>& Xb, const kinflow::solve_result<Scalar>& rb) {
  agreement a;
  a.max_dx = (Xa - Xb).template cast<double>().cwiseAbs().maxCoeff();
  const Eigen::ArrayXd ea = ra.kpe.total.template cast<double>().array();
  const Eigen::ArrayXd eb = rb.kpe.total.template cast<double>().array();
  a.max_rel_de = ((ea - eb).abs() / eb.abs().max(std::numeric_limits<double>::min())).maxCoeff();
  return a;
}

// ---------------------------------------------------------------------------------------

int run(const settings& s) {
  const auto start = std::chrono::steady_clock::now();
  {  // Before any work, so that a bad --out does not cost a whole sweep.
    std::error_code ec;
    fs::create_directories(s.out, ec);
    if (ec || !fs::is_directory(s.out)) usage_error("--out = '" + s.out + "': cannot create the directory");
  }
  const auto seed = static_cast<std::uint64_t>(s.seed);

  // The model, in float (the precision it was trained in) and double.
  // File errors name the flag, like every argument error.
  auto load = [](const char* flag, auto&& make) {
    try {
      return make();
    } catch (const kinflow::model_file_error& e) {
      usage_error(std::string(flag) + ": " + e.what());
    }
  };
  const auto model_f = load("--model", [&] { return kinflow::load_mlp_field<float>(s.model); });
  const auto model_d = load("--model", [&] { return kinflow::load_mlp_field<double>(s.model); });
  const Eigen::Index d = model_d.dim();

  references ref;
  try {
    ref.train = kinflow::read_csv(s.train).points;
  } catch (const kinflow::invalid_argument& e) {
    usage_error(std::string("--train: ") + e.what());
  }
  if (ref.train.rows() != d)
    usage_error("--train has " + std::to_string(ref.train.rows()) + " numbers per row, the model's dimension is " +
                std::to_string(d));
  if (ref.train.cols() < 2) usage_error("--train needs at least 2 points");
  ref.train_index.emplace(ref.train);
  if (s.dataset != "none") {
    ref.heldout = kinflow::make_dataset(s.dataset, std::max<long>(5000, s.samples), seed ^ 0x9e3779b97f4a7c15ULL);
    if (ref.heldout.rows() != d)
      usage_error("--dataset " + s.dataset + " is " + std::to_string(ref.heldout.rows()) + "-D, the model " +
                  std::to_string(d) + "-D");
    ref.heldout_index.emplace(ref.heldout);
  }
  const dyn_batch<double> noise = kinflow::standard_normal<double>(d, s.samples, seed + 1);
  std::printf("kinflow-trained: model %s (%ld-D, %zu layers), %ld training points, %ld samples, %ld Euler steps\n",
              s.model.c_str(), static_cast<long>(d), model_d.layers().size(), static_cast<long>(ref.train.cols()),
              s.samples, s.steps);

  // 1. The two adapters on the same weights, one KTS setting, float and double.
  std::string torchscript = s.torchscript;
  if (torchscript.empty()) {
    fs::path pt(s.model);
    pt.replace_extension(".pt");
    if (fs::exists(pt)) torchscript = pt.string();
  }
  std::string adapters_json = "{\"torchscript\": null}";
  bool adapters_ok = true;
#if KINFLOW_HAVE_TORCHSCRIPT
  if (!torchscript.empty()) {
    // A fixed shaped setting (k = 3 whatever --k says, so that beta0 = 0.04 stays valid).
    const kinflow::kts_options kts{.alpha0 = 0.2, .beta0 = 0.04, .tau = 0.6, .k = 3};
    const double tolerance_f = 1e-5, tolerance_d = 1e-12;  // measured: ~2e-6 and ~5e-15
    std::ostringstream js;
    js << "{\"torchscript\": " << json_string(torchscript)
       << ", \"kts\": {\"alpha0\": 0.2, \"beta0\": 0.04, \"tau\": 0.6, \"k\": 3}";
    auto check = [&](auto scalar, const auto& mlp, double tolerance) {
      using S = decltype(scalar);
      auto a = mlp;
      auto b = load("--torchscript", [&] { return kinflow_examples::load_torchscript_checked<S>(torchscript, noise); });
      dyn_batch<S> Xa = noise.cast<S>(), Xb = Xa;
      const auto ra = sample(a, kts, s.steps, Xa);
      const auto rb = sample(b, kts, s.steps, Xb);
      const agreement g = compare_runs(Xa, ra, Xb, rb);
      const bool ok = g.max_dx <= tolerance && g.max_rel_de <= tolerance;
      adapters_ok = adapters_ok && ok;
      const char* name = std::is_same_v<S, float> ? "float" : "double";
      std::printf("  adapters, %-6s: mlp_field vs torchscript_field: max |dx| %.2e, max |dE|/E %.2e (%s %.0e)\n", name,
                  g.max_dx, g.max_rel_de, ok ? "within" : "NOT within", tolerance);
      js << ", \"" << name << "\": {\"max_abs_dx\": " << json_number(g.max_dx)
         << ", \"max_rel_dE\": " << json_number(g.max_rel_de) << ", \"tolerance\": " << tolerance << "}";
    };
    check(0.0f, model_f, tolerance_f);
    check(0.0, model_d, tolerance_d);
    js << "}";
    adapters_json = js.str();
  } else {
    std::printf("  adapters: no TorchScript file next to the model; mlp_field only\n");
  }
#else
  std::printf("  adapters: this build has no TorchScript support (configure with -DKINFLOW_WITH_TORCH=ON and\n"
              "            libtorch-dev); mlp_field only\n");
  if (!s.torchscript.empty())
    usage_error("--torchscript needs a build with TorchScript support (-DKINFLOW_WITH_TORCH=ON and libtorch-dev)");
  (void)torchscript;
#endif

  // 2. The unshaped runs: the trained model and the exact empirical field of its training set.
  const kinflow::kts_options off = kts_of(s, 0, 0, 0.6);
  const dyn_batch<float> train_f = ref.train.cast<float>();
  auto empirical = kinflow::empirical_field<float>(kinflow::keep_reference, train_f);
  dyn_batch<float> X_model = noise.cast<float>(), X_emp = X_model;
  auto model_copy = model_f;
  const auto r_model = sample(model_copy, off, s.steps, X_model);
  const auto r_emp = sample(empirical, off, s.steps, X_emp);
  const run_metrics base_model = measure(X_model, r_model, ref, s);
  const run_metrics base_emp = measure(X_emp, r_emp, ref, s);

  // KPE of memorized samples against the others (the paper: copies carry extreme late energy).
  auto split_energy = [&](const kinflow::solve_result<float>& r, const run_metrics& m) {
    double sum_mem = 0, sum_gen = 0;
    long n_mem = 0, n_gen = 0;
    for (std::size_t j = 0; j < m.finite.size(); ++j) {
      const double late = r.kpe.late(m.finite[j]);
      if (m.mem.memorized(static_cast<Eigen::Index>(j))) sum_mem += late, ++n_mem;
      else sum_gen += late, ++n_gen;
    }
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return std::pair{n_mem ? sum_mem / n_mem : nan, n_gen ? sum_gen / n_gen : nan};
  };
  const auto [late_mem_model, late_gen_model] = split_energy(r_model, base_model);
  const auto [late_mem_emp, late_gen_emp] = split_energy(r_emp, base_emp);

  std::printf("\n  unshaped      KPE mean (early, late)       F_mem [95%% CI]          nn train  nn held-out  sliced W2\n");
  auto print_row = [](const char* name, const run_metrics& m) {
    std::printf("  %-12s %7.3f (%6.3f, %7.3f)   %.3f [%.3f, %.3f]    %.4f    %.4f      %.4f\n", name, m.kpe, m.kpe_early,
                m.kpe_late, m.f_mem, m.f_mem_lo, m.f_mem_hi, m.nn_train, m.nn_heldout, m.sliced_w2);
  };
  print_row("model", base_model);
  print_row("empirical", base_emp);
  std::printf("  late KPE of memorized / other samples: model %.3f / %.3f, empirical %.3f / %.3f\n", late_mem_model,
              late_gen_model, late_mem_emp, late_gen_emp);

  // 3. The Goldilocks sweep, both fields, runs shared out over threads.
  std::vector<sweep_row> rows;
  for (const char* field : {"model", "empirical"})
    for (double t : s.tau)
      for (double a0 : s.alpha0)
        for (double b0 : s.beta0) rows.push_back({field, a0, b0, t, {}});
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const unsigned workers = std::min<unsigned>(s.threads > 0 ? static_cast<unsigned>(s.threads) : hw,
                                              static_cast<unsigned>(rows.size()));
  std::size_t next = 0;
  std::mutex lock;
  std::exception_ptr failure;  // the first error of any worker, rethrown after joining
  auto work = [&]() noexcept {
    try {
      auto model = model_f;  // per-thread copies: the fields own scratch buffers
      kinflow::empirical_options<float> eo;
      eo.threads = 1;
      auto emp = kinflow::empirical_field<float>(kinflow::keep_reference, train_f, eo);
      for (;;) {
        std::size_t i;
        {
          const std::lock_guard<std::mutex> g(lock);
          if (next == rows.size() || failure) return;
          i = next++;
        }
        sweep_row& row = rows[i];
        dyn_batch<float> X = noise.cast<float>();
        const auto kts = kts_of(s, row.alpha0, row.beta0, row.tau);
        const auto r =
            row.field == std::string("model") ? sample(model, kts, s.steps, X) : sample(emp, kts, s.steps, X);
        row.m = measure(X, r, ref, s);
        row.m.mem = {};  // per-sample data not kept for the sweep
        row.m.finite.clear();
      }
    } catch (...) {
      const std::lock_guard<std::mutex> g(lock);
      if (!failure) failure = std::current_exception();
    }
  };
  {
    std::vector<std::thread> pool;
    try {
      for (unsigned w = 1; w < workers; ++w) pool.emplace_back(work);
    } catch (const std::system_error&) {
      // Fewer threads than asked for: the ones running (and this one) share the work.
    }
    work();
    for (auto& th : pool) th.join();
  }
  if (failure) std::rethrow_exception(failure);

  // The model's setting closest to held-out data (smallest sliced W2), for the figures.
  const sweep_row* best = nullptr;
  for (const auto& r : rows)
    if (r.field == std::string("model") && std::isfinite(r.m.sliced_w2) && (!best || r.m.sliced_w2 < best->m.sliced_w2))
      best = &r;

  std::printf("\n  Goldilocks sweep (%zu runs): F_mem / sliced W2 to held-out data, rows alpha0, columns beta0\n",
              rows.size());
  for (const char* field : {"model", "empirical"})
    for (double t : s.tau) {
      std::printf("  %s, tau = %g\n          ", field, t);
      for (double b0 : s.beta0) std::printf("  beta0=%-9g", b0);
      std::printf("\n");
      for (double a0 : s.alpha0) {
        std::printf("  a0=%-5g", a0);
        for (double b0 : s.beta0)
          for (const auto& r : rows)
            if (r.field == std::string(field) && r.tau == t && r.alpha0 == a0 && r.beta0 == b0)
              std::printf("  %.3f/%.4f ", r.m.f_mem, r.m.sliced_w2);
        std::printf("\n");
      }
    }
  if (best)
    std::printf("  closest to held-out data: model with alpha0 %g, beta0 %g, tau %g: sliced W2 %.4f (unshaped %.4f), "
                "F_mem %.3f (unshaped %.3f)\n",
                best->alpha0, best->beta0, best->tau, best->m.sliced_w2, base_model.sliced_w2, best->m.f_mem,
                base_model.f_mem);

  // 4. Files (the directory was made at the start).
  const fs::path dir(s.out);
  write_samples(dir / "samples_model.csv", X_model, r_model, ref);
  write_samples(dir / "samples_empirical.csv", X_emp, r_emp, ref);
  if (best) {
    dyn_batch<float> X = noise.cast<float>();
    auto model = model_f;
    const auto r = sample(model, kts_of(s, best->alpha0, best->beta0, best->tau), s.steps, X);
    write_samples(dir / "samples_model_best.csv", X, r, ref);
  }
  write_sweep(dir / "sweep.csv", rows);
  std::vector<std::string> names;
  for (Eigen::Index k = 0; k < d; ++k) names.push_back("x_" + std::to_string(k));
  kinflow::write_csv(dir / "train.csv", ref.train, names);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    std::ofstream f(dir / "summary.json");
    if (!f) throw std::runtime_error("cannot write " + (dir / "summary.json").string());
    f << "{\n  \"kinflow_version\": \"" << KINFLOW_VERSION_STRING << "\",\n";
    f << "  \"settings\": {\"model\": " << json_string(s.model) << ", \"train\": " << json_string(s.train)
      << ", \"dataset\": " << json_string(s.dataset) << ", \"dim\": " << d << ", \"n_train\": " << ref.train.cols()
      << ", \"samples\": " << s.samples << ", \"steps\": " << s.steps << ", \"seed\": " << s.seed
      << ", \"k\": " << s.k << ", \"solver\": \"euler\", \"precision\": \"float\"},\n";
    f << "  \"adapters\": " << adapters_json << ",\n";
    f << "  \"unshaped\": {\"model\": " << json_metrics(base_model) << ",\n               \"empirical\": "
      << json_metrics(base_emp) << "},\n";
    f << "  \"late_kpe\": {\"model\": {\"memorized\": " << json_number(late_mem_model) << ", \"other\": "
      << json_number(late_gen_model) << "}, \"empirical\": {\"memorized\": " << json_number(late_mem_emp)
      << ", \"other\": " << json_number(late_gen_emp) << "}},\n";
    if (best)
      f << "  \"best_model_setting\": {\"alpha0\": " << best->alpha0 << ", \"beta0\": " << best->beta0
        << ", \"tau\": " << best->tau << ", \"metrics\": " << json_metrics(best->m) << "},\n";
    f << "  \"wall_seconds\": " << seconds << "\n}\n";
  }
  std::printf("\nkinflow-trained: wrote %s/{summary.json, sweep.csv, samples_model.csv, samples_empirical.csv%s, "
              "train.csv} in %.1f s\n",
              s.out.c_str(), best ? ", samples_model_best.csv" : "", seconds);
  if (!adapters_ok) {
    std::fprintf(stderr, "kinflow-trained: the two adapters disagree beyond the tolerance\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  kinflow_examples::program_name = "kinflow-trained";
  const settings s = parse(argc, argv);
  try {
    return run(s);
  } catch (const kinflow::invalid_argument& e) {
    std::fprintf(stderr, "kinflow-trained: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kinflow-trained: error: %s\n", e.what());
    return 1;
  }
}
