// kinflow/version.hpp: the macros agree with each other and with the version CMake read.
#include "kinflow_catch.hpp"

#include <kinflow/version.hpp>

#include <string>

static_assert(KINFLOW_VERSION ==
              KINFLOW_VERSION_MAJOR * 10000 + KINFLOW_VERSION_MINOR * 100 + KINFLOW_VERSION_PATCH);

TEST_CASE("the version string is built from the three numbers", "[version]") {
  const std::string expected = std::to_string(KINFLOW_VERSION_MAJOR) + "." +
                               std::to_string(KINFLOW_VERSION_MINOR) + "." +
                               std::to_string(KINFLOW_VERSION_PATCH);
  CHECK(std::string(KINFLOW_VERSION_STRING) == expected);
}

#ifdef KINFLOW_TEST_CMAKE_VERSION
TEST_CASE("CMake's project version is the header's", "[version]") {
  CHECK(std::string(KINFLOW_VERSION_STRING) == KINFLOW_TEST_CMAKE_VERSION);
}
#endif
