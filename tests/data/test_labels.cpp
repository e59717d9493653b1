// Tests of kinflow::read_labels / parse_labels / write_labels / check_labels /
// count_classes: exact round trips through text and .npy files (the .npy bytes of the
// readers' tests are built here from the NPY format specification, for every integer
// dtype), and errors that name the file, the line or index, and the valid range.
#include "kinflow_catch.hpp"

#include <kinflow/data/labels.hpp>

#include <Eigen/Core>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using kinflow::class_labels;

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("kinflow_test_labels_" +
          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "_" +
          name);
}

// Writes @p text to a new temporary file called ...@p name and returns its path.
std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto path = temp_path(name);
  std::ofstream out(path, std::ios::binary);
  out << text;
  return path;
}

// An NPY 1.0 file: magic "\x93NUMPY", version 1.0, a 2-byte little-endian header length,
// the header dict padded with spaces and ended by '\n' so that the data start at a multiple
// of 64 bytes, then the raw data.
std::string npy_file(const std::string& descr, const std::string& shape, const std::string& data) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + '\x01' + '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

// The little-endian bytes of @p values, @p width bytes each (two's complement).
std::string le_bytes(const std::vector<std::int64_t>& values, int width) {
  std::string out;
  for (const std::int64_t v : values)
    for (int k = 0; k < width; ++k)
      out += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * k)) & 0xff);
  return out;
}

class_labels labels_of(const std::vector<Eigen::Index>& v) {
  return Eigen::Map<const class_labels>(v.data(), static_cast<Eigen::Index>(v.size()));
}

std::string message_of_read(const std::filesystem::path& p) {
  try {
    (void)kinflow::read_labels(p);
  } catch (const kinflow::invalid_argument& e) {
    return e.what();
  }
  FAIL("no invalid_argument reading " << p.string());
  return {};
}

}  // namespace

TEST_CASE("text labels: one integer per line, blank lines, spaces, CRLF", "[labels]") {
  const auto p = write_file("a.csv", "3\n\n  0\t\r\n+12\n7");
  const class_labels got = kinflow::read_labels(p);
  REQUIRE(got == labels_of({3, 0, 12, 7}));
  std::filesystem::remove(p);
  std::istringstream in("1\n2\n");
  REQUIRE(kinflow::parse_labels(in) == labels_of({1, 2}));
}

TEST_CASE("round trips through written text and .npy files are exact", "[labels]") {
  const class_labels labels = labels_of({0, 5, 2, 2, 9223372036854775806, 1, 0});
  for (const std::string name : {"l.csv", "l.txt", "l.npy", "L.NPY", "noext"}) {
    INFO(name);
    const auto p = temp_path(name);
    kinflow::write_labels(p, labels);
    REQUIRE(kinflow::read_labels(p) == labels);
    std::ifstream in(p, std::ios::binary);
    std::string head(6, '\0');
    in.read(head.data(), 6);
    const bool npy = name == "l.npy" || name == "L.NPY";
    REQUIRE((head == std::string("\x93NUMPY", 6)) == npy);
    if (npy) {  // the data start at a multiple of 64 bytes: 10 + header length
      in.seekg(0, std::ios::end);
      const auto size = static_cast<std::size_t>(in.tellg());
      REQUIRE((size - 8 * static_cast<std::size_t>(labels.size())) % 64 == 0);
    }
    std::filesystem::remove(p);
  }
  REQUIRE_THROWS_WITH(kinflow::write_labels(temp_path("bad.csv"), labels_of({1, -1})),
                      kinflow_test::contains("labels(1) = -1 is invalid"));
}

TEST_CASE(".npy labels of every integer dtype, written by hand", "[labels]") {
  const std::vector<std::int64_t> values{0, 1, 7, 3, 100};
  const std::vector<std::pair<std::string, int>> dtypes{
      {"|i1", 1}, {"<i2", 2}, {"<i4", 4}, {"<i8", 8},
      {"|u1", 1}, {"<u2", 2}, {"<u4", 4}, {"<u8", 8}};
  for (const auto& [descr, width] : dtypes) {
    INFO(descr);
    const auto p = write_file("a.npy", npy_file(descr, "(5,)", le_bytes(values, width)));
    const class_labels got = kinflow::read_labels(p);
    REQUIRE(got == labels_of({0, 1, 7, 3, 100}));
    std::filesystem::remove(p);
  }
  // The widest values of the unsigned types, and large signed ones.
  auto p = write_file("u.npy", npy_file("<u4", "(1,)", le_bytes({4294967295LL}, 4)));
  REQUIRE(kinflow::read_labels(p) == labels_of({4294967295LL}));
  std::filesystem::remove(p);
  p = write_file("u2.npy", npy_file("<u2", "(2,)", le_bytes({65535, 256}, 2)));
  REQUIRE(kinflow::read_labels(p) == labels_of({65535, 256}));
  std::filesystem::remove(p);
}

TEST_CASE("text label errors name the file, the line and the valid range", "[labels]") {
  struct bad {
    std::string text, line, found, expected;
  };
  const std::vector<bad> cases{
      {"1\n2\nx\n", "line 3", "\"x\"", "one integer class index >= 0 per line"},
      {"1\n1.5\n", "line 2", "\"1.5\"", "one integer class index >= 0 per line"},
      {"label\n0\n", "line 1", "\"label\"", "no header"},
      {"0\n\n-1\n", "line 3", "\"-1\"", "class index >= 0"},
      {"-7\n", "line 1", "\"-7\"", "-1, no class, is for queries"},
      {"1,2\n", "line 1", "\"1,2\"", "one integer"},
      {"3 4\n", "line 1", "\"3 4\"", "one integer"},
      {"+-3\n", "line 1", "\"+-3\"", "one integer"},
      {"# comment\n1\n", "line 1", "\"# comment\"", "no comments"},
      {"99999999999999999999\n", "line 1", "\"99999999999999999999\"", "< 9223372036854775807"},
      {"9223372036854775807\n", "line 1", "\"9223372036854775807\"", "< 9223372036854775807"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    const auto p = write_file("bad.csv", c.text);
    const std::string msg = message_of_read(p);
    REQUIRE_THAT(msg, kinflow_test::contains("labels file \"" + p.string() + "\", " + c.line +
                                             ": " + c.found + " is invalid; expected"));
    REQUIRE_THAT(msg, kinflow_test::contains(c.expected));
    std::filesystem::remove(p);
  }
  for (const std::string text : {"", "\n  \n\r\n"}) {
    const auto p = write_file("empty.csv", text);
    REQUIRE_THAT(message_of_read(p),
                 kinflow_test::contains("labels file \"" + p.string() + "\": ") &&
                     kinflow_test::contains("at least one label"));
    std::filesystem::remove(p);
  }
  const auto missing = temp_path("missing.csv");
  REQUIRE_THAT(message_of_read(missing),
               kinflow_test::contains(missing.string()) &&
                   kinflow_test::contains("missing or unreadable"));
  REQUIRE_THAT(message_of_read(std::filesystem::temp_directory_path()),
               kinflow_test::contains("a directory is invalid"));
}

TEST_CASE(".npy label errors: floats, 2-D, empty, negative, too large, malformed", "[labels]") {
  struct bad {
    std::string descr, shape, data, expected;
  };
  const std::vector<bad> cases{
      {"<f8", "(2,)", std::string(16, '\0'), "dtype '<f8' is invalid; expected an integer dtype"},
      {"<f4", "(1,)", std::string(4, '\0'), "dtype '<f4' is invalid"},
      {"<i4", "(2, 2)", le_bytes({0, 1, 2, 3}, 4), "shape (2, 2) is invalid; expected a 1-D array"},
      {"<i8", "()", le_bytes({1}, 8), "shape () is invalid"},
      {"<i8", "(0,)", "", "an empty array is invalid; expected at least one label"},
      {"<i2", "(3,)", le_bytes({0, 1, -1}, 2), "index 2: -1 is invalid; expected an integer class index >= 0"},
      {"|i1", "(2,)", le_bytes({-128, 0}, 1), "index 0: -128 is invalid"},
      {"<i8", "(1,)", le_bytes({INT64_MIN}, 8), "index 0: -9223372036854775808 is invalid"},
      {"<u8", "(2,)", le_bytes({0, -1}, 8), "index 1: 18446744073709551615 is invalid"},
      {"<U3", "(1,)", std::string(12, 'a'), "dtype '<U3' is invalid"},
  };
  for (const auto& c : cases) {
    INFO(c.descr << " " << c.shape);
    const auto p = write_file("bad.npy", npy_file(c.descr, c.shape, c.data));
    const std::string msg = message_of_read(p);
    REQUIRE_THAT(msg, kinflow_test::contains("labels file \"" + p.string() + "\""));
    REQUIRE_THAT(msg, kinflow_test::contains(c.expected));
    std::filesystem::remove(p);
  }
  // Not an array at all: the .npy parser's errors, naming the file.
  const auto text = write_file("text.npy", "0\n1\n");
  REQUIRE_THROWS_AS(kinflow::read_labels(text), kinflow::model_file_error);
  REQUIRE_THAT(message_of_read(text), kinflow_test::contains(text.string()) &&
                                          kinflow_test::contains("no \\x93NUMPY magic"));
  std::filesystem::remove(text);
  const auto cut = write_file("cut.npy", npy_file("<i8", "(3,)", le_bytes({1, 2}, 8)));
  REQUIRE_THAT(message_of_read(cut), kinflow_test::contains("truncated array data"));
  std::filesystem::remove(cut);
  const auto big = write_file("big.npy", npy_file(">i8", "(1,)", le_bytes({1}, 8)));
  REQUIRE_THAT(message_of_read(big), kinflow_test::contains("unsupported dtype '>i8'"));
  std::filesystem::remove(big);
}

TEST_CASE("check_labels and count_classes", "[labels]") {
  REQUIRE(kinflow::check_labels(labels_of({0, 2, 2, 1}), 4) == 3);
  REQUIRE(kinflow::check_labels(labels_of({4}), 1, "classes") == 5);  // 0 … 3 unused
  REQUIRE(kinflow::check_labels(class_labels(), 0) == 0);
  REQUIRE_THROWS_AS(kinflow::check_labels(labels_of({0, 1}), 3), kinflow::dimension_mismatch);
  REQUIRE_THROWS_WITH(kinflow::check_labels(labels_of({0, 1}), 3, "train_labels"),
                      kinflow_test::contains("number of train_labels (one per point) is 2, "
                                             "expected 3"));
  REQUIRE_THROWS_AS(kinflow::check_labels(labels_of({0, -1, 1}), 3), kinflow::invalid_argument);
  REQUIRE_THROWS_WITH(kinflow::check_labels(labels_of({0, 1, -1, -2}), 4, "y"),
                      kinflow_test::contains("y(2) = -1 is invalid; expected a class index >= 0"));
  REQUIRE_THROWS_WITH(kinflow::check_labels(class_labels(), -1),
                      kinflow_test::contains("n_points = -1 is invalid"));
  REQUIRE(kinflow::count_classes(labels_of({3, 0, 1})) == 4);
  REQUIRE(kinflow::count_classes(class_labels()) == 0);
  REQUIRE(kinflow::count_classes(labels_of({-1, -1})) == 0);
  REQUIRE(kinflow::count_classes(labels_of({-1, 2})) == 3);
}

TEST_CASE("IDX label files (MNIST's format) are read by their first bytes", "[labels]") {
  // IDX: two zero bytes, the type (0x08 unsigned byte), one dimension, its size big-endian.
  std::string idx = std::string("\x00\x00\x08\x01", 4) + std::string("\x00\x00\x00\x05", 4);
  idx += std::string("\x03\x00\x09\x01\x07", 5);
  const auto path = write_file("labels.idx1-ubyte", idx);
  CHECK(kinflow::read_labels(path) == labels_of({3, 0, 9, 1, 7}));
  // Images are not labels: two dimensions of bytes are rejected, naming the file.
  const auto images = write_file("images.idx3-ubyte",
                                 std::string("\x00\x00\x08\x02", 4) + std::string("\x00\x00\x00\x01", 4) +
                                     std::string("\x00\x00\x00\x02", 4) + std::string("\x01\x02", 2));
  CHECK_THROWS_WITH(kinflow::read_labels(images), kinflow_test::contains("one dimension of integers"));
  std::filesystem::remove(path);
  std::filesystem::remove(images);
}
