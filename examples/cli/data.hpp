#pragma once
/// @file
/// @brief The data of kinflow's command-line programs: toy dataset names and held-out
/// draws (include/kinflow/data/toy2d.hpp), point sets read from CSV
/// (include/kinflow/data/csv.hpp), and the checks of KTS settings
/// (include/kinflow/schedules/kts.hpp) — each error a usage error naming the flag.

#include <kinflow/data/csv.hpp>
#include <kinflow/data/toy2d.hpp>
#include <kinflow/schedules/kts.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "command_line.hpp"

namespace kinflow_cli {

/// Ends the program with a usage error naming @p flag unless @p name is a toy dataset
/// (kinflow::dataset_names), or `none` when @p allow_none.
inline void require_dataset(std::string_view flag, const std::string& name, bool allow_none = false) {
  if (kinflow::is_dataset_name(name) || (allow_none && name == "none")) return;
  usage_error(std::string(flag) + ": expected one of " + (allow_none ? "none, " : "") +
              join(kinflow::dataset_names, ", ") + ", got '" + name + "'");
}

/// @p n held-out points of the toy dataset @p name, drawn from a seed unrelated to
/// @p seed (the seed of the training set): fresh draws of the same distribution.
[[nodiscard]] inline Eigen::MatrixXd heldout_points(const std::string& name, Eigen::Index n, std::uint64_t seed) {
  return kinflow::make_dataset(name, n, seed ^ 0x9e3779b97f4a7c15ULL);
}

/// The points (`d × N`, one column per CSV row) of the CSV file @p path; a file that
/// cannot be read is a usage error naming @p flag and the line and column at fault.
[[nodiscard]] inline Eigen::MatrixXd read_points(std::string_view flag, const std::string& path) {
  try {
    return kinflow::read_csv(path).points;
  } catch (const kinflow::invalid_argument& e) {
    usage_error(std::string(flag) + ": " + e.what());
  }
}

/// Ends the program with a usage error naming @p flags unless @p kts is a valid KTS
/// setting (kinflow::kts_gain accepts it: η stays positive on [0, 1]).
inline void require_kts(std::string_view flags, const kinflow::kts_options& kts) {
  try {
    (void)kinflow::kts_gain(kts);
  } catch (const kinflow::invalid_argument& e) {
    usage_error(std::string(flags) + ": " + e.what());
  }
}

}  // namespace kinflow_cli
