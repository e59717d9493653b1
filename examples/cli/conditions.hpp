#pragma once
// kinflow-sample's conditions and guidance: the labels of the training set, the classes of
// the samples, the guidance options of the command line, and the energy guidance spends as
// integrals of the solve (kinflow/fields/guidance.hpp).

#include <kinflow/kinflow.hpp>

#include <Eigen/Core>
#include <cmath>
#include <string>
#include <string_view>

#include "command_line.hpp"
#include "data.hpp"

namespace kinflow_cli {

/// The conditions and guidance of the command line.
struct guidance_settings {
  std::string labels_file;      // --labels: one class per training point
  long class_all = -2;          // --class C (-1: unconditional); -2: not given
  std::string classes_file;     // --classes: one class per sample
  double scale = 1;             // --cfg W
  double window_start = 0;      // --cfg-window A:B
  double window_end = 1;
  long zero_star = -1;          // --cfg-zero-star K (fixed grids); -1: off

  /// True when the samples have classes (the class-conditional field is sampled).
  [[nodiscard]] bool conditional() const { return class_all != -2 || !classes_file.empty(); }
};

/// Adds the options of the conditions and guidance to @p cl.
inline void add_guidance_options(command_line& cl, guidance_settings& g) {
  cl.section("Conditions and guidance (class-conditional fields and models; docs/math.md 3.5, 6.5)")
      .value("--labels", "FILE",
             "the class of every training point of --train: one integer >= 0 per line, a .npy of integers, or an "
             "IDX labels file (e.g. train-labels-idx1-ubyte.gz); --dataset has its own labels. With a "
             "class-conditional --model it is optional: it judges the classes the samples land in",
             text(g.labels_file))
      .value("--class", "C", "every sample's class (-1: the unconditional field)", integer(g.class_all, -1), "")
      .value("--classes", "FILE", "one class per sample instead, in order (one integer >= -1 per line)",
             text(g.classes_file))
      .value("--cfg", "W",
             "classifier-free guidance: v_u + W (v_c - v_u); 1 samples the conditional field, 0 the "
             "unconditional one",
             number(g.scale, closed(-1e6, 1e6)))
      .value("--cfg-window", "A:B", "guide only for t in [A, B] (the conditional field, W = 1, outside)",
             custom(
                 [&g](const std::string& flag, const std::string& v) {
                   const auto colon = v.find(':');
                   if (colon == std::string::npos) usage_error(flag + ": expected A:B, got '" + v + "'");
                   g.window_start = parse_number(flag + " A", v.substr(0, colon), closed(0, 1));
                   g.window_end = parse_number(flag + " B", v.substr(colon + 1), closed(0, 1));
                   if (g.window_end < g.window_start)
                     usage_error(flag + ": expected A <= B, got " + v + " (a reversed window)");
                 },
                 "0:1"))
      .value("--cfg-zero-star", "K",
             "CFG-Zero*: the velocity is 0 for the first K steps of the grid, and v_u is scaled by "
             "<v_c, v_u> / |v_u|^2 (fixed-grid solvers)",
             integer(g.zero_star, 0), "");
}

/// Ends with a usage error unless the guidance flags given fit the rest of the command line.
inline void check_guidance(const command_line& cl, const guidance_settings& g, const std::string& field,
                           bool adaptive, bool likelihood, bool has_train_file) {
  const bool guidance_given = cl.given("--labels") || cl.given("--cfg") || cl.given("--cfg-window") ||
                              cl.given("--cfg-zero-star");
  if (cl.given("--class") && cl.given("--classes")) usage_error("--class and --classes exclude each other");
  if (!g.conditional()) {
    if (guidance_given)
      usage_error("--labels, --cfg, --cfg-window and --cfg-zero-star need the samples' classes: --class C or "
                  "--classes FILE");
    return;
  }
  if (field != "empirical" && field != "smoothed" && field != "model")
    usage_error("--class/--classes sample the exact class-conditional field (--field empirical or smoothed:S) or a "
                "class-conditional --model, not --field " + field);
  if (has_train_file && g.labels_file.empty() && field != "model")
    usage_error("--class/--classes with --train need --labels FILE (the class of every training point)");
  if (!has_train_file && !g.labels_file.empty())
    usage_error("--labels labels the points of --train; --dataset has its own labels");
  if (g.zero_star >= 0 && adaptive) usage_error("--cfg-zero-star counts the steps of a fixed grid; use a fixed-grid solver");
  if (g.zero_star >= 0 && likelihood)
    usage_error("--likelihood with --cfg-zero-star: its scale depends on x, so the guided field has no exact "
                "divergence; leave one of them out");
}

/// The classes of the @p B samples: --class for all, or the file of --classes (one integer
/// >= -1 per line, -1 unconditional), each below @p classes (the classes of @p of).
[[nodiscard]] inline kinflow::class_labels sample_classes(const guidance_settings& g, Eigen::Index B,
                                                          Eigen::Index classes, std::string_view of = "the training set") {
  kinflow::class_labels C(B);
  const std::string range = "in [-1, " + std::to_string(classes) + ")";
  if (g.class_all != -2) {
    if (g.class_all >= classes)
      usage_error("--class: " + std::to_string(g.class_all) + " is not a class of " + std::string(of) + "; expected " + range);
    C.setConstant(g.class_all);
    return C;
  }
  const Eigen::MatrixXd v = read_points("--classes", g.classes_file);
  if (v.rows() != 1) usage_error("--classes: expected one class per line, " + g.classes_file + " has " +
                                 std::to_string(v.rows()) + " numbers per line");
  if (v.cols() != B)
    usage_error("--classes: expected one class per sample (" + std::to_string(B) + "), " + g.classes_file +
                " holds " + std::to_string(v.cols()));
  for (Eigen::Index j = 0; j < B; ++j) {
    const double c = v(0, j);
    if (!(c == std::floor(c) && c >= -1 && c < static_cast<double>(classes)))
      usage_error("--classes: line " + std::to_string(j + 1) + " is " + kinflow::detail::to_text(c) +
                  ", expected an integer class " + range);
    C(j) = static_cast<Eigen::Index>(c);
  }
  return C;
}

/// The guidance options of the command line; the zero start ends at node K of @p grid
/// (empty: none).
[[nodiscard]] inline kinflow::guidance_options guidance_of(const guidance_settings& g, const std::vector<double>& grid) {
  kinflow::guidance_options o{.scale = g.scale, .window_start = g.window_start, .window_end = g.window_end};
  if (g.zero_star >= 0) {
    o.optimized_scale = true;
    if (g.zero_star > 0 && !grid.empty()) {
      try {
        o.zero_until = kinflow::zero_start_time(kinflow::time_grid<double>(grid), g.zero_star);
      } catch (const kinflow::invalid_argument&) {
        usage_error("--cfg-zero-star: " + std::to_string(g.zero_star) + " steps, the grid has " +
                    std::to_string(grid.size() - 1));
      }
    }
  }
  return o;
}

}  // namespace kinflow_cli
