#pragma once
/// @file
/// @brief A self-contained gzip decoder (RFC 1952 members holding RFC 1951 deflate data),
/// so that kinflow reads compressed data files (the IDX files of Fashion-MNIST as Debian
/// ships them, kinflow/data/idx.hpp) without a compression library.
///
/// Every malformed input — a bad header, an invalid Huffman code, a back-reference before
/// the start of the output, a truncated stream, a CRC-32 or length that disagrees with the
/// trailer — throws kinflow::model_file_error naming the source and what is wrong. The
/// output never grows past what the caller asks for (gunzip's `limit`), and a deflate
/// stream cannot expand more than 1032-fold, so no input makes it allocate without bound.

#include "kinflow/core/errors.hpp"
#include "kinflow/detail/crc32.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace kinflow {

/// True when @p size bytes at @p data start with the gzip magic bytes 0x1f 0x8b.
[[nodiscard]] inline bool is_gzip(const unsigned char* data, std::size_t size) noexcept {
  return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

namespace detail {

/// The state of one gzip decode: the input, its bit buffer (deflate packs bits from the
/// least significant end of each byte) and the output.
class inflater {
public:
  inflater(const unsigned char* data, std::size_t size, std::string source, std::size_t limit)
      : in_(data), size_(size), source_(std::move(source)), limit_(limit) {}

  /// Decodes every member (gzip allows several back to back) until the input ends or the
  /// output holds `limit` bytes.
  std::vector<unsigned char> run() {
    if (size_ >= 18) {  // the last member's length, a hint only: a lie costs a bounded reserve
      const std::size_t hint = in_[size_ - 4] | in_[size_ - 3] << 8 | in_[size_ - 2] << 16 |
                               static_cast<std::size_t>(in_[size_ - 1]) << 24;
      out_.reserve(std::min({hint, limit_, size_ * 1032}));
    }
    do {
      member();
    } while (out_.size() < limit_ && (drop_to_byte(), pos_ < size_));
    if (out_.size() > limit_) out_.resize(limit_);
    return std::move(out_);
  }

private:
  // A canonical Huffman code: the number of codes of each length, the symbols in code
  // order, and a table of the codes of up to fast_bits bits indexed by the next input bits
  // (entry: length << 9 | symbol; 0 when a longer code starts with those bits).
  static constexpr int max_bits = 15, fast_bits = 9;
  struct huffman {
    std::array<std::uint16_t, max_bits + 1> count{};
    std::array<std::uint16_t, 288> symbol{};
    std::array<std::uint16_t, 1u << fast_bits> fast{};
  };

  [[noreturn]] void fail(const std::string& what) const { file_fail(source_, "", "gzip data: " + what); }

  void refill() {
    while (bit_count_ <= 56 && pos_ < size_) {
      bit_buffer_ |= static_cast<std::uint64_t>(in_[pos_++]) << bit_count_;
      bit_count_ += 8;
    }
  }
  std::uint32_t bits(int n) {
    if (bit_count_ < n) refill();
    if (bit_count_ < n) fail("truncated (the compressed stream ends early)");
    const auto v = static_cast<std::uint32_t>(bit_buffer_ & ((std::uint64_t{1} << n) - 1));
    bit_buffer_ >>= n;
    bit_count_ -= n;
    return v;
  }
  // Drops the bits left in the current byte and hands whole buffered bytes back to the input.
  void drop_to_byte() {
    pos_ -= static_cast<std::size_t>(bit_count_ / 8);
    bit_buffer_ = 0;
    bit_count_ = 0;
  }
  unsigned byte() {
    if (pos_ >= size_) fail("truncated (the gzip header or trailer ends early)");
    return in_[pos_++];
  }
  std::uint32_t le32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(byte()) << (8 * i);
    return v;
  }

  void member() {
    if (!is_gzip(in_ + pos_, size_ - pos_)) fail("not a gzip member (expected the magic bytes 1f 8b)");
    pos_ += 2;
    if (byte() != 8) fail("compression method is not deflate (8)");
    const unsigned flags = byte();
    if (flags & 0xe0u) fail("reserved header flags are set");
    for (int i = 0; i < 6; ++i) (void)byte();  // time, extra flags, operating system
    if (flags & 4u) {  // FEXTRA: a length and that many bytes
      const unsigned n = byte() | (byte() << 8);
      for (unsigned i = 0; i < n; ++i) (void)byte();
    }
    for (unsigned mask : {8u, 16u})  // FNAME, FCOMMENT: zero-terminated
      if (flags & mask)
        while (byte() != 0) {
        }
    if (flags & 2u) (void)(byte() | byte());  // FHCRC
    const std::size_t start = out_.size();
    bool last = false;
    while (!last && out_.size() < limit_) {
      last = bits(1) == 1;
      switch (bits(2)) {
        case 0: stored(); break;
        case 1: fixed(); break;
        case 2: dynamic(); break;
        default: fail("invalid deflate block type 3");
      }
    }
    if (out_.size() >= limit_) return;  // the caller has what it asked for
    drop_to_byte();
    const std::uint32_t crc = le32(), length = le32();
    if (crc != crc32(out_.data() + start, out_.size() - start))
      fail("CRC-32 mismatch (the data is corrupt)");
    if (length != static_cast<std::uint32_t>(out_.size() - start))
      fail("length mismatch (the trailer says " + std::to_string(length) + " bytes, the stream holds " +
           std::to_string(out_.size() - start) + ")");
  }

  void stored() {
    drop_to_byte();
    const unsigned len = byte() | (byte() << 8), nlen = byte() | (byte() << 8);
    if (len != (~nlen & 0xffffu)) fail("stored block length and its complement disagree");
    if (size_ - pos_ < len) fail("truncated (a stored block ends early)");
    out_.insert(out_.end(), in_ + pos_, in_ + pos_ + len);
    pos_ += len;
  }

  // Builds @p h from the code lengths; a code must be complete, except one of a single
  // symbol (RFC 1951 allows one distance code of one bit). Returns what is wrong, or null.
  static const char* build(huffman& h, const std::uint8_t* lengths, int n) {
    h.count.fill(0);
    h.fast.fill(0);
    for (int s = 0; s < n; ++s) ++h.count[lengths[s]];
    if (h.count[0] == n) return nullptr;  // no codes: any use of it fails in decode()
    int left = 1;
    for (int len = 1; len <= max_bits; ++len) {
      left = 2 * left - h.count[len];
      if (left < 0) return "over-subscribed";
    }
    if (left > 0 && !(n - h.count[0] == 1 && h.count[1] == 1)) return "incomplete";
    std::array<std::uint16_t, max_bits + 2> offset{};
    for (int len = 1; len <= max_bits; ++len) offset[len + 1] = static_cast<std::uint16_t>(offset[len] + h.count[len]);
    for (int s = 0; s < n; ++s)
      if (lengths[s] != 0) h.symbol[offset[lengths[s]]++] = static_cast<std::uint16_t>(s);
    // The codes of each length are consecutive integers, sent most significant bit first.
    unsigned code = 0, index = 0;
    for (unsigned len = 1; len <= static_cast<unsigned>(fast_bits); ++len) {
      for (unsigned k = 0; k < h.count[len]; ++k, ++code, ++index) {
        unsigned reversed = 0;
        for (unsigned b = 0; b < len; ++b) reversed |= ((code >> b) & 1u) << (len - 1 - b);
        for (unsigned fill = reversed; fill < (1u << fast_bits); fill += 1u << len)
          h.fast[fill] = static_cast<std::uint16_t>(len << 9 | h.symbol[index]);
      }
      code <<= 1;
    }
    return nullptr;
  }
  void build_or_fail(huffman& h, const std::uint8_t* lengths, int n, const char* what) {
    if (const char* error = build(h, lengths, n)) fail(std::string(error) + " " + what + " Huffman code");
  }

  int decode(const huffman& h) {
    if (bit_count_ < fast_bits) refill();
    const unsigned entry = h.fast[bit_buffer_ & ((1u << fast_bits) - 1)];
    if (entry != 0 && static_cast<int>(entry >> 9) <= bit_count_) {
      bit_buffer_ >>= entry >> 9;
      bit_count_ -= static_cast<int>(entry >> 9);
      return static_cast<int>(entry & 511u);
    }
    int code = 0, first = 0, index = 0;  // a long code (or the end of the input): bit by bit
    for (int len = 1; len <= max_bits; ++len) {
      code |= static_cast<int>(bits(1));
      const int count = h.count[len];
      if (code - count < first) return h.symbol[index + (code - first)];
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    fail("invalid Huffman code");
  }

  void codes(const huffman& lit, const huffman& dist) {
    static constexpr std::uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                                   31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static constexpr std::uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                   2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static constexpr std::uint16_t dist_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                                    33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
    static constexpr std::uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                                    6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
    while (out_.size() < limit_) {
      const int symbol = decode(lit);
      if (symbol < 256) {
        out_.push_back(static_cast<unsigned char>(symbol));
        continue;
      }
      if (symbol == 256) return;
      if (symbol > 285) fail("invalid length symbol " + std::to_string(symbol));
      const std::size_t length = len_base[symbol - 257] + bits(len_extra[symbol - 257]);
      const int d = decode(dist);
      if (d > 29) fail("invalid distance symbol " + std::to_string(d));
      const std::size_t distance = dist_base[d] + bits(dist_extra[d]);
      if (distance > out_.size()) fail("a back-reference reaches before the start of the data");
      for (std::size_t i = 0; i < length; ++i) {
        const unsigned char c = out_[out_.size() - distance];
        out_.push_back(c);
      }
    }
  }

  void fixed() {
    static const std::array<huffman, 2> tables = [] {
      std::array<std::uint8_t, 288> l{};
      std::array<huffman, 2> t;
      for (int s = 0; s < 288; ++s) l[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
      (void)build(t[0], l.data(), 288);
      l.fill(5);
      // 32 five-bit codes keep the code complete; symbols 30 and 31 are rejected in codes().
      (void)build(t[1], l.data(), 32);
      return t;
    }();
    codes(tables[0], tables[1]);
  }

  void dynamic() {
    const int nlen = static_cast<int>(bits(5)) + 257, ndist = static_cast<int>(bits(5)) + 1,
              ncode = static_cast<int>(bits(4)) + 4;
    if (nlen > 286 || ndist > 30) fail("too many literal/length or distance codes");
    static constexpr std::uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    std::array<std::uint8_t, 320> lengths{};
    for (int i = 0; i < ncode; ++i) lengths[order[i]] = static_cast<std::uint8_t>(bits(3));
    huffman lencode, lit, dist;
    build_or_fail(lencode, lengths.data(), 19, "code-length");
    if (lencode.count[0] == 19) fail("empty code-length Huffman code");
    lengths.fill(0);
    for (int i = 0; i < nlen + ndist;) {
      int symbol = decode(lencode);
      if (symbol < 16) {
        lengths[i++] = static_cast<std::uint8_t>(symbol);
        continue;
      }
      std::uint8_t value = 0;
      int repeat = 0;
      if (symbol == 16) {
        if (i == 0) fail("a repeated code length with no previous length");
        value = lengths[i - 1];
        repeat = 3 + static_cast<int>(bits(2));
      } else {
        repeat = symbol == 17 ? 3 + static_cast<int>(bits(3)) : 11 + static_cast<int>(bits(7));
      }
      if (i + repeat > nlen + ndist) fail("code lengths run past the number of codes");
      while (repeat-- > 0) lengths[i++] = value;
    }
    if (lengths[256] == 0) fail("no end-of-block code");
    build_or_fail(lit, lengths.data(), nlen, "literal/length");
    build_or_fail(dist, lengths.data() + nlen, ndist, "distance");
    codes(lit, dist);
  }

  const unsigned char* in_;
  std::size_t size_, pos_ = 0;
  std::string source_;
  std::size_t limit_;
  std::uint64_t bit_buffer_ = 0;
  int bit_count_ = 0;
  std::vector<unsigned char> out_;
};

}  // namespace detail

/// Decompresses the gzip data of @p size bytes at @p data (one member or several back to
/// back), stopping once the output holds @p limit bytes: a prefix costs only its share of
/// the work. The CRC-32 and length of each member are checked when it is decoded to its end.
/// @param data   the gzip data
/// @param size   its length in bytes
/// @param source the file's name in error messages
/// @param limit  the most bytes wanted (the default: all)
/// @return the decompressed bytes (at most @p limit)
/// @throws kinflow::model_file_error "kinflow: <source>: gzip data: <what is wrong>" for
///   malformed or truncated data.
[[nodiscard]] inline std::vector<unsigned char> gunzip(const unsigned char* data, std::size_t size,
                                                       const std::string& source,
                                                       std::size_t limit = std::numeric_limits<std::size_t>::max()) {
  return detail::inflater(data, size, source, limit).run();
}

}  // namespace kinflow
