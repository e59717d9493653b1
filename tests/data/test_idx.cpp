// Tests of kinflow::read_idx / parse_idx and the gzip decoder under them: IDX files written
// byte by byte here and compared element by element; gzip data made by the `gzip` command
// (always present on Debian) against the plain bytes it compressed; every malformed case
// named in its error; the Fashion-MNIST files of Debian's dataset-fashion-mnist when present.
#include "kinflow_catch.hpp"

#include <kinflow/data/idx.hpp>

#include <Eigen/Core>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

using bytes = std::vector<unsigned char>;

void put_be32(bytes& b, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<unsigned char>(v >> shift));
}

// The header of an IDX file of element type @p type and @p shape.
bytes header(unsigned type, const std::vector<std::uint32_t>& shape) {
  bytes b{0, 0, static_cast<unsigned char>(type), static_cast<unsigned char>(shape.size())};
  for (auto n : shape) put_be32(b, n);
  return b;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("kinflow_test_idx_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "_" +
          name);
}

void write_file(const std::filesystem::path& path, const bytes& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

bytes read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// @p plain compressed by the gzip command with @p flags.
bytes gzip_of(const bytes& plain, const std::string& flags = "") {
  const auto in = temp_path("plain"), out = temp_path("plain.gz");
  write_file(in, plain);
  const std::string cmd = "gzip -c -n " + flags + " '" + in.string() + "' > '" + out.string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  bytes z = read_file(out);
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  return z;
}

kinflow::idx_array parse(const bytes& b, std::size_t max_items = kinflow::idx_all) {
  return kinflow::parse_idx(b.data(), b.size(), "test.idx", max_items);
}

// The message of the model_file_error that parsing @p b throws (fails the test if none).
std::string parse_error(const bytes& b, std::size_t max_items = kinflow::idx_all) {
  try {
    (void)parse(b, max_items);
  } catch (const kinflow::model_file_error& e) {
    return e.what();
  }
  FAIL("no model_file_error");
  return "";
}

// Fashion-MNIST-like images: [n, 28, 28] unsigned bytes of a pattern that compresses well
// but not trivially (dynamic Huffman blocks).
bytes images(std::uint32_t n) {
  bytes b = header(0x08, {n, 28, 28});
  std::mt19937 engine(7);
  for (std::uint32_t k = 0; k < n; ++k)
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c)
        b.push_back(static_cast<unsigned char>((r - 14) * (r - 14) + (c - 14) * (c - 14) < 40 + static_cast<int>(k % 50)
                                                   ? 128 + engine() % 128
                                                   : 0));
  return b;
}

}  // namespace

TEST_CASE("unsigned-byte images: shape, elements and the d x N layout", "[idx]") {
  bytes b = header(0x08, {3, 2, 4});
  for (int v = 0; v < 24; ++v) b.push_back(static_cast<unsigned char>(10 * v + 5));
  const kinflow::idx_array a = parse(b);
  CHECK(a.type == kinflow::idx_type::u8);
  CHECK(a.shape == std::vector<std::uint32_t>{3, 2, 4});
  CHECK(a.items() == 3);
  CHECK(a.item_elements() == 8);
  for (std::size_t i = 0; i < 24; ++i) CHECK(a.element(i) == 10.0 * static_cast<double>(i) + 5);
  // Item k is column k; its 2 x 4 elements in row-major order down the column.
  const Eigen::MatrixXd raw = a.points(), unit = a.points(255);
  REQUIRE(raw.rows() == 8);
  REQUIRE(raw.cols() == 3);
  for (Eigen::Index k = 0; k < 3; ++k)
    for (Eigen::Index r = 0; r < 2; ++r)
      for (Eigen::Index c = 0; c < 4; ++c) {
        const double byte = b[static_cast<std::size_t>(16 + 8 * k + 4 * r + c)];
        CHECK(raw(4 * r + c, k) == byte);
        CHECK(unit(4 * r + c, k) == byte / 255);
      }
  CHECK_THROWS_WITH(a.points(0), Catch::Contains("divisor"));
  const Eigen::MatrixXf single = a.points<float>(255);
  CHECK(single(7, 2) == static_cast<float>(235.0 / 255));
}

TEST_CASE("every element type, big-endian in the file", "[idx]") {
  SECTION("signed bytes") {
    bytes b = header(0x09, {4});
    for (unsigned char v : {0x00, 0x7f, 0x80, 0xff}) b.push_back(v);
    const auto a = parse(b);
    CHECK(a.labels() == std::vector<long long>{0, 127, -128, -1});
  }
  SECTION("int16") {
    bytes b = header(0x0B, {2});
    for (unsigned char v : {0x12, 0x34, 0xff, 0xfe}) b.push_back(v);
    const auto a = parse(b);
    CHECK(a.element(0) == 0x1234);
    CHECK(a.element(1) == -2);
  }
  SECTION("int32") {
    bytes b = header(0x0C, {2, 1});
    put_be32(b, 0x01020304u);
    put_be32(b, 0x80000000u);
    const auto a = parse(b);
    CHECK(a.element(0) == 16909060.0);
    CHECK(a.element(1) == -2147483648.0);
  }
  SECTION("float32 and float64") {
    bytes f = header(0x0D, {1});
    put_be32(f, 0x3fc00000u);  // 1.5 in IEEE single precision
    CHECK(parse(f).element(0) == 1.5);
    bytes d = header(0x0E, {1});
    put_be32(d, 0xc0090000u);  // -3.125 in IEEE double precision: the high word, then 0
    put_be32(d, 0);
    CHECK(parse(d).element(0) == -3.125);
    bytes nan = header(0x0D, {1, 1});
    put_be32(nan, 0x7fc00000u);
    const auto a = parse(nan);
    CHECK_THROWS_WITH(a.points(), Catch::Contains("not finite"));
  }
}

TEST_CASE("max_items keeps the first items; more than the file holds is an error", "[idx]") {
  bytes b = header(0x08, {5, 3});
  for (int v = 0; v < 15; ++v) b.push_back(static_cast<unsigned char>(v));
  for (const bytes& file : {b, gzip_of(b)}) {
    const auto a = parse(file, 2);
    CHECK(a.shape == std::vector<std::uint32_t>{2, 3});
    REQUIRE(a.bytes.size() == 6);
    for (std::size_t i = 0; i < 6; ++i) CHECK(a.element(i) == static_cast<double>(i));
    CHECK(parse(file, 5).bytes.size() == 15);
    CHECK_THAT(parse_error(file, 6), Catch::Contains("test.idx") && Catch::Contains("asked for 6 items") &&
                                         Catch::Contains("holds 5"));
  }
  CHECK_THROWS_AS(parse(b, 0), kinflow::invalid_argument);
}

TEST_CASE("gzip data from the gzip command decodes to the bytes it compressed", "[idx][gzip]") {
  SECTION("images: dynamic Huffman blocks, at every compression level") {
    const bytes plain = images(300);
    for (const char* level : {"-1", "-6", "-9"}) {
      const bytes z = gzip_of(plain, level);
      REQUIRE(z.size() < plain.size() / 2);
      CHECK(kinflow::gunzip(z.data(), z.size(), "z") == plain);
      const auto a = parse(z), direct = parse(plain);
      CHECK(a.shape == direct.shape);
      CHECK(a.bytes == direct.bytes);
    }
  }
  SECTION("random bytes: stored blocks") {
    std::mt19937 engine(3);
    bytes plain = header(0x08, {70000});
    for (int i = 0; i < 70000; ++i) plain.push_back(static_cast<unsigned char>(engine()));
    const bytes z = gzip_of(plain);
    CHECK(z.size() > plain.size());  // incompressible: stored
    CHECK(parse(z).bytes == bytes(plain.begin() + 8, plain.end()));
  }
  SECTION("a short file: fixed Huffman codes; two members back to back") {
    const bytes a = header(0x08, {2}), b{7, 9};
    bytes plain = a;
    plain.insert(plain.end(), b.begin(), b.end());
    bytes z = gzip_of(a);
    const bytes zb = gzip_of(b);
    z.insert(z.end(), zb.begin(), zb.end());
    CHECK(kinflow::gunzip(z.data(), z.size(), "z") == plain);
    CHECK(parse(z).labels() == std::vector<long long>{7, 9});
  }
}

TEST_CASE("malformed IDX files: one error naming the file and the problem", "[idx]") {
  bytes good = header(0x08, {2, 2});
  for (unsigned char v : {1, 2, 3, 4}) good.push_back(v);
  REQUIRE(parse(good).bytes.size() == 4);
  auto with = [](bytes b, std::size_t at, unsigned char v) {
    b[at] = v;
    return b;
  };
  CHECK_THAT(parse_error(bytes{}), Catch::Contains("test.idx") && Catch::Contains("shorter than its magic"));
  CHECK_THAT(parse_error(with(good, 0, 1)), Catch::Contains("not an IDX file: magic number 0x01000802"));
  CHECK_THAT(parse_error(with(good, 2, 0x0A)), Catch::Contains("magic number 0x00000A02"));
  CHECK_THAT(parse_error(with(good, 3, 0)), Catch::Contains("magic number"));
  CHECK_THAT(parse_error(bytes(good.begin(), good.begin() + 10)),
             Catch::Contains("truncated: the header of 2 dimensions needs 12 bytes"));
  CHECK_THAT(parse_error(bytes(good.begin(), good.end() - 1)),
             Catch::Contains("truncated: the header declares 4 bytes") && Catch::Contains("holds 3"));
  bytes longer = good;
  longer.push_back(0);
  CHECK_THAT(parse_error(longer), Catch::Contains("oversized: 1 bytes after the 4 bytes"));
  // Sizes whose product overflows 64 bits, or exceeds 4 GiB: rejected before any allocation.
  CHECK_THAT(parse_error(header(0x0E, {0xffffffffu, 0xffffffffu, 0xffffffffu})), Catch::Contains("sizes too large"));
  CHECK_THAT(parse_error(header(0x08, {65536, 65537})), Catch::Contains("sizes too large"));
  CHECK_THAT(parse_error(header(0x08, {1, 65536, 65537})), Catch::Contains("sizes too large"));
  // A zero size past the first would make a huge count of empty items.
  CHECK_THAT(parse_error(header(0x0D, {0x23000c40u, 0})), Catch::Contains("dimension 1 is 0"));
  CHECK(parse(header(0x08, {0, 28, 28})).points().cols() == 0);  // no items: an empty set
  CHECK_THROWS_AS(parse(good).labels(), kinflow::model_file_error);
  CHECK_THAT(parse_error(gzip_of(longer)), Catch::Contains("oversized"));
  CHECK_THROWS_WITH(kinflow::read_idx(temp_path("missing.idx")), Catch::Contains("cannot be opened"));
}

TEST_CASE("malformed gzip data: truncated, corrupt, bad header", "[idx][gzip]") {
  const bytes plain = images(40), z = gzip_of(plain);
  REQUIRE(parse(z).bytes.size() == 40 * 784);
  for (std::size_t cut : {std::size_t{5}, std::size_t{12}, z.size() / 2, z.size() - 5, z.size() - 1})
    CHECK_THAT(parse_error(bytes(z.begin(), z.begin() + static_cast<std::ptrdiff_t>(cut))),
               Catch::Contains("test.idx: gzip data: truncated"));
  bytes crc = z;
  crc[z.size() - 6] ^= 1;  // the CRC-32 of the trailer
  CHECK_THAT(parse_error(crc), Catch::Contains("CRC-32 mismatch"));
  bytes length = z;
  length[z.size() - 4] ^= 1;
  CHECK_THAT(parse_error(length), Catch::Contains("length mismatch"));
  bytes method = z;
  method[2] = 7;
  CHECK_THAT(parse_error(method), Catch::Contains("not deflate"));
  bytes type = z;
  type[10] |= 6;  // the first block's type bits: 3, reserved
  CHECK_THAT(parse_error(type), Catch::Contains("gzip data"));
  // Any single flipped bit in the compressed body is caught (by the decoder or the CRC).
  std::mt19937 engine(11);
  for (int trial = 0; trial < 200; ++trial) {
    bytes bad = z;
    bad[10 + engine() % (z.size() - 18)] ^= static_cast<unsigned char>(1u << (engine() % 8));
    CHECK_THROWS_AS(parse(bad), kinflow::model_file_error);
  }
}

TEST_CASE("Fashion-MNIST from Debian's dataset-fashion-mnist", "[idx][fashion-mnist]") {
  const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
  const auto images_gz = dir / "train-images-idx3-ubyte.gz", labels_gz = dir / "train-labels-idx1-ubyte.gz";
  if (!std::filesystem::exists(images_gz)) {
    WARN("skipped: " << images_gz << " is absent (install dataset-fashion-mnist)");
    return;
  }
  // The gzip command's decompression, against which the reader's own is checked.
  const auto plain = temp_path("train-images");
  REQUIRE(std::system(("gzip -dc '" + images_gz.string() + "' > '" + plain.string() + "'").c_str()) == 0);
  const bytes raw = read_file(plain);
  const auto all = kinflow::read_idx(images_gz);
  CHECK(all.type == kinflow::idx_type::u8);
  CHECK(all.shape == std::vector<std::uint32_t>{60000, 28, 28});
  REQUIRE(all.bytes.size() == raw.size() - 16);
  CHECK(std::memcmp(all.bytes.data(), raw.data() + 16, all.bytes.size()) == 0);
  CHECK(kinflow::read_idx(plain).bytes == all.bytes);
  const auto first = kinflow::read_idx(images_gz, 100);
  REQUIRE(first.shape == std::vector<std::uint32_t>{100, 28, 28});
  CHECK(std::memcmp(first.bytes.data(), raw.data() + 16, first.bytes.size()) == 0);
  std::filesystem::remove(plain);
  const auto labels = kinflow::read_idx(labels_gz).labels();
  REQUIRE(labels.size() == 60000);
  std::vector<int> per_class(10, 0);
  for (long long l : labels) {
    REQUIRE((l >= 0 && l < 10));
    ++per_class[static_cast<std::size_t>(l)];
  }
  for (int n : per_class) CHECK(n == 6000);  // the dataset's documented balance
  CHECK(kinflow::read_idx(dir / "t10k-images-idx3-ubyte.gz", 10).points(255).maxCoeff() <= 1.0);
}
