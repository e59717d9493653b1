// libFuzzer target: the .npz archive reader (kinflow::npz_archive::from_bytes). Any input
// either yields arrays whose elements are all readable or throws kinflow::model_file_error;
// it never crashes, hangs or reads out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "fuzz_support.hpp"
#include "kinflow/models/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto npz = kinflow::npz_archive::from_bytes(std::vector<unsigned char>(data, data + size), "fuzz.npz");
    for (const auto& [name, a] : npz.arrays()) {
      (void)name;
      kinflow_fuzz::check_array(a);
    }
  } catch (const kinflow::model_file_error&) {
  }
  return 0;
}
