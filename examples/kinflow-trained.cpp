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

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "cli/command_line.hpp"
#include "cli/data.hpp"
#include "cli/metrics.hpp"
#include "cli/models.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "cli/run_files.hpp"

#ifndef KINFLOW_MODELS_DIR
#define KINFLOW_MODELS_DIR "examples/models"
#endif

namespace {

namespace fs = std::filesystem;
namespace cli = kinflow_cli;
using cli::usage_error;

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
  bool quiet = false;
};

/// The KTS setting (alpha0, beta0, tau) of the sweep, with the rate k of --k.
kinflow::kts_options kts_of(const settings& s, double alpha0, double beta0, double tau) {
  return {.alpha0 = alpha0, .beta0 = beta0, .tau = tau, .k = s.k};
}

settings parse(int argc, char** argv) {
  settings s;
  cli::command_line cl("kinflow-trained",
                       "kinflow-trained: sample a trained flow-matching network, measure each sample's kinetic path "
                       "energy (KPE) and memorization, and sweep Kinetic Trajectory Shaping (KTS) over alpha0 x beta0 "
                       "x tau, next to the exact empirical field of the same training set. Euler steps on a uniform "
                       "grid (the paper's sampler); KTS gain eta = 1 + alpha before tau (linear ramp), 1 - beta after "
                       "(exponential with rate k).");
  cl.value("--model", "FILE.npz", "weights for kinflow::mlp_field", cli::text(s.model),
             "examples/models/fm_mlp_8gaussians.npz")
      .value("--torchscript", "FILE.pt",
             "the same model as TorchScript, sampled as well and compared (needs a build with "
             "-DKINFLOW_WITH_TORCH=ON; by default the --model path with .pt, when that file exists)",
             cli::text(s.torchscript))
      .value("--train", "FILE", "the model's training set (memorization and the empirical field): CSV (N rows "
             "of d numbers) or IDX (plain or gzip; bytes / 255)",
             cli::text(s.train), "examples/models/fm_mlp_8gaussians_train.csv")
      .value("--dataset", "NAME",
             "toy dataset the training set was drawn from, for held-out data (none: no held-out metrics)",
             cli::text(s.dataset))
      .value("--samples", "B", "samples per run", cli::integer(s.samples, 2, 100000000))
      .value("--steps", "N", "Euler steps", cli::integer(s.steps, 1, 10000000))
      .value("--seed", "S", "seed of the noise and the held-out data", cli::integer(s.seed, 0))
      .value("--alpha0", "LIST", "launch strengths of the sweep, comma-separated",
             cli::numbers(s.alpha0, cli::at_least(0)))
      .value("--beta0", "LIST",
             "landing strengths of the sweep; with the exponential landing beta0 <= 1/(e^k - 1), 0.0524 for k = 3",
             cli::numbers(s.beta0, cli::at_least(0)))
      .value("--tau", "LIST", "switch times of the sweep", cli::numbers(s.tau, cli::closed(0, 1)))
      .value("--k", "V", "rate of the exponential late gain", cli::number(s.k, cli::above(0)))
      .value("--threads", "T", "runs of the sweep in parallel (0: all hardware threads)",
             cli::integer(s.threads, 0, 4096))
      .toggle("--quick", "500 samples, 40 steps, a 2 x 2 x 2 sweep (a smoke run)", s.quick)
      .value("--out", "DIR", "output directory", cli::text(s.out))
      .toggle("--quiet", "no progress on stderr", s.quiet);
  cl.parse(argc, argv);
  if (s.quick) {
    if (!cl.given("--samples")) s.samples = 500;
    if (!cl.given("--steps")) s.steps = 40;
    if (!cl.given("--alpha0") && !cl.given("--beta0") && !cl.given("--tau"))
      s.alpha0 = {0, 0.2}, s.beta0 = {0, 0.05}, s.tau = {0.5, 0.8};
  }
  cli::require_dataset("--dataset", s.dataset, /*allow_none=*/true);
  for (double a0 : s.alpha0)
    for (double b0 : s.beta0)
      for (double t : s.tau)
        cli::require_kts("--alpha0/--beta0/--tau/--k", kts_of(s, a0, b0, t));
  return s;
}

// ---------------------------------------------------------------------------------------
// Sampling and metrics

template <class Scalar>
using dyn_batch = kinflow::batch<Scalar, Eigen::Dynamic>;

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

/// One run's summary over its finite samples.
using run_metrics = cli::sample_summary;

template <class Scalar>
run_metrics measure(const dyn_batch<Scalar>& X, const kinflow::solve_result<Scalar>& r, const cli::references& ref,
                    const settings& s) {
  cli::summary_options o;
  o.seed = static_cast<std::uint64_t>(s.seed);
  o.sliced = {.projections = 256, .seed = 1, .threads = 1};  // (the sweep already runs on --threads)
  o.min_samples = 2;
  return cli::summarize(X, r, ref, o);
}

/// One row of the sweep.
struct sweep_row {
  std::string field;  // "model" or "empirical"
  double alpha0 = 0, beta0 = 0, tau = 0;
  run_metrics m;
};

// ---------------------------------------------------------------------------------------
// Output

/// Per-sample energy and memorization over every sample (non-finite ones get NaN distances).
template <class Scalar>
void write_samples(const fs::path& file, const dyn_batch<Scalar>& X, const kinflow::solve_result<Scalar>& r,
                   const cli::references& ref) {
  const cli::memorization_columns mem = cli::memorization_per_sample(X, ref);
  cli::sample_table t;
  cli::add_memorization_columns(t.energy_columns(r), mem);
  t.write(file, X);
}

void write_sweep(const fs::path& file, const std::vector<sweep_row>& rows) {
  std::ofstream f = cli::open_output(file);
  f << std::setprecision(10);
  f << "field,alpha0,beta0,tau,kpe_mean,kpe_early_mean,kpe_late_mean,f_mem,f_mem_lo,f_mem_hi,nn_train_mean,"
       "nn_heldout_mean,sliced_w2,not_finite\n";
  for (const auto& r : rows)
    f << r.field << ',' << r.alpha0 << ',' << r.beta0 << ',' << r.tau << ',' << r.m.kpe_mean << ','
      << r.m.kpe_early_mean << ',' << r.m.kpe_late_mean << ',' << r.m.f_mem << ',' << r.m.f_mem_lo << ','
      << r.m.f_mem_hi << ',' << r.m.nn_train_mean << ',' << r.m.nn_heldout_mean << ',' << r.m.sliced_w2 << ','
      << r.m.not_finite << '\n';
}

cli::json_object json_metrics(const run_metrics& m) {
  cli::json_object o;
  o.number("kpe_mean", m.kpe_mean).number("kpe_early_mean", m.kpe_early_mean).number("kpe_late_mean", m.kpe_late_mean)
      .number("f_mem", m.f_mem).raw("f_mem_ci95", cli::json_numbers({m.f_mem_lo, m.f_mem_hi}))
      .number("nn_train_mean", m.nn_train_mean).number("nn_heldout_mean", m.nn_heldout_mean)
      .number("sliced_w2", m.sliced_w2).integer("not_finite", m.not_finite);
  return o;
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
  // Before any work, so that a bad --out does not cost a whole sweep; a killed run leaves
  // no partial files (examples/cli/run_files.hpp).
  std::optional<cli::run_directory> dir;
  try {
    dir.emplace(s.out, "kinflow-trained",
                std::vector<std::string>{"samples_model.csv", "samples_empirical.csv", "samples_model_best.csv",
                                         "sweep.csv", "train.csv"});
  } catch (const std::runtime_error& e) {
    usage_error(e.what());
  }
  const auto seed = static_cast<std::uint64_t>(s.seed);

  // The model, in float (the precision it was trained in) and double.
  const auto model_f = cli::load_mlp<float>("--model", s.model);
  const auto model_d = cli::load_mlp<double>("--model", s.model);
  const Eigen::Index d = model_d.dim();

  Eigen::MatrixXd train = cli::read_points("--train", s.train), heldout;
  if (train.rows() != d)
    usage_error("--train has " + std::to_string(train.rows()) + " numbers per row, the model's dimension is " +
                std::to_string(d));
  if (train.cols() < 2) usage_error("--train needs at least 2 points");
  if (s.dataset != "none") {
    heldout = cli::heldout_points(s.dataset, std::max<long>(5000, s.samples), seed);
    if (heldout.rows() != d)
      usage_error("--dataset " + s.dataset + " is " + std::to_string(heldout.rows()) + "-D, the model " +
                  std::to_string(d) + "-D");
  }
  const cli::references ref(std::move(train), std::move(heldout));
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
    // The two adapters sum in different orders (Eigen's products, libtorch's), so they differ
    // by rounding, and the largest difference over the batch grows with its size. Measured
    // over 40 steps, max |dx| and max |dE|/E: float 2e-6 at 500 samples, 1.3e-5 and 1.1e-5 at
    // 20000; double 9e-15 and 2e-14. The tolerances leave room for more samples: 1e-4 is
    // about 800 float unit roundoffs, still far below what different weights would give.
    const double tolerance_f = 1e-4, tolerance_d = 1e-12;
    cli::json_object js;
    js.text("torchscript", torchscript)
        .object("kts", cli::json_object().number("alpha0", kts.alpha0).number("beta0", kts.beta0)
                           .number("tau", kts.tau).number("k", kts.k));
    auto check = [&](auto scalar, const auto& mlp, double tolerance) {
      using S = decltype(scalar);
      auto a = mlp;
      auto b = cli::load_torchscript<S>("--torchscript", torchscript, noise);
      dyn_batch<S> Xa = noise.cast<S>(), Xb = Xa;
      const auto ra = sample(a, kts, s.steps, Xa);
      const auto rb = sample(b, kts, s.steps, Xb);
      const agreement g = compare_runs(Xa, ra, Xb, rb);
      const bool ok = g.max_dx <= tolerance && g.max_rel_de <= tolerance;
      adapters_ok = adapters_ok && ok;
      const char* name = std::is_same_v<S, float> ? "float" : "double";
      std::printf("  adapters, %-6s: mlp_field vs torchscript_field: max |dx| %.2e, max |dE|/E %.2e (%s %.0e)\n", name,
                  g.max_dx, g.max_rel_de, ok ? "within" : "NOT within", tolerance);
      js.object(name, cli::json_object().number("max_abs_dx", g.max_dx).number("max_rel_dE", g.max_rel_de)
                          .number("tolerance", tolerance));
    };
    check(0.0f, model_f, tolerance_f);
    check(0.0, model_d, tolerance_d);
    adapters_json = js.str();
  } else {
    std::printf("  adapters: no TorchScript file next to the model; mlp_field only\n");
  }
#else
  std::printf("  adapters: this build has no TorchScript support (configure with -DKINFLOW_WITH_TORCH=ON and\n"
              "            libtorch-dev); mlp_field only\n");
  if (!s.torchscript.empty()) cli::no_torchscript("--torchscript", s.torchscript);
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
    std::printf("  %-12s %7.3f (%6.3f, %7.3f)   %.3f [%.3f, %.3f]    %.4f    %.4f      %.4f\n", name, m.kpe_mean,
                m.kpe_early_mean, m.kpe_late_mean, m.f_mem, m.f_mem_lo, m.f_mem_hi, m.nn_train_mean,
                m.nn_heldout_mean, m.sliced_w2);
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
  std::size_t next = 0, done = 0;
  auto progress = cli::progress_to_stderr("kinflow-trained", "runs", static_cast<double>(rows.size()), s.quiet);
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
        const std::lock_guard<std::mutex> g(lock);
        ++done;
        if (progress) progress(static_cast<double>(done) / static_cast<double>(rows.size()));
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

  // 4. Files, staged in the directory opened at the start and committed with the summary.
  write_samples(dir->stage("samples_model.csv"), X_model, r_model, ref);
  write_samples(dir->stage("samples_empirical.csv"), X_emp, r_emp, ref);
  if (best) {
    dyn_batch<float> X = noise.cast<float>();
    auto model = model_f;
    const auto r = sample(model, kts_of(s, best->alpha0, best->beta0, best->tau), s.steps, X);
    write_samples(dir->stage("samples_model_best.csv"), X, r, ref);
  }
  write_sweep(dir->stage("sweep.csv"), rows);
  cli::write_points(dir->stage("train.csv"), ref.train);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  cli::json_object settings_json;
  settings_json.text("model", s.model).text("train", s.train).text("dataset", s.dataset).integer("dim", d)
      .integer("n_train", ref.train.cols()).integer("samples", s.samples).integer("steps", s.steps)
      .integer("seed", s.seed).number("k", s.k).text("solver", "euler").text("precision", "float");
  auto late = [](double memorized, double other) {
    return cli::json_object().number("memorized", memorized).number("other", other);
  };
  cli::json_object summary(0);
  summary.text("kinflow_version", KINFLOW_VERSION_STRING).object("settings", settings_json)
      .raw("adapters", adapters_json)
      .object("unshaped", cli::json_object().object("model", json_metrics(base_model))
                              .object("empirical", json_metrics(base_emp)))
      .object("late_kpe", cli::json_object().object("model", late(late_mem_model, late_gen_model))
                              .object("empirical", late(late_mem_emp, late_gen_emp)));
  if (best)
    summary.object("best_model_setting", cli::json_object().number("alpha0", best->alpha0)
                                             .number("beta0", best->beta0).number("tau", best->tau)
                                             .object("metrics", json_metrics(best->m)));
  summary.number("wall_seconds", seconds);
  dir->commit(summary);  // summary.json last
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
  const settings s = parse(argc, argv);
  return kinflow_cli::run_guarded([&] { return run(s); });
}
