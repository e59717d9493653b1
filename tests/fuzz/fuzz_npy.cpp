// libFuzzer target: the .npy array reader (kinflow/models/npz.hpp, detail::parse_npy). Any
// input either yields an array whose data covers its shape, every element readable, or
// throws kinflow::model_file_error; it never crashes or reads out of bounds.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fuzz_support.hpp"
#include "kinflow/models/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const kinflow::npy_array a = kinflow::detail::parse_npy(data, size, "fuzz.npz", "entry");
    kinflow_fuzz::check_array(a);
  } catch (const kinflow::model_file_error&) {
  }
  return 0;
}
