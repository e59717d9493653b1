#pragma once
// Command-line helpers shared by kinflow's example programs: argument errors end the
// program with exit status 2 and one line naming the flag and the valid range.

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#if KINFLOW_HAVE_TORCHSCRIPT
#include <kinflow/models/torchscript.hpp>
#endif

namespace kinflow_examples {

/// The name error messages start with; each program sets it first thing in main().
inline std::string program_name = "kinflow";

/// Prints "<program>: <msg>" on stderr and exits with status 2 (a usage error).
[[noreturn]] inline void usage_error(const std::string& msg) {
  std::fprintf(stderr, "%s: %s\n", program_name.c_str(), msg.c_str());
  std::exit(2);
}

/// The integer value @p v of @p flag, which must lie in [lo, hi].
inline long to_long(const std::string& flag, const std::string& v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    usage_error(flag + " = '" + v + "' is invalid; expected an integer in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  return x;
}

/// The finite number @p v of @p flag, in [lo, hi] (or [lo, hi) with @p open_hi).
inline double to_double(const std::string& flag, const std::string& v, double lo, double hi, bool open_hi = false) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  const bool ok = !v.empty() && *end == '\0' && std::isfinite(x) && x >= lo && (open_hi ? x < hi : x <= hi);
  if (!ok) {
    std::ostringstream os;
    os << flag << " = '" << v << "' is invalid; expected a number in [" << lo << ", " << hi << (open_hi ? ")" : "]");
    usage_error(os.str());
  }
  return x;
}

/// @p v with the characters JSON strings cannot hold as they are escaped (no quotes added).
inline std::string json_escape(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
      continue;
    }
    o += c;
  }
  return o;
}

#if KINFLOW_HAVE_TORCHSCRIPT
/// Loads a TorchScript module as a field of dimension X.rows() and evaluates it once on the
/// first column of @p X, so that a module of another dimension, signature or output shape
/// is reported at once (as kinflow::model_file_error) rather than in the middle of a run.
template <class Scalar, class Derived>
kinflow::torchscript_field<Scalar> load_torchscript_checked(const std::string& path,
                                                            const Eigen::MatrixBase<Derived>& X) {
  kinflow::torchscript_field<Scalar> f(path, X.rows());
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x = X.leftCols(1).template cast<Scalar>(), v(X.rows(), 1);
  try {
    f(Scalar(0), x, v);
  } catch (const kinflow::invalid_argument& e) {
    throw kinflow::model_file_error(e.what());
  }
  return f;
}
#endif

}  // namespace kinflow_examples
