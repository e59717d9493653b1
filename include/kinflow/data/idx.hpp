#pragma once
/// @file
/// @brief Arrays from IDX files, the format of MNIST and Fashion-MNIST: plain or
/// gzip-compressed (told apart by their first bytes, not by the file name), e.g. the files
/// of Debian's `dataset-fashion-mnist` in `/usr/share/datasets/fashion-mnist/`.
///
/// An IDX file is a 4-byte magic number — two zero bytes, the element type (0x08 unsigned
/// byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the
/// number of dimensions n — then n big-endian 32-bit sizes, then the elements, big-endian,
/// in row-major order. The first dimension counts the items: images
/// (`train-images-idx3-ubyte`, magic 0x00000803, shape [N, 28, 28]) or labels
/// (`train-labels-idx1-ubyte`, magic 0x00000801, shape [N]).
///
/// read_idx() keeps the elements as stored; idx_array::points() makes a `d × N` batch of
/// them (one column per item, its elements in row-major order, d = 784 for 28 × 28 images;
/// the raw values, or divided by a given number, e.g. 255 for pixels in [0, 1])
/// and idx_array::labels() a vector of integers. A file that is not IDX, is truncated, holds
/// bytes past its data, has a size 0 past the first or sizes whose product overflows or
/// exceeds idx_max_bytes, or holds
/// fewer items than asked for, throws kinflow::model_file_error naming the file and the
/// problem; a malformed header never causes an allocation larger than the file's data.

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"
#include "kinflow/data/gzip.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <limits>
#include <string>
#include <vector>

namespace kinflow {

/// The element types of the IDX format (the third byte of the magic number).
enum class idx_type : std::uint8_t {
  u8 = 0x08,  ///< unsigned byte (images and labels of MNIST and Fashion-MNIST)
  i8 = 0x09,  ///< signed byte
  i16 = 0x0B, ///< 16-bit signed integer
  i32 = 0x0C, ///< 32-bit signed integer
  f32 = 0x0D, ///< 32-bit IEEE float
  f64 = 0x0E  ///< 64-bit IEEE float
};

/// All items of the file: the default `max_items` of read_idx() and parse_idx().
inline constexpr std::size_t idx_all = std::numeric_limits<std::size_t>::max();

/// The largest data an IDX file may declare, in bytes (4 GiB; Fashion-MNIST's training
/// images are 47 MB): a header asking for more is rejected as malformed.
inline constexpr std::uint64_t idx_max_bytes = std::uint64_t{1} << 32;

/// An array read from an IDX file: its element type, its shape (shape[0] items) and its
/// elements in row-major order, in the machine's byte order.
struct idx_array {
  idx_type type = idx_type::u8;         ///< element type
  std::vector<std::uint32_t> shape;      ///< sizes, shape[0] the items read (≤ the file's)
  std::vector<unsigned char> bytes;      ///< size() × itemsize() bytes, native byte order
  std::string source;                    ///< the file, for error messages

  /// Bytes per element: 1, 2, 4 or 8.
  [[nodiscard]] std::size_t itemsize() const noexcept {
    switch (type) {
      case idx_type::i16: return 2;
      case idx_type::i32:
      case idx_type::f32: return 4;
      case idx_type::f64: return 8;
      default: return 1;
    }
  }
  /// Number of items, shape[0].
  [[nodiscard]] std::size_t items() const noexcept { return shape.empty() ? 0 : shape[0]; }
  /// Elements per item: the product of shape[1..] (1 for a vector of labels).
  [[nodiscard]] std::size_t item_elements() const noexcept {
    std::size_t d = 1;
    for (std::size_t k = 1; k < shape.size(); ++k) d *= shape[k];
    return d;
  }
  /// Number of elements, items() × item_elements().
  [[nodiscard]] std::size_t size() const noexcept { return items() * item_elements(); }

  /// Element @p i (row-major) as a double (exact for every IDX type).
  [[nodiscard]] double element(std::size_t i) const noexcept {
    const unsigned char* p = bytes.data() + i * itemsize();
    switch (type) {
      case idx_type::u8: return *p;
      case idx_type::i8: return static_cast<signed char>(*p);
      case idx_type::i16: return load<std::int16_t>(p);
      case idx_type::i32: return load<std::int32_t>(p);
      case idx_type::f32: return load<float>(p);
      case idx_type::f64: return load<double>(p);
    }
    return 0;
  }

  /// The items as the columns of a `d × N` batch (d = item_elements(), N = items()), each
  /// element divided by @p divisor: 255 maps unsigned-byte pixels to [0, 1], 1 keeps them.
  /// @throws kinflow::model_file_error for a non-finite element (a float file), naming it;
  ///   kinflow::invalid_argument unless @p divisor is finite and non-zero.
  template <class Scalar = double>
  [[nodiscard]] batch<Scalar> points(double divisor = 1) const {
    detail::require(std::isfinite(divisor) && divisor != 0, "divisor", divisor, "expected a finite non-zero number");
    batch<Scalar> out(static_cast<Eigen::Index>(item_elements()), static_cast<Eigen::Index>(items()));
    for (std::size_t i = 0; i < size(); ++i) {
      const double v = element(i) / divisor;
      if (!std::isfinite(static_cast<Scalar>(v)))
        detail::file_fail(source, "", "element " + std::to_string(i) + " of item " +
                                          std::to_string(i / item_elements()) + " is not finite (" +
                                          detail::to_text(element(i)) + ")");
      out.data()[i] = static_cast<Scalar>(v);
    }
    return out;
  }

  /// The elements of a one-dimensional integer array (a labels file) as integers.
  /// @throws kinflow::model_file_error for a float array or one of several dimensions.
  [[nodiscard]] std::vector<long long> labels() const {
    if (shape.size() != 1 || type == idx_type::f32 || type == idx_type::f64)
      detail::file_fail(source, "", "expected labels (one dimension of integers), found " +
                                        std::to_string(shape.size()) + " dimensions of " +
                                        (type == idx_type::f32 || type == idx_type::f64 ? "floats" : "integers"));
    std::vector<long long> out(items());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<long long>(element(i));
    return out;
  }

private:
  template <class T>
  static T load(const unsigned char* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
};

namespace detail {

[[nodiscard]] inline std::uint32_t idx_be32(const unsigned char* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

[[nodiscard]] inline bool idx_known_type(unsigned t) noexcept {
  return t == 0x08 || t == 0x09 || t == 0x0B || t == 0x0C || t == 0x0D || t == 0x0E;
}

[[nodiscard]] inline std::string idx_shape_text(const std::vector<std::uint32_t>& shape) {
  std::string s = "[";
  for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

/// The magic number and sizes at the start of the plain IDX data @p p (@p size bytes):
/// the array with its type and shape (no elements yet); @p header_bytes gets the header's
/// length. The sizes are checked against idx_max_bytes, not yet against @p size.
[[nodiscard]] inline idx_array idx_header(const unsigned char* p, std::size_t size, const std::string& source,
                                          std::size_t& header_bytes) {
  idx_array a;
  a.source = source;
  if (size < 4) file_fail(source, "", "not an IDX file: " + std::to_string(size) + " bytes, shorter than its magic number");
  if (p[0] != 0 || p[1] != 0 || !idx_known_type(p[2]) || p[3] == 0) {
    char magic[16];
    std::snprintf(magic, sizeof magic, "0x%02X%02X%02X%02X", p[0], p[1], p[2], p[3]);
    file_fail(source, "", std::string("not an IDX file: magic number ") + magic +
                              " (expected 0x0000TTNN: type TT 08, 09, 0B, 0C, 0D or 0E, NN >= 1 dimensions)");
  }
  a.type = static_cast<idx_type>(p[2]);
  header_bytes = 4 + 4 * std::size_t{p[3]};
  if (size < header_bytes)
    file_fail(source, "", "truncated: the header of " + std::to_string(p[3]) + " dimensions needs " +
                              std::to_string(header_bytes) + " bytes, the file has " + std::to_string(size));
  // One item's bytes first, then all items': each product stays below 2^64.
  std::uint64_t item = a.itemsize();
  for (std::size_t k = 0; k < p[3]; ++k) {
    a.shape.push_back(idx_be32(p + 4 + 4 * k));
    if (k > 0 && a.shape[k] == 0)
      file_fail(source, "", "dimension " + std::to_string(k) + " is 0: items without elements (shape " +
                                idx_shape_text(a.shape) + "...)");
    if (k > 0) item *= a.shape[k];
    if (item > idx_max_bytes || item * a.shape[0] > idx_max_bytes)
      file_fail(source, "", "sizes too large: the header declares more than " + std::to_string(idx_max_bytes) +
                                " bytes of data (dimension " + std::to_string(k) + " = " +
                                std::to_string(a.shape.back()) + ")");
  }
  return a;
}

}  // namespace detail

/// Parses the IDX file content of @p size bytes at @p data, plain or gzip-compressed
/// (detected by the gzip magic bytes), keeping its first @p max_items items.
///
/// Reading every item (the default) checks the whole file: a byte missing or a byte too
/// many is an error. Reading fewer decompresses and checks only as much as those items need.
/// @param data      the file's bytes
/// @param size      their number
/// @param source    the file's name in error messages
/// @param max_items the items to keep (idx_all: every item)
/// @throws kinflow::model_file_error (see the file comment); kinflow::invalid_argument for
///   max_items = 0.
[[nodiscard]] inline idx_array parse_idx(const unsigned char* data, std::size_t size, const std::string& source,
                                         std::size_t max_items = idx_all) {
  detail::require(max_items >= 1, "max_items", max_items, "expected at least one item (idx_all: every item)");
  const bool whole = max_items == idx_all;
  std::vector<unsigned char> inflated;
  std::size_t header_bytes = 0;
  if (is_gzip(data, size)) {
    std::size_t limit = std::numeric_limits<std::size_t>::max();
    if (!whole) {  // the header first, then only the bytes the items asked for need
      inflated = gunzip(data, size, source, 4 + 4 * 255);
      const idx_array head = detail::idx_header(inflated.data(), inflated.size(), source, header_bytes);
      limit = header_bytes + std::min<std::size_t>(max_items, head.items()) * head.item_elements() * head.itemsize();
    }
    inflated = gunzip(data, size, source, limit);
    data = inflated.data();
    size = inflated.size();
  }
  idx_array a = detail::idx_header(data, size, source, header_bytes);
  const std::size_t items = a.items(), w = a.itemsize(), declared = a.size() * w;
  if (!whole && max_items > items)
    detail::file_fail(source, "", "asked for " + std::to_string(max_items) + " items, the file holds " +
                                      std::to_string(items) + " (shape " + detail::idx_shape_text(a.shape) + ")");
  const std::size_t have = size - header_bytes;
  if (!whole) a.shape[0] = static_cast<std::uint32_t>(max_items);
  const std::size_t needed = a.size() * w;
  if (have < needed)
    detail::file_fail(source, "", "truncated: the header declares " + std::to_string(declared) +
                                      " bytes of data (shape " + detail::idx_shape_text(a.shape) +
                                      "), the file holds " + std::to_string(have));
  if (whole && have > declared)
    detail::file_fail(source, "", "oversized: " + std::to_string(have - declared) + " bytes after the " +
                                      std::to_string(declared) + " bytes of data the header declares (shape " +
                                      detail::idx_shape_text(a.shape) + ")");
  a.bytes.resize(needed);
  const unsigned char* p = data + header_bytes;
  const bool swap = std::endian::native == std::endian::little;
  for (std::size_t i = 0; i < needed; i += w)  // big-endian elements to the machine's order
    for (std::size_t b = 0; b < w; ++b) a.bytes[i + b] = p[i + (swap ? w - 1 - b : b)];
  return a;
}

/// Reads the IDX file at @p path, plain or gzip-compressed, keeping its first @p max_items
/// items (see parse_idx()).
/// @throws kinflow::model_file_error if the file cannot be read, or as parse_idx().
[[nodiscard]] inline idx_array read_idx(const std::filesystem::path& path, std::size_t max_items = idx_all) {
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::file_fail(path.string(), "", "cannot be opened for reading (missing or unreadable)");
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  if (ec) detail::file_fail(path.string(), "", "cannot tell its size (" + ec.message() + ")");
  std::vector<unsigned char> content(static_cast<std::size_t>(bytes));
  in.read(reinterpret_cast<char*>(content.data()), static_cast<std::streamsize>(content.size()));
  if (static_cast<std::size_t>(in.gcount()) != content.size()) detail::file_fail(path.string(), "", "read error");
  return parse_idx(content.data(), content.size(), path.string(), max_items);
}

/// True when the file at @p path starts like an IDX file (two zero bytes, which no text
/// file starts with) or like gzip data (which read_idx() decompresses); false when it cannot
/// be opened or starts otherwise, e.g. with text (a CSV file). read_idx() then checks the rest.
[[nodiscard]] inline bool looks_like_idx(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[2] = {1, 1};
  in.read(reinterpret_cast<char*>(head), 2);
  return in.gcount() == 2 && (is_gzip(head, 2) || (head[0] == 0 && head[1] == 0));
}

}  // namespace kinflow
