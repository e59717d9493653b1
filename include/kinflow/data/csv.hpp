#pragma once
/// @file
/// @brief Points from and to CSV files: N rows of d numbers, one point per row, which
/// become the N columns of a `d × N` batch.
///
/// Reading: fields are separated by a delimiter (`,` by default) and may be surrounded by
/// spaces or tabs; line endings `\n` and `\r\n` both work; blank lines are skipped. An
/// optional first line of column names is detected (a first line none of whose fields is
/// a number) or declared (csv_read_options::header). Numbers are parsed with
/// `std::from_chars`, independent of the locale. Every row must have the same number of
/// fields and every value must be finite; otherwise kinflow::csv_error says which line and
/// column (1-based; the column counts fields) and quotes the offending text.
///
/// Writing: one row per column of the batch, each value in the shortest form that reads
/// back to the same number (`std::to_chars`), so `read_csv(write_csv(x)) == x` exactly.

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"

#include <Eigen/Core>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <istream>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace kinflow {

/// Thrown for a file that cannot be read as CSV points. The message names the source,
/// the line and the column and quotes the bad text; line() and column() give the
/// position (0 when the error is not tied to one, e.g. a missing or empty file).
class csv_error : public invalid_argument {
public:
  /// An error with its full @p message and its 1-based @p line and @p column (0: none).
  csv_error(const std::string& message, std::size_t line, std::size_t column)
      : invalid_argument(message), line_(line), column_(column) {}
  /// 1-based line of the error (0: the whole file).
  [[nodiscard]] std::size_t line() const noexcept { return line_; }
  /// 1-based column (field number) of the error (0: the whole line or file).
  [[nodiscard]] std::size_t column() const noexcept { return column_; }

private:
  std::size_t line_, column_;
};

/// Whether a CSV file starts with a line of column names.
enum class csv_header {
  detect,  ///< a first line none of whose fields parses as a number is a header
  present, ///< the first non-blank line is a header
  absent   ///< every line is data
};

/// Options of read_csv() / parse_csv().
struct csv_read_options {
  csv_header header = csv_header::detect; ///< header line handling
  char delimiter = ',';                   ///< field separator (not a space or tab)
};

/// Points read from CSV: `points` is `d × N` (row r of the file is column r), `column_names`
/// the header fields (empty when the file has no header).
struct csv_data {
  batch<double> points;                  ///< d × N, one column per data row
  std::vector<std::string> column_names; ///< header fields, trimmed; empty without header
};

namespace detail {

[[nodiscard]] inline std::string_view csv_trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

[[nodiscard]] inline std::vector<std::string_view> csv_split(std::string_view line, char delim) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = line.find(delim, start);
    if (end == std::string_view::npos) {
      fields.push_back(csv_trim(line.substr(start)));
      return fields;
    }
    fields.push_back(csv_trim(line.substr(start, end - start)));
    start = end + 1;
  }
}

/// Parses the whole of @p text as a double (an optional leading '+' is accepted).
[[nodiscard]] inline bool csv_parse_number(std::string_view text, double& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  // Out-of-range magnitudes (e.g. 1e999) are reported as non-finite below.
  if (ec == std::errc::result_out_of_range && ptr == end) {
    value = text.front() == '-' ? -HUGE_VAL : HUGE_VAL;
    return true;
  }
  return ec == std::errc() && ptr == end;
}

[[noreturn]] inline void csv_fail(std::string_view source, std::size_t line, std::size_t column,
                                  const std::string& what) {
  std::ostringstream os;
  os << "kinflow: CSV " << source;
  if (line > 0) os << ", line " << line;
  if (column > 0) os << ", column " << column;
  os << ": " << what;
  throw csv_error(os.str(), line, column);
}

}  // namespace detail

/// Reads points from a CSV stream (see the file comment for the format); @p source names
/// the stream in error messages.
///
/// @throws kinflow::csv_error for an empty input (no data rows), a field that is not a
///   number, a non-finite value, or a row whose number of fields differs from the first.
[[nodiscard]] inline csv_data parse_csv(std::istream& in, const csv_read_options& options = {},
                                        std::string_view source = "input") {
  detail::require(options.delimiter != ' ' && options.delimiter != '\t' &&
                      options.delimiter != '\n' && options.delimiter != '\r' &&
                      options.delimiter != '\0',
                  "csv_read_options::delimiter", static_cast<int>(options.delimiter),
                  "expected a printable separator other than space or tab (character code)");
  csv_data out;
  std::vector<double> values;
  std::size_t width = 0, rows = 0, width_line = 0, line_no = 0;
  bool first = true;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (detail::csv_trim(line).empty()) continue;
    const auto fields = detail::csv_split(line, options.delimiter);
    if (first) {
      first = false;
      bool header = options.header == csv_header::present;
      if (options.header == csv_header::detect) {
        header = true;
        double ignored = 0;
        for (auto f : fields)
          if (detail::csv_parse_number(f, ignored)) header = false;
      }
      if (header) {
        for (auto f : fields) out.column_names.emplace_back(f);
        width = fields.size();
        width_line = line_no;
        continue;
      }
    }
    if (width == 0) {
      width = fields.size();
      width_line = line_no;
    } else if (fields.size() != width) {
      detail::csv_fail(source, line_no, 0,
                       "found " + std::to_string(fields.size()) + " fields, expected " +
                           std::to_string(width) + " (as on line " +
                           std::to_string(width_line) + ")");
    }
    for (std::size_t c = 0; c < fields.size(); ++c) {
      double v = 0;
      if (!detail::csv_parse_number(fields[c], v))
        detail::csv_fail(source, line_no, c + 1,
                         "cannot read \"" + std::string(fields[c]) + "\" as a number");
      if (!std::isfinite(v))
        detail::csv_fail(source, line_no, c + 1,
                         "value \"" + std::string(fields[c]) + "\" is not finite");
      values.push_back(v);
    }
    ++rows;
  }
  if (in.bad()) detail::csv_fail(source, line_no + 1, 0, "read error");
  if (rows == 0)
    detail::csv_fail(source, 0, 0,
                     out.column_names.empty() ? "no data rows (the input is empty)"
                                              : "no data rows after the header");
  out.points = Eigen::Map<const batch<double>>(values.data(), static_cast<Eigen::Index>(width),
                                               static_cast<Eigen::Index>(rows));
  return out;
}

/// Reads points from the CSV file at @p path (see parse_csv()).
///
/// @throws kinflow::csv_error if the file cannot be opened, or as parse_csv().
[[nodiscard]] inline csv_data read_csv(const std::filesystem::path& path,
                                       const csv_read_options& options = {}) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw csv_error("kinflow: CSV file \"" + path.string() +
                        "\" cannot be opened for reading (missing or unreadable)",
                    0, 0);
  }
  return parse_csv(in, options, "file \"" + path.string() + "\"");
}

/// Writes @p points (`d × N`) as N rows of d values, preceded by the line @p column_names
/// when it is not empty; each value is in the shortest form that reads back exactly.
///
/// @throws kinflow::dimension_mismatch if column_names is non-empty and its size is not d.
template <class Derived>
void write_csv(std::ostream& out, const Eigen::MatrixBase<Derived>& points,
               const std::vector<std::string>& column_names = {}, char delimiter = ',') {
  using Scalar = typename Derived::Scalar;
  static_assert(std::is_floating_point_v<Scalar>, "write_csv: points must be real numbers");
  if (!column_names.empty())
    detail::require_dimension("write_csv: number of column names",
                              static_cast<long long>(column_names.size()),
                              static_cast<long long>(points.rows()));
  std::string row;
  char buf[64];
  if (!column_names.empty()) {
    for (std::size_t i = 0; i < column_names.size(); ++i) {
      if (i > 0) row += delimiter;
      row += column_names[i];
    }
    row += '\n';
    out << row;
  }
  for (Eigen::Index j = 0; j < points.cols(); ++j) {
    row.clear();
    for (Eigen::Index i = 0; i < points.rows(); ++i) {
      if (i > 0) row += delimiter;
      const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, points(i, j));
      (void)ec;  // 64 characters always hold the shortest round-trip form
      row.append(buf, ptr);
    }
    row += '\n';
    out << row;
  }
}

/// Writes @p points to the file at @p path (see the stream overload).
///
/// @throws kinflow::invalid_argument if the file cannot be opened or written.
template <class Derived>
void write_csv(const std::filesystem::path& path, const Eigen::MatrixBase<Derived>& points,
               const std::vector<std::string>& column_names = {}, char delimiter = ',') {
  std::ofstream out(path, std::ios::binary);
  detail::require(static_cast<bool>(out), "path", path.string(),
                  "expected a file that can be opened for writing");
  write_csv(out, points, column_names, delimiter);
  out.flush();
  detail::require(static_cast<bool>(out), "path", path.string(),
                  "expected a file that can be written completely");
}

}  // namespace kinflow
