#pragma once
/// @file
/// @brief Reads a kinflow::mlp_field from an `.npz` weight file: kinflow::load_mlp_field.
///
/// The network itself (layers, activations, time features, exact divergence) is
/// kinflow::mlp_field in kinflow/models/mlp.hpp; the archive is read by
/// kinflow::npz_archive (kinflow/models/npz.hpp).
///
/// Weight file (`.npz` written by `numpy.savez`):
///
///     layers.<i>.weight   (out_i, in_i)   i = 0 … L-1, float32 or float64
///     layers.<i>.bias     (out_i,)
///     activation          "silu" | "relu" | "tanh" | "gelu"  (uint8 ASCII bytes or a numpy str)
///     time_embedding      "raw" | "sinusoidal"               (same)
///     time_frequencies    (K,) ω_1 … ω_K, only with "sinusoidal"
///     classes             () or (1,) integer: the number of classes of a class-conditional
///                         network (its first layer takes the one-hot code of classes + 1
///                         entries after the time features, the last one the null class;
///                         kinflow/models/mlp.hpp); absent for an unconditional one
///
/// Weights are stored as PyTorch's `nn.Linear` holds them (out × in), in C or Fortran
/// order, and are converted to the field's scalar type. The dimension d is the number of
/// rows of the last weight; the first layer must take d + (number of time features)
/// (+ classes + 1) inputs. Any other array is rejected, so that a misspelt name never goes unnoticed.
/// `examples/models/train_fm_mlp.py` trains a model and writes such a file.

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kinflow/core/errors.hpp"
#include "kinflow/core/products.hpp"
#include "kinflow/detail/gemm.hpp"
#include "kinflow/models/mlp.hpp"
#include "kinflow/models/npz.hpp"

namespace kinflow {

namespace detail {

/// The array @p name of @p npz as text.
/// @throws kinflow::model_file_error when it is missing or not a string
inline std::string npz_text(const npz_archive& npz, const std::string& name) {
  const npy_array& a = npz.at(name);
  const std::string s = a.text();
  if (s.empty())
    file_fail(npz.path(), name, "expected a string (uint8 ASCII bytes or a numpy str), got dtype " +
                                    a.descr + " shape " + a.shape_text());
  return s;
}

/// The array @p name of @p npz as a matrix of @p Scalar (numpy's shape (rows, cols), C or
/// Fortran order).
/// @throws kinflow::model_file_error when it is missing or not a 2-D numeric array
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> npz_matrix(const npz_archive& npz,
                                                                 const std::string& name) {
  const npy_array& a = npz.at(name);
  if (!a.numeric() || a.ndim() != 2)
    file_fail(npz.path(), name, "expected a 2-D numeric array (out, in), got dtype " + a.descr +
                                    " shape " + a.shape_text());
  const Eigen::Index r = a.shape[0], c = a.shape[1];
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> m(r, c);
  for (Eigen::Index i = 0; i < r; ++i)
    for (Eigen::Index j = 0; j < c; ++j)
      m(i, j) = static_cast<Scalar>(a.element(a.fortran_order ? j * r + i : i * c + j));
  return m;
}

/// The array @p name of @p npz as a vector of @p Scalar.
/// @throws kinflow::model_file_error when it is missing or not a 1-D numeric array
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, 1> npz_vector(const npz_archive& npz, const std::string& name) {
  const npy_array& a = npz.at(name);
  if (!a.numeric() || a.ndim() != 1)
    file_fail(npz.path(), name, "expected a 1-D numeric array, got dtype " + a.descr + " shape " +
                                    a.shape_text());
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> v(a.shape[0]);
  for (Eigen::Index i = 0; i < v.size(); ++i) v(i) = static_cast<Scalar>(a.element(i));
  return v;
}

}  // namespace detail

/// Reads an MLP velocity field from the arrays of an `.npz` archive already read (from a
/// file, or from memory with npz_archive::from_bytes); errors name npz.path(). Otherwise as
/// load_mlp_field(const std::string&, matrix_products).
/// @param npz       the archive
/// @param products  which library computes the products, as in the mlp_field constructor
/// @return the field
template <class Scalar = double>
[[nodiscard]] mlp_field<Scalar> load_mlp_field(const npz_archive& npz,
                                               matrix_products products = matrix_products::automatic);

/// Reads an MLP velocity field from an `.npz` weight file (naming convention in the file
/// documentation of kinflow/models/mlp_npz.hpp).
///
///     const auto field = kinflow::load_mlp_field<double>("model.npz");
///
/// @tparam Scalar   float or double: the field's scalar (weights are converted)
/// @param path      the `.npz` file
/// @param products  which library computes the products, as in the mlp_field constructor
/// @return the field
/// @throws kinflow::invalid_argument when @p products is matrix_products::blas in a build
///         without BLAS (checked before the file is read)
/// @throws kinflow::model_file_error naming the file and what is wrong: missing file,
///         truncated or compressed archive, missing or unexpected array, wrong shape,
///         unsupported dtype, non-finite weights, unknown activation or time embedding
template <class Scalar = double>
[[nodiscard]] mlp_field<Scalar> load_mlp_field(const std::string& path,
                                               matrix_products products = matrix_products::automatic) {
  (void)detail::resolve_products(products, "products");  // before the file, so the error names it
  return load_mlp_field<Scalar>(npz_archive(path), products);
}

template <class Scalar>
mlp_field<Scalar> load_mlp_field(const npz_archive& npz, matrix_products products) {
  (void)detail::resolve_products(products, "products");
  const std::string& path = npz.path();
  std::set<std::string> used;
  const auto take = [&](const std::string& name) -> const std::string& {
    used.insert(name);
    return name;
  };

  std::vector<dense_layer<Scalar>> layers;
  for (std::size_t i = 0; npz.contains("layers." + std::to_string(i) + ".weight"); ++i) {
    const std::string w = "layers." + std::to_string(i) + ".weight";
    const std::string b = "layers." + std::to_string(i) + ".bias";
    dense_layer<Scalar> L{detail::npz_matrix<Scalar>(npz, take(w)), detail::npz_vector<Scalar>(npz, take(b))};
    if (L.bias.size() != L.weight.rows())
      detail::file_fail(path, b, "shape (" + std::to_string(L.bias.size()) + ",) does not match " + w +
                                     " of shape (" + std::to_string(L.weight.rows()) + ", " +
                                     std::to_string(L.weight.cols()) + "); expected (" +
                                     std::to_string(L.weight.rows()) + ",)");
    if (!layers.empty() && L.weight.cols() != layers.back().weight.rows())
      detail::file_fail(path, w, "has " + std::to_string(L.weight.cols()) +
                                     " columns; expected the previous layer's output size " +
                                     std::to_string(layers.back().weight.rows()));
    layers.push_back(std::move(L));
  }
  if (layers.empty()) (void)npz.at("layers.0.weight");  // throws, listing what is there

  const std::string act = detail::npz_text(npz, take("activation"));
  mlp_activation activation{};
  if (act == "silu") activation = mlp_activation::silu;
  else if (act == "relu") activation = mlp_activation::relu;
  else if (act == "tanh") activation = mlp_activation::tanh;
  else if (act == "gelu") activation = mlp_activation::gelu;
  else detail::file_fail(path, "activation", "unknown activation '" + act + "' (expected silu, relu, tanh or gelu)");

  time_features<Scalar> time;
  const std::string emb = detail::npz_text(npz, take("time_embedding"));
  if (emb == "raw") {
    time.encoding = time_encoding::raw;
  } else if (emb == "sinusoidal") {
    time.encoding = time_encoding::sinusoidal;
    time.frequencies = detail::npz_vector<Scalar>(npz, take("time_frequencies"));
    if (time.frequencies.size() == 0 || !time.frequencies.allFinite())
      detail::file_fail(path, "time_frequencies", "expected at least one finite frequency");
  } else {
    detail::file_fail(path, "time_embedding", "unknown time embedding '" + emb + "' (expected raw or sinusoidal)");
  }

  Eigen::Index classes = 0;
  if (npz.contains("classes")) {
    const npy_array& a = npz.at(take("classes"));
    const double k = a.numeric() && a.ndim() <= 1 && (a.ndim() == 0 || a.shape[0] == 1) ? a.element(0) : -1.0;
    if (!(k >= 1 && k <= 1e9 && k == std::floor(k)))
      detail::file_fail(path, "classes", "expected one integer >= 1 (the number of classes), got dtype " + a.descr +
                                             " shape " + a.shape_text());
    classes = static_cast<Eigen::Index>(k);
  }

  for (const auto& [name, a] : npz.arrays())
    if (!used.count(name))
      detail::file_fail(path, name, "unexpected array (layers must be numbered 0 … L-1 without gaps; "
                                    "time_frequencies goes only with a sinusoidal embedding)");

  const Eigen::Index d = layers.back().weight.rows();
  const Eigen::Index code = classes > 0 ? classes + 1 : 0;
  if (layers.front().weight.cols() != d + time.size() + code)
    detail::file_fail(path, "layers.0.weight",
                      "has " + std::to_string(layers.front().weight.cols()) + " columns; expected dim + time features" +
                          (code > 0 ? std::string(" + classes + 1") : std::string()) + " = " + std::to_string(d) +
                          " + " + std::to_string(time.size()) + (code > 0 ? " + " + std::to_string(code) : std::string()) +
                          " (dim = rows of the last layer's weight)");
  try {
    return mlp_field<Scalar>(std::move(layers), activation, std::move(time), products, classes);
  } catch (const invalid_argument& e) {
    detail::file_fail(path, {}, e.what());
  }
}

}  // namespace kinflow
