#pragma once
// Reads the fixtures PyTorch wrote beside the committed models (examples/models/*_fixture.csv,
// written by flow_examples.export_fixture): a header line, then rows of numbers.

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kinflow_catch.hpp"
#include "npz_writer.hpp"

namespace kinflow_test {

/// The rows of models_dir()/@p name, whose header must be @p header; every row has as many
/// numbers as the header has columns.
inline std::vector<std::vector<double>> read_fixture_rows(const std::string& name, const std::string& header) {
  std::ifstream in(models_dir() / name);
  REQUIRE(in);
  std::string line;
  std::getline(in, line);
  REQUIRE(line == header);
  const auto columns = static_cast<std::size_t>(std::count(header.begin(), header.end(), ',') + 1);
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::vector<double> r;
    for (std::string cell; std::getline(ss, cell, ',');) r.push_back(std::stod(cell));
    REQUIRE(r.size() == columns);
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace kinflow_test
