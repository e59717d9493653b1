#pragma once
/// @file
/// @brief CRC-32 (ISO-HDLC, polynomial 0xEDB88320 reflected), the checksum of ZIP archives
/// (kinflow/models/npz.hpp) and gzip members (kinflow/data/gzip.hpp).

#include <array>
#include <cstddef>
#include <cstdint>

namespace kinflow::detail {

/// CRC-32 (ISO-HDLC, polynomial 0xEDB88320 reflected), as ZIP and gzip store it.
/// @param data the bytes
/// @param n    number of bytes
/// @param crc  the CRC of the bytes before @p data, to continue a running checksum
/// @return the CRC-32 of the bytes so far
[[nodiscard]] inline std::uint32_t crc32(const unsigned char* data, std::size_t n,
                                         std::uint32_t crc = 0) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFFU] ^ (crc >> 8);
  return ~crc;
}

}  // namespace kinflow::detail
