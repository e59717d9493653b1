// libFuzzer target: the MLP loader (kinflow::load_mlp_field on an archive in memory). The
// input is a list of records [name: 1 byte][length: 2 bytes, little-endian][.npy bytes];
// the name byte picks one of the array names an MLP file may hold (or a stray one), and the
// records are packed into a valid .npz so that the fuzzer reaches the loader's own checks
// (names, dtypes, shapes, finite weights, activation and time embedding) past the archive's
// checksums. Any input either loads a field whose velocity at finite points is finite or
// throws kinflow::model_file_error; it never crashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "kinflow/models/mlp_npz.hpp"
#include "models/npz_writer.hpp"

namespace {

const char* const names[] = {"layers.0.weight", "layers.0.bias",   "layers.1.weight", "layers.1.bias",
                             "layers.2.weight", "layers.2.bias",   "activation",      "time_embedding",
                             "time_frequencies", "layers.3.weight", "stray"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::pair<std::string, std::vector<unsigned char>>> entries;
  for (std::size_t p = 0; p + 3 <= size && entries.size() < 16;) {
    const std::string name = names[data[p] % (sizeof names / sizeof names[0])];
    const std::size_t len = std::min<std::size_t>(data[p + 1] | (std::size_t{data[p + 2]} << 8), size - p - 3);
    bool duplicate = false;
    for (const auto& e : entries) duplicate = duplicate || e.first == name;
    if (!duplicate) entries.emplace_back(name, std::vector<unsigned char>(data + p + 3, data + p + 3 + len));
    p += 3 + len;
  }
  const auto bytes = kinflow_test::zip_of_payloads(entries);
  try {
    const auto npz = kinflow::npz_archive::from_bytes(bytes, "fuzz.npz");
    const auto field = kinflow::load_mlp_field<double>(npz);
    const Eigen::Index d = field.dim();
    if (d < 1 || d > 4096) std::abort();  // a loaded field has the dimension of its last layer
    // The weights are finite (the loader checks), so the velocity at finite points is
    // finite unless the network's own arithmetic overflows; it must not crash either way.
    const kinflow::batch<double> X = kinflow::batch<double>::Constant(d, 3, 0.5);
    kinflow::batch<double> V(d, 3);
    field(0.25, X, V);
    if (V.rows() != d || V.cols() != 3) std::abort();
  } catch (const kinflow::model_file_error&) {
  }
  return 0;
}
