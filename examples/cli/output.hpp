#pragma once
/// @file
/// @brief The files kinflow's command-line programs write (docs/cli.md):
/// per-sample CSV tables (coordinates `x_0 … x_{d-1}`, then named columns), point sets
/// (include/kinflow/data/csv.hpp), and JSON summaries with numbers to 10 significant
/// digits (`null` for a number that is not finite).

#include <kinflow/data/csv.hpp>
#include <kinflow/integrators/result.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "command_line.hpp"

namespace kinflow_cli {

/// The file @p path opened for writing.
/// @throws std::runtime_error "cannot write <path>" if it cannot be opened.
[[nodiscard]] inline std::ofstream open_output(const std::filesystem::path& path) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write " + path.string());
  return f;
}

/// The CSV column names of @p d coordinates: x_0, …, x_{d-1}.
[[nodiscard]] inline std::vector<std::string> coordinate_names(Eigen::Index d) {
  std::vector<std::string> names;
  for (Eigen::Index k = 0; k < d; ++k) names.push_back("x_" + std::to_string(k));
  return names;
}

/// Writes the points @p X (`d × N`) to @p path, one row per point under the header
/// x_0,…,x_{d-1}, in the shortest form that reads back exactly (kinflow::write_csv).
template <class Derived>
void write_points(const std::filesystem::path& path, const Eigen::MatrixBase<Derived>& X) {
  kinflow::write_csv(path, X, coordinate_names(X.rows()));
}

/// A CSV table with one row per sample: the coordinates x_0 … x_{d-1} of each column of a
/// batch, then the columns added by column(), each value streamed with @p precision
/// significant digits (a NaN as `nan`).
class sample_table {
public:
  /// A cell writer: streams the value of one column for sample i.
  using cell = std::function<void(std::ostream& out, Eigen::Index i)>;

  /// Adds the column @p name whose value for sample i @p write streams.
  sample_table& column(std::string name, cell write) {
    columns_.emplace_back(std::move(name), std::move(write));
    return *this;
  }

  /// Adds the columns kpe, kpe_early and kpe_late of the solve @p r (which must outlive
  /// the table).
  template <class Scalar>
  sample_table& energy_columns(const kinflow::solve_result<Scalar>& r) {
    column("kpe", [&r](std::ostream& o, Eigen::Index i) { o << r.kpe.total(i); });
    column("kpe_early", [&r](std::ostream& o, Eigen::Index i) { o << r.kpe.early(i); });
    return column("kpe_late", [&r](std::ostream& o, Eigen::Index i) { o << r.kpe.late(i); });
  }

  /// Writes the table of the samples @p X (`d × B`) to @p path, values with
  /// @p precision significant digits (by default enough to read X back exactly).
  /// @throws std::runtime_error if the file cannot be written.
  template <class Derived>
  void write(const std::filesystem::path& path, const Eigen::MatrixBase<Derived>& X,
             int precision = std::numeric_limits<typename Derived::Scalar>::max_digits10) const {
    std::ofstream f = open_output(path);
    f << std::setprecision(precision);
    const auto names = coordinate_names(X.rows());
    for (std::size_t k = 0; k < names.size(); ++k) f << (k ? "," : "") << names[k];
    for (std::size_t c = 0; c < columns_.size(); ++c) f << (c || !names.empty() ? "," : "") << columns_[c].first;
    f << '\n';
    for (Eigen::Index i = 0; i < X.cols(); ++i) {
      for (Eigen::Index k = 0; k < X.rows(); ++k) f << (k ? "," : "") << X(k, i);
      for (std::size_t c = 0; c < columns_.size(); ++c) {
        if (c || X.rows() > 0) f << ',';
        columns_[c].second(f, i);
      }
      f << '\n';
    }
  }

private:
  std::vector<std::pair<std::string, cell>> columns_;
};

/// @p v with the characters a JSON string cannot hold as they are escaped (no quotes added).
[[nodiscard]] inline std::string json_escape(std::string_view v) {
  std::string o;
  for (char c : v) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
      continue;
    }
    o += c;
  }
  return o;
}

/// @p v as a JSON string, quoted and escaped.
[[nodiscard]] inline std::string json_string(std::string_view v) { return "\"" + json_escape(v) + "\""; }

/// @p v as a JSON number with 10 significant digits, or `null` when it is not finite.
[[nodiscard]] inline std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

/// A JSON array of numbers (json_number() each): `[1, 2.5]`.
[[nodiscard]] inline std::string json_numbers(std::initializer_list<double> values) {
  std::vector<std::string> texts;
  for (double v : values) texts.push_back(json_number(v));
  return std::string("[") + join(texts, ", ") + "]";
}

/// A JSON object built member by member, on one line (`{"a": 1, "b": "x"}`) or, with
/// @p indent ≥ 0, one member per line indented by indent + 2 spaces.
class json_object {
public:
  /// An object on one line (@p indent < 0) or one member per line at @p indent.
  explicit json_object(int indent = -1) : indent_(indent) {}

  /// Adds the member @p key with the JSON text @p json (an object, an array, …).
  json_object& raw(std::string_view key, std::string_view json) {
    members_.push_back(json_string(key) + ": " + std::string(json));
    return *this;
  }
  /// Adds a number (json_number()).
  json_object& number(std::string_view key, double v) { return raw(key, json_number(v)); }
  /// Adds an integer.
  json_object& integer(std::string_view key, long long v) { return raw(key, std::to_string(v)); }
  /// Adds a string (json_string()).
  json_object& text(std::string_view key, std::string_view v) { return raw(key, json_string(v)); }
  /// Adds true or false.
  json_object& boolean(std::string_view key, bool v) { return raw(key, v ? "true" : "false"); }
  /// Adds the object @p o.
  json_object& object(std::string_view key, const json_object& o) { return raw(key, o.str()); }

  /// The object as JSON text.
  [[nodiscard]] std::string str() const {
    if (indent_ < 0) {
      return std::string("{") + join(members_, ", ") + "}";
    }
    const std::string pad(static_cast<std::size_t>(indent_) + 2, ' ');
    std::string out = "{\n";
    for (std::size_t i = 0; i < members_.size(); ++i)
      out.append(pad).append(members_[i]).append(i + 1 < members_.size() ? ",\n" : "\n");
    return out + std::string(static_cast<std::size_t>(indent_), ' ') + "}";
  }

  /// Writes str() and a newline to the file @p path.
  /// @throws std::runtime_error if it cannot be written.
  void write(const std::filesystem::path& path) const { open_output(path) << str() << '\n'; }

private:
  int indent_;
  std::vector<std::string> members_;
};

}  // namespace kinflow_cli
