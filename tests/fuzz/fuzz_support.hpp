#pragma once
// Shared by kinflow's fuzz targets: what a parsed .npy array promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kinflow/models/npz.hpp"

namespace kinflow_fuzz {

/// Aborts (a finding) unless @p a has a non-negative shape whose elements all lie in its
/// bytes, every element then being read.
inline void check_array(const kinflow::npy_array& a) {
  for (auto n : a.shape)
    if (n < 0) std::abort();
  if (a.itemsize == 0 || a.bytes.size() != static_cast<std::size_t>(a.size()) * a.itemsize) std::abort();
  if (!a.numeric()) {
    (void)a.text();
    return;
  }
  volatile double sum = 0;
  for (Eigen::Index i = 0; i < a.size(); ++i) sum = sum + a.element(i);
}

}  // namespace kinflow_fuzz
