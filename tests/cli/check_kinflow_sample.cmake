# End-to-end check of the kinflow-sample command on tiny cases: files, columns, row counts,
# and argument errors (exit status 2 with a one-line message naming the flag).
#   cmake -DEXE=<kinflow-sample> -DWORK=<scratch dir> -P check_kinflow_sample.cmake

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

function(run_ok name)
  execute_process(COMMAND "${EXE}" ${ARGN} --quiet --out "${WORK}/${name}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: exit ${rc}\n${out}\n${err}")
  endif()
endfunction()

function(expect_lines file count)
  file(STRINGS "${file}" lines)
  list(LENGTH lines n)
  if(NOT n EQUAL count)
    message(FATAL_ERROR "${file}: ${n} lines, expected ${count}")
  endif()
endfunction()

function(expect_header file header)
  file(STRINGS "${file}" first LIMIT_COUNT 1)
  if(NOT first STREQUAL "${header}")
    message(FATAL_ERROR "${file}: header\n  ${first}\nexpected\n  ${header}")
  endif()
endfunction()

function(expect_contains file text)
  file(READ "${file}" content)
  string(FIND "${content}" "${text}" at)
  if(at LESS 0)
    message(FATAL_ERROR "${file} does not contain '${text}'")
  endif()
endfunction()

function(run_fails flag)
  execute_process(COMMAND "${EXE}" ${ARGN} --out "${WORK}/bad" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 2)
    message(FATAL_ERROR "'${ARGN}': exit ${rc}, expected 2\n${out}\n${err}")
  endif()
  string(FIND "${err}" "${flag}" at)
  if(at LESS 0)
    message(FATAL_ERROR "'${ARGN}': the message does not name ${flag}:\n${err}")
  endif()
  string(STRIP "${err}" stripped)
  string(FIND "${stripped}" "\n" newline)
  if(NOT newline EQUAL -1)
    message(FATAL_ERROR "'${ARGN}': expected a one-line message, got:\n${err}")
  endif()
endfunction()

# 1. Named dataset, empirical field, Euler, trajectories.
run_ok(euler --dataset 8gaussians --n-train 50 --samples 40 --steps 10 --trajectories 3)
expect_header("${WORK}/euler/samples.csv"
              "x_0,x_1,kpe,kpe_early,kpe_late,nfe,status,nn_dist,nn_ratio,memorized,log_density")
expect_lines("${WORK}/euler/samples.csv" 41)
expect_lines("${WORK}/euler/trajectories.csv" 34)  # header + 3 samples x (10 steps + start)
foreach(key "\"settings\"" "\"f_mem\"" "\"ci95\"" "\"sliced_w2\"" "\"wall_seconds\"" "\"median\"")
  expect_contains("${WORK}/euler/summary.json" "${key}")
endforeach()
expect_contains("${WORK}/euler/samples.csv" ",10,success,")  # NFE = 1 stage x 10 steps

# 2. Adaptive solver, KTS, smoothed field, float.
run_ok(dopri --dataset moons --n-train 60 --samples 25 --solver dopri5 --field smoothed:0.1
       --alpha0 0.01 --beta0 0.01 --precision float --kpe left)
expect_lines("${WORK}/dopri/samples.csv" 26)
expect_contains("${WORK}/dopri/summary.json" "\"alpha0\": 0.01")

# 3. Any d from CSV, with noise from CSV: 3-D training set with a header line.
file(WRITE "${WORK}/train3.csv" "a,b,c\n0,0,1\n1,0,0\n0,1,0\n1,1,1\n0.5,0.5,0.5\n")
file(WRITE "${WORK}/noise3.csv" "0.1,0.2,0.3\n-1,0.5,2\n")
run_ok(csv --train "${WORK}/train3.csv" --noise "${WORK}/noise3.csv" --solver rk4 --steps 8 --grid cosine)
expect_header("${WORK}/csv/samples.csv" "x_0,x_1,x_2,kpe,kpe_early,kpe_late,nfe,status,nn_dist,nn_ratio,memorized")
expect_lines("${WORK}/csv/samples.csv" 3)
expect_contains("${WORK}/csv/samples.csv" ",32,success,")  # NFE = 4 stages x 8 steps

# 4. Argument errors.
run_fails("--bogus" --bogus 1)
run_fails("--steps" --steps 0)
run_fails("--solver" --solver rk5)
run_fails("--grid" --grid spiral)
run_fails("--beta0" --beta0 0.06)
run_fails("--field" --field gmm --dataset moons)
run_fails("--dataset" --dataset nope)
run_fails("--samples" --samples)
run_fails("--train" --train "${WORK}/missing.csv")
file(WRITE "${WORK}/bad.csv" "1,2\n3,x\n")
run_fails("line 2, column 2" --train "${WORK}/bad.csv")
message(STATUS "kinflow-sample: all end-to-end checks passed")
