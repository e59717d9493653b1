// The .npz reader: files written by numpy.savez (committed) and archives built here, and
// its errors: missing file, not a ZIP, truncated, compressed entry, unsupported dtype,
// corrupt data, missing array. Each message names the file and what is wrong.

#include "kinflow/models/npz.hpp"

#include <string>
#include <vector>

#include "kinflow_catch.hpp"
#include "npz_writer.hpp"

using kinflow::model_file_error;
using kinflow::npz_archive;
using namespace kinflow_test;

TEST_CASE("crc32 matches the standard check value", "[npz]") {
  const std::string s = "123456789";
  CHECK(kinflow::detail::crc32(reinterpret_cast<const unsigned char*>(s.data()), s.size()) ==
        0xCBF43926U);
}

TEST_CASE("reads a file written by numpy.savez", "[npz]") {
  // Written by examples/models/train_fm_mlp.py: 2 -> 8 -> 8 -> 2 with raw time (3 inputs).
  const npz_archive npz((models_dir() / "gelu_raw_time.npz").string());
  CHECK(npz.arrays().size() == 8);
  const auto& w0 = npz.at("layers.0.weight");
  CHECK(w0.descr == "<f4");
  CHECK(w0.shape_text() == "(8, 3)");
  CHECK_FALSE(w0.fortran_order);
  CHECK(npz.at("layers.0.bias").shape_text() == "(8,)");
  CHECK(npz.at("layers.2.weight").shape_text() == "(2, 8)");
  CHECK(npz.at("activation").text() == "gelu");
  CHECK(npz.at("time_embedding").text() == "raw");
  CHECK_FALSE(npz.contains("time_frequencies"));
  // PyTorch's default init draws weights in ±1/sqrt(fan_in): a sanity bound on decoding.
  for (Eigen::Index i = 0; i < w0.size(); ++i) CHECK(std::abs(w0.element(i)) <= 1.0 / std::sqrt(3.0));
}

TEST_CASE("decodes dtypes, orders, shapes and npy versions", "[npz]") {
  std::vector<npz_entry> e;
  e.push_back({"c", "<f8", "(2, 3)", f8({1, 2, 3, 4, 5, 6})});
  e.push_back({"f", "<f8", "(2, 3)", f8({1, 4, 2, 5, 3, 6}), true});
  e.push_back({"single", "<f4", "(3,)", f4({0.5f, -1.25f, 3.0f})});
  std::vector<std::int64_t> i8 = {-7, 1LL << 40};
  bytes b8(16);
  std::memcpy(b8.data(), i8.data(), 16);
  e.push_back({"ints", "<i8", "(2,)", b8});
  e.push_back({"v2", "<f8", "(1, 1)", f8({42.0}), false, 2});
  e.push_back({"scalar", "<f8", "()", f8({2.5})});
  e.push_back(text_entry("name", "sinusoidal"));
  bytes u = {'r', 0, 0, 0, 'a', 0, 0, 0, 'w', 0, 0, 0, 0, 0, 0, 0};
  e.push_back({"unicode", "<U4", "()", u});
  const npz_archive npz(scratch().write("dtypes.npz", zip_stored(e)));

  const auto& c = npz.at("c");
  const auto& f = npz.at("f");
  CHECK(c.shape_text() == "(2, 3)");
  CHECK(f.fortran_order);
  // Element (1, 2) is 6 in both: C order index 1*3+2, Fortran order index 2*2+1.
  CHECK(c.element(5) == 6.0);
  CHECK(f.element(5) == 6.0);
  CHECK(c.element(1) == 2.0);
  CHECK(f.element(1) == 4.0);
  CHECK(npz.at("single").element(1) == -1.25);
  CHECK(npz.at("ints").element(0) == -7.0);
  CHECK(npz.at("ints").element(1) == 1099511627776.0);
  CHECK(npz.at("v2").element(0) == 42.0);
  CHECK(npz.at("scalar").ndim() == 0);
  CHECK(npz.at("scalar").size() == 1);
  CHECK(npz.at("scalar").shape_text() == "()");
  CHECK(npz.at("name").text() == "sinusoidal");
  CHECK(npz.at("unicode").text() == "raw");
}

TEST_CASE("missing, empty and non-ZIP files are reported by name", "[npz][errors]") {
  const std::string missing = scratch().write("placeholder", {}) + "-does-not-exist.npz";
  CHECK_THROWS_WITH(npz_archive(missing), kinflow_test::contains(missing) &&
                                             kinflow_test::contains("no such file"));
  CHECK_THROWS_AS(npz_archive(missing), model_file_error);
  CHECK_THROWS_AS(npz_archive(missing), kinflow::invalid_argument);

  const std::string empty = scratch().write("empty.npz", {});
  CHECK_THROWS_WITH(npz_archive(empty), kinflow_test::contains("empty.npz") &&
                                           kinflow_test::contains("not an .npz"));
  const std::string text = scratch().write("text.npz", ascii(std::string(200, 'x')));
  CHECK_THROWS_WITH(npz_archive(text), kinflow_test::contains("no end-of-central-directory record"));
}

TEST_CASE("truncated files are reported as truncated", "[npz][errors]") {
  const bytes whole = read_bytes(models_dir() / "gelu_raw_time.npz");
  REQUIRE(whole.size() > 1000);
  // Cut anywhere: the end record is gone, or (cut inside it) the directory points past the end.
  for (const std::size_t keep : {std::size_t{100}, whole.size() / 2, whole.size() - 30, whole.size() - 1}) {
    const bytes cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(keep));
    const std::string p = scratch().write("cut.npz", cut);
    CHECK_THROWS_WITH(npz_archive(p), kinflow_test::contains("cut.npz") &&
                                          kinflow_test::contains("truncated"));
  }
  // An array whose data is shorter than its shape says.
  const std::string p = scratch().write(
      "short.npz", zip_stored({{"w", "<f8", "(2, 3)", f8({1, 2, 3, 4, 5})}}));
  CHECK_THROWS_WITH(npz_archive(p), kinflow_test::contains("short.npz") &&
                                        kinflow_test::contains("entry 'w'") &&
                                        kinflow_test::contains("truncated array data") &&
                                        kinflow_test::contains("needs 48 bytes") &&
                                        kinflow_test::contains("holds 40"));
}

TEST_CASE("compressed entries are rejected with a hint", "[npz][errors]") {
  const std::string p = scratch().write(
      "deflated.npz", zip_stored({{"w", "<f8", "(1,)", f8({1.0})}}, /*method=*/8));
  CHECK_THROWS_WITH(npz_archive(p), kinflow_test::contains("deflated.npz") &&
                                        kinflow_test::contains("compressed entry") &&
                                        kinflow_test::contains("deflate") &&
                                        kinflow_test::contains("numpy.savez_compressed"));
}

TEST_CASE("decodes the 16-bit integers and the wider unsigned integers", "[npz]") {
  std::vector<npz_entry> e;
  e.push_back({"i2", "<i2", "(2,)", bytes{0xFE, 0xFF, 0x34, 0x12}});  // -2, 0x1234
  e.push_back({"u2", "<u2", "(1,)", bytes{0xFE, 0xFF}});              // 65534
  e.push_back({"u4", "<u4", "(1,)", bytes{0x01, 0x00, 0x00, 0x80}});  // 2^31 + 1
  e.push_back({"u8", "<u8", "(1,)", bytes{0, 0, 0, 0, 0, 0, 0, 0x80}});  // 2^63
  const npz_archive npz(scratch().write("ints.npz", zip_stored(e)));
  CHECK(npz.at("i2").element(0) == -2.0);
  CHECK(npz.at("i2").element(1) == 4660.0);
  CHECK(npz.at("u2").element(0) == 65534.0);
  CHECK(npz.at("u4").element(0) == 2147483649.0);
  CHECK(npz.at("u8").element(0) == 9223372036854775808.0);
  CHECK(npz.at("u2").itemsize == 2);
}

TEST_CASE("unsupported dtypes are rejected by name", "[npz][errors]") {
  for (const std::string descr : {"<c16", ">f8", "<f2", "|b1", "|O"}) {
    const std::string p = scratch().write(
        "dtype.npz", zip_stored({{"w", descr, "(1,)", bytes(16, 0)}}));
    CHECK_THROWS_WITH(npz_archive(p), kinflow_test::contains("unsupported dtype '" + descr + "'"));
  }
}

TEST_CASE("shapes whose size overflows are rejected, not wrapped around", "[npz][errors]") {
  // Found by fuzzing (tests/fuzz/fuzz_npy.cpp): the product of the dimensions overflowed
  // before the data size was compared with the entry's bytes.
  for (const std::string shape : {"(4294967296, 4294967296, 16)", "(999999999999999, 999999999999999)",
                                  "(100000000000000, 100000000000000, 100000000000000)"}) {
    const std::string p = scratch().write("huge.npz", zip_stored({{"w", "<f8", shape, bytes(16, 0)}}));
    CHECK_THROWS_AS(npz_archive(p), model_file_error);
    CHECK_THROWS_WITH(npz_archive(p), kinflow_test::contains("huge.npz") && kinflow_test::contains("too large"));
  }
}

TEST_CASE("corrupt data fails the CRC check", "[npz][errors]") {
  bytes b = zip_stored({{"w", "<f8", "(2,)", f8({1.0, 2.0})}});
  b[30 + 5 + 64 + 3] ^= 0x40;  // a byte of the array data (local header, name, npy header)
  const std::string p = scratch().write("crc.npz", b);
  CHECK_THROWS_WITH(npz_archive(p), kinflow_test::contains("crc.npz") &&
                                        kinflow_test::contains("CRC-32 mismatch"));
}

TEST_CASE("a missing array is named, with the arrays present", "[npz][errors]") {
  const npz_archive npz(scratch().write(
      "two.npz", zip_stored({{"a", "<f8", "(1,)", f8({1})}, {"b", "<f8", "(1,)", f8({2})}})));
  CHECK_THROWS_WITH(npz.at("c"), kinflow_test::contains("two.npz") &&
                                     kinflow_test::contains("no array 'c'") &&
                                     kinflow_test::contains("a, b"));
}
