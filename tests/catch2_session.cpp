// Catch2 v2's implementation, compiled once for every test executable: the main() of
// tests/catch2_main.cpp and that of the MPI tests (tests/mpi/mpi_catch_main.cpp) both run
// its session through kinflow_test::run_catch_session.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "catch2_session.hpp"

int kinflow_test::run_catch_session(int argc, char** argv) { return Catch::Session().run(argc, argv); }
