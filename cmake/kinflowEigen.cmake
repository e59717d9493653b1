# Finding Eigen for kinflow's own build.
#
# kinflow works with Eigen 3.3 up to 5.x. A version range cannot be passed to
# find_package: Eigen's own version file (SameMajorVersion) rejects any request whose
# major version differs from the installed one, so "3.3...<6" never matches Eigen 5 and a
# plain "3.3" rejects it too. We therefore look for Eigen without a version and check the
# version it reports ourselves. The installed kinflowConfig.cmake does the same check.

set(KINFLOW_EIGEN_VERSION_MIN "3.3")
set(KINFLOW_EIGEN_VERSION_TOO_NEW "6")

macro(kinflow_find_eigen)
  # A parent project may already provide the target (e.g. Eigen added from source).
  if(NOT TARGET Eigen3::Eigen)
    find_package(Eigen3 NO_MODULE)
    if(NOT TARGET Eigen3::Eigen)
      message(FATAL_ERROR
        "kinflow: Eigen (${KINFLOW_EIGEN_VERSION_MIN} to 5.x) was not found.\n"
        "On Debian or Ubuntu run `bash scripts/install-deps.sh` (package libeigen3-dev); "
        "elsewhere point Eigen3_DIR or CMAKE_PREFIX_PATH at an Eigen installation.")
    endif()
  endif()
  set(_kinflow_eigen_version "${Eigen3_VERSION}")
  if(NOT _kinflow_eigen_version)
    set(_kinflow_eigen_version "${EIGEN3_VERSION_STRING}")
  endif()
  if(_kinflow_eigen_version)
    if(_kinflow_eigen_version VERSION_LESS KINFLOW_EIGEN_VERSION_MIN
       OR NOT _kinflow_eigen_version VERSION_LESS KINFLOW_EIGEN_VERSION_TOO_NEW)
      message(FATAL_ERROR
        "kinflow: needs Eigen ${KINFLOW_EIGEN_VERSION_MIN} to 5.x, found ${_kinflow_eigen_version}"
        " (Eigen3_DIR = ${Eigen3_DIR})")
    endif()
    message(STATUS "kinflow: using Eigen ${_kinflow_eigen_version}")
  endif()
  unset(_kinflow_eigen_version)
endmacro()
