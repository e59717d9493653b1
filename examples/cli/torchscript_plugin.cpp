/// @file
/// @brief The TorchScript adapter as a plugin of the command-line programs (the C interface
/// of examples/cli/torchscript_plugin.hpp around kinflow::torchscript_field).

#include <kinflow/models/torchscript.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <variant>

#include "torchscript_plugin.hpp"

namespace {

/// One loaded module; its calls are serialized (the field's staging buffers are shared).
struct handle {
  std::variant<kinflow::torchscript_field<float>, kinflow::torchscript_field<double>> field;
  std::mutex mutex;
};

void copy_message(const char* what, char* message, std::size_t capacity) {
  if (capacity == 0) return;
  const std::size_t n = std::min(std::strlen(what), capacity - 1);
  std::memcpy(message, what, n);
  message[n] = '\0';
}

/// Runs @p work, turning an exception into a kinflow_plugin_status and its message.
template <class Work>
int guarded(Work&& work, char* message, std::size_t capacity) {
  try {
    work();
    return kinflow_plugin_ok;
  } catch (const kinflow::model_file_error& e) {
    copy_message(e.what(), message, capacity);
    return kinflow_plugin_model_file_error;
  } catch (const kinflow::dimension_mismatch& e) {
    copy_message(e.what(), message, capacity);
    return kinflow_plugin_dimension_mismatch;
  } catch (const kinflow::invalid_argument& e) {
    copy_message(e.what(), message, capacity);
    return kinflow_plugin_invalid_argument;
  } catch (const std::exception& e) {
    copy_message(e.what(), message, capacity);
    return kinflow_plugin_other_error;
  } catch (...) {
    copy_message("kinflow: unknown error in the TorchScript plugin", message, capacity);
    return kinflow_plugin_other_error;
  }
}

template <class Scalar>
void evaluate(kinflow::torchscript_field<Scalar>& f, const void* times, const void* X, void* V, long columns) {
  const Eigen::Index d = f.dim();
  const Eigen::Map<const kinflow::sample_times<Scalar>> T(static_cast<const Scalar*>(times), columns);
  const Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>> x(static_cast<const Scalar*>(X), d,
                                                                                  columns);
  Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>> v(static_cast<Scalar*>(V), d, columns);
  f.velocity_at_times(T, x, v);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* kinflow_torchscript_open(const char* path, long dim, int is_double,
                                                                      int* status, char* message,
                                                                      std::size_t capacity) {
  handle* h = nullptr;
  *status = guarded(
      [&] {
        h = is_double ? new handle{kinflow::torchscript_field<double>(path, dim), {}}
                      : new handle{kinflow::torchscript_field<float>(path, dim), {}};
      },
      message, capacity);
  return h;
}

__attribute__((visibility("default"))) int kinflow_torchscript_evaluate(void* h, const void* times, const void* X,
                                                                        void* V, long columns, char* message,
                                                                        std::size_t capacity) {
  auto* p = static_cast<handle*>(h);
  return guarded(
      [&] {
        const std::lock_guard<std::mutex> lock(p->mutex);
        std::visit([&](auto& f) { evaluate(f, times, X, V, columns); }, p->field);
      },
      message, capacity);
}

__attribute__((visibility("default"))) void kinflow_torchscript_close(void* h) { delete static_cast<handle*>(h); }
}
