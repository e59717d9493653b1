// kinflow.sample's solve for one field type: the solver, grid, KTS and KPE settings mapped
// onto kinflow::integrate / kinflow::integrate_adaptive (the same mapping as the
// kinflow-sample program, so results agree with it), and the result as NumPy arrays.
#pragma once

#include "common.hpp"

#include <algorithm>
#include <chrono>

namespace kinflow_py {

template <class Options>
void set_path_options(Options& opt, const sample_settings& s) {
  opt.kpe.tau = s.tau;
  if (kinflow::kts_gain(s.kts).is_identity()) {
    // Adaptive steps end at the split too, so that early and late are exactly the energy of
    // [0, tau] and [tau, 1] (a shaped field makes its tau a breakpoint by itself).
    if constexpr (requires { opt.breakpoints; })
      if (s.tau > 0 && s.tau < 1) opt.breakpoints = {s.tau};
  }
  opt.kpe.quadrature = s.kpe == "left" ? kinflow::kpe_quadrature::left_riemann : kinflow::kpe_quadrature::stage;
  opt.likelihood.enabled = s.likelihood;
}

template <class Scalar>
struct solve_output {
  kinflow::solve_result<Scalar> result;
  std::vector<Scalar> trajectory;  // [steps + 1, B, d] when asked
  std::size_t frames = 0;
};

/// Where a chunk of columns writes its frames in the whole batch's trajectory.
template <class Scalar>
struct trajectory_sink {
  std::vector<Scalar>* frames = nullptr;  // null: not recorded
  std::size_t frame_size = 0;            // B * d of the whole batch
  std::size_t offset = 0;                // c0 * d of this chunk
};

template <class Scalar, class Field, std::size_t S>
kinflow::time_grid<double> make_grid(Field& field, const kinflow::butcher_tableau<S>& method,
                                     const sample_settings& s, const dyn_batch<Scalar>& X) {
  const auto steps = static_cast<std::size_t>(s.steps);
  if (s.grid == "cosine") return kinflow::time_grid<>::cosine(steps);
  if (s.grid == "edm") return kinflow::time_grid<>::edm(steps);
  if (s.grid == "shift") return kinflow::time_grid<>::shifted(steps, s.shift);
  if (s.grid == "energy") {  // pilot: up to 256 samples on a fine uniform grid
    const dyn_batch<Scalar> pilot = X.leftCols(std::min<Eigen::Index>(X.cols(), 256));
    return kinflow::pilot_energy_grid(field, method, pilot, steps);
  }
  return kinflow::time_grid<>::uniform(steps);
}

template <class Scalar, class Field, std::size_t S>
kinflow::solve_result<Scalar> run_fixed(Field& field, const kinflow::butcher_tableau<S>& method,
                                        const kinflow::time_grid<double>& grid, const sample_settings& s,
                                        dyn_batch<Scalar>& X, const trajectory_sink<Scalar>& sink) {
  kinflow::fixed_step_options opt;
  set_path_options(opt, s);
  if (!sink.frames) return kinflow::integrate(field, method, grid, X, opt);
  const std::size_t n = static_cast<std::size_t>(X.size());
  auto frame = [&](std::size_t k) {
    return sink.frames->begin() + static_cast<std::ptrdiff_t>(k * sink.frame_size + sink.offset);
  };
  std::copy_n(X.data(), n, frame(0));
  return kinflow::integrate(field, method, grid, X, opt,
                            [&](const auto& view) { std::copy_n(view.x.data(), n, frame(view.step + 1)); });
}

template <class Scalar, class Field, std::size_t S>
kinflow::solve_result<Scalar> run_adaptive(Field& field, const kinflow::embedded_tableau<S>& method,
                                           const sample_settings& s, dyn_batch<Scalar>& X) {
  kinflow::adaptive_options opt;
  opt.rtol = s.rtol;
  opt.atol = s.atol;
  set_path_options(opt, s);
  return kinflow::integrate_adaptive(field, method, 0.0, 1.0, X, opt);
}

/// Appends the per-sample results of a chunk of columns to @p all.
template <class Scalar>
void append(kinflow::solve_result<Scalar>& all, const kinflow::solve_result<Scalar>& part, bool first) {
  if (first) {
    all = part;
    return;
  }
  auto cat = [](auto& a, const auto& b) {
    const Eigen::Index n = a.size();
    a.conservativeResize(n + b.size());
    a.tail(b.size()) = b;
  };
  all.status.insert(all.status.end(), part.status.begin(), part.status.end());
  cat(all.nfe, part.nfe);
  cat(all.accepted, part.accepted);
  cat(all.rejected, part.rejected);
  cat(all.kpe.total, part.kpe.total);
  cat(all.kpe.early, part.kpe.early);
  cat(all.kpe.late, part.kpe.late);
  cat(all.log_likelihood, part.log_likelihood);
}

/// Runs the solve over the whole batch. With @p chunked (C++ fields, which never call
/// Python), the columns are solved in chunks sized to take well under a second, and Python's
/// signal handlers run between chunks, so that Ctrl-C interrupts a long sample(). Every
/// column's arithmetic is the same whatever the chunking (the integrators tile the batch the
/// same way), so results do not depend on it.
template <class Scalar, class Field, class Solve>
kinflow::solve_result<Scalar> solve_in_chunks(dyn_batch<Scalar>& X, bool chunked, const Solve& solve) {
  const Eigen::Index B = X.cols();
  if (!chunked || B <= 256) return solve(X, Eigen::Index(0));
  kinflow::solve_result<Scalar> all;
  // The first chunk is small and measures the cost; the next ones aim at about 0.3 s each.
  Eigen::Index chunk = 256;
  for (Eigen::Index c0 = 0; c0 < B;) {
    const Eigen::Index n = std::min(chunk, B - c0);
    const auto start = std::chrono::steady_clock::now();
    dyn_batch<Scalar> Xc = X.middleCols(c0, n);
    append(all, solve(Xc, c0), c0 == 0);
    X.middleCols(c0, n) = Xc;
    c0 += n;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double scale = seconds > 0 ? 0.3 / seconds : 8.0;
    chunk = std::clamp<Eigen::Index>(static_cast<Eigen::Index>(static_cast<double>(n) * std::min(scale, 8.0)), 256,
                                     65536);
    if (c0 < B) {
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
  }
  return all;
}

template <class Scalar, class Field>
py::object run_sample(Field& inner, const sample_settings& s, dyn_batch<Scalar>& X, bool release_gil) {
  // KTS wraps every field; with alpha0 = beta0 = 0 the gain is the identity and the results
  // are bit-identical to the unshaped field's.
  auto field = kinflow::shaped(inner, kinflow::kts_gain(s.kts));
  solve_output<Scalar> out;
  const bool chunked = release_gil;  // C++ fields: interruptible between chunks
  {
    std::optional<py::gil_scoped_release> release;
    if (release_gil) release.emplace();
    auto fixed = [&](const auto& method) {
      const kinflow::time_grid<double> grid = make_grid(field, method, s, X);
      trajectory_sink<Scalar> sink;
      if (s.trajectories) {
        out.frames = grid.times().size();
        out.trajectory.resize(out.frames * static_cast<std::size_t>(X.size()));
        sink.frames = &out.trajectory;
        sink.frame_size = static_cast<std::size_t>(X.size());
      }
      out.result = solve_in_chunks<Scalar, Field>(X, chunked, [&](dyn_batch<Scalar>& Xc, Eigen::Index c0) {
        trajectory_sink<Scalar> part = sink;
        part.offset = static_cast<std::size_t>(c0 * X.rows());
        return run_fixed(field, method, grid, s, Xc, part);
      });
    };
    auto adaptive = [&](const auto& method) {
      out.result = solve_in_chunks<Scalar, Field>(
          X, chunked, [&](dyn_batch<Scalar>& Xc, Eigen::Index) { return run_adaptive(field, method, s, Xc); });
    };
    if (s.solver == "euler") fixed(kinflow::euler);
    else if (s.solver == "midpoint") fixed(kinflow::midpoint);
    else if (s.solver == "heun") fixed(kinflow::heun);
    else if (s.solver == "ralston") fixed(kinflow::ralston);
    else if (s.solver == "rk4") fixed(kinflow::rk4);
    else if (s.solver == "tsit5") adaptive(kinflow::tsit5);
    else if (s.solver == "bs32") adaptive(kinflow::bs32);
    else adaptive(kinflow::dopri5);
  }
  const auto& r = out.result;
  py::dict a;
  a["x"] = rows_of(X);
  a["kpe"] = vector_array(r.kpe.total);
  a["kpe_early"] = vector_array(r.kpe.early);
  a["kpe_late"] = vector_array(r.kpe.late);
  a["kpe_tau"] = r.kpe.tau;
  a["nfe"] = vector_array(r.nfe);
  a["accepted"] = vector_array(r.accepted);
  a["rejected"] = vector_array(r.rejected);
  py::list status;
  for (auto st : r.status) status.append(py::str(std::string(kinflow::to_string(st))));
  a["status"] = status;
  a["log_likelihood"] = s.likelihood ? py::object(vector_array(r.log_likelihood)) : py::none();
  if (s.trajectories) {
    py::array_t<Scalar> traj({static_cast<py::ssize_t>(out.frames), static_cast<py::ssize_t>(X.cols()),
                              static_cast<py::ssize_t>(X.rows())});
    std::copy(out.trajectory.begin(), out.trajectory.end(), traj.mutable_data());
    a["trajectory"] = traj;
  } else {
    a["trajectory"] = py::none();
  }
  return make_result(a);
}

/// sample() for a holder of C++ fields: x0 converted once to the field's precision.
template <class Holder>
py::object sample_holder(Holder& h, py::handle x0, const sample_settings& s) {
  return std::visit(
      [&](auto& f) -> py::object {
        using F = typename std::decay_t<decltype(f)>::element_type;
        using Scalar = typename F::scalar_type;
        dyn_batch<Scalar> X = batch_of<Scalar>(x0, "x0", static_cast<py::ssize_t>(h.dim()));
        return run_sample<Scalar>(*f, s, X, true);
      },
      h.field);
}

}  // namespace kinflow_py
