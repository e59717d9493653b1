#pragma once
/// @file
/// @brief TorchScript modules for the command-line programs, loaded on demand.
///
/// Linking libtorch costs every start of a program about 0.7 s of CPU (its static
/// initializers and some 290 shared libraries), whether a `.pt` model is used or not. So the
/// programs do not link it: the adapter (include/kinflow/models/torchscript.hpp) is compiled
/// into a plugin, `libkinflow-torchscript-plugin.so` (examples/cli/torchscript_plugin.cpp),
/// opened with `dlopen` the first time a `.pt` file is given. The plugin speaks the small C
/// interface below; cli::torchscript_plugin_field turns it back into a batched field that
/// throws the adapter's own exceptions with the adapter's own messages.

#include <kinflow/core/batch.hpp>
#include <kinflow/core/errors.hpp>

#include <Eigen/Core>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#if defined(KINFLOW_TORCHSCRIPT_PLUGIN)
#include <dlfcn.h>
#endif

extern "C" {

/// What went wrong in a plugin call, so that the caller rethrows the adapter's exception.
enum kinflow_plugin_status {
  kinflow_plugin_ok = 0,
  kinflow_plugin_model_file_error = 1,     ///< kinflow::model_file_error
  kinflow_plugin_dimension_mismatch = 2,   ///< kinflow::dimension_mismatch
  kinflow_plugin_invalid_argument = 3,     ///< kinflow::invalid_argument
  kinflow_plugin_other_error = 4           ///< any other exception (std::runtime_error)
};

/// Loads the module @p path as a field of dimension @p dim, of doubles when @p is_double is
/// nonzero, floats otherwise. Returns a handle, or null with the error in @p status and
/// @p message (a zero-terminated string of at most @p capacity bytes).
using kinflow_torchscript_open_fn = void* (*)(const char* path, long dim, int is_double, int* status,
                                              char* message, std::size_t capacity);
/// `V.col(j) = v(X.col(j), times[j])` for @p columns contiguous column-major d × columns
/// matrices of the handle's scalar type. Returns a kinflow_plugin_status, with the error's
/// message in @p message.
using kinflow_torchscript_evaluate_fn = int (*)(void* handle, const void* times, const void* X, void* V,
                                                long columns, char* message, std::size_t capacity);
/// Releases a handle of kinflow_torchscript_open.
using kinflow_torchscript_close_fn = void (*)(void* handle);
}

namespace kinflow_cli {

/// Throws the exception a plugin call reported (nothing for kinflow_plugin_ok).
inline void rethrow_plugin_status(int status, const char* message) {
  switch (status) {
    case kinflow_plugin_ok: return;
    case kinflow_plugin_model_file_error: throw kinflow::model_file_error(message);
    case kinflow_plugin_dimension_mismatch: throw kinflow::dimension_mismatch(message);
    case kinflow_plugin_invalid_argument: throw kinflow::invalid_argument(message);
    default: throw std::runtime_error(message);
  }
}

#if defined(KINFLOW_TORCHSCRIPT_PLUGIN)

/// The plugin's entry points, opened once per process (and never closed: libtorch's static
/// destructors run at exit).
struct torchscript_plugin {
  kinflow_torchscript_open_fn open = nullptr;
  kinflow_torchscript_evaluate_fn evaluate = nullptr;
  kinflow_torchscript_close_fn close = nullptr;

  /// The plugin, loaded on the first call.
  /// @throws kinflow::model_file_error when the plugin (built beside the program, at the
  ///         path KINFLOW_TORCHSCRIPT_PLUGIN) cannot be opened
  static const torchscript_plugin& get() {
    static const torchscript_plugin plugin = load();
    return plugin;
  }

private:
  static torchscript_plugin load() {
    const char* path = KINFLOW_TORCHSCRIPT_PLUGIN;
    void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      throw kinflow::model_file_error(std::string("kinflow: cannot open the TorchScript plugin ") + path + ": " +
                                      (why ? why : "unknown error"));
    }
    torchscript_plugin p;
    p.open = reinterpret_cast<kinflow_torchscript_open_fn>(dlsym(lib, "kinflow_torchscript_open"));
    p.evaluate = reinterpret_cast<kinflow_torchscript_evaluate_fn>(dlsym(lib, "kinflow_torchscript_evaluate"));
    p.close = reinterpret_cast<kinflow_torchscript_close_fn>(dlsym(lib, "kinflow_torchscript_close"));
    if (!p.open || !p.evaluate || !p.close)
      throw kinflow::model_file_error(std::string("kinflow: the TorchScript plugin ") + path +
                                      " lacks kinflow_torchscript_open/evaluate/close");
    return p;
  }
};

/// A TorchScript module `forward(t[B], x[B, d]) -> v[B, d]` as a batched velocity field,
/// evaluated by the plugin: the same results and exceptions as kinflow::torchscript_field.
/// Copies share the module; calls from several threads at once are serialized by the plugin.
/// @tparam Scalar float or double
template <class Scalar>
class torchscript_plugin_field {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "torchscript_plugin_field supports float and double");

public:
  using matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

  /// Loads the module @p path for a field of dimension @p dim.
  /// @throws kinflow::model_file_error naming the file when it is missing or not loadable,
  ///         or when the plugin cannot be opened
  /// @throws kinflow::invalid_argument for dim < 1
  torchscript_plugin_field(const std::string& path, Eigen::Index dim) : dim_(dim) {
    const torchscript_plugin& p = torchscript_plugin::get();
    char message[1024] = {};
    int status = kinflow_plugin_ok;
    void* h = p.open(path.c_str(), static_cast<long>(dim), std::is_same_v<Scalar, double> ? 1 : 0, &status,
                     message, sizeof message);
    if (!h) rethrow_plugin_status(status == kinflow_plugin_ok ? kinflow_plugin_other_error : status, message);
    handle_ = std::shared_ptr<void>(h, p.close);
  }

  /// The dimension d of x and v.
  [[nodiscard]] Eigen::Index dim() const noexcept { return dim_; }

  /// Batched velocities at one time @p t: `V.col(j) = v(X.col(j), t)`.
  template <class DerivedX, class DerivedV>
  void operator()(Scalar t, const Eigen::MatrixBase<DerivedX>& X, Eigen::MatrixBase<DerivedV>& V) {
    times_.assign(static_cast<std::size_t>(X.cols()), t);
    evaluate(X, V);
  }

  /// Batched velocities with one time per column: `V.col(j) = v(X.col(j), T(j))`.
  template <class DerivedX, class DerivedV>
  void velocity_at_times(const kinflow::sample_times<Scalar>& T, const Eigen::MatrixBase<DerivedX>& X,
                         Eigen::MatrixBase<DerivedV>& V) {
    kinflow::detail::require_dimension("number of times", T.size(), X.cols());
    times_.assign(T.data(), T.data() + T.size());
    evaluate(X, V);
  }

private:
  template <class DerivedX, class DerivedV>
  void evaluate(const Eigen::MatrixBase<DerivedX>& X, Eigen::MatrixBase<DerivedV>& V) {
    static_assert(std::is_same_v<typename DerivedV::Scalar, Scalar>, "V must hold the field's scalar");
    kinflow::detail::require_dimension("state dimension (rows of X)", X.rows(), dim_);
    kinflow::detail::require_dimension("rows of V", V.rows(), dim_);
    kinflow::detail::require_dimension("columns of V", V.cols(), X.cols());
    x_ = X.template cast<Scalar>();
    v_.resize(dim_, X.cols());
    char message[1024] = {};
    const int status = torchscript_plugin::get().evaluate(handle_.get(), times_.data(), x_.data(), v_.data(),
                                                          static_cast<long>(X.cols()), message, sizeof message);
    rethrow_plugin_status(status, message);
    V = v_;
  }

  Eigen::Index dim_;
  std::shared_ptr<void> handle_;
  std::vector<Scalar> times_;
  matrix x_, v_;
};

#endif  // KINFLOW_TORCHSCRIPT_PLUGIN

}  // namespace kinflow_cli
