// Integrator shootout: every fixed-grid method (Runge–Kutta and multistep) on every analytic
// time grid, and Dormand–Prince at a range of tolerances.
//  - Error against NFE on the exact Gaussian-mixture field of the 8gaussians dataset (a
//    "perfectly trained model"), against a Dormand–Prince reference at rtol = atol = 1e-12:
//    the samples' RMS error and the kinetic path energy's mean error.
//  - Memorization on the exact empirical field of 200 8gaussians training points: the share
//    of samples that copy a training point (d1/d2 < 1/3) at a few step counts.
// Writes a CSV (one row per method, grid and setting) and prints, for every method and grid,
// the NFE at which its sample error reaches 1e-3 (log-log interpolation between settings).
//
//   kinflow-shootout [--samples B] [--seed S] [--out FILE.csv] [--quick] [--help]

#include <kinflow/kinflow.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "cli/command_line.hpp"

namespace {

using batch = kinflow::batch<double, 2>;

struct errors {
  double state, energy;  // RMS over samples of ‖x - x_ref‖, mean |E - E_ref|
};

errors compare(const batch& X, const kinflow::solve_result<double>& r, const batch& Xref,
               const kinflow::solve_result<double>& ref) {
  return {std::sqrt((X - Xref).colwise().squaredNorm().mean()), (r.kpe.total - ref.kpe.total).cwiseAbs().mean()};
}

/// The NFE at which `error` first falls to `target`, interpolated in log-log between the
/// settings on either side (NaN when it never does).
double nfe_at(const std::vector<double>& nfe, const std::vector<double>& error, double target) {
  for (std::size_t i = 0; i < nfe.size(); ++i) {
    if (!(error[i] <= target)) continue;
    if (i == 0) return nfe[0];
    const double a = std::log(error[i - 1]), b = std::log(error[i]);
    const double w = (a - std::log(target)) / (a - b);
    return std::exp(std::log(nfe[i - 1]) + w * (std::log(nfe[i]) - std::log(nfe[i - 1])));
  }
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

int main(int argc, char** argv) {
  long samples = 512, seed = 3;
  std::string out = "shootout.csv";
  bool quick = false;
  kinflow_cli::command_line cl(
      "kinflow-shootout",
      "kinflow-shootout: every fixed-grid method (Runge-Kutta and multistep) on every analytic time grid, and "
      "dopri5: sample and energy error against NFE on the exact 8gaussians mixture field, memorization on the "
      "exact empirical field; writes a CSV and prints the NFE each needs for a sample error of 1e-3.");
  cl.value("--samples", "B", "samples", kinflow_cli::integer(samples, 1, 100000))
      .value("--seed", "S", "noise seed", kinflow_cli::integer(seed, 0))
      .value("--out", "FILE", "CSV output", kinflow_cli::text(out))
      .toggle("--quick", "three grids and fewer settings (a few seconds)", quick);
  cl.parse(argc, argv);

  // The 8gaussians target as its exact mixture, from the library beside the recipe.
  const kinflow::isotropic_gaussian_mixture mix = kinflow::dataset_mixture("8gaussians");
  const kinflow::gaussian_mixture_field<double, 2> field(mix.weights, mix.means, mix.stds);
  const batch x0 = kinflow::standard_normal<double, 2>(2, samples, static_cast<std::uint64_t>(seed));
  batch Xref = x0;
  kinflow::adaptive_options tight;
  tight.rtol = tight.atol = 1e-12;
  tight.kpe.in_error_norm = true;
  const auto ref = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, Xref, tight);

  // The exact empirical field of a training set, for memorization.
  const batch train = kinflow::make_dataset<double>("8gaussians", 200, static_cast<std::uint64_t>(seed) + 1);
  const kinflow::empirical_field<double, 2> empirical(train);
  const kinflow::nearest_neighbor_index<double, 2> index(train);

  std::vector<std::string> grids{"uniform", "cosine", "edm", "shift:3", "exponential", "beta", "dynamic-shift:1"};
  if (quick) grids = {"uniform", "cosine", "edm"};
  const int max_steps = quick ? 64 : 256;

  std::ofstream csv(out);
  if (!csv) kinflow_cli::usage_error("--out: cannot write '" + out + "'");
  csv << "field,method,grid,setting,nfe,state_rms_error,kpe_mean_error,f_mem\n";
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto row = [&](const char* f, const std::string& method, const std::string& grid, double setting, double nfe,
                 errors e, double f_mem) {
    csv << f << ',' << method << ',' << grid << ',' << setting << ',' << nfe << ',' << e.state << ',' << e.energy
        << ',' << f_mem << '\n';
  };

  std::printf("NFE per sample for an RMS sample error of 1e-3 on the exact 8gaussians mixture field\n%-14s",
              "method");
  for (const auto& g : grids) std::printf(" %15s", g.c_str());
  std::printf("\n");
  std::vector<std::string> methods(kinflow::fixed_step_method_names.begin(), kinflow::fixed_step_method_names.end());
  methods.insert(methods.end(), kinflow::multistep_method_names.begin(), kinflow::multistep_method_names.end());
  for (const auto& name : methods) {
    std::printf("%-14s", name.c_str());
    for (const auto& g : grids) {
      const auto spec = kinflow::parse_grid_spec(g);
      std::vector<double> nfe, err;
      kinflow::visit_method(
          name,
          [&](const auto& method) {
            for (int n = 4; n <= max_steps; n *= 2) {
              const auto grid = kinflow::make_grid(spec, static_cast<std::size_t>(n));
              batch X = x0;
              const auto r = kinflow::integrate(field, method, grid, X);
              const errors e = compare(X, r, Xref, ref);
              nfe.push_back(r.nfe.template cast<double>().mean());
              err.push_back(e.state);
              row("mixture", name, g, n, nfe.back(), e, nan);
            }
            // Memorization on the empirical field (its velocity is singular at t = 1: the
            // Runge-Kutta methods land with the last-step rule, the data-prediction
            // methods land by their own denoiser jump).
            kinflow::fixed_step_options o;
            o.last_step = kinflow::last_step_rule::euler;
            for (int n : {10, 40}) {
              batch X = x0;
              const auto r = kinflow::integrate(empirical, method, kinflow::make_grid(spec, static_cast<std::size_t>(n)),
                                                X, o);
              kinflow::memorization_options mo;
              mo.bootstrap_resamples = 0;
              const auto m = kinflow::memorization(X, index, mo);
              row("empirical", name, g, n, r.nfe.template cast<double>().mean(), {nan, nan}, m.fraction);
            }
          },
          [](const auto&) {});
      std::printf(" %15.1f", nfe_at(nfe, err, 1e-3));
    }
    std::printf("\n");
  }
  std::vector<double> nfe, err;
  for (double tol = 1e-2; tol >= 1e-10; tol /= 10) {
    batch X = x0;
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = tol;
    const auto r = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X, opt);
    const errors e = compare(X, r, Xref, ref);
    nfe.push_back(r.nfe.cast<double>().mean());
    err.push_back(e.state);
    row("mixture", "dopri5", "adaptive", tol, nfe.back(), e, nan);
  }
  std::printf("%-14s %15.1f (adaptive)\n", "dopri5", nfe_at(nfe, err, 1e-3));
  std::printf("reference: dopri5 at rtol = atol = 1e-12, mean NFE %.0f; wrote %s\n", ref.nfe.cast<double>().mean(),
              out.c_str());
  return 0;
}
