// Integrator shootout: error against NFE for every kinflow integrator on the exact
// Gaussian-mixture field of the 8gaussians dataset (a "perfectly trained model"), against
// a Dormand–Prince reference at rtol = atol = 1e-12. Writes shootout.csv and prints a table.
//
//   kinflow-shootout [--samples B] [--seed S] [--out FILE.csv] [--help]

#include <kinflow/kinflow.hpp>
#include <kinflow/data/random.hpp>
#include <kinflow/data/toy2d.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "kinflow-shootout: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

using batch = kinflow::batch<double, 2>;

struct errors {
  double state, energy;  // RMS over samples of ‖x - x_ref‖, mean |E - E_ref|
};

errors compare(const batch& X, const kinflow::solve_result<double>& r, const batch& Xref,
               const kinflow::solve_result<double>& ref) {
  return {std::sqrt((X - Xref).colwise().squaredNorm().mean()),
          (r.kpe.total - ref.kpe.total).cwiseAbs().mean()};
}

}  // namespace

int main(int argc, char** argv) {
  long samples = 512, seed = 3;
  std::string out = "shootout.csv";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::puts("kinflow-shootout: error against NFE for euler, midpoint, heun, ralston, rk4 and\n"
                "dopri5 on the exact 8gaussians mixture field; writes a CSV and prints a table.\n\n"
                "  --samples B    samples (default 512, 1..100000)\n"
                "  --seed S       noise seed (default 3)\n"
                "  --out FILE     CSV output (default shootout.csv)\n"
                "  --help         this text");
      return 0;
    }
    if (i + 1 >= argc) usage_error(a + " needs a value");
    const std::string v = argv[++i];
    char* end = nullptr;
    if (a == "--samples" || a == "--seed") {
      const long x = std::strtol(v.c_str(), &end, 10);
      const long hi = a == "--samples" ? 100000 : 2147483647;
      if (v.empty() || *end || x < (a == "--samples" ? 1 : 0) || x > hi)
        usage_error(a + " = '" + v + "' is invalid; expected an integer in [" + (a == "--samples" ? "1" : "0") +
                    ", " + std::to_string(hi) + "]");
      (a == "--samples" ? samples : seed) = x;
    } else if (a == "--out") {
      out = v;
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }

  // The 8gaussians target as an exact mixture: centres 4·(cos, sin)(2πk/8)/1.414, std 0.5/1.414.
  const kinflow::toy::eight_gaussians_options o;
  Eigen::Matrix<double, 2, Eigen::Dynamic> means(2, o.components);
  for (int k = 0; k < o.components; ++k) {
    const double th = 2.0 * 3.14159265358979323846 * k / o.components;
    means.col(k) << o.radius * std::cos(th) / o.divisor, o.radius * std::sin(th) / o.divisor;
  }
  const Eigen::VectorXd w = Eigen::VectorXd::Constant(o.components, 1.0 / o.components);
  const Eigen::VectorXd s = Eigen::VectorXd::Constant(o.components, o.std / o.divisor);
  const kinflow::gaussian_mixture_field<double, 2> field(w, means, s);

  const batch x0 = kinflow::standard_normal<double, 2>(2, samples, static_cast<std::uint64_t>(seed));
  batch Xref = x0;
  kinflow::adaptive_options tight;
  tight.rtol = tight.atol = 1e-12;
  tight.kpe.in_error_norm = true;
  const auto ref = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, Xref, tight);

  std::ofstream csv(out);
  if (!csv) usage_error("cannot write '" + out + "'");
  csv << "method,setting,nfe,state_rms_error,kpe_mean_error\n";
  std::printf("%-9s %10s %9s %14s %14s\n", "method", "steps/tol", "NFE", "state RMS err", "KPE err");
  auto row = [&](const char* name, double setting, double nfe, errors e) {
    csv << name << ',' << setting << ',' << nfe << ',' << e.state << ',' << e.energy << '\n';
    std::printf("%-9s %10g %9.1f %14.3e %14.3e\n", name, setting, nfe, e.state, e.energy);
  };
  auto fixed = [&](const char* name, const auto& method) {
    for (int n = 4; n <= 1024; n *= 2) {
      batch X = x0;
      const auto r = kinflow::integrate(field, method, kinflow::time_grid<>::uniform(static_cast<std::size_t>(n)), X);
      row(name, n, r.nfe.template cast<double>().mean(), compare(X, r, Xref, ref));
    }
  };
  fixed("euler", kinflow::euler);
  fixed("midpoint", kinflow::midpoint);
  fixed("heun", kinflow::heun);
  fixed("ralston", kinflow::ralston);
  fixed("rk4", kinflow::rk4);
  for (double tol = 1e-2; tol >= 1e-10; tol /= 10) {
    batch X = x0;
    kinflow::adaptive_options opt;
    opt.rtol = opt.atol = tol;
    const auto r = kinflow::integrate_adaptive(field, kinflow::dopri5, 0.0, 1.0, X, opt);
    row("dopri5", tol, r.nfe.cast<double>().mean(), compare(X, r, Xref, ref));
  }
  std::printf("reference: dopri5 at rtol = atol = 1e-12, mean NFE %.0f; wrote %s\n", ref.nfe.cast<double>().mean(),
              out.c_str());
  return 0;
}
