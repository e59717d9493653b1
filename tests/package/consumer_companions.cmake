# Shared by both consumer projects: links kinflow::native (and kinflow::blas when there)
# into kinflow_consumer and tells the program what to check.
#
# kinflow::native must carry -march=native exactly when this compiler takes the flag;
# the program then checks that the flag reached its compilation (the host CPU's AVX2 is
# seen by the preprocessor).
if(NOT TARGET kinflow::native)
  message(FATAL_ERROR "kinflow::native is missing")
endif()
target_link_libraries(kinflow_consumer PRIVATE kinflow::native)
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag("-march=native" CONSUMER_CXX_ACCEPTS_MARCH_NATIVE)
get_target_property(_native_options kinflow::native INTERFACE_COMPILE_OPTIONS)
if(CONSUMER_CXX_ACCEPTS_MARCH_NATIVE AND NOT CMAKE_CROSSCOMPILING)
  if(NOT "-march=native" IN_LIST _native_options)
    message(FATAL_ERROR "kinflow::native lacks -march=native: ${_native_options}")
  endif()
  target_compile_definitions(kinflow_consumer PRIVATE CONSUMER_EXPECT_NATIVE=1)
endif()

if(TARGET kinflow::blas)
  target_link_libraries(kinflow_consumer PRIVATE kinflow::blas)
  target_compile_definitions(kinflow_consumer PRIVATE CONSUMER_EXPECT_BLAS=1)
elseif(KINFLOW_EXPECT_BLAS)
  message(FATAL_ERROR "kinflow::blas is missing although kinflow's own build found BLAS")
endif()
