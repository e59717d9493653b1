#pragma once
/// @file
/// @brief Point sets held by the closed-form fields: either a copy owned by the field or
/// a reference to the caller's matrix (the caller chooses with kinflow::keep_reference).

#include <Eigen/Core>
#include <cmath>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "kinflow/core/batch.hpp"
#include "kinflow/core/errors.hpp"

namespace kinflow::detail {

/// A `d x n` column-major point set, either owned or referenced. Copies of an owning
/// storage own their own copy; copies of a referencing one reference the same matrix.
template <class Scalar, int Dim>
class field_points {
public:
  using matrix_type = batch<Scalar, Dim>;
  using view_type = Eigen::Map<const matrix_type>;

  /// Owns a copy of @p m.
  template <class Derived>
  explicit field_points(const Eigen::MatrixBase<Derived>& m)
      : owned_(m), data_(owned_.data()), rows_(owned_.rows()), cols_(owned_.cols()) {}

  /// References @p m (kept alive by the caller).
  field_points(keep_reference_t, const matrix_type& m)
      : data_(m.data()), rows_(m.rows()), cols_(m.cols()), referenced_(true) {}
  /// A temporary would dangle: keep_reference needs an lvalue.
  field_points(keep_reference_t, const matrix_type&&) = delete;

  field_points(const field_points& o)
      : owned_(o.owned_), rows_(o.rows_), cols_(o.cols_), referenced_(o.referenced_) {
    data_ = referenced_ ? o.data_ : owned_.data();
  }
  field_points(field_points&& o) noexcept
      : owned_(std::move(o.owned_)), rows_(o.rows_), cols_(o.cols_), referenced_(o.referenced_) {
    data_ = referenced_ ? o.data_ : owned_.data();
  }
  field_points& operator=(const field_points& o) {
    if (this != &o) {
      owned_ = o.owned_;
      rows_ = o.rows_;
      cols_ = o.cols_;
      referenced_ = o.referenced_;
      data_ = referenced_ ? o.data_ : owned_.data();
    }
    return *this;
  }
  field_points& operator=(field_points&& o) noexcept {
    if (this != &o) {
      owned_ = std::move(o.owned_);
      rows_ = o.rows_;
      cols_ = o.cols_;
      referenced_ = o.referenced_;
      data_ = referenced_ ? o.data_ : owned_.data();
    }
    return *this;
  }
  ~field_points() = default;

  [[nodiscard]] view_type view() const { return view_type(data_, rows_, cols_); }
  [[nodiscard]] const Scalar* data() const noexcept { return data_; }
  [[nodiscard]] Eigen::Index rows() const noexcept { return rows_; }
  [[nodiscard]] Eigen::Index cols() const noexcept { return cols_; }
  [[nodiscard]] bool is_reference() const noexcept { return referenced_; }

private:
  matrix_type owned_;
  const Scalar* data_ = nullptr;
  Eigen::Index rows_ = 0, cols_ = 0;
  bool referenced_ = false;
};

/// Throws kinflow::invalid_argument naming the first non-finite entry of @p m.
template <class Derived>
void require_finite_entries(const Eigen::MatrixBase<Derived>& m, std::string_view name) {
  for (Eigen::Index j = 0; j < m.cols(); ++j)
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      if (!std::isfinite(m(i, j))) {
        std::ostringstream os;
        os << name << "(" << i << ", " << j << ")";
        require(false, os.str(), m(i, j), "every entry must be finite (no NaN or Inf)");
      }
}

}  // namespace kinflow::detail
