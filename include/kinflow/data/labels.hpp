#pragma once
/// @file
/// @brief Class labels from and to files, and their checks: one integer class index per
/// point (kinflow::class_labels), as a labelled training set of a conditional field needs.
///
/// An IDX file of one dimension of integers (plain or gzip, told apart by its first bytes,
/// e.g. MNIST's and Fashion-MNIST's `*-labels-idx1-ubyte.gz`) is read as labels. Otherwise
/// the format is chosen by the file's extension:
///  - `.npy` (any case): a NumPy array as `numpy.save` writes it, 1-D, of an integer dtype:
///    int8, int16, int32, int64, uint8, uint16, uint32 or uint64, little-endian (the header
///    is read by the `.npy` parser of kinflow/models/npz.hpp).
///  - any other: text with one integer per line, read as the CSV reader (kinflow/data/csv.hpp)
///    reads a number: spaces and tabs around it and `\r\n` line endings are ignored, a
///    leading '+' is accepted, blank lines are skipped. There is no header line and no
///    comment syntax (nor has the CSV reader one): every other line must be one integer.
///
/// Every label in a file is a class index >= 0: kinflow::null_class (-1) means "no class"
/// for the queries of a conditional field and is not a training label. A file that breaks
/// these rules throws kinflow::invalid_argument naming the file, the line (text) or the
/// index (`.npy`), what was found and what is expected; an `.npy` file that is not a valid
/// array at all throws kinflow::model_file_error (an invalid_argument) naming the file.

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/data/idx.hpp"
#include "kinflow/models/npz.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <istream>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace kinflow {

namespace detail {

/// The concatenation of @p parts (built by append: GCC 12 reports a false -Wrestrict for
/// "literal" + std::string&&).
[[nodiscard]] inline std::string labels_cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const auto part : parts) out.append(part);
  return out;
}

/// Throws kinflow::invalid_argument with "kinflow: <source>[, <where>]: <found> is invalid;
/// expected <expected>".
[[noreturn]] inline void labels_fail(std::string_view source, const std::string& where,
                                     const std::string& found, std::string_view expected) {
  throw invalid_argument(labels_cat({"kinflow: ", source, where.empty() ? "" : ", ", where, ": ",
                                     found, " is invalid; expected ", expected}));
}

/// The largest label + 1: labels stay below it, so that the number of classes (the largest
/// label + 1) is an Eigen::Index too.
inline constexpr Eigen::Index labels_bound = std::numeric_limits<Eigen::Index>::max();

/// What every label of a file must be.
inline constexpr std::string_view labels_range =
    "an integer class index >= 0 and < 9223372036854775807 (-1, no class, is for queries, "
    "not for a label file)";

/// True when @p path names an `.npy` file (extension compared without case).
[[nodiscard]] inline bool labels_path_is_npy(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".npy";
}

/// The labels of the `.npy` file @p bytes (named @p source in messages).
[[nodiscard]] inline class_labels labels_from_npy(const std::vector<unsigned char>& bytes,
                                                  const std::string& source) {
  const npy_array a = parse_npy(bytes.data(), bytes.size(), source, {});
  if (a.kind != 'i' && a.kind != 'u')
    labels_fail(source, {}, labels_cat({"dtype '", a.descr, "'"}),
                "an integer dtype (int8, int16, int32, int64, uint8, uint16, uint32, uint64)");
  if (a.ndim() != 1)
    labels_fail(source, {}, labels_cat({"shape ", a.shape_text()}),
                "a 1-D array, one label per point");
  if (a.size() == 0) labels_fail(source, {}, "an empty array", "at least one label");
  class_labels out(a.size());
  for (Eigen::Index i = 0; i < a.size(); ++i) {
    const unsigned char* p = a.bytes.data() + static_cast<std::size_t>(i) * a.itemsize;
    std::uint64_t u = 0;
    for (std::size_t k = a.itemsize; k-- > 0;) u = (u << 8) | p[k];
    const bool negative = a.kind == 'i' && (p[a.itemsize - 1] & 0x80u) != 0;
    if (negative) {
      if (a.itemsize < 8) u |= ~std::uint64_t{0} << (8 * a.itemsize);  // sign-extend
      labels_fail(source, labels_cat({"index ", std::to_string(i)}),
                  std::to_string(static_cast<std::int64_t>(u)), labels_range);
    }
    if (u >= static_cast<std::uint64_t>(labels_bound))
      labels_fail(source, labels_cat({"index ", std::to_string(i)}), std::to_string(u),
                  labels_range);
    out(i) = static_cast<Eigen::Index>(u);
  }
  return out;
}

}  // namespace detail

/// Reads labels written as text, one integer per line (see the file comment), from @p in;
/// @p source names the input in error messages.
///
/// @throws kinflow::invalid_argument naming @p source and the line (1-based) of a line that
///   is not one integer, of a negative label or one beyond the range of Eigen::Index, or
///   naming @p source when the input holds no label.
[[nodiscard]] inline class_labels parse_labels(std::istream& in,
                                               std::string_view source = "labels input") {
  std::vector<Eigen::Index> values;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string_view t = line;
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r'))
      t.remove_suffix(1);
    if (t.empty()) continue;
    const std::string found = detail::labels_cat({"\"", t, "\""});
    if (t.size() > 1 && t.front() == '+' && t[1] >= '0' && t[1] <= '9') t.remove_prefix(1);
    Eigen::Index v = 0;
    const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    const bool whole = !t.empty() && ptr == t.data() + t.size();
    const std::string where = detail::labels_cat({"line ", std::to_string(line_no)});
    if (ec == std::errc::result_out_of_range && whole)
      detail::labels_fail(source, where, found, detail::labels_range);
    if (ec != std::errc() || !whole)
      detail::labels_fail(source, where, found,
                          "one integer class index >= 0 per line (no header, no comments)");
    if (v < 0 || v >= detail::labels_bound)
      detail::labels_fail(source, where, found, detail::labels_range);
    values.push_back(v);
  }
  if (in.bad())
    detail::labels_fail(source, detail::labels_cat({"line ", std::to_string(line_no + 1)}),
                        "a read error", "a readable input");
  if (values.empty())
    detail::labels_fail(source, {}, "an input without labels (empty or blank)",
                        "at least one label, one integer per line");
  return Eigen::Map<const class_labels>(values.data(), static_cast<Eigen::Index>(values.size()));
}

/// Reads the labels of the file at @p path: an `.npy` array of integers, or text with one
/// integer per line for any other extension (see the file comment).
///
/// @throws kinflow::invalid_argument naming the file (and the line or array index) when it
///   cannot be read, holds no label, a label < 0 or one that is not an integer, a float
///   dtype or an array that is not 1-D; kinflow::model_file_error when an `.npy` file is
///   not a valid array (bad magic, malformed header, truncated data, unsupported dtype).
[[nodiscard]] inline class_labels read_labels(const std::filesystem::path& path) {
  const std::string source = detail::labels_cat({"labels file \"", path.string(), "\""});
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    detail::labels_fail(source, {}, "a directory", "a file of labels");
  if (looks_like_idx(path)) {  // e.g. Fashion-MNIST's train-labels-idx1-ubyte.gz
    const std::vector<long long> v = read_idx(path).labels();
    class_labels out(static_cast<Eigen::Index>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] < 0) detail::labels_fail(source, detail::labels_cat({"index ", std::to_string(i)}), std::to_string(v[i]), detail::labels_range);
      out(static_cast<Eigen::Index>(i)) = static_cast<Eigen::Index>(v[i]);
    }
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::labels_fail(source, {}, "a missing or unreadable file", "a readable file");
  if (!detail::labels_path_is_npy(path)) return parse_labels(in, source);
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>());
  if (in.bad()) detail::labels_fail(source, {}, "a read error", "a readable file");
  return detail::labels_from_npy(bytes, source);
}

/// Writes @p labels to the file at @p path: an `.npy` array of dtype int64 (`<i8`, NPY
/// format 1.0) when the extension is `.npy`, otherwise text with one integer per line.
/// read_labels() reads either back exactly.
///
/// @throws kinflow::invalid_argument if a label is < 0, or the file cannot be written.
inline void write_labels(const std::filesystem::path& path, const class_labels& labels) {
  for (Eigen::Index i = 0; i < labels.size(); ++i)
    detail::require(labels(i) >= 0 && labels(i) < detail::labels_bound,
                    detail::labels_cat({"labels(", std::to_string(i), ")"}), labels(i),
                    "expected a class index >= 0 and < 9223372036854775807 (a label file "
                    "holds no -1)");
  std::string out;
  if (detail::labels_path_is_npy(path)) {
    std::string header = "{'descr': '<i8', 'fortran_order': False, 'shape': (" +
                         std::to_string(labels.size()) + ",), }";
    header.append(63 - (10 + header.size()) % 64, ' ');  // 10 + header + '\n': 64-aligned
    header += '\n';
    out = std::string("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
    out += header;
    for (Eigen::Index i = 0; i < labels.size(); ++i)
      for (int k = 0; k < 8; ++k)
        out += static_cast<char>((static_cast<std::uint64_t>(labels(i)) >> (8 * k)) & 0xff);
  } else {
    char buf[24];
    for (Eigen::Index i = 0; i < labels.size(); ++i) {
      const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, labels(i));
      (void)ec;  // 24 characters hold every 64-bit integer
      out.append(buf, ptr);
      out += '\n';
    }
  }
  std::ofstream file(path, std::ios::binary);
  detail::require(static_cast<bool>(file), "path", path.string(),
                  "expected a file that can be opened for writing");
  file.write(out.data(), static_cast<std::streamsize>(out.size()));
  file.flush();
  detail::require(static_cast<bool>(file), "path", path.string(),
                  "expected a file that can be written completely");
}

/// The number of classes @p labels name: the largest label + 1 (a class without a point
/// in between counts too), 0 when there is none; negative entries (kinflow::null_class)
/// are ignored.
[[nodiscard]] inline Eigen::Index count_classes(const class_labels& labels) {
  Eigen::Index largest = -1;
  for (Eigen::Index i = 0; i < labels.size(); ++i) largest = std::max(largest, labels(i));
  return largest < detail::labels_bound ? largest + 1 : largest;  // no overflow at the bound
}

/// Checks the training labels of @p n_points points: one per point, each a class index
/// >= 0; @p name names them in messages. Returns their number of classes, count_classes().
///
/// @throws kinflow::dimension_mismatch if labels.size() != n_points;
///   kinflow::invalid_argument naming `name(i)` and its value for the first label < 0, or
///   naming n_points when it is negative.
inline Eigen::Index check_labels(const class_labels& labels, Eigen::Index n_points,
                                 std::string_view name = "labels") {
  detail::require(n_points >= 0, "n_points", n_points, "expected a number of points >= 0");
  detail::require_dimension(detail::labels_cat({"number of ", name, " (one per point)"}),
                            static_cast<long long>(labels.size()),
                            static_cast<long long>(n_points));
  for (Eigen::Index i = 0; i < labels.size(); ++i)
    detail::require(labels(i) >= 0 && labels(i) < detail::labels_bound,
                    detail::labels_cat({name, "(", std::to_string(i), ")"}), labels(i),
                    "expected a class index >= 0 (and < 9223372036854775807): every "
                    "training point needs a class; -1, no class, is for queries");
  return count_classes(labels);
}

}  // namespace kinflow
