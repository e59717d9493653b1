#pragma once
/// @file
/// @brief A time grid named by text, `"beta:0.6,0.6"`: the one mapping from a grid's name and
/// parameters to a kinflow::time_grid that the command-line programs and the Python package use.
///
/// Names (parameters in brackets are optional, defaults in time_grid's builders):
///
///     uniform | cosine | edm[:RHO] | shift:S | exponential[:SIGMA_MIN,SIGMA_MAX]
///     | beta[:A,B] | dynamic-shift:MU | energy[:GAMMA] | acceleration[:GAMMA]
///
/// The first seven are formulas (make_grid(spec, steps)); `energy` and `acceleration` are
/// built from a pilot run of the field (grid_spec::needs_pilot(); make_grid() with a field
/// in kinflow/integrators/pilot_grid.hpp).

#include <charconv>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "kinflow/core/errors.hpp"
#include "kinflow/schedules/time_grid.hpp"

namespace kinflow {

/// The kinds of time grid a grid_spec names.
enum class grid_kind {
  uniform,        ///< time_grid::uniform
  cosine,         ///< time_grid::cosine
  edm,            ///< time_grid::edm (parameter ρ)
  shift,          ///< time_grid::shifted (parameter S)
  exponential,    ///< time_grid::exponential (σ_min, σ_max)
  beta,           ///< time_grid::beta (α, β)
  dynamic_shift,  ///< time_grid::dynamic_shift (μ)
  energy,         ///< energy-equidistributing, from a pilot (γ)
  acceleration    ///< acceleration-equidistributing, from a pilot (γ)
};

/// The text name of a grid kind (`dynamic-shift` for grid_kind::dynamic_shift).
[[nodiscard]] inline std::string to_string(grid_kind kind) {
  constexpr const char* names[] = {"uniform", "cosine",        "edm",    "shift",       "exponential",
                                   "beta",    "dynamic-shift", "energy", "acceleration"};
  return names[static_cast<int>(kind)];
}

/// The grammar parse_grid_spec() reads, for error messages and help texts.
[[nodiscard]] inline std::string grid_names() {
  return "uniform, cosine, edm[:RHO], shift:S, exponential[:SIGMA_MIN,SIGMA_MAX], beta[:A,B], "
         "dynamic-shift:MU, energy[:GAMMA], acceleration[:GAMMA]";
}

/// A time grid by kind and parameters; only the kind's own parameters are used.
struct grid_spec {
  grid_kind kind = grid_kind::uniform;  ///< which grid
  double rho = 7;                       ///< edm: ρ
  double shift = 1;                     ///< shift: S
  double sigma_min = 0.002;             ///< exponential: σ_min
  double sigma_max = 80;                ///< exponential: σ_max
  double alpha = 0.6;                   ///< beta: α
  double beta = 0.6;                    ///< beta: β
  double mu = 0;                        ///< dynamic-shift: μ
  double gamma = 1;                     ///< energy, acceleration: the exponent γ of the density

  /// Whether the grid is built from a pilot run of the field (energy, acceleration).
  [[nodiscard]] bool needs_pilot() const { return kind == grid_kind::energy || kind == grid_kind::acceleration; }
};

/// The parameters a grid kind takes, in the order of its text form (set_grid_parameter()'s
/// names): `{"alpha", "beta"}` for grid_kind::beta, none for uniform and cosine.
[[nodiscard]] inline std::vector<std::string_view> grid_parameter_names(grid_kind kind) {
  switch (kind) {
    case grid_kind::edm: return {"rho"};
    case grid_kind::shift: return {"shift"};
    case grid_kind::exponential: return {"sigma_min", "sigma_max"};
    case grid_kind::beta: return {"alpha", "beta"};
    case grid_kind::dynamic_shift: return {"mu"};
    case grid_kind::energy:
    case grid_kind::acceleration: return {"gamma"};
    default: return {};
  }
}

/// Whether the kind's parameters have no defaults and must be given (shift, dynamic-shift).
[[nodiscard]] inline bool grid_parameters_required(grid_kind kind) {
  return kind == grid_kind::shift || kind == grid_kind::dynamic_shift;
}

/// The kind a grid's bare name (`"dynamic-shift"`, no parameters) names.
/// @throws kinflow::invalid_argument naming `grid` and listing the valid names.
[[nodiscard]] inline grid_kind parse_grid_kind(std::string_view name) {
  for (int k = 0; k <= static_cast<int>(grid_kind::acceleration); ++k)
    if (name == to_string(static_cast<grid_kind>(k))) return static_cast<grid_kind>(k);
  detail::require(false, "grid", "'" + std::string(name) + "'", "expected one of " + grid_names());
  return grid_kind::uniform;
}

namespace detail {

inline double& grid_parameter(grid_spec& spec, std::string_view name) {
  if (name == "rho") return spec.rho;
  if (name == "shift") return spec.shift;
  if (name == "sigma_min") return spec.sigma_min;
  if (name == "sigma_max") return spec.sigma_max;
  if (name == "alpha") return spec.alpha;
  if (name == "beta") return spec.beta;
  if (name == "mu") return spec.mu;
  return spec.gamma;
}

/// "a, b" of the kind's parameter names, or "none".
inline std::string joined_parameter_names(grid_kind kind) {
  std::string out;
  for (const auto n : grid_parameter_names(kind)) out += (out.empty() ? "" : ", ") + std::string(n);
  return out.empty() ? "none" : out;
}

}  // namespace detail

/// The text form of a spec, every parameter of its kind written out, which
/// parse_grid_spec() reads back to the same spec: `"beta:0.6,0.6"`, `"uniform"`.
[[nodiscard]] inline std::string to_string(const grid_spec& spec) {
  std::string out = to_string(spec.kind);
  char sep = ':';
  grid_spec copy = spec;
  for (const auto name : grid_parameter_names(spec.kind)) {
    out += sep + detail::to_text(detail::grid_parameter(copy, name));
    sep = ',';
  }
  return out;
}

/// Checks the spec's parameters against the ranges of its grid's builder (time_grid's, and
/// γ finite and >= 0 for the pilot grids).
/// @throws kinflow::invalid_argument naming the parameter, its value and its range.
inline void validate(const grid_spec& spec) {
  if (spec.needs_pilot()) {
    detail::require(std::isfinite(spec.gamma) && spec.gamma >= 0, "gamma", spec.gamma, "expected a finite value >= 0");
    return;
  }
  // The builders check their parameters before anything else; one step costs nothing.
  switch (spec.kind) {
    case grid_kind::edm: (void)time_grid<double>::edm(1, spec.rho); break;
    case grid_kind::shift: (void)time_grid<double>::shifted(1, spec.shift); break;
    case grid_kind::exponential: (void)time_grid<double>::exponential(1, spec.sigma_min, spec.sigma_max); break;
    case grid_kind::beta: (void)time_grid<double>::beta(1, spec.alpha, spec.beta); break;
    case grid_kind::dynamic_shift: (void)time_grid<double>::dynamic_shift(1, spec.mu); break;
    default: break;
  }
}

/// Sets the parameter @p name (`rho`, `shift`, `sigma_min`, `sigma_max`, `alpha`, `beta`, `mu`
/// or `gamma`) of the spec's kind, e.g. from a keyword argument; validate() checks its range.
/// @throws kinflow::invalid_argument when the kind has no parameter of that name.
inline void set_grid_parameter(grid_spec& spec, std::string_view name, double value) {
  bool known = false;
  for (const auto n : grid_parameter_names(spec.kind)) known = known || n == name;
  detail::require(known, "grid parameter", std::string(name),
          "expected a parameter of the " + to_string(spec.kind) +
              " grid: " + detail::joined_parameter_names(spec.kind));
  detail::grid_parameter(spec, name) = value;
}

/// Reads a grid's text form (see the file comment): a name, then for a parametric grid `:`
/// and its numbers separated by commas, all of them or (for optional ones) none.
/// @throws kinflow::invalid_argument naming `grid` and listing the valid names for an unknown
///   name or a wrong count of numbers, or naming the parameter for a number that does not
///   parse or is out of its range.
[[nodiscard]] inline grid_spec parse_grid_spec(std::string_view text) {
  const auto colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  grid_spec spec;
  const std::string quoted = "'" + std::string(text) + "'";
  spec.kind = parse_grid_kind(name);
  const auto params = grid_parameter_names(spec.kind);
  const bool optional = !grid_parameters_required(spec.kind);
  std::string form = to_string(spec.kind);
  for (std::size_t i = 0; i < params.size(); ++i) {
    form += i == 0 ? ':' : ',';
    for (const char c : params[i]) form += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
  form += " (parameters: " + detail::joined_parameter_names(spec.kind) + "; e.g. " + to_string(spec) + ")";
  if (colon == std::string_view::npos) {
    detail::require(optional || params.empty(), "grid", quoted, "expected " + form + "; valid grids: " + grid_names());
    return spec;
  }
  std::string_view rest = text.substr(colon + 1);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    double v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    // (The quoted item is built by append, not "'" + std::string(...): GCC 12 reports a
    // false -Wrestrict overlap for a literal prepended to a temporary string.)
    std::string shown(1, '\'');
    shown.append(item).push_back('\'');
    detail::require(!item.empty() && ec == std::errc() && end == item.data() + item.size(), params[i], shown,
                    "expected a number in grid " + quoted + ", of the form " + form);
    detail::grid_parameter(spec, params[i]) = v;
    detail::require((comma == std::string_view::npos) == (i + 1 == params.size()), "grid", quoted,
            "expected " + std::to_string(params.size()) + " number(s) after ':', as in " + form +
                "; valid grids: " + grid_names());
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  detail::require(!params.empty(), "grid", quoted, "expected no parameters for " + to_string(spec.kind) +
                                               "; valid grids: " + grid_names());
  validate(spec);
  return spec;
}

/// The time grid of @p steps steps from 0 to 1 that an analytic spec names.
/// @throws kinflow::invalid_argument for invalid parameters or steps, and for the pilot
///   grids (energy, acceleration), which need the field: make_grid() in
///   kinflow/integrators/pilot_grid.hpp.
template <class T = double>
[[nodiscard]] time_grid<T> make_grid(const grid_spec& spec, std::size_t steps) {
  detail::require(!spec.needs_pilot(), "grid", to_string(spec),
          "expected an analytic grid: this one is built from a pilot run of a field "
          "(make_grid with a field and a method, kinflow/integrators/pilot_grid.hpp)");
  switch (spec.kind) {
    case grid_kind::cosine: return time_grid<T>::cosine(steps);
    case grid_kind::edm: return time_grid<T>::edm(steps, T(spec.rho));
    case grid_kind::shift: return time_grid<T>::shifted(steps, T(spec.shift));
    case grid_kind::exponential: return time_grid<T>::exponential(steps, T(spec.sigma_min), T(spec.sigma_max));
    case grid_kind::beta: return time_grid<T>::beta(steps, T(spec.alpha), T(spec.beta));
    case grid_kind::dynamic_shift: return time_grid<T>::dynamic_shift(steps, T(spec.mu));
    default: return time_grid<T>::uniform(steps);
  }
}

}  // namespace kinflow
