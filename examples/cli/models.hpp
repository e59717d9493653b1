#pragma once
/// @file
/// @brief Trained models on the command line (examples/models/README.md): MLP weights
/// (`.npz`, include/kinflow/models/mlp_npz.hpp) and, in a build with the TorchScript adapter
/// (`-DKINFLOW_WITH_TORCH=ON`, which defines KINFLOW_HAVE_TORCHSCRIPT), TorchScript modules
/// (`.pt`, include/kinflow/models/torchscript.hpp, evaluated by a plugin that is loaded only
/// when a `.pt` file is given: examples/cli/torchscript_plugin.hpp). A file that cannot be
/// used is a usage error naming the flag that gave it.

#include <kinflow/models/mlp_npz.hpp>
#if KINFLOW_HAVE_TORCHSCRIPT
#include "torchscript_plugin.hpp"
#endif

#include <Eigen/Core>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "command_line.hpp"

namespace kinflow_cli {

/// True in a build with the TorchScript adapter.
#if KINFLOW_HAVE_TORCHSCRIPT
inline constexpr bool have_torchscript = true;
#else
inline constexpr bool have_torchscript = false;
#endif

/// Ends the program with the usage error of a TorchScript file @p path given to @p flag in
/// a build without the adapter.
[[noreturn]] inline void no_torchscript(std::string_view flag, const std::string& path) {
  usage_error(std::string(flag) + " = '" + path + "': TorchScript modules need a build with -DKINFLOW_WITH_TORCH=ON " +
              "and libtorch-dev; use the model's .npz weights");
}

/// What @p load returns; a kinflow::model_file_error it throws becomes a usage error
/// `<flag>: <what>`.
template <class Load>
[[nodiscard]] auto load_model(std::string_view flag, Load&& load) -> decltype(load()) {
  try {
    return std::forward<Load>(load)();
  } catch (const kinflow::model_file_error& e) {
    usage_error(std::string(flag) + ": " + e.what());
  }
}

/// The MLP velocity field of the weights file @p path (kinflow::load_mlp_field), given by
/// @p flag.
template <class Scalar>
[[nodiscard]] kinflow::mlp_field<Scalar> load_mlp(std::string_view flag, const std::string& path) {
  return load_model(flag, [&] { return kinflow::load_mlp_field<Scalar>(path); });
}

#if KINFLOW_HAVE_TORCHSCRIPT
/// The TorchScript module @p path (given by @p flag) as a field of dimension
/// `probe.rows()`, evaluated once on the first column of @p probe, so that a module of
/// another dimension, signature or output shape is reported at once rather than in the
/// middle of a run.
template <class Scalar, class Derived>
[[nodiscard]] torchscript_plugin_field<Scalar> load_torchscript(std::string_view flag, const std::string& path,
                                                                const Eigen::MatrixBase<Derived>& probe) {
  return load_model(flag, [&] {
    torchscript_plugin_field<Scalar> f(path, probe.rows());
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x = probe.leftCols(1).template cast<Scalar>(),
                                                          v(probe.rows(), 1);
    try {
      f(Scalar(0), x, v);
    } catch (const kinflow::invalid_argument& e) {
      throw kinflow::model_file_error(e.what());
    }
    return f;
  });
}
#endif

/// The number of classes of the class-conditional model of the file @p path given by
/// @p flag (MLP weights with a `classes` array); a usage error for any other model.
[[nodiscard]] inline Eigen::Index model_classes(std::string_view flag, const std::string& path) {
  if (std::filesystem::path(path).extension() == ".pt")
    usage_error(std::string(flag) + " = '" + path + "': --class/--classes take a class-conditional .npz MLP (a "
                "TorchScript module with classes is sampled from C++ or Python)");
  const Eigen::Index k = load_mlp<double>(flag, path).classes();
  if (k == 0)
    usage_error(std::string(flag) + " = '" + path + "' takes no class input (its weights have no 'classes' array); "
                "leave out --class/--classes, or train a class-conditional model "
                "(examples/models/train_conditional_mlp.py)");
  return k;
}

/// Calls @p visit with the trained field of the file @p path given by @p flag, chosen by
/// its extension — `.pt`: a TorchScript module (a usage error in a build without the
/// adapter), otherwise MLP weights — which must have the dimension `probe.rows()` of the
/// data.
template <class Scalar, class Derived, class Visit>
void visit_model(std::string_view flag, const std::string& path, const Eigen::MatrixBase<Derived>& probe,
                 Visit&& visit) {
  if (std::filesystem::path(path).extension() == ".pt") {
#if KINFLOW_HAVE_TORCHSCRIPT
    auto field = load_torchscript<Scalar>(flag, path, probe);
    visit(field);
    return;
#else
    no_torchscript(flag, path);
#endif
  }
  auto field = load_mlp<Scalar>(flag, path);
  if (field.dim() != probe.rows())
    usage_error(std::string(flag) + " = '" + path + "' is a " + std::to_string(field.dim()) +
                "-D field, the data are " + std::to_string(probe.rows()) + "-D");
  visit(field);
}

}  // namespace kinflow_cli
