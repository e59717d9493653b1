#pragma once
/// @file
/// @brief A small reader of `.npz` files as written by `numpy.savez`: an uncompressed ZIP
/// archive whose entries are `.npy` arrays.
///
/// What is read, from the published formats:
///  - ZIP (PKWARE APPNOTE): the end-of-central-directory record (and its Zip64 variant), the
///    central directory (sizes, method, CRC-32, local-header offset, Zip64 extra field 0x0001)
///    and each local file header (only to skip its name and extra field). Sizes are taken
///    from the central directory, so entries written with a data descriptor or a Zip64 local
///    header (numpy writes one) are read correctly. Only *stored* entries (method 0) are
///    supported: `numpy.savez_compressed` files are rejected with a message saying so.
///    Every entry's CRC-32 is checked.
///  - NPY versions 1.0, 2.0 and 3.0: magic `\x93NUMPY`, version, header length (2 bytes in
///    v1, 4 in v2/v3), then a Python dict literal with `descr`, `fortran_order`, `shape`.
///    Supported dtypes: little-endian `<f4`, `<f8`, the integers `|i1`, `<i2`, `<i4`, `<i8`,
///    `|u1`, `<u2`, `<u4`, `<u8`, and `<U<n>` (unicode text, for metadata strings). Other
///    dtypes are rejected by name.
///
/// Every error throws kinflow::model_file_error (declared in kinflow/core/errors.hpp)
/// naming the file, the entry when there is one, and what is wrong (missing file, not a ZIP
/// archive, truncated, compressed entry, unsupported dtype, ...).
///
/// kinflow/models/mlp_npz.hpp builds a kinflow::mlp_field from such a file.

#include <Eigen/Core>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kinflow/core/errors.hpp"
#include "kinflow/detail/crc32.hpp"

namespace kinflow {

/// One array of an `.npy` file: dtype, shape, and its raw little-endian bytes, as read by
/// kinflow::npz_archive.
struct npy_array {
  std::string descr;                ///< numpy dtype string, e.g. "<f4"
  char kind = 'f';                  ///< 'f' float, 'i' signed, 'u' unsigned, 'U' unicode text
  std::size_t itemsize = 0;         ///< bytes per element
  bool fortran_order = false;       ///< column-major storage (numpy's `fortran_order`)
  std::vector<Eigen::Index> shape;  ///< empty for a 0-d array
  std::vector<unsigned char> bytes; ///< the elements, in storage order

  /// Number of elements (1 for a 0-d array).
  [[nodiscard]] Eigen::Index size() const {
    Eigen::Index n = 1;
    for (const auto s : shape) n *= s;
    return n;
  }

  /// Number of dimensions.
  [[nodiscard]] std::size_t ndim() const { return shape.size(); }

  /// The shape as numpy prints it: "(3, 2)", "(4,)", "()".
  [[nodiscard]] std::string shape_text() const {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(shape[i]);
    }
    if (shape.size() == 1) s += ",";
    return s + ")";
  }

  /// Element @p i in storage order, converted to double.
  /// @param i index in storage order, 0 ≤ i < size() (not checked)
  /// @return the element as a double; 0 for a text (`<U`) array
  [[nodiscard]] double element(Eigen::Index i) const {
    const unsigned char* p = bytes.data() + static_cast<std::size_t>(i) * itemsize;
    switch (kind) {
      case 'f':
        if (itemsize == 4) return load<float>(p);
        return load<double>(p);
      case 'i':
        if (itemsize == 1) return static_cast<double>(static_cast<std::int8_t>(*p));
        if (itemsize == 2) return static_cast<double>(load<std::int16_t>(p));
        if (itemsize == 4) return static_cast<double>(load<std::int32_t>(p));
        return static_cast<double>(load<std::int64_t>(p));
      case 'u':
        if (itemsize == 1) return static_cast<double>(*p);
        if (itemsize == 2) return static_cast<double>(load<std::uint16_t>(p));
        if (itemsize == 4) return static_cast<double>(load<std::uint32_t>(p));
        return static_cast<double>(load<std::uint64_t>(p));
      default:
        return 0.0;
    }
  }

  /// True for arrays of numbers, false for unicode text (`<U<n>`).
  [[nodiscard]] bool numeric() const { return kind != 'U'; }

  /// The array as text: a `|u1` array of ASCII bytes, or a 0-d/1-element `<U` string.
  /// Returns an empty string for any other array.
  [[nodiscard]] std::string text() const {
    std::string s;
    if (kind == 'u' && itemsize == 1 && ndim() <= 1) {
      s.assign(bytes.begin(), bytes.end());
    } else if (kind == 'U' && size() == 1) {
      for (std::size_t k = 0; k + 4 <= bytes.size(); k += 4) {
        const auto c = load<std::uint32_t>(bytes.data() + k);
        if (c == 0) break;
        s += c < 128 ? static_cast<char>(c) : '?';
      }
    }
    return s;
  }

private:
  template <class T>
  static T load(const unsigned char* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
};

namespace detail {

/// Little-endian reads bounded by the buffer; out-of-range reads report truncation.
class byte_reader {
public:
  /// Reads from @p b, the contents of @p file (both must outlive the reader).
  byte_reader(const std::vector<unsigned char>& b, const std::string& file)
      : b_(b), file_(file) {}
  /// The unsigned little-endian integer of @p nbytes bytes at @p pos.
  /// @throws kinflow::model_file_error ("truncated file", naming @p where) when the bytes
  ///         run past the end of the buffer
  [[nodiscard]] std::uint64_t le(std::size_t pos, int nbytes, std::string_view where) const {
    need(pos, static_cast<std::size_t>(nbytes), where);
    std::uint64_t v = 0;
    for (int k = nbytes - 1; k >= 0; --k) v = (v << 8) | b_[pos + static_cast<std::size_t>(k)];
    return v;
  }
  /// Checks that @p n bytes from @p pos lie in the buffer.
  /// @throws kinflow::model_file_error ("truncated file", naming @p where) otherwise
  void need(std::size_t pos, std::size_t n, std::string_view where) const {
    if (pos > b_.size() || n > b_.size() - pos)
      file_fail(file_, {}, "truncated file: " + std::string(where) + " at byte " +
                               std::to_string(pos) + " runs past the end of the file (" +
                               std::to_string(b_.size()) + " bytes)");
  }

private:
  const std::vector<unsigned char>& b_;
  const std::string& file_;
};

/// Parses one `.npy` payload (magic, header dict, data).
/// @param p, n  the payload and its size in bytes
/// @param file  the archive, for error messages
/// @param entry the entry name, for error messages
/// @return the array
/// @throws kinflow::model_file_error on a malformed header, an unsupported version or
///         dtype, or data that does not match the shape
[[nodiscard]] inline npy_array parse_npy(const unsigned char* p, std::size_t n,
                                         const std::string& file, const std::string& entry) {
  static constexpr unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (n < 10 || std::memcmp(p, magic, 6) != 0)
    file_fail(file, entry, "not an .npy array (no \\x93NUMPY magic)");
  const int major = p[6];
  std::size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = static_cast<std::size_t>(p[8]) | (static_cast<std::size_t>(p[9]) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (n < 12) file_fail(file, entry, "truncated .npy header");
    header_len = static_cast<std::size_t>(p[8]) | (static_cast<std::size_t>(p[9]) << 8) |
                 (static_cast<std::size_t>(p[10]) << 16) | (static_cast<std::size_t>(p[11]) << 24);
    start = 12;
  } else {
    file_fail(file, entry, "unsupported .npy format version " + std::to_string(major) +
                               " (supported: 1, 2, 3)");
  }
  if (header_len > n - start) file_fail(file, entry, "truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(p + start), header_len);

  const auto value_after = [&](const std::string& key) -> std::size_t {
    const auto k = header.find("'" + key + "'");
    if (k == std::string::npos) file_fail(file, entry, "malformed .npy header: no '" + key + "' in " + header);
    auto c = header.find(':', k);
    if (c == std::string::npos) file_fail(file, entry, "malformed .npy header: " + header);
    ++c;
    while (c < header.size() && header[c] == ' ') ++c;
    return c;
  };

  npy_array a;
  {  // descr: a quoted string (structured dtypes are lists and are rejected)
    const auto c = value_after("descr");
    if (c >= header.size() || (header[c] != '\'' && header[c] != '"'))
      file_fail(file, entry, "unsupported dtype (structured arrays are not supported): " + header);
    const auto e = header.find(header[c], c + 1);
    if (e == std::string::npos) file_fail(file, entry, "malformed .npy header: " + header);
    a.descr = header.substr(c + 1, e - c - 1);
  }
  {
    const auto c = value_after("fortran_order");
    if (header.compare(c, 4, "True") == 0) a.fortran_order = true;
    else if (header.compare(c, 5, "False") == 0) a.fortran_order = false;
    else file_fail(file, entry, "malformed .npy header (fortran_order): " + header);
  }
  {
    auto c = value_after("shape");
    if (c >= header.size() || header[c] != '(')
      file_fail(file, entry, "malformed .npy header (shape): " + header);
    const auto e = header.find(')', c);
    if (e == std::string::npos) file_fail(file, entry, "malformed .npy header (shape): " + header);
    std::string dims = header.substr(c + 1, e - c - 1);
    std::size_t q = 0;
    while (q < dims.size()) {
      while (q < dims.size() && (dims[q] == ' ' || dims[q] == ',')) ++q;
      if (q >= dims.size()) break;
      std::size_t r = q;
      while (r < dims.size() && dims[r] >= '0' && dims[r] <= '9') ++r;
      if (r == q || r - q > 15)
        file_fail(file, entry, "malformed .npy header (shape): " + header);
      a.shape.push_back(static_cast<Eigen::Index>(std::stoll(dims.substr(q, r - q))));
      q = r;
    }
  }

  const std::string& d = a.descr;
  const auto unsupported = [&] {
    file_fail(file, entry, "unsupported dtype '" + d +
                               "' (supported: <f4, <f8, |i1, <i2, <i4, <i8, |u1, <u2, <u4, "
                               "<u8, <U<n>)");
  };
  if (d == "<f4") { a.kind = 'f'; a.itemsize = 4; }
  else if (d == "<f8") { a.kind = 'f'; a.itemsize = 8; }
  else if (d == "|i1") { a.kind = 'i'; a.itemsize = 1; }
  else if (d == "<i2") { a.kind = 'i'; a.itemsize = 2; }
  else if (d == "<i4") { a.kind = 'i'; a.itemsize = 4; }
  else if (d == "<i8") { a.kind = 'i'; a.itemsize = 8; }
  else if (d == "|u1") { a.kind = 'u'; a.itemsize = 1; }
  else if (d == "<u2") { a.kind = 'u'; a.itemsize = 2; }
  else if (d == "<u4") { a.kind = 'u'; a.itemsize = 4; }
  else if (d == "<u8") { a.kind = 'u'; a.itemsize = 8; }
  else if (d.size() > 2 && d.compare(0, 2, "<U") == 0 &&
           d.find_first_not_of("0123456789", 2) == std::string::npos && d.size() < 8) {
    a.kind = 'U';
    a.itemsize = 4 * static_cast<std::size_t>(std::stoul(d.substr(2)));
    if (a.itemsize == 0) unsupported();
  } else {
    unsupported();
  }

  // The element count and byte size, refusing shapes whose product overflows (a corrupt
  // or hostile header must not wrap around to a small size).
  std::size_t count = 1;
  const std::size_t max_bytes = std::numeric_limits<std::size_t>::max() / 2;
  for (const auto dim : a.shape) {
    const auto u = static_cast<std::size_t>(dim);
    if (u != 0 && count > max_bytes / a.itemsize / u)
      file_fail(file, entry, "array shape " + a.shape_text() + " is too large for memory");
    count *= u;
  }
  const std::size_t data_bytes = count * a.itemsize;
  const std::size_t have = n - start - header_len;
  if (have < data_bytes)
    file_fail(file, entry, "truncated array data: shape " + a.shape_text() + " of " + d +
                               " needs " + std::to_string(data_bytes) + " bytes, the entry holds " +
                               std::to_string(have));
  if (have > data_bytes)
    file_fail(file, entry, "array data has " + std::to_string(have - data_bytes) +
                               " bytes beyond its shape " + a.shape_text());
  a.bytes.assign(p + start + header_len, p + start + header_len + data_bytes);
  return a;
}

}  // namespace detail

/// The arrays of an `.npz` file, by name (the entry name without its `.npy` suffix).
///
///     kinflow::npz_archive npz("model.npz");
///     const kinflow::npy_array& w = npz.at("layers.0.weight");
class npz_archive {
public:
  /// Reads every array of @p path.
  /// @param path the `.npz` file
  /// @throws kinflow::model_file_error (naming the file) when the file is missing,
  ///         unreadable, not a ZIP archive, truncated, holds compressed or encrypted
  ///         entries, fails its CRC check, or holds an unsupported array
  explicit npz_archive(const std::string& path) : path_(path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec)) detail::file_fail(path, {}, "no such file");
    if (fs::is_directory(path, ec)) detail::file_fail(path, {}, "is a directory, not an .npz file");
    std::ifstream in(path, std::ios::binary);
    if (!in) detail::file_fail(path, {}, "cannot open the file for reading");
    const std::vector<unsigned char> b((std::istreambuf_iterator<char>(in)),
                                       std::istreambuf_iterator<char>());
    if (in.bad()) detail::file_fail(path, {}, "read error");
    parse(b);
  }

  /// Reads every array of an `.npz` file held in memory, @p bytes; @p name stands for the
  /// file in error messages (and is what path() returns).
  /// @throws kinflow::model_file_error as the constructor from a path does
  [[nodiscard]] static npz_archive from_bytes(const std::vector<unsigned char>& bytes,
                                              const std::string& name = "<memory>") {
    npz_archive a;
    a.path_ = name;
    a.parse(bytes);
    return a;
  }

  /// The file this archive was read from.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// True when the archive holds an array called @p name.
  [[nodiscard]] bool contains(const std::string& name) const { return arrays_.count(name) != 0; }

  /// The array called @p name.
  /// @throws kinflow::model_file_error naming the file, the missing array and the arrays
  ///         present, when there is no such array
  [[nodiscard]] const npy_array& at(const std::string& name) const {
    const auto it = arrays_.find(name);
    if (it == arrays_.end()) {
      std::string present;
      for (const auto& [k, v] : arrays_) present += (present.empty() ? "" : ", ") + k;
      detail::file_fail(path_, {}, "no array '" + name + "' (the file holds: " +
                                       (present.empty() ? std::string("nothing") : present) + ")");
    }
    return it->second;
  }

  /// All arrays, by name.
  [[nodiscard]] const std::map<std::string, npy_array>& arrays() const noexcept { return arrays_; }

private:
  npz_archive() = default;

  void parse(const std::vector<unsigned char>& b) {
    static_assert(std::endian::native == std::endian::little,
                  "kinflow's .npz reader assumes a little-endian machine");
    const detail::byte_reader r(b, path_);
    // End of central directory: 22 bytes plus a comment of up to 65535 bytes, at the end.
    if (b.size() < 22)
      detail::file_fail(path_, {}, "not an .npz (ZIP) file: only " + std::to_string(b.size()) +
                                       " bytes (truncated?)");
    std::size_t eocd = std::string::npos;
    const std::size_t lowest = b.size() > 22 + 65535 ? b.size() - 22 - 65535 : 0;
    for (std::size_t p = b.size() - 22 + 1; p-- > lowest;) {
      if (r.le(p, 4, "end record") == 0x06054b50U) { eocd = p; break; }
    }
    if (eocd == std::string::npos)
      detail::file_fail(path_, {}, "not an .npz (ZIP) file, or truncated: no end-of-central-directory record");
    std::uint64_t entries = r.le(eocd + 10, 2, "end record");
    std::uint64_t cd_size = r.le(eocd + 12, 4, "end record");
    std::uint64_t cd_offset = r.le(eocd + 16, 4, "end record");
    if (entries == 0xFFFFU || cd_size == 0xFFFFFFFFU || cd_offset == 0xFFFFFFFFU) {
      // Zip64: a locator 20 bytes before the end record points at the Zip64 end record.
      if (eocd < 20 || r.le(eocd - 20, 4, "Zip64 locator") != 0x07064b50U)
        detail::file_fail(path_, {}, "corrupt ZIP: Zip64 end-of-central-directory locator missing");
      const std::uint64_t z = r.le(eocd - 20 + 8, 8, "Zip64 locator");
      if (z > b.size() || r.le(static_cast<std::size_t>(z), 4, "Zip64 end record") != 0x06064b50U)
        detail::file_fail(path_, {}, "corrupt ZIP: bad Zip64 end-of-central-directory record");
      entries = r.le(static_cast<std::size_t>(z) + 32, 8, "Zip64 end record");
      cd_size = r.le(static_cast<std::size_t>(z) + 40, 8, "Zip64 end record");
      cd_offset = r.le(static_cast<std::size_t>(z) + 48, 8, "Zip64 end record");
    }
    if (cd_offset > b.size() || cd_size > b.size() - cd_offset)
      detail::file_fail(path_, {}, "truncated or corrupt ZIP: the central directory lies outside the file");

    std::size_t p = static_cast<std::size_t>(cd_offset);
    for (std::uint64_t e = 0; e < entries; ++e) {
      if (r.le(p, 4, "central directory") != 0x02014b50U)
        detail::file_fail(path_, {}, "corrupt ZIP: bad central directory header at byte " + std::to_string(p));
      const auto flags = r.le(p + 8, 2, "central directory");
      const auto method = r.le(p + 10, 2, "central directory");
      const auto crc = static_cast<std::uint32_t>(r.le(p + 16, 4, "central directory"));
      std::uint64_t csize = r.le(p + 20, 4, "central directory");
      std::uint64_t usize = r.le(p + 24, 4, "central directory");
      const auto name_len = static_cast<std::size_t>(r.le(p + 28, 2, "central directory"));
      const auto extra_len = static_cast<std::size_t>(r.le(p + 30, 2, "central directory"));
      const auto comment_len = static_cast<std::size_t>(r.le(p + 32, 2, "central directory"));
      std::uint64_t offset = r.le(p + 42, 4, "central directory");
      r.need(p + 46, name_len + extra_len + comment_len, "central directory");
      std::string name(reinterpret_cast<const char*>(b.data() + p + 46), name_len);
      // Zip64 extended information (id 0x0001): the 64-bit values of the saturated fields.
      for (std::size_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
        const auto id = r.le(x, 2, "extra field");
        const auto len = static_cast<std::size_t>(r.le(x + 2, 2, "extra field"));
        if (id == 0x0001U) {
          std::size_t q = x + 4;
          if (usize == 0xFFFFFFFFU) { usize = r.le(q, 8, "Zip64 extra field"); q += 8; }
          if (csize == 0xFFFFFFFFU) { csize = r.le(q, 8, "Zip64 extra field"); q += 8; }
          if (offset == 0xFFFFFFFFU) { offset = r.le(q, 8, "Zip64 extra field"); q += 8; }
        }
        x += 4 + len;
      }
      p += 46 + name_len + extra_len + comment_len;

      if (flags & 1U) detail::file_fail(path_, name, "encrypted entries are not supported");
      if (method != 0)
        detail::file_fail(path_, name,
                          "compressed entry (ZIP method " + std::to_string(method) +
                              (method == 8 ? ", deflate" : "") +
                              "); only stored entries are supported: write the file with "
                              "numpy.savez, not numpy.savez_compressed");
      if (csize != usize)
        detail::file_fail(path_, name, "corrupt ZIP: stored entry with compressed size " +
                                           std::to_string(csize) + " != size " + std::to_string(usize));
      if (offset > b.size() || r.le(static_cast<std::size_t>(offset), 4, "local header") != 0x04034b50U)
        detail::file_fail(path_, name, "truncated or corrupt ZIP: no local file header at byte " +
                                           std::to_string(offset));
      const auto lname = static_cast<std::size_t>(r.le(static_cast<std::size_t>(offset) + 26, 2, "local header"));
      const auto lextra = static_cast<std::size_t>(r.le(static_cast<std::size_t>(offset) + 28, 2, "local header"));
      const std::size_t data = static_cast<std::size_t>(offset) + 30 + lname + lextra;
      if (data > b.size() || usize > b.size() - data)
        detail::file_fail(path_, name, "truncated file: the entry's " + std::to_string(usize) +
                                           " bytes run past the end of the file");
      const auto n = static_cast<std::size_t>(usize);
      if (detail::crc32(b.data() + data, n) != crc)
        detail::file_fail(path_, name, "corrupt data: CRC-32 mismatch");
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
      arrays_[name] = detail::parse_npy(b.data() + data, n, path_, name);
    }
  }

  std::string path_;
  std::map<std::string, npy_array> arrays_;
};

}  // namespace kinflow
