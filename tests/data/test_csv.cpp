// Tests of kinflow::read_csv / parse_csv / write_csv: exact round trips, header handling,
// whitespace and line endings, and errors that name the line, the column and the bad text.
#include "kinflow_catch.hpp"

#include <kinflow/data/csv.hpp>

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

kinflow::csv_data parse(const std::string& text,
                        kinflow::csv_header header = kinflow::csv_header::detect) {
  std::istringstream in(text);
  kinflow::csv_read_options o;
  o.header = header;
  return kinflow::parse_csv(in, o, "test");
}

// Runs parse() and returns the csv_error it throws (fails the test if none is thrown).
kinflow::csv_error parse_error(const std::string& text,
                               kinflow::csv_header header = kinflow::csv_header::detect) {
  try {
    (void)parse(text, header);
  } catch (const kinflow::csv_error& e) {
    return e;
  }
  FAIL("no csv_error for: " << text);
  return kinflow::csv_error("", 0, 0);
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("kinflow_test_csv_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "_" + name);
}

}  // namespace

TEST_CASE("round trip through a file is exact, with and without header", "[csv]") {
  std::mt19937_64 engine(1);
  Eigen::Matrix<double, 3, Eigen::Dynamic> x(3, 200);
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (Eigen::Index i = 0; i < 3; ++i) {
      // Random bit patterns of finite doubles: every exponent, subnormals included.
      double v;
      do {
        const std::uint64_t w = engine();
        std::memcpy(&v, &w, sizeof v);
      } while (!std::isfinite(v));
      x(i, j) = v;
    }
  x(0, 0) = 0.1;
  x(1, 0) = -0.0;
  x(2, 0) = std::numeric_limits<double>::denorm_min();
  x(0, 1) = std::numeric_limits<double>::max();
  x(1, 1) = std::numeric_limits<double>::lowest();
  x(2, 1) = 1.0 / 3.0;

  const auto path = temp_path("roundtrip.csv");
  kinflow::write_csv(path, x, {"a", "b", "c"});
  const auto back = kinflow::read_csv(path);
  REQUIRE(back.column_names == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(back.points.rows() == 3);
  REQUIRE(back.points.cols() == 200);
  REQUIRE(back.points == x);
  REQUIRE(std::signbit(back.points(1, 0)));

  kinflow::write_csv(path, x);
  const auto plain = kinflow::read_csv(path);
  REQUIRE(plain.column_names.empty());
  REQUIRE(plain.points == x);
  std::filesystem::remove(path);

  // float: written in float's shortest form, read back to the same float.
  Eigen::MatrixXf f = Eigen::MatrixXf::Random(2, 50);
  std::ostringstream os;
  kinflow::write_csv(os, f);
  std::istringstream is(os.str());
  REQUIRE(kinflow::parse_csv(is).points.cast<float>() == f);
}

TEST_CASE("written text: rows are points, shortest exact decimals", "[csv]") {
  Eigen::Matrix<double, 2, 2> x;
  x << 0.5, 1e-300, -2, 3;
  std::ostringstream os;
  kinflow::write_csv(os, x, {"x_0", "x_1"});
  REQUIRE(os.str() == "x_0,x_1\n0.5,-2\n1e-300,3\n");
  REQUIRE_THROWS_AS(kinflow::write_csv(os, x, {"only one"}), kinflow::dimension_mismatch);
}

TEST_CASE("header: detected, declared present, declared absent", "[csv]") {
  const auto a = parse("x, y\n1, 2\n3, 4\n");
  REQUIRE(a.column_names == std::vector<std::string>{"x", "y"});
  REQUIRE(a.points.cols() == 2);
  REQUIRE(a.points(0, 1) == 3.0);
  REQUIRE(a.points(1, 1) == 4.0);

  const auto b = parse("1,2\n3,4\n");
  REQUIRE(b.column_names.empty());
  REQUIRE(b.points.cols() == 2);

  // A numeric-looking header is only taken as one when declared.
  const auto c = parse("0,1\n3,4\n", kinflow::csv_header::present);
  REQUIRE(c.column_names == std::vector<std::string>{"0", "1"});
  REQUIRE(c.points.cols() == 1);

  const auto e = parse_error("x,y\n1,2\n", kinflow::csv_header::absent);
  REQUIRE(e.line() == 1);
  REQUIRE(e.column() == 1);

  // Header only: no data.
  const auto h = parse_error("x,y\n\n");
  REQUIRE_THAT(std::string(h.what()), kinflow_test::contains("no data rows after the header"));
}

TEST_CASE("whitespace, CRLF, blank lines, signs and exponents", "[csv]") {
  const auto a = parse("\n  \r\n 1.5 ,\t-2e3\r\n\r\n+3,4E-2\r\n\n");
  REQUIRE(a.points.rows() == 2);
  REQUIRE(a.points.cols() == 2);
  REQUIRE(a.points(0, 0) == 1.5);
  REQUIRE(a.points(1, 0) == -2000.0);
  REQUIRE(a.points(0, 1) == 3.0);
  REQUIRE(a.points(1, 1) == 0.04);
  // One column.
  const auto one = parse("7\n8\n9");
  REQUIRE(one.points.rows() == 1);
  REQUIRE(one.points.cols() == 3);
  REQUIRE(one.points(0, 2) == 9.0);
  // Another delimiter.
  std::istringstream in("1;2\n3;4\n");
  kinflow::csv_read_options o;
  o.delimiter = ';';
  REQUIRE(kinflow::parse_csv(in, o).points(1, 1) == 4.0);
}

TEST_CASE("bad input: errors name line, column and text", "[csv]") {
  {
    const auto e = parse_error("x,y\n1,2\n3,abc\n");
    REQUIRE(e.line() == 3);
    REQUIRE(e.column() == 2);
    REQUIRE_THAT(std::string(e.what()), kinflow_test::contains("line 3, column 2") &&
                                            kinflow_test::contains("\"abc\""));
  }
  {
    // A first line that is partly numeric is data, and its bad field an error.
    const auto e = parse_error("1,zz\n3,4\n");
    REQUIRE(e.line() == 1);
    REQUIRE(e.column() == 2);
  }
  {
    const auto e = parse_error("1,2\n3,4,5\n");
    REQUIRE(e.line() == 2);
    REQUIRE_THAT(std::string(e.what()),
                 kinflow_test::contains("found 3 fields, expected 2 (as on line 1)"));
  }
  {
    const auto e = parse_error("1,2\n3\n");
    REQUIRE(e.line() == 2);
  }
  {
    const auto e = parse_error("1,2\n3,\n");
    REQUIRE(e.line() == 2);
    REQUIRE(e.column() == 2);
    REQUIRE_THAT(std::string(e.what()), kinflow_test::contains("cannot read \"\""));
  }
  {
    const auto e = parse_error("1,2\n3,4x\n");
    REQUIRE(e.column() == 2);
  }
  for (const char* bad : {"nan", "inf", "-inf", "1e999"}) {
    const auto e = parse_error(std::string("1,2\n3,") + bad + "\n");
    REQUIRE(e.line() == 2);
    REQUIRE(e.column() == 2);
    REQUIRE_THAT(std::string(e.what()), kinflow_test::contains("not finite"));
  }
  {
    const auto e = parse_error("");
    REQUIRE(e.line() == 0);
    REQUIRE_THAT(std::string(e.what()), kinflow_test::contains("no data rows"));
  }
  REQUIRE(parse_error("\n \n").line() == 0);
  const auto missing = temp_path("does_not_exist.csv");
  REQUIRE_THROWS_AS(kinflow::read_csv(missing), kinflow::csv_error);
  REQUIRE_THROWS_WITH(kinflow::read_csv(missing),
                      kinflow_test::contains("does_not_exist.csv") &&
                          kinflow_test::contains("cannot be opened"));
  // csv_error is a kinflow::invalid_argument.
  REQUIRE_THROWS_AS(parse("a,b\n1,c\n"), kinflow::invalid_argument);
}

TEST_CASE("errors from files name the file", "[csv]") {
  const auto path = temp_path("bad.csv");
  {
    std::ofstream out(path);
    out << "x_0,x_1\n0,1\n2,3\n4,five\n";
  }
  REQUIRE_THROWS_WITH(kinflow::read_csv(path),
                      kinflow_test::contains("bad.csv") &&
                          kinflow_test::contains("line 4, column 2") &&
                          kinflow_test::contains("\"five\""));
  std::filesystem::remove(path);
}
