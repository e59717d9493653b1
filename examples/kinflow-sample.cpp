// kinflow-sample: sample a closed-form flow-matching field on a toy dataset (or a CSV
// training set), or a trained model (--model), measure every sample's kinetic path energy,
// optionally shape the velocity with Kinetic Trajectory Shaping, and report memorization
// and distribution metrics. With --class/--classes it samples the exact class-conditional
// field of the labelled training set, guided with --cfg (and --cfg-window, --cfg-zero-star),
// and reports the three parts of each sample's energy and the class it landed in.
//
// Writes DIR/samples.csv, DIR/summary.json, DIR/train.csv (the training set used; not with
// --no-train-csv) and, with --trajectories K, DIR/trajectories.csv.
//
// Built with MPI (-DKINFLOW_WITH_MPI=ON), `mpirun -np P kinflow-sample ... [--shard train|samples]`
// shards the training set (the exact field's partial states reduced once per evaluation;
// the default when N >= B) or the samples over the P ranks; rank 0 writes the outputs and
// summary.json records P and the shard mode (docs/mpi.md).
// Run with --help for every option.

#include <kinflow/kinflow.hpp>
#if defined(KINFLOW_HAVE_MPI)
#include <kinflow/mpi/class_conditional.hpp>
#include <kinflow/mpi/empirical.hpp>
#include <kinflow/mpi/samples.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cli/command_line.hpp"
#include "cli/conditions.hpp"
#include "cli/data.hpp"
#include "cli/metrics.hpp"
#include "cli/models.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "cli/run_files.hpp"
#include "cli/stochastic.hpp"

namespace {

namespace cli = kinflow_cli;
using cli::usage_error;

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
  kinflow::pruning_mode pruning = kinflow::pruning_mode::automatic;  // empirical and smoothed fields
  double pruning_eps = 1e-12;
  std::string solver = "euler";
  long steps = 100;
  std::string last_step = "method";  // method | euler | denoise
  std::string start = "lower";       // multistep start: lower | rk
  kinflow::grid_spec grid;           // --grid, read by kinflow::parse_grid_spec
  std::string grid_file;             // --grid-file: the times themselves (then grid_times)
  std::vector<double> grid_times;
  double rtol = 1e-5, atol = 1e-5;
  std::string precision = "double";
  kinflow::kts_options kts{};
  std::string kpe = "stage";
  long trajectories = 0;
  std::string out = "kinflow-out";
  bool quiet = false;
  bool no_train_csv = false;  // --no-train-csv: train.csv not written
  bool likelihood = false;  // --likelihood: per-sample log-likelihood beside the KPE
  bool profile = false;     // --profile: profile.csv, the per-step energy increments
  long probes = 1;          // Hutchinson probes when the field has no exact divergence
  std::string shard;        // --shard train | samples (MPI builds); empty: train when N >= B
  cli::stochastic_settings sde;  // --diffusion, --diffusion-norm, --last-step-size, --noise-seed, --churn
  std::uint64_t first_sample = 0;  // the noise stream of the first column (a shard's offset)
  cli::guidance_settings guidance;  // --labels, --class, --classes, --cfg, --cfg-window, --cfg-zero-star
};

#if defined(KINFLOW_HAVE_MPI)
constexpr bool have_mpi = true;
#else
constexpr bool have_mpi = false;
#endif

/// The ranks of an MPI run (one rank, no shard mode, otherwise).
struct parallel {
  bool mpi = false;  // MPI initialized: started by an MPI launcher (launched_by_mpi)
  int rank = 0;
  int ranks = 1;
  std::string shard;  // "train" or "samples" under MPI; empty in a build without MPI
  [[nodiscard]] bool root() const { return rank == 0; }
};

/// Runs @p work on every rank; when it throws on any rank, every rank throws one error
/// with the first failing rank's message (without MPI: just runs it).
template <class Work>
auto on_every_rank(Work&& work) -> decltype(work()) {
#if defined(KINFLOW_HAVE_MPI)
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return kinflow::mpi::collectively(MPI_COMM_WORLD, std::forward<Work>(work));
#endif
  return std::forward<Work>(work)();
}

/// Whether this process was started by an MPI launcher: mpirun or mpiexec (Open MPI's
/// OMPI_COMM_WORLD_SIZE, PMIx's PMIX_RANK, MPICH's and Intel MPI's PMI_RANK or PMI_SIZE).
/// KINFLOW_MPI=1 says yes and KINFLOW_MPI=0 no whatever the launcher. A process started
/// otherwise runs alone without initializing MPI, which would cost every run about 0.4 s.
[[maybe_unused]] bool launched_by_mpi() {
  if (const char* forced = std::getenv("KINFLOW_MPI")) return std::string_view(forced) != "0";
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(name)) return true;
  return false;
}

/// The embedded pairs, which choose their own steps.
bool is_adaptive(const std::string& solver) { return kinflow::is_adaptive_method(solver); }

/// --grid-file's times: one number per line (a one-column CSV, with or without a header), at
/// least 2, each in [0, 1], strictly increasing; anything else is a usage error naming
/// @p flag and the line.
std::vector<double> read_grid_file(const std::string& flag, const std::string& path) {
  const Eigen::MatrixXd t = cli::read_points(flag, path);
  if (t.rows() != 1)
    usage_error(flag + ": expected one time per line, " + path + " has " + std::to_string(t.rows()) + " per line");
  if (t.cols() < 2) usage_error(flag + ": expected at least 2 times (1 step), " + path + " holds " + std::to_string(t.cols()));
  std::vector<double> times(t.data(), t.data() + t.size());
  for (std::size_t i = 0; i < times.size(); ++i) {
    if (!(times[i] >= 0 && times[i] <= 1))
      usage_error(flag + ": time " + std::to_string(i + 1) + " is " + kinflow::detail::to_text(times[i]) +
                  ", expected a time in [0, 1]");
    if (i > 0 && !(times[i] > times[i - 1]))
      usage_error(flag + ": time " + std::to_string(i + 1) + " is " + kinflow::detail::to_text(times[i]) +
                  ", expected strictly increasing times (the one before is " + kinflow::detail::to_text(times[i - 1]) + ")");
  }
  return times;
}

/// --grid's value through the library's one mapping; its errors become usage errors.
kinflow::grid_spec parse_grid(const std::string& flag, const std::string& v) {
  try {
    return kinflow::parse_grid_spec(v);
  } catch (const kinflow::invalid_argument& e) {
    usage_error(flag + ": " + std::string(e.what()).substr(std::string("kinflow: ").size()));
  }
}

/// `--flag NAME` or `--flag NAME:S` (S a number > 0): stores NAME, or @p parametric and S.
cli::binding parametric_choice(std::string& target, double& parameter, const std::string& parametric,
                               std::vector<std::string> plain) {
  std::vector<std::string> all = plain;
  all.push_back(parametric + ":S");
  return cli::custom(
      [&target, &parameter, parametric, all](const std::string& flag, const std::string& v) {
        if (v.starts_with(parametric + ":")) {
          target = parametric;
          parameter = cli::parse_number(flag + " " + parametric + ":S", v.substr(parametric.size() + 1), cli::above(0));
        } else {
          target = cli::parse_choice(flag, v, all);
        }
      },
      target);
}

settings parse(int argc, char** argv) {
  settings s;
  const std::vector<std::pair<std::string, kinflow::kts_form>> forms{
      {"linear", kinflow::kts_form::linear},
      {"constant", kinflow::kts_form::constant},
      {"exponential", kinflow::kts_form::exponential}};
  const std::string mixtures = cli::join(kinflow::mixture_dataset_names, " or ");
  cli::command_line cl("kinflow-sample",
                       "kinflow-sample: sample a closed-form flow-matching field or a trained model, measure each "
                       "sample's kinetic path energy (KPE), optionally apply Kinetic Trajectory Shaping (KTS), and "
                       "report memorization and distribution metrics.");
  cl.section("Input")
      .value("--dataset", "NAME", "toy training set: " + cli::join(kinflow::dataset_names, " "), cli::text(s.dataset))
      .value("--train", "FILE", "training set from a file instead: CSV (N rows of d numbers; any d) or IDX "
             "(e.g. /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz; plain or gzip; one point per "
             "image, bytes / 255)",
             cli::text(s.train_file))
      .value("--n-train", "N", "training points drawn from --dataset (default 1000), or the first N of --train "
             "(default: all of it)",
             cli::integer(s.n_train, 1, 10000000), "")
      .value("--samples", "B", "samples to draw", cli::integer(s.samples, 1, 100000000))
      .value("--noise", "FILE.csv", "initial noise x0 from CSV instead (B rows of d numbers, in order)",
             cli::text(s.noise_file))
      .value("--seed", "S", "seed of the dataset and the noise", cli::integer(s.seed, 0))
      .section("Field")
      .value("--field", "F",
             "empirical (memorizes), smoothed:S (a Gaussian of std S at every training point), gmm (the exact "
             "mixture of the dataset: " + mixtures + ")",
             parametric_choice(s.field, s.smoothing, "smoothed", {"empirical", "gmm"}))
      .value("--sigma-min", "V", "sigma_min of the empirical field", cli::number(s.sigma_min, cli::half_open(0, 1)))
      .value("--pruning", "MODE",
             "certified pruning of the training points (empirical and smoothed fields): auto (where it pays), "
             "on, off (docs/math.md, section 4.6); summary.json reports the share of points touched",
             cli::one_of(s.pruning, {{"auto", kinflow::pruning_mode::automatic},
                                     {"on", kinflow::pruning_mode::on},
                                     {"off", kinflow::pruning_mode::off}}))
      .value("--pruning-eps", "E", "posterior mass a sample may leave out, relative to the mass it finds",
             cli::number(s.pruning_eps, {.lo = 0, .hi = 0.5, .lo_open = true}))
      .value("--model", "FILE",
             std::string("a trained velocity field instead of --field: MLP weights (.npz, see "
                         "examples/models/README.md)") +
                 (cli::have_torchscript ? " or a TorchScript module (.pt, forward(t[B], x[B, d]) -> v[B, d])" : "") +
                 ". The training set (--dataset, --train) is then only the reference of the memorization "
                 "metrics: give the model's own, e.g. --train examples/models/fm_mlp_8gaussians_train.csv",
             cli::file_name(s.model))
      .section("Solver")
      .value("--solver", "NAME",
             "euler midpoint heun ralston rk3 rk4 (Runge-Kutta, fixed grid), ab2 ab3 dpmpp2m dpmpp3m "
             "dpmpp3m_exact unipc (multistep, fixed grid, one evaluation per step; docs/integrators.md), "
             "dopri5 tsit5 bs32 (adaptive), sde-euler sde-heun renoise-euler (stochastic, fixed grid)",
             cli::one_of(s.solver, {"euler", "midpoint", "heun", "ralston", "rk3", "rk4", "ab2", "ab3", "dpmpp2m",
                                    "dpmpp3m", "dpmpp3m_exact", "unipc", "dopri5", "tsit5", "bs32", "sde-euler",
                                    "sde-heun", "renoise-euler"}))
      .value("--last-step", "RULE",
             "last step of a fixed grid: method or none (its own), euler (one evaluation at its start; for fields "
             "singular at t = 1; stochastic solvers: the drift without noise), denoise or mean (the jump "
             "x + (1 - t) v to t = 1, the same as euler there for ODE solvers)",
             cli::one_of(s.last_step, {"method", "none", "euler", "denoise", "mean"}))
      .value("--start", "S",
             "first steps of a multistep solver: lower (lower order, as published) or rk (Runge-Kutta steps "
             "of its order, which keep it)",
             cli::one_of(s.start, {"lower", "rk"}))
      .value("--steps", "N", "fixed-grid steps", cli::integer(s.steps, 1, 10000000))
      .value("--grid", "G",
             "time grid of the fixed-step solvers: " + kinflow::grid_names() +
                 " (energy and acceleration from a pilot run of the field; docs/kts.md has the formulas)",
             cli::custom([&s](const std::string& flag, const std::string& v) { s.grid = parse_grid(flag, v); },
                         kinflow::to_string(s.grid)))
      .value("--grid-file", "FILE.csv",
             "the fixed-step grid's times instead of --grid and --steps: one per line, at least 2, in [0, 1], "
             "strictly increasing",
             cli::text(s.grid_file))
      .value("--rtol", "V", "relative tolerance of the adaptive solvers", cli::number(s.rtol, cli::closed(1e-15, 1)))
      .value("--atol", "V", "absolute tolerance of the adaptive solvers", cli::number(s.atol, cli::closed(0, 1)))
      .value("--precision", "P", "float or double", cli::one_of(s.precision, {"float", "double"}))
      .section("Kinetic Trajectory Shaping (eta = 1 + alpha before tau, 1 - beta after; off by default)")
      .value("--alpha0", "V", "launch strength", cli::number(s.kts.alpha0, cli::at_least(0)))
      .value("--beta0", "V", "landing strength", cli::number(s.kts.beta0, cli::at_least(0)))
      .value("--tau", "V", "switch time, also where the energy is split into early and late",
             cli::number(s.kts.tau, cli::closed(0, 1)))
      .value("--k", "V", "steepness of the exponential forms", cli::number(s.kts.k, cli::above(0)))
      .value("--early", "FORM", "launch form: linear, constant or exponential", cli::one_of(s.kts.early_form, forms))
      .value("--late", "FORM", "landing form: exponential, linear or constant", cli::one_of(s.kts.late_form, forms))
      .section("Kinetic path energy and output")
      .value("--kpe", "Q", "quadrature: stage (the integrator's stages) or left (the paper's left Riemann sum)",
             cli::one_of(s.kpe, {"stage", "left"}))
      .toggle("--likelihood",
              "also the model log-likelihood of every sample (natural log, column log_likelihood; its mean in "
              "summary.json), from the same solve: log N(x0) - integral of div v, with the field's exact "
              "divergence (empirical, smoothed, gmm, .npz models) or Hutchinson's estimate",
              s.likelihood)
      .value("--probes", "P",
             "Hutchinson probes per stage and sample (fields without an exact divergence, e.g. TorchScript models)",
             cli::integer(s.probes, 1, 1000))
      .toggle("--profile",
              "also profile.csv: each step's energy increment (t_start, t_end, the batch mean and the 10/50/90 % "
              "quantiles over the samples; the means sum to the KPE mean); fixed-grid and stochastic solvers",
              s.profile)
      .value("--trajectories", "K", "also write the paths of the first K samples",
             cli::integer(s.trajectories, 0, 100000000))
      .value("--out", "DIR",
             "output directory: samples.csv, summary.json, train.csv, and trajectories.csv with --trajectories",
             cli::text(s.out))
      .toggle("--no-train-csv",
              "do not write train.csv, the training set used (for Fashion-MNIST's 60 000 images about 400 MB)",
              s.no_train_csv)
      .toggle("--quiet", "no progress on stderr", s.quiet)
      .section("MPI (a build with -DKINFLOW_WITH_MPI=ON, started with mpirun -np P)")
      .value("--shard", "MODE",
             "train: each rank holds N/P training points of the empirical field (labelled with --class), "
             "one reduction per evaluation (default when N >= B); samples: each rank solves B/P samples with the whole field",
             cli::one_of(s.shard, {"train", "samples"}));
  cli::add_stochastic_options(cl, s.sde);
  cli::add_guidance_options(cl, s.guidance);
  cl.parse(argc, argv);
  cli::check_stochastic(cl, s.sde, s.solver, s.last_step, s.likelihood);
  if (!s.train_file.empty() && !cl.given("--n-train")) s.n_train = 0;  // the whole file
  if (cl.given("--shard") && !have_mpi)
    usage_error("--shard needs a kinflow-sample built with MPI (cmake -DKINFLOW_WITH_MPI=ON) and started with "
                "mpirun -np P; this build has no MPI");

  if (!s.model.empty()) {
    if (cl.given("--field")) usage_error("--field and --model exclude each other: --model is the field");
    if (s.sigma_min != 0) usage_error("--sigma-min applies to the empirical field, not to --model");
    s.field = "model";
  }
  cli::check_guidance(cl, s.guidance, s.field, is_adaptive(s.solver), s.likelihood, !s.train_file.empty());
  if (s.guidance.zero_star >= 0 && s.grid.needs_pilot())
    usage_error("--cfg-zero-star counts the steps of a grid known before the solve; --grid " +
                kinflow::to_string(s.grid) + " is built from a pilot run");
  if (s.field == "gmm" && !s.train_file.empty())
    usage_error("--field gmm needs a Gaussian-mixture --dataset (" + mixtures + "), not --train");
  if (s.field == "gmm" && !kinflow::is_mixture_dataset(s.dataset))
    usage_error("--field gmm = exact mixture field: --dataset must be " + mixtures + ", not '" + s.dataset + "'");
  cli::require_kts("--alpha0/--beta0/--tau/--k/--early/--late", s.kts);
  if (is_adaptive(s.solver) && s.grid.kind != kinflow::grid_kind::uniform)
    usage_error("--grid applies to fixed-step solvers; " + s.solver + " chooses its own steps");
  if (!s.grid_file.empty()) {
    if (is_adaptive(s.solver))
      usage_error("--grid-file applies to fixed-step solvers; " + s.solver + " chooses its own steps");
    if (cl.given("--grid")) usage_error("--grid-file replaces --grid: give one of them");
    s.grid_times = read_grid_file("--grid-file", s.grid_file);
    const auto steps = static_cast<long>(s.grid_times.size() - 1);
    if (cl.given("--steps") && s.steps != steps)
      usage_error("--steps: " + s.grid_file + " has " + std::to_string(steps) + " steps, --steps says " +
                  std::to_string(s.steps) + " (leave --steps out with --grid-file)");
    s.steps = steps;
  }
  if (is_adaptive(s.solver) && s.last_step != "method")
    usage_error("--last-step applies to fixed-step solvers; " + s.solver + " chooses its own steps");
  if (is_adaptive(s.solver) && s.profile)
    usage_error("--profile records the energy per step of a fixed grid; " + s.solver +
                " chooses its own steps per sample");
  if (!kinflow::is_multistep_method(s.solver) && s.start != "lower")
    usage_error("--start applies to the multistep solvers (ab2 ab3 dpmpp2m dpmpp3m dpmpp3m_exact unipc), not " +
                s.solver);
  return s;
}

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
  cli::path_energies<Scalar> sde;           // stochastic solvers: the drift and control energies
  std::optional<kinflow::pruning_stats> pruning;  // closed-form fields: the points touched
  std::vector<kinflow::pruning_stats> pruning_by_step;  // the same per step (fixed grids known beforehand)
  std::vector<kinflow::per_sample<Scalar>> guidance_parts;  // guided solves: the three energy parts
};

/// The guided field's energy parts, read by the solves' integrands (null: no guidance).
template <class Scalar>
using parts_source = typename kinflow::guidance_energy_ref<Scalar>::source_type;

/// The solve the command line describes, as kinflow::solve_with runs it (the mapping the
/// Python package's sample() uses too). KTS's τ is the energy's split when KTS is off; a
/// shaped field splits at its own.
kinflow::solve_settings solve_settings_of(const settings& s, Eigen::Index samples) {
  kinflow::solve_settings o;
  o.method = s.solver;
  o.grid = s.grid;
  o.steps = static_cast<std::size_t>(s.steps);
  o.times = s.grid_times;
  o.tau = s.kts.tau;
  o.quadrature = kinflow::parse_kpe_quadrature(s.kpe, "--kpe");
  if (s.profile) o.profile = kinflow::kpe_profile::per_sample;
  o.likelihood.enabled = s.likelihood;
  o.likelihood.divergence.hutchinson.probes = static_cast<int>(s.probes);
  o.likelihood.divergence.hutchinson.seed = static_cast<std::uint64_t>(s.seed);
  o.last_step = kinflow::parse_last_step_rule(s.last_step, "--last-step");
  o.start = kinflow::parse_multistep_start(s.start, "--start");
  o.rtol = s.rtol;
  o.atol = s.atol;
  if (cli::is_stochastic(s.solver)) {
    o.stochastic = cli::stochastic_options_of(s.sde, s.seed);
    o.stochastic.first_sample = s.first_sample;
  }
  o.progress = cli::progress_to_stderr("kinflow-sample", "samples", static_cast<double>(samples), s.quiet);
  return o;
}

/// Records the first K samples' states into `paths` (rows: sample, step, t, x...): after
/// every step of a fixed grid, and after every accepted step of an adaptive solve. One type
/// whatever the field, so the solves' drivers are compiled once for all fields. The rows of
/// a fixed grid get their times from the grid after the solve (fill_times).
template <class Scalar>
struct path_recorder {
  Eigen::Index K;
  std::vector<std::vector<double>>& paths;
  std::vector<long> steps_of;  // adaptive solves: accepted steps per sample

  static constexpr double later = std::numeric_limits<double>::quiet_NaN();  // fixed grids' times

  void record(Eigen::Index i, double step, double t, const auto& x) {
    std::vector<double> row{static_cast<double>(i), step, t};
    for (Eigen::Index r = 0; r < x.rows(); ++r) row.push_back(static_cast<double>(x(r)));
    paths.push_back(std::move(row));
  }
  void start(const dyn_batch<Scalar>& X, double t) {
    for (Eigen::Index i = 0; i < K; ++i) record(i, 0.0, t, X.col(i));
  }
  /// The times of the rows recorded on the fixed grid @p times (node n for step n).
  void fill_times(const std::vector<double>& times) {
    for (auto& row : paths)
      if (std::isnan(row[2])) row[2] = times[static_cast<std::size_t>(row[1])];
  }
  template <std::size_t S>
  void operator()(const kinflow::fixed_step_view<Scalar, Eigen::Dynamic, S>& view) {
    for (Eigen::Index i = 0; i < K; ++i) record(i, static_cast<double>(view.step + 1), later, view.x.col(i));
  }
  void operator()(const kinflow::multistep_step_view<Scalar, Eigen::Dynamic>& view) {
    for (Eigen::Index i = 0; i < K; ++i) record(i, static_cast<double>(view.step + 1), later, view.x.col(i));
  }
  void operator()(const kinflow::stochastic_step_view<Scalar, Eigen::Dynamic>& view) {
    const auto step = view.step + 1;
    for (Eigen::Index i = 0; i < K; ++i)
      record(i, static_cast<double>(step), static_cast<double>(view.t + view.dt), view.x.col(i));
  }
  template <std::size_t S>
  void operator()(const kinflow::adaptive_step_view<Scalar, Eigen::Dynamic, S>& v) {
    if (v.sample >= K) return;
    auto& n = steps_of[static_cast<std::size_t>(v.sample)];
    record(v.sample, static_cast<double>(++n), static_cast<double>(v.t + v.dt), v.x());
  }
};

/// Samples the field of reference @p inner (a kinflow::field_ref or kinflow::exact_field_ref:
/// the solves below are compiled for these two types, whatever the fields).
/// @p parts: the guided field's energy parts (null: no guidance); every solve carries them
/// as integrals (zeros without guidance), so that each is compiled once.
template <class Scalar, class Ref>
run_output<Scalar> sample_ref(Ref& inner, const settings& s, dyn_batch<Scalar>& X, const dyn_batch<Scalar>& pilot,
                              const parts_source<Scalar>* parts) {
  // KTS wraps every field; with alpha0 = beta0 = 0 the gain is the identity and the
  // results are bit-identical to the unshaped field's.
  const kinflow::kts_gain gain(s.kts);
  auto field = kinflow::shaped(inner, gain);
  const auto integrals = kinflow::guidance_energy_refs<Scalar>(parts, &gain);
  run_output<Scalar> out;
  out.divergence = kinflow::divergence_evaluator<decltype(field), Scalar, Eigen::Dynamic>::field_has_divergence
                       ? "exact"
                       : "hutchinson";
  const Eigen::Index K = std::min<Eigen::Index>(s.trajectories, X.cols());
  const bool adaptive = kinflow::is_adaptive_method(s.solver);
  path_recorder<Scalar> recorder{K, out.paths, std::vector<long>(static_cast<std::size_t>(K), 0)};
  recorder.start(X, adaptive ? 0.0 : recorder.later);
  // Without trajectories a fixed grid runs unobserved, so that the integrator may tile the
  // batch; the adaptive solves always take the recorder (one compiled solve each).
  auto solved = kinflow::solve_with(field, solve_settings_of(s, X.cols()), X, integrals,
                                    K > 0 || adaptive ? &recorder : nullptr, pilot.cols() > 0 ? &pilot : nullptr);
  out.grid = std::move(solved.times);
  recorder.fill_times(out.grid);
  if (cli::is_stochastic(s.solver)) {
    out.sde.drift = std::move(solved.result.drift_energy);
    out.sde.control = std::move(solved.result.control_energy);
  }
  out.result = std::move(static_cast<kinflow::solve_result<Scalar>&>(solved.result));
  if (parts != nullptr && out.result.integrals.size() == 3) out.guidance_parts = out.result.integrals;
  out.result.integrals.clear();
  return out;
}

template <class Scalar, class Field>
run_output<Scalar> sample_with(Field&& inner, const settings& s, dyn_batch<Scalar>& X,
                               const dyn_batch<Scalar>& pilot = {}, const parts_source<Scalar>* parts = nullptr) {
  return kinflow::with_field_ref<Scalar>(inner, X.rows(),
                                         [&](auto& ref) { return sample_ref(ref, s, X, pilot, parts); });
}

// ---------------------------------------------------------------------------------------
// Data

/// The training set and held-out data (named datasets only), and the initial noise.
struct inputs {
  cli::references ref;
  dyn_batch<double> noise;
  kinflow::class_labels labels;   // with --class/--classes: the class of every training point
  Eigen::Index classes = 0;       // ... their number
  kinflow::class_labels sample_classes;  // ... and the class of every sample
};

/// The labels of the training set of --train (the first N of --labels FILE with --n-train).
kinflow::class_labels training_labels(const settings& s, Eigen::Index n) {
  kinflow::class_labels labels;
  try {
    labels = kinflow::read_labels(s.guidance.labels_file);
  } catch (const kinflow::invalid_argument& e) {
    usage_error("--labels: " + std::string(e.what()).substr(std::string("kinflow: ").size()));
  }
  if (labels.size() < n || (s.n_train == 0 && labels.size() != n))
    usage_error("--labels: expected one label per training point (" + std::to_string(n) + "), " +
                s.guidance.labels_file + " holds " + std::to_string(labels.size()));
  return labels.head(n).eval();
}

inputs load_inputs(const settings& s) {
  const auto seed = static_cast<std::uint64_t>(s.seed);
  Eigen::MatrixXd train, heldout;
  kinflow::class_labels labels;
  Eigen::Index classes = 0;
  if (!s.train_file.empty()) {
    train = cli::read_points("--train", s.train_file, s.n_train);
    if (s.guidance.conditional() && !s.guidance.labels_file.empty()) {
      labels = training_labels(s, train.cols());
      classes = kinflow::count_classes(labels);
    }
  } else {
    cli::require_dataset("--dataset", s.dataset);
    if (s.guidance.conditional()) {  // the same points with their natural classes
      auto set = kinflow::make_labelled_dataset(s.dataset, s.n_train, seed);
      train = std::move(set.points);
      labels = std::move(set.labels);
      classes = set.classes;
    } else {
      train = kinflow::make_dataset(s.dataset, s.n_train, seed);
    }
    heldout = cli::heldout_points(s.dataset, std::max<long>(s.samples, 1000), seed);
  }
  // A class-conditional model has its own classes (the labels, when given, judge the samples).
  if (s.guidance.conditional() && s.field == "model") classes = cli::model_classes("--model", s.model);
  inputs in{cli::references(std::move(train), std::move(heldout)), {}, std::move(labels), classes, {}};
  if (!s.noise_file.empty()) {
    in.noise = cli::read_points("--noise", s.noise_file);
    if (in.noise.rows() != in.ref.train.rows())
      usage_error("--noise has " + std::to_string(in.noise.rows()) + " numbers per row, the training set " +
                  std::to_string(in.ref.train.rows()));
  } else {
    in.noise = kinflow::standard_normal<double>(in.ref.train.rows(), s.samples, seed + 1);
  }
  if (s.guidance.conditional())
    in.sample_classes = cli::sample_classes(s.guidance, in.noise.cols(), in.classes,
                                            s.field == "model" ? "the model" : "the training set");
  return in;
}

// ---------------------------------------------------------------------------------------
// Metrics and output

/// The log density at each landing point: exact for the mixture fields, else a k-NN
/// estimate of the training set's (more than 10 points); NaN for the samples left out.
struct landing_density {
  std::string kind;               // "exact", "knn", or empty: none
  Eigen::VectorXd log_density;    // per sample
  double spearman_with_kpe = 0;   // over the finite samples (3 or more)
};

template <class Scalar>
landing_density density_at_landing(const dyn_batch<Scalar>& X, const kinflow::solve_result<Scalar>& r,
                                   const cli::sample_summary& m, const cli::references& ref,
                                   const Eigen::VectorXd* exact_log_density) {
  landing_density d;
  d.log_density = Eigen::VectorXd::Constant(X.cols(), std::numeric_limits<double>::quiet_NaN());
  if (m.finite.empty()) return d;
  Eigen::VectorXd ld(static_cast<Eigen::Index>(m.finite.size()));
  if (exact_log_density) {
    d.kind = "exact";
    ld = (*exact_log_density)(m.finite);
  } else if (ref.train.cols() > 10) {
    d.kind = "knn";
    ld = kinflow::knn_log_density(X(Eigen::all, m.finite).template cast<double>(), ref.train);
  } else {
    return d;
  }
  d.log_density(m.finite) = ld;
  if (m.finite.size() >= 3) {
    const Eigen::VectorXd kpe = r.kpe.total(m.finite).template cast<double>();
    d.spearman_with_kpe = kinflow::spearman(kpe, ld);
  }
  return d;
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

/// With --class/--classes: every sample's class, the class of its nearest training point
/// (a nearest-neighbour judge of the class the sample landed in), and how often they agree.
struct class_report {
  kinflow::class_labels classes;   // empty: an unconditional run
  kinflow::class_labels nn_class;  // -1 where not measured
  double match = std::numeric_limits<double>::quiet_NaN(), lo = match, hi = match;  // fraction, 95 % Wilson interval
  long judged = 0;                 // finite samples with a class (not -1)
};

class_report report_classes(const inputs& in, const kinflow::class_labels& C, const cli::sample_summary& m) {
  class_report c;
  if (C.size() == 0) return c;
  c.classes = C;
  c.nn_class = kinflow::class_labels::Constant(C.size(), -1);
  if (!m.has_memorization || in.labels.size() == 0) return c;  // (a model's run without --labels)
  long hits = 0;
  for (std::size_t j = 0; j < m.finite.size(); ++j) {
    const Eigen::Index i = m.finite[j];
    c.nn_class(i) = in.labels(m.mem.nearest(static_cast<Eigen::Index>(j)));
    if (C(i) < 0) continue;
    ++c.judged;
    hits += c.nn_class(i) == C(i) ? 1 : 0;
  }
  if (c.judged > 0) {  // Wilson score interval, z = 1.96
    const double n = static_cast<double>(c.judged), p = static_cast<double>(hits) / n, z = 1.96;
    const double centre = (p + z * z / (2 * n)) / (1 + z * z / n);
    const double half = z * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n);
    c.match = p;
    c.lo = centre - half;
    c.hi = centre + half;
  }
  return c;
}

template <class Scalar>
void write_samples(const std::filesystem::path& file, const dyn_batch<Scalar>& X,
                   const kinflow::solve_result<Scalar>& r, const cli::sample_summary& m, const landing_density& d,
                   const cli::path_energies<Scalar>& sde, const class_report& cls,
                   const std::vector<kinflow::per_sample<Scalar>>& parts) {
  cli::sample_table t;
  t.energy_columns(r);
  cli::add_path_energy_columns(t, sde);
  if (parts.size() == 3) {
    const char* names[3] = {"kpe_unconditional", "kpe_cross", "kpe_guidance"};
    for (std::size_t p = 0; p < 3; ++p)
      t.column(names[p], [&parts, p](std::ostream& o, Eigen::Index i) { o << parts[p](i); });
  }
  if (cls.classes.size() > 0) {
    t.column("class", [&cls](std::ostream& o, Eigen::Index i) { o << cls.classes(i); });
    t.column("nn_class", [&cls](std::ostream& o, Eigen::Index i) { o << cls.nn_class(i); });
  }
  t
      .column("nfe", [&](std::ostream& o, Eigen::Index i) { o << r.nfe(i); })
      .column("status",
              [&](std::ostream& o, Eigen::Index i) { o << kinflow::to_string(r.status[static_cast<std::size_t>(i)]); });
  const cli::memorization_columns mem =
      m.has_memorization ? cli::spread(m.mem, m.finite, X.cols()) : cli::memorization_columns{};
  if (m.has_memorization) cli::add_memorization_columns(t, mem);
  if (!d.kind.empty()) t.column("log_density", [&](std::ostream& o, Eigen::Index i) { o << d.log_density(i); });
  if (r.log_likelihood.size() == X.cols())
    t.column("log_likelihood", [&](std::ostream& o, Eigen::Index i) { o << r.log_likelihood(i); });
  t.write(file, X);
}

/// profile.csv: per step of the grid `times`, its span and the batch mean and 10/50/90 %
/// quantiles of the samples' energy increments (the B x steps matrix @p P).
template <class Scalar>
void write_profile(const std::filesystem::path& file, const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& P,
                   const std::vector<double>& times) {
  std::ofstream f = cli::open_output(file);
  f << std::setprecision(17) << "step,t_start,t_end,kpe_mean,kpe_q10,kpe_q50,kpe_q90\n";
  std::vector<double> column(static_cast<std::size_t>(P.rows()));
  for (Eigen::Index k = 0; k < P.cols(); ++k) {
    double sum = 0;
    for (Eigen::Index i = 0; i < P.rows(); ++i) sum += column[static_cast<std::size_t>(i)] = static_cast<double>(P(i, k));
    const auto step = static_cast<std::size_t>(k);
    f << k << ',' << times[step] << ',' << times[step + 1] << ',' << sum / static_cast<double>(P.rows()) << ','
      << cli::quantile(column, 0.1) << ',' << cli::quantile(column, 0.5) << ',' << cli::quantile(column, 0.9) << '\n';
  }
}

void write_paths(const std::filesystem::path& file, const std::vector<std::vector<double>>& paths, Eigen::Index d) {
  std::ofstream f = cli::open_output(file);
  f << std::setprecision(17) << "sample,step,t";
  for (const auto& name : cli::coordinate_names(d)) f << ',' << name;
  f << '\n';
  for (const auto& row : paths) {
    f << static_cast<long>(row[0]) << ',' << static_cast<long>(row[1]);
    for (std::size_t c = 2; c < row.size(); ++c) f << ',' << row[c];
    f << '\n';
  }
}

template <class Scalar>
cli::json_object make_summary(const settings& s, const inputs& in,
                   const run_output<Scalar>& out, const cli::sample_summary& m, const landing_density& d,
                   const class_report& cls, double seconds, const parallel& par) {
  const auto& r = out.result;
  std::vector<double> e(static_cast<std::size_t>(r.kpe.total.size()));
  for (std::size_t i = 0; i < e.size(); ++i) e[i] = static_cast<double>(r.kpe.total(static_cast<Eigen::Index>(i)));
  auto q = [&](double p) { return cli::quantile(e, p); };
  cli::json_object kts;
  kts.number("alpha0", s.kts.alpha0).number("beta0", s.kts.beta0).number("tau", s.kts.tau).number("k", s.kts.k)
      .text("early", kinflow::to_string(s.kts.early_form)).text("late", kinflow::to_string(s.kts.late_form))
      .number("integral_of_eta", kinflow::kts_gain(s.kts).integral());
  cli::json_object set(2);
  set.text("dataset", s.train_file.empty() ? s.dataset : "").text("train_file", s.train_file)
      .text("noise_file", s.noise_file).integer("n_train", in.ref.train.cols()).integer("samples", in.noise.cols())
      .integer("dim", in.ref.train.rows()).integer("seed", s.seed).text("field", s.field).text("model", s.model)
      .number("smoothing", s.smoothing).number("sigma_min", s.sigma_min).text("solver", s.solver)
      .text("last_step", s.last_step).text("start", s.start).integer("steps", s.steps)
      .text("grid", kinflow::to_string(s.grid.kind)).number("shift", s.grid.shift)
      .text("grid_spec", kinflow::to_string(s.grid)).text("grid_file", s.grid_file).number("rtol", s.rtol)
      .number("atol", s.atol).text("precision", s.precision).object("kts", kts).text("kpe_quadrature", s.kpe)
      .boolean("likelihood", s.likelihood).integer("probes", s.probes).boolean("profile", s.profile);
  cli::json_object kpe;
  kpe.number("mean", r.kpe.total.template cast<double>().mean())
      .number("early_mean", r.kpe.early.template cast<double>().mean())
      .number("late_mean", r.kpe.late.template cast<double>().mean()).number("q05", q(0.05)).number("q25", q(0.25))
      .number("median", q(0.5)).number("q75", q(0.75)).number("q95", q(0.95)).number("max", q(1.0));
  cli::json_object j(0);
  j.text("kinflow_version", KINFLOW_VERSION_STRING).object("settings", set).object("kpe", kpe)
      .number("nfe_mean", r.nfe.template cast<double>().mean());
  if (cli::is_stochastic(s.solver)) j.object("stochastic", cli::stochastic_summary(s.sde, s.seed, out.sde));
  if (out.pruning) {
    const kinflow::pruning_stats& p = *out.pruning;
    j.object("pruning", cli::json_object()
                            .text("mode", s.pruning == kinflow::pruning_mode::automatic ? "auto"
                                          : s.pruning == kinflow::pruning_mode::on     ? "on"
                                                                                       : "off")
                            .number("eps", s.pruning_eps)
                            .number("touched_share", p.touched_share())
                            .integer("evaluations", static_cast<long long>(p.evaluations))
                            .integer("pruned_evaluations", static_cast<long long>(p.pruned_evaluations))
                            .raw("touched_share_by_step", [&] {
                              std::vector<std::string> shares;
                              for (const auto& step : out.pruning_by_step)
                                shares.push_back(cli::json_number(step.touched_share()));
                              return "[" + cli::join(shares, ", ") + "]";
                            }()));
  }
  if (s.guidance.conditional()) {
    const cli::guidance_settings& g = s.guidance;
    cli::json_object energy;
    const char* names[3] = {"unconditional_mean", "cross_mean", "guidance_mean"};
    for (std::size_t p = 0; p < out.guidance_parts.size() && p < 3; ++p)
      energy.number(names[p], out.guidance_parts[p].template cast<double>().mean());
    cli::json_object guide;
    guide.integer("classes", in.classes).text("labels_file", g.labels_file).text("classes_file", g.classes_file)
        .integer("class", g.class_all == -2 ? -1 : g.class_all).number("scale", g.scale)
        .raw("window", cli::json_numbers({g.window_start, g.window_end}))
        .integer("zero_star_steps", std::max(g.zero_star, 0L)).boolean("optimized_scale", g.zero_star >= 0)
        .object("energy", energy)
        .object("class_match", cli::json_object().number("fraction", cls.match)
                                   .raw("ci95", cli::json_numbers({cls.lo, cls.hi})).integer("judged", cls.judged)
                                   .text("rule", "the label of the nearest training point equals the sample's class"));
    j.object("guidance", guide);
  }
  if (r.log_likelihood.size() > 0) {
    const auto [mean, n] = mean_log_likelihood(r);
    j.object("log_likelihood", cli::json_object().number("mean", mean).integer("samples", n)
                                   .text("divergence", out.divergence));
  }
  cli::json_object status;
  for (auto st : {kinflow::solve_status::success, kinflow::solve_status::max_steps_reached,
                  kinflow::solve_status::dt_underflow, kinflow::solve_status::non_finite})
    status.integer(kinflow::to_string(st), static_cast<long long>(r.count(st)));
  j.object("status", status);
  if (!d.kind.empty())
    j.object("log_density", cli::json_object().text("kind", d.kind).number("spearman_with_kpe", d.spearman_with_kpe));
  if (m.has_memorization) {
    j.object("memorization", cli::json_object().number("f_mem", m.f_mem)
                                 .raw("ci95", cli::json_numbers({m.f_mem_lo, m.f_mem_hi}))
                                 .text("rule", cli::memorization_rule()));
    j.number("nn_dist_train_mean", m.nn_train_mean);
  }
  if (m.has_heldout)
    j.object("heldout", cli::json_object().number("nn_dist_mean", m.nn_heldout_mean).number("sliced_w2", m.sliced_w2));
  if (have_mpi) j.object("mpi", cli::json_object().integer("ranks", par.ranks).text("shard", par.shard));
  j.number("wall_seconds", seconds);
  return j;
}

/// Samples the trained model of --model: MLP weights (.npz) or, in a build with the
/// TorchScript adapter, a TorchScript module (.pt). Its dimension must be the data's.
template <class Scalar>
void sample_model(const settings& s, Eigen::Index n_train, dyn_batch<Scalar>& X, run_output<Scalar>& out) {
  cli::visit_model<Scalar>("--model", s.model, X, [&](auto& field) {
    if (!s.quiet)
      std::fprintf(stderr, "kinflow-sample: %ld samples in %ld-D from the model %s (memorization against %ld "
                   "training points), %s\n", static_cast<long>(X.cols()), static_cast<long>(X.rows()),
                   s.model.c_str(), static_cast<long>(n_train), s.solver.c_str());
    out = sample_with(field, s, X);
  });
}

/// The conditional field @p field guided for the classes @p C of the samples of @p X
/// (--cfg, --cfg-window, --cfg-zero-star), with the energy guidance spends.
template <class Scalar, class Field>
run_output<Scalar> sample_guided_field(const Field& field, const settings& s, const kinflow::class_labels& C,
                                       dyn_batch<Scalar>& X, const dyn_batch<Scalar>& pilot) {
  std::vector<double> grid;  // the zero start's grid (known before the solve; see parse)
  if (s.guidance.zero_star > 0)
    grid = s.grid_times.empty() ? kinflow::make_grid<double>(s.grid, static_cast<std::size_t>(s.steps)).times()
                                : s.grid_times;
  const auto guided = kinflow::guided(field, C, cli::guidance_of(s.guidance, grid));
  guided.track_energy();
  const parts_source<Scalar> parts = [&guided](int p, const kinflow::sample_times<Scalar>& T, const dyn_batch<Scalar>& Xs,
                                               kinflow::per_sample<Scalar>& G) { guided.energy_part(p, T, Xs, G); };
  return sample_with(guided, s, X, pilot, &parts);
}

/// Runs @p run, a solve of the closed-form @p field, and returns its output with the field's
/// pruning counts, overall and per step of the grid (a fixed grid known before the solve: a
/// pilot grid's pilot run would fall into its steps, and an adaptive solve has no common
/// steps).
template <class Scalar, class Field, class Run>
run_output<Scalar> recording_pruning(const Field& field, const settings& s, Run&& run) {
  const bool by_step = !kinflow::is_adaptive_method(s.solver) && !s.grid.needs_pilot();
  field.reset_pruning_statistics();
  field.record_pruning_passes(by_step);
  run_output<Scalar> out = run();
  out.pruning = field.pruning_statistics();  // the distributed fields: summed over the ranks
  if constexpr (requires { field.pruning_by_step(out.grid); }) {
    if (by_step) out.pruning_by_step = field.pruning_by_step(out.grid);
  } else if (by_step) {
    out.pruning_by_step = kinflow::pruning_by_step(field.pruning_passes(), out.grid);
  }
  field.record_pruning_passes(false);
  return out;
}

/// The exact class-conditional field of the labelled training set (each class's smoothed
/// field with --field smoothed:S), guided for the classes @p C of the samples of @p X
/// (--class, --classes, --cfg, --cfg-window, --cfg-zero-star).
template <class Scalar>
run_output<Scalar> sample_guided(const settings& s, const dyn_batch<Scalar>& train, const inputs& in,
                                 const kinflow::class_labels& C, dyn_batch<Scalar>& X, const dyn_batch<Scalar>& pilot) {
  run_output<Scalar> out;
  if (s.field == "smoothed") {  // each class's smoothed empirical field
    kinflow::gaussian_mixture_options<Scalar> o;
    o.pruning = s.pruning;
    o.pruning_eps = s.pruning_eps;
    const auto field = kinflow::smoothed_class_conditional(train, in.labels, static_cast<Scalar>(s.smoothing), o,
                                                           in.classes);
    return recording_pruning<Scalar>(field, s, [&] { return sample_guided_field(field, s, C, X, pilot); });
  }
  kinflow::empirical_options<Scalar> o;
  o.sigma_min = static_cast<Scalar>(s.sigma_min);
  o.pruning = s.pruning;
  o.pruning_eps = s.pruning_eps;
  const kinflow::class_conditional_field<Scalar> field(train, in.labels, o, in.classes);
  return recording_pruning<Scalar>(field, s, [&] { return sample_guided_field(field, s, C, X, pilot); });
}

/// Samples the class-conditional model of --model (an .npz MLP with classes) guided for the
/// classes @p C of the samples of @p X, with the energy guidance spends.
template <class Scalar>
run_output<Scalar> sample_model_guided(const settings& s, const kinflow::class_labels& C, dyn_batch<Scalar>& X) {
  auto field = cli::load_mlp<Scalar>("--model", s.model);
  if (field.dim() != X.rows())
    usage_error("--model = '" + s.model + "' is a " + std::to_string(field.dim()) + "-D field, the data are " +
                std::to_string(X.rows()) + "-D");
  if (!s.quiet)
    std::fprintf(stderr, "kinflow-sample: %ld samples in %ld-D from the class-conditional model %s (%ld classes), "
                 "guidance %g, %s\n", static_cast<long>(X.cols()), static_cast<long>(X.rows()), s.model.c_str(),
                 static_cast<long>(field.classes()), s.guidance.scale, s.solver.c_str());
  return sample_guided_field(field, s, C, X, dyn_batch<Scalar>{});
}

/// Samples with the field of --field / --model: every sample of @p X on one process, or
/// this rank's share under --shard samples (@p pilot: the whole batch's pilot samples).
/// @p exact_log_density receives log p_1 at the landing points for the mixture fields.
template <class Scalar>
run_output<Scalar> sample_field(const settings& s, const dyn_batch<Scalar>& train, const inputs& in,
                                const kinflow::class_labels& C, dyn_batch<Scalar>& X, const dyn_batch<Scalar>& pilot,
                                Eigen::VectorXd& exact_log_density) {
  run_output<Scalar> out;
  auto keep_log_density = [&](const auto& field) {
    exact_log_density = field.log_density(Scalar(1), X).template cast<double>();
  };
  if (s.guidance.conditional() && s.field == "model") {
    out = sample_model_guided(s, C, X);
  } else if (s.guidance.conditional()) {
    out = sample_guided(s, train, in, C, X, pilot);
  } else if (s.field == "empirical") {
    kinflow::empirical_options<Scalar> o;
    o.sigma_min = static_cast<Scalar>(s.sigma_min);
    o.pruning = s.pruning;
    o.pruning_eps = s.pruning_eps;
    const kinflow::empirical_field<Scalar> field(kinflow::keep_reference, train, o);
    out = recording_pruning<Scalar>(field, s, [&] { return sample_with(field, s, X, pilot); });
  } else if (s.field == "smoothed") {
    kinflow::gaussian_mixture_options<Scalar> o;
    o.pruning = s.pruning;
    o.pruning_eps = s.pruning_eps;
    const auto field = kinflow::smoothed_empirical(kinflow::keep_reference, train, static_cast<Scalar>(s.smoothing), o);
    out = recording_pruning<Scalar>(field, s, [&] { return sample_with(field, s, X, pilot); });
    keep_log_density(field);
  } else if (s.field == "model") {
    sample_model(s, train.cols(), X, out);
  } else {  // gmm: the exact mixture of the dataset, from the library beside its recipe
    const kinflow::isotropic_gaussian_mixture mix = kinflow::dataset_mixture(s.dataset);
    const dyn_batch<Scalar> means = mix.means.cast<Scalar>();
    const kinflow::gaussian_mixture_field<Scalar> field(mix.weights.cast<Scalar>(), means, mix.stds.cast<Scalar>());
    out = sample_with(field, s, X, pilot);
    keep_log_density(field);
  }
  return out;
}

template <class Scalar>
int run(const settings& s_given, const parallel& par_given) {
  const auto start = std::chrono::steady_clock::now();
  parallel par = par_given;
  settings s = s_given;
  if (!par.root()) s.quiet = true;  // progress and reports from rank 0 only
  // Opened first (on rank 0), so that a bad --out fails before any work and a killed run
  // leaves no partial files (examples/cli/run_files.hpp).
  std::optional<cli::run_directory> dir;
  on_every_rank([&] {
    if (par.root()) dir.emplace(s.out, "kinflow-sample", std::vector<std::string>{"samples.csv", "train.csv", "trajectories.csv", "profile.csv"});
  });
  const inputs in = on_every_rank([&] { return load_inputs(s); });
  const dyn_batch<Scalar> train = in.ref.train.template cast<Scalar>();
  dyn_batch<Scalar> X = in.noise.template cast<Scalar>();
  if (have_mpi) {
    // Default: the training set when it is at least as large as the batch (the empirical
    // field only), the samples otherwise.
    if (par.shard.empty())
      par.shard = s.field == "empirical" && train.cols() >= X.cols() ? "train" : "samples";
    if (par.shard == "train" && s.field != "empirical")
      usage_error("--shard train shards the training set of --field empirical; with --field " + s.field +
                  " use --shard samples");
    if (par.shard == "samples" && s.trajectories > 0 && par.ranks > 1)
      usage_error("--trajectories needs the whole batch on one rank: use --shard train or one rank");
  }
  if (!s.quiet && s.field != "model")  // (sample_model reports once the model is loaded)
    std::fprintf(stderr, "kinflow-sample: %ld samples in %ld-D, %s field on %ld training points, %s%s\n",
                 static_cast<long>(X.cols()), static_cast<long>(X.rows()), s.field.c_str(),
                 static_cast<long>(train.cols()), s.solver.c_str(),
                 have_mpi ? (", " + std::to_string(par.ranks) + " rank(s), --shard " + par.shard).c_str() : "");

  run_output<Scalar> out;
  Eigen::VectorXd exact_log_density;  // log p_1 at the landing points, for mixture fields
#if defined(KINFLOW_HAVE_MPI)
  if (!par.mpi) {  // one process, not started by a launcher
    out = sample_field(s, train, in, in.sample_classes, X, dyn_batch<Scalar>{}, exact_log_density);
  } else if (par.shard == "train") {
    // Every rank keeps its balanced share of the training set; every evaluation reduces.
    kinflow::empirical_options<Scalar> o;
    o.sigma_min = static_cast<Scalar>(s.sigma_min);
    o.pruning = s.pruning;
    o.pruning_eps = s.pruning_eps;
    if (s.guidance.conditional()) {  // the labelled set's shards, guided: one reduction per stage
      const auto field = kinflow::mpi::distributed_class_conditional_field<Scalar>::balanced(
          MPI_COMM_WORLD, train, in.labels, in.classes, o);
      out = recording_pruning<Scalar>(
          field, s, [&] { return sample_guided_field(field, s, in.sample_classes, X, dyn_batch<Scalar>{}); });
    } else {
      const auto field = kinflow::mpi::distributed_empirical_field<Scalar>::balanced(MPI_COMM_WORLD, train, o);
      out = recording_pruning<Scalar>(field, s, [&] { return sample_with(field, s, X); });
    }
  } else {
    // Every rank solves its balanced share of the samples; gathered in order on rank 0.
    const dyn_batch<Scalar> pilot = X.leftCols(std::min<Eigen::Index>(X.cols(), 256));
    dyn_batch<Scalar> mine = kinflow::mpi::local_columns(MPI_COMM_WORLD, X);
    // This rank's samples keep the noise streams of their columns in the whole batch.
    s.first_sample = static_cast<std::uint64_t>(kinflow::mpi::balanced_shard(MPI_COMM_WORLD, X.cols()).offset);
    Eigen::VectorXd local_log_density;
    run_output<Scalar> local = on_every_rank([&] {
      const kinflow::class_labels my_classes =
          in.sample_classes.size() == 0 ? in.sample_classes
                                        : kinflow::class_labels(in.sample_classes.segment(
                                              static_cast<Eigen::Index>(s.first_sample), mine.cols()));
      return mine.cols() == 0 ? run_output<Scalar>{}
                              : sample_field(s, train, in, my_classes, mine, pilot, local_log_density);
    });
    out = local;
    // The pruning counts of every rank's samples (a rank without samples has none).
    int counted = local.pruning.has_value() ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &counted, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (counted != 0) {
      out.pruning = kinflow::mpi::sum_over_ranks(MPI_COMM_WORLD, local.pruning.value_or(kinflow::pruning_stats{}));
      out.pruning_by_step = kinflow::mpi::sum_over_ranks(MPI_COMM_WORLD, local.pruning_by_step);
    }
    out.result = kinflow::mpi::gather_result(MPI_COMM_WORLD, local.result, 0,
                                             s.profile ? kinflow::kpe_profile::per_sample : kinflow::kpe_profile::none);
    X = kinflow::mpi::gather_columns(MPI_COMM_WORLD, Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>(mine), 0);
    if (cli::is_stochastic(s.solver))  // the drift and control energies, per sample, like the KPE
      for (auto* e : {&out.sde.drift, &out.sde.control}) {
        e->total = kinflow::mpi::gather_values(MPI_COMM_WORLD, e->total, 0);
        e->early = kinflow::mpi::gather_values(MPI_COMM_WORLD, e->early, 0);
        e->late = kinflow::mpi::gather_values(MPI_COMM_WORLD, e->late, 0);
      }
    if (s.guidance.conditional()) {  // the guidance energy parts, per sample, like the KPE
      out.guidance_parts.resize(3);
      for (auto& part : out.guidance_parts) part = kinflow::mpi::gather_values(MPI_COMM_WORLD, part, 0);
    }
    if (s.field == "smoothed" || s.field == "gmm")  // the mixture fields' exact log density
      exact_log_density = kinflow::mpi::gather_values(MPI_COMM_WORLD, local_log_density, 0);
  }
  if (!par.root()) return 0;  // rank 0 reports and writes
#else
  out = sample_field(s, train, in, in.sample_classes, X, dyn_batch<Scalar>{}, exact_log_density);
#endif

  // Memorization against the training set, distances to held-out data of the dataset,
  // and the local density at the landing points: seconds of their own for large batches,
  // announced when the run has already shown progress (it has lasted more than a second).
  if (!s.quiet && std::chrono::steady_clock::now() - start > std::chrono::seconds(1))
    std::fprintf(stderr, "kinflow-sample: measuring the %ld samples (memorization, landing density%s)\n",
                 static_cast<long>(X.cols()), in.ref.heldout.cols() > 0 ? ", distance to held-out data" : "");
  cli::summary_options so;
  so.seed = so.sliced.seed = static_cast<std::uint64_t>(s.seed);
  const cli::sample_summary m = cli::summarize(X, out.result, in.ref, so);
  const landing_density d =
      density_at_landing(X, out.result, m, in.ref, exact_log_density.size() ? &exact_log_density : nullptr);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const class_report cls = report_classes(in, in.sample_classes, m);
  write_samples(dir->stage("samples.csv"), X, out.result, m, d, out.sde, cls, out.guidance_parts);
  // So that every run can be reproduced and plotted, unless asked not to.
  if (!s.no_train_csv) cli::write_points(dir->stage("train.csv"), in.ref.train);
  if (s.trajectories > 0) write_paths(dir->stage("trajectories.csv"), out.paths, X.rows());
  if (s.profile) write_profile(dir->stage("profile.csv"), out.result.kpe.profile, out.grid);
  dir->commit(make_summary(s, in, out, m, d, cls, seconds, par));  // summary.json last

  std::printf("kinflow-sample: %ld samples -> %s/samples.csv, summary.json%s%s%s\n",
              static_cast<long>(X.cols()), s.out.c_str(), s.no_train_csv ? "" : ", train.csv",
              s.trajectories > 0 ? ", trajectories.csv" : "",
              s.profile ? ", profile.csv" : "");
  if (out.sde.present())
    std::printf("  drift energy mean %.4f, control energy mean %.4f (%s, diffusion %s, norm %g)\n",
                static_cast<double>(out.sde.drift.total.mean()), static_cast<double>(out.sde.control.total.mean()),
                s.solver.c_str(), s.sde.coefficient.text().c_str(), s.sde.norm);
  std::printf("  KPE mean %.4f (early %.4f, late %.4f), NFE %.1f per sample, %zu/%ld succeeded\n",
              static_cast<double>(out.result.kpe.total.mean()), static_cast<double>(out.result.kpe.early.mean()),
              static_cast<double>(out.result.kpe.late.mean()), out.result.nfe.template cast<double>().mean(),
              out.result.count(kinflow::solve_status::success), static_cast<long>(X.cols()));
  if (out.result.log_likelihood.size() > 0)
    std::printf("  log-likelihood mean %.4f (%s divergence)\n", mean_log_likelihood(out.result).first,
                out.divergence.c_str());
  if (out.guidance_parts.size() == 3) {
    std::printf("  guidance w = %g: KPE parts unconditional %.4f, cross %.4f, guidance %.4f; ", s.guidance.scale,
                static_cast<double>(out.guidance_parts[0].mean()), static_cast<double>(out.guidance_parts[1].mean()),
                static_cast<double>(out.guidance_parts[2].mean()));
    if (cls.judged > 0)
      std::printf("class match %.4f [%.4f, %.4f] (nearest training point)\n", cls.match, cls.lo, cls.hi);
    else
      std::printf("class match not judged (%s)\n", in.labels.size() == 0 ? "no --labels" : "no sample with a class");
  }
  if (m.has_memorization)
    std::printf("  F_mem %.4f [%.4f, %.4f] (%s)", m.f_mem, m.f_mem_lo, m.f_mem_hi, cli::memorization_rule().c_str());
  if (!d.kind.empty())
    std::printf(", Spearman(KPE, %s log density) %+.3f", d.kind.c_str(), d.spearman_with_kpe);
  if (m.has_heldout) std::printf(", sliced W2 to held-out %.4f", m.sliced_w2);
  std::printf(", %.2f s\n", seconds);
  return out.result.all_success() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  parallel par;
#if defined(KINFLOW_HAVE_MPI)
  par.mpi = launched_by_mpi();
  if (par.mpi) {
    MPI_Init(&argc, &argv);
    // Usage errors exit from inside the parser: finalize on the way out.
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
    MPI_Comm_rank(MPI_COMM_WORLD, &par.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &par.ranks);
    // One message per run: the other ranks' output goes nowhere (their failures reach
    // rank 0 through kinflow::mpi::collectively and the distributed field).
    if (!par.root()) {
      if (!std::freopen("/dev/null", "w", stdout) || !std::freopen("/dev/null", "w", stderr)) return 1;
    }
  }
#endif
  const settings s = parse(argc, argv);
  par.shard = s.shard;
  int code = kinflow_cli::run_guarded([&] { return s.precision == "float" ? run<float>(s, par) : run<double>(s, par); });
#if defined(KINFLOW_HAVE_MPI)
  if (par.mpi) {
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
  }
#endif
  return code;
}
