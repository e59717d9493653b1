#pragma once
/// @file
/// @brief The data of kinflow's command-line programs: toy dataset names and held-out
/// draws (include/kinflow/data/toy2d.hpp), point sets read from CSV or IDX files
/// (include/kinflow/data/csv.hpp, idx.hpp), and the checks of KTS settings
/// (include/kinflow/schedules/kts.hpp) — each error a usage error naming the flag.

#include <kinflow/data/csv.hpp>
#include <kinflow/data/idx.hpp>
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

/// The points (`d × N`) of the file @p path: an IDX file, plain or gzip-compressed, told
/// apart by its first bytes (kinflow/data/idx.hpp; one column per item, unsigned-byte data
/// divided by 255 into [0, 1], other types as stored), or else CSV (one column per row).
/// Only the first @p max_points points when it is positive (--n-train); a file that cannot
/// be read, or holds fewer points, is a usage error naming @p flag and what is wrong.
[[nodiscard]] inline Eigen::MatrixXd read_points(std::string_view flag, const std::string& path, long max_points = 0) {
  const std::string who = std::string(flag) + (max_points > 0 ? " --n-train " + std::to_string(max_points) : "");
  try {
    if (kinflow::looks_like_idx(path)) {
      const kinflow::idx_array a =
          kinflow::read_idx(path, max_points > 0 ? static_cast<std::size_t>(max_points) : kinflow::idx_all);
      if (a.item_elements() == 0) usage_error(who + ": " + path + " holds items of no elements");
      return a.points(a.type == kinflow::idx_type::u8 ? 255.0 : 1.0);
    }
    Eigen::MatrixXd points = kinflow::read_csv(path).points;
    if (max_points > points.cols())
      usage_error(who + ": asked for " + std::to_string(max_points) + " points, " + path + " holds " +
                  std::to_string(points.cols()));
    if (max_points > 0) points.conservativeResize(Eigen::NoChange, max_points);
    return points;
  } catch (const kinflow::invalid_argument& e) {
    usage_error(who + ": " + e.what());
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
