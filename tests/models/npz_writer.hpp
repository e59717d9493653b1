#pragma once
// A minimal writer of .npz files (stored ZIP entries holding .npy v1/v2 arrays) for the
// model tests: it builds well-formed archives and deliberately broken ones (wrong method,
// odd dtypes, short data) without needing numpy at test time. Files go to a private
// temporary directory removed at exit.

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kinflow/models/npz.hpp"

namespace kinflow_test {

using bytes = std::vector<unsigned char>;

struct npz_entry {
  std::string name;         // without ".npy"
  std::string descr;        // e.g. "<f8"
  std::string shape;        // Python tuple text, e.g. "(2, 3)" or "(4,)" or "()"
  bytes data;               // raw element bytes
  bool fortran = false;
  int npy_version = 1;
};

inline bytes f8(const std::vector<double>& v) {
  bytes b(v.size() * 8);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline bytes f4(const std::vector<float>& v) {
  bytes b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline bytes ascii(const std::string& s) { return bytes(s.begin(), s.end()); }

inline npz_entry text_entry(const std::string& name, const std::string& s) {
  // (Built by append: GCC 12 reports a false -Wrestrict for "literal" + std::string&&.)
  std::string shape = "(";
  shape.append(std::to_string(s.size())).append(",)");
  return {name, "|u1", shape, ascii(s)};
}

inline bytes npy_bytes(const npz_entry& e) {
  std::string header = "{'descr': '" + e.descr + "', 'fortran_order': " +
                       (e.fortran ? "True" : "False") + ", 'shape': " + e.shape + ", }";
  const std::size_t prefix = e.npy_version == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  bytes b = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(e.npy_version), 0};
  const std::size_t n = header.size();
  b.push_back(static_cast<unsigned char>(n & 0xFF));
  b.push_back(static_cast<unsigned char>((n >> 8) & 0xFF));
  if (e.npy_version != 1) {
    b.push_back(static_cast<unsigned char>((n >> 16) & 0xFF));
    b.push_back(static_cast<unsigned char>((n >> 24) & 0xFF));
  }
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), e.data.begin(), e.data.end());
  return b;
}

inline void put(bytes& b, std::uint64_t v, int n) {
  for (int k = 0; k < n; ++k) b.push_back(static_cast<unsigned char>((v >> (8 * k)) & 0xFF));
}

// A ZIP of stored entries holding the given bytes under the given names (".npy" added);
// `method` is written into every header as given (a non-zero value makes the entries claim
// to be compressed). The fuzz targets use it too (tests/fuzz/).
inline bytes zip_of_payloads(const std::vector<std::pair<std::string, bytes>>& entries, std::uint16_t method = 0) {
  bytes out, central;
  for (const auto& [stem, payload] : entries) {
    const std::string name = stem + ".npy";
    const std::uint32_t crc = kinflow::detail::crc32(payload.data(), payload.size());
    const std::size_t offset = out.size();
    put(out, 0x04034b50, 4); put(out, 20, 2); put(out, 0, 2); put(out, method, 2);
    put(out, 0, 4); put(out, crc, 4); put(out, payload.size(), 4); put(out, payload.size(), 4);
    put(out, name.size(), 2); put(out, 0, 2);
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), payload.begin(), payload.end());
    put(central, 0x02014b50, 4); put(central, 20, 2); put(central, 20, 2); put(central, 0, 2);
    put(central, method, 2); put(central, 0, 4); put(central, crc, 4);
    put(central, payload.size(), 4); put(central, payload.size(), 4);
    put(central, name.size(), 2); put(central, 0, 2); put(central, 0, 2); put(central, 0, 2);
    put(central, 0, 2); put(central, 0, 4); put(central, offset, 4);
    central.insert(central.end(), name.begin(), name.end());
  }
  const std::size_t cd_offset = out.size();
  out.insert(out.end(), central.begin(), central.end());
  put(out, 0x06054b50, 4); put(out, 0, 2); put(out, 0, 2);
  put(out, entries.size(), 2); put(out, entries.size(), 2);
  put(out, central.size(), 4); put(out, cd_offset, 4); put(out, 0, 2);
  return out;
}

// A ZIP of stored .npy entries built from their descriptions (see zip_of_payloads).
inline bytes zip_stored(const std::vector<npz_entry>& entries, std::uint16_t method = 0) {
  std::vector<std::pair<std::string, bytes>> payloads;
  for (const auto& e : entries) payloads.emplace_back(e.name, npy_bytes(e));
  return zip_of_payloads(payloads, method);
}

// A private scratch directory, removed when the process ends.
class scratch_dir {
public:
  scratch_dir() {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() /
           ("kinflow-models-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(dir_);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  std::string write(const std::string& name, const bytes& b) const {
    const auto p = dir_ / name;
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                             static_cast<std::streamsize>(b.size()));
    return p.string();
  }

private:
  std::filesystem::path dir_;
};

inline scratch_dir& scratch() {
  static scratch_dir d;
  return d;
}

// examples/models/ of the source tree, found from this file's path.
inline std::filesystem::path models_dir() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "examples" /
         "models";
}

inline bytes read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace kinflow_test
