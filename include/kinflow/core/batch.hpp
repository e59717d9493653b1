#pragma once
/// @file
/// @brief Batch and point types: a batch of B samples in dimension d is a d x B
/// column-major Eigen matrix, one column per sample.

#include <Eigen/Core>
#include <concepts>
#include <type_traits>

namespace kinflow {

/// A batch of samples: `d x B`, one column per sample (each sample contiguous).
/// `Dim` is the dimension d, fixed at compile time (e.g. 2 for toy data) or
/// `Eigen::Dynamic`.
template <class Scalar, int Dim = Eigen::Dynamic>
using batch = Eigen::Matrix<Scalar, Dim, Eigen::Dynamic>;

/// One sample: a column vector of dimension d.
template <class Scalar, int Dim = Eigen::Dynamic>
using point = Eigen::Matrix<Scalar, Dim, 1>;

/// Per-sample scalars (energies, times, step sizes), one entry per column of a batch.
template <class Scalar>
using per_sample = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// Per-sample times passed to fields that accept one time per column (row vector,
/// so that entry i belongs to column i of the batch).
template <class Scalar>
using sample_times = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

/// One class index per sample of a batch (entry i belongs to column i): the conditions of
/// a conditional field (kinflow/core/conditions.hpp). kinflow::null_class (-1) means no
/// class, i.e. the unconditional field.
using class_labels = Eigen::Matrix<Eigen::Index, Eigen::Dynamic, 1>;

/// The class index that means "no class": a conditional field given it is unconditional.
inline constexpr Eigen::Index null_class = -1;

/// Floating-point scalar types kinflow computes in (float, double, long double).
template <class T>
concept real_scalar = std::floating_point<T>;

/// Traits of a batch matrix type: its scalar and compile-time dimension.
template <class Batch>
struct batch_traits;

/// Traits of `kinflow::batch<Scalar, Dim>`, a column-major `d x B` matrix.
/// @tparam Scalar the floating-point scalar
/// @tparam Dim    d fixed at compile time, or Eigen::Dynamic
template <class Scalar, int Dim>
struct batch_traits<Eigen::Matrix<Scalar, Dim, Eigen::Dynamic>> {
  using scalar = Scalar;                ///< the scalar type
  static constexpr int dim = Dim;       ///< d at compile time, or Eigen::Dynamic
  using point_type = point<Scalar, Dim>;  ///< one sample (a column)
};

/// True for `kinflow::batch<Scalar, Dim>` types (column-major d x Dynamic Eigen matrices).
template <class T>
concept batch_matrix = requires { typename batch_traits<std::remove_cvref_t<T>>::scalar; } &&
                       real_scalar<typename batch_traits<std::remove_cvref_t<T>>::scalar>;

/// Tag type of kinflow::keep_reference.
struct keep_reference_t {
  explicit keep_reference_t() = default;
};

/// Passed first to a field's constructor, asks the field to keep a reference to the
/// caller's point set instead of copying it. The caller then keeps the matrix alive and
/// unchanged for the field's lifetime (the field caches per-point quantities such as
/// squared norms). Without the tag, fields copy their data.
inline constexpr keep_reference_t keep_reference{};

}  // namespace kinflow
