// libFuzzer target: the CSV point reader (kinflow/data/csv.hpp). Any input either parses
// into finite points of a consistent shape or throws kinflow::csv_error; it never crashes,
// and what parses writes back and reads back to the same numbers.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "kinflow/data/csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (char delimiter : {',', ';'}) {
    std::istringstream in(text);
    kinflow::csv_read_options opt;
    opt.delimiter = delimiter;
    kinflow::csv_data parsed;
    try {
      parsed = kinflow::parse_csv(in, opt, "fuzz");
    } catch (const kinflow::csv_error&) {
      continue;  // the documented outcome for bad input
    }
    const auto& P = parsed.points;
    if (P.size() == 0 || !P.allFinite()) std::abort();  // documented: rows of finite numbers
    std::ostringstream out;
    kinflow::write_csv(out, P, {}, delimiter);  // numbers only: the round trip of the values
    std::istringstream back(out.str());
    const kinflow::csv_data again = kinflow::parse_csv(back, opt, "round trip");
    if (again.points.rows() != P.rows() || again.points.cols() != P.cols() || again.points != P) std::abort();
  }
  return 0;
}
