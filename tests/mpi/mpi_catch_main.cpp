// The main() of kinflow's MPI tests: MPI_Init, Catch2's session on every rank, and one
// verdict for all ranks — the process fails when any rank's tests failed, so that mpirun
// (and CTest) report a failure wherever it happened. Every rank prints its own report.
#include <mpi.h>

#include <cstdio>
#include <string>

#if defined(KINFLOW_CATCH2_V3)
#include <catch2/catch_session.hpp>
#else
#include "../catch2_session.hpp"  // Catch2 v2: its implementation is tests/catch2_session.cpp
#endif

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int failed = 0;
#if defined(KINFLOW_CATCH2_V3)
  failed = Catch::Session().run(argc, argv);
#else
  failed = kinflow_test::run_catch_session(argc, argv);
#endif
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("kinflow MPI tests on %d rank%s: %s\n", size, size == 1 ? "" : "s",
                any == 0 ? "passed on every rank" : "FAILED on at least one rank");
  MPI_Finalize();
  return any == 0 ? 0 : 1;
}
