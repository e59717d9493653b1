// libFuzzer target: the IDX reader and its gzip decoder (kinflow/data/idx.hpp, gzip.hpp).
// Any input, read whole or its first few items, either yields an array whose bytes cover
// its shape, every element readable, or throws kinflow::model_file_error; the decoder alone
// never returns more than it was asked for. Nothing crashes, reads out of bounds or
// allocates without bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kinflow/data/idx.hpp"

namespace {

void check(const kinflow::idx_array& a, std::size_t max_items) {
  if (a.shape.empty() || a.bytes.size() != a.size() * a.itemsize()) std::abort();
  if (max_items != kinflow::idx_all && a.items() != max_items) std::abort();
  volatile double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum = sum + a.element(i);
  try {
    const auto p = a.points<float>(255);
    if (static_cast<std::size_t>(p.size()) != a.size() || !p.allFinite()) std::abort();
  } catch (const kinflow::model_file_error&) {  // a non-finite float element
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (std::size_t max_items : {kinflow::idx_all, std::size_t{1}, std::size_t{3}}) {
    try {
      check(kinflow::parse_idx(data, size, "fuzz.idx", max_items), max_items);
    } catch (const kinflow::model_file_error&) {
    }
  }
  if (kinflow::is_gzip(data, size)) {
    try {
      if (kinflow::gunzip(data, size, "fuzz.gz", 100).size() > 100) std::abort();
    } catch (const kinflow::model_file_error&) {
    }
  }
  return 0;
}
