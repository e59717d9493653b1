# End-to-end check of the kinflow-sample command on tiny cases: files, columns, row counts,
# and argument errors (exit status 2 with a one-line message naming the flag).
#   cmake -DEXE=<kinflow-sample> -DWORK=<scratch dir> -DSOURCE_DIR=<repository>
#         [-DWITH_TORCHSCRIPT=ON] -P check_kinflow_sample.cmake

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

# 2b. The log-likelihood beside the KPE, with the new embedded pair; and on the exact
# mixture field, where the log-likelihood of a sample is the mixture's log density there.
run_ok(lik --dataset 8gaussians --n-train 50 --samples 20 --solver tsit5 --field smoothed:0.2 --likelihood)
expect_header("${WORK}/lik/samples.csv"
              "x_0,x_1,kpe,kpe_early,kpe_late,nfe,status,nn_dist,nn_ratio,memorized,log_density,log_likelihood")
expect_lines("${WORK}/lik/samples.csv" 21)
expect_contains("${WORK}/lik/summary.json" "\"log_likelihood\": {\"mean\": ")
expect_contains("${WORK}/lik/summary.json" "\"divergence\": \"exact\"")
expect_contains("${WORK}/lik/summary.json" "\"solver\": \"tsit5\"")

# 3. Any d from CSV, with noise from CSV: 3-D training set with a header line.
file(WRITE "${WORK}/train3.csv" "a,b,c\n0,0,1\n1,0,0\n0,1,0\n1,1,1\n0.5,0.5,0.5\n")
file(WRITE "${WORK}/noise3.csv" "0.1,0.2,0.3\n-1,0.5,2\n")
run_ok(csv --train "${WORK}/train3.csv" --noise "${WORK}/noise3.csv" --solver rk4 --steps 8 --grid cosine)
expect_header("${WORK}/csv/samples.csv" "x_0,x_1,x_2,kpe,kpe_early,kpe_late,nfe,status,nn_dist,nn_ratio,memorized")
expect_lines("${WORK}/csv/samples.csv" 3)
expect_contains("${WORK}/csv/samples.csv" ",32,success,")  # NFE = 4 stages x 8 steps

# The grids by name, through the library's one mapping (its formulas are tested there).
run_ok(beta --samples 20 --n-train 50 --solver heun --steps 6 --grid beta:0.5,2)
expect_contains("${WORK}/beta/summary.json" "\"grid\": \"beta\"")
expect_contains("${WORK}/beta/summary.json" "\"grid_spec\": \"beta:0.5,2\"")
expect_contains("${WORK}/beta/samples.csv" ",12,success,")  # NFE = 2 stages x 6 steps
run_ok(dynshift --samples 20 --n-train 50 --steps 5 --grid dynamic-shift:1.15)
expect_contains("${WORK}/dynshift/summary.json" "\"grid_spec\": \"dynamic-shift:1.15\"")
run_ok(accel --samples 20 --n-train 50 --steps 5 --grid acceleration)
expect_contains("${WORK}/accel/summary.json" "\"grid_spec\": \"acceleration:1\"")
# A grid from a file: the uniform grid's times give the same samples as --steps 4; other
# times set the steps (Euler: one evaluation each).
file(WRITE "${WORK}/uniform4.csv" "t\n0\n0.25\n0.5\n0.75\n1\n")
run_ok(named4 --samples 20 --n-train 50 --solver rk4 --steps 4)
run_ok(file4 --samples 20 --n-train 50 --solver rk4 --grid-file "${WORK}/uniform4.csv")
file(READ "${WORK}/named4/samples.csv" _named)
file(READ "${WORK}/file4/samples.csv" _given)
if(NOT _named STREQUAL _given)
  message(FATAL_ERROR "--grid-file with the uniform grid's times: samples.csv differs from --steps 4's")
endif()
expect_contains("${WORK}/file4/summary.json" "\"grid_file\": \"${WORK}/uniform4.csv\"")
file(WRITE "${WORK}/times3.csv" "0\n0.1\n0.5\n1\n")
run_ok(file3 --samples 20 --n-train 50 --solver sde-euler --grid-file "${WORK}/times3.csv" --last-step mean)
expect_contains("${WORK}/file3/samples.csv" ",3,success,")
expect_contains("${WORK}/file3/summary.json" "\"steps\": 3")

# 4. A trained model (--model): MLP weights, and a TorchScript module when the build has
#    the adapter (WITH_TORCHSCRIPT); the same model both ways gives the same samples.
set(models "${SOURCE_DIR}/examples/models")
run_ok(mlp --model "${models}/fm_mlp_8gaussians.npz" --train "${models}/fm_mlp_8gaussians_train.csv"
       --samples 30 --solver heun --steps 10 --beta0 0.02)
expect_lines("${WORK}/mlp/samples.csv" 31)
expect_contains("${WORK}/mlp/summary.json" "\"field\": \"model\"")
expect_contains("${WORK}/mlp/summary.json" "fm_mlp_8gaussians.npz")
expect_contains("${WORK}/mlp/samples.csv" ",20,success,")  # NFE = 2 stages x 10 steps
if(WITH_TORCHSCRIPT)
  run_ok(pt --model "${models}/fm_mlp_8gaussians.pt" --train "${models}/fm_mlp_8gaussians_train.csv"
         --samples 30 --solver heun --steps 10 --beta0 0.02)
  file(STRINGS "${WORK}/mlp/samples.csv" a)
  file(STRINGS "${WORK}/pt/samples.csv" b)
  # Same model, same noise: the first row's coordinates agree to ~12 digits of 17.
  list(GET a 1 row_a)
  list(GET b 1 row_b)
  string(SUBSTRING "${row_a}" 0 12 head_a)
  string(SUBSTRING "${row_b}" 0 12 head_b)
  if(NOT head_a STREQUAL head_b)
    message(FATAL_ERROR "--model .npz and .pt disagree:\n  ${row_a}\n  ${row_b}")
  endif()
endif()
if(NOT WITH_TORCHSCRIPT)
  run_fails("--model" --model "${models}/fm_mlp_8gaussians.pt")
endif()

# 5. Multistep solvers (one evaluation per step), their Runge-Kutta start, the last-step rule.
run_ok(dpm --dataset 8gaussians --n-train 50 --samples 20 --solver dpmpp2m --steps 10 --likelihood)
expect_contains("${WORK}/dpm/samples.csv" ",10,success,")
expect_contains("${WORK}/dpm/summary.json" "\"solver\": \"dpmpp2m\"")
run_ok(ab3 --dataset 8gaussians --n-train 50 --samples 20 --solver ab3 --steps 10 --start rk --grid cosine)
expect_contains("${WORK}/ab3/samples.csv" ",14,success,")  # 10 + 2 start steps x 2 more stages
run_ok(unipc --dataset moons --n-train 50 --samples 20 --solver unipc --steps 8 --trajectories 2)
expect_lines("${WORK}/unipc/trajectories.csv" 19)  # header + 2 samples x (8 steps + start)
run_ok(last --dataset 8gaussians --n-train 50 --samples 20 --solver rk4 --steps 10 --last-step euler)
expect_contains("${WORK}/last/samples.csv" ",37,success,")  # 4 x 9 + 1
expect_contains("${WORK}/last/summary.json" "\"last_step\": \"euler\"")

# 6. Argument errors.
run_fails("--bogus" --bogus 1)
run_fails("--steps" --steps 0)
run_fails("--probes" --probes 0)
run_fails("--grid" --solver bs32 --grid cosine)
run_fails("--solver" --solver rk5)
run_fails("--last-step" --solver dopri5 --last-step euler)
run_fails("--last-step" --last-step jump)
run_fails("--start" --solver rk4 --start rk)
file(WRITE "${WORK}/down.csv" "0\n0.5\n0.4\n1\n")
file(WRITE "${WORK}/outside.csv" "0\n0.5\n1.5\n")
file(WRITE "${WORK}/one.csv" "0\n")
run_fails("--grid-file: time 3 is 0.4, expected strictly increasing" --grid-file "${WORK}/down.csv")
run_fails("--grid-file: time 3 is 1.5, expected a time in [0, 1]" --grid-file "${WORK}/outside.csv")
run_fails("--grid-file: expected at least 2 times" --grid-file "${WORK}/one.csv")
run_fails("--grid-file" --grid-file "${WORK}/missing.csv")
run_fails("has 4 steps, --steps says 5" --grid-file "${WORK}/uniform4.csv" --steps 5)
run_fails("--grid-file replaces --grid" --grid-file "${WORK}/uniform4.csv" --grid cosine)
run_fails("--grid-file applies to fixed-step solvers" --grid-file "${WORK}/uniform4.csv" --solver dopri5)
run_fails("--grid" --grid spiral)
run_fails("--grid" --grid shift)
run_fails("--grid" --grid beta:0,1)
run_fails("--grid" --grid beta:0.6)
run_fails("--grid" --grid dynamic-shift:nan)
run_fails("--grid" --grid acceleration:-1)
run_fails("--beta0" --beta0 0.06)
run_fails("--field" --field gmm --dataset moons)
run_fails("--dataset" --dataset nope)
run_fails("--samples" --samples)
run_fails("--train" --train "${WORK}/missing.csv")
file(WRITE "${WORK}/bad.csv" "1,2\n3,x\n")
run_fails("line 2, column 2" --train "${WORK}/bad.csv")
run_fails("--model" --model "${WORK}/missing.npz")
run_fails("--model" --model "${WORK}/bad.csv")
run_fails("--model" --model "${models}/fm_mlp_8gaussians.npz" --field empirical)
run_fails("--model" --model "${models}/fm_mlp_8gaussians.npz" --train "${WORK}/train3.csv")
if(WITH_TORCHSCRIPT)  # a 2-D module against 3-D data: found by the probe evaluation
  run_fails("--model" --model "${models}/fm_mlp_8gaussians.pt" --train "${WORK}/train3.csv")
endif()
# 7. Stochastic solvers: the drift and control energies beside the KPE, the last-step rule and
#    size, and the noise of a sample independent of the batch size (its own stream).
run_ok(sde --dataset 8gaussians --n-train 50 --samples 20 --solver sde-euler --diffusion sigma --last-step mean
       --steps 10 --noise-seed 3)
expect_header("${WORK}/sde/samples.csv"
              "x_0,x_1,kpe,kpe_early,kpe_late,drift_energy,drift_energy_early,drift_energy_late,control_energy,control_energy_early,control_energy_late,nfe,status,nn_dist,nn_ratio,memorized,log_density")
expect_contains("${WORK}/sde/samples.csv" ",10,success,")
expect_contains("${WORK}/sde/summary.json" "\"stochastic\": {\"diffusion\": \"sigma\", \"diffusion_norm\": 1")
expect_contains("${WORK}/sde/summary.json" "\"noise_seed\": 3")
run_ok(sde10 --dataset 8gaussians --n-train 50 --samples 10 --solver sde-euler --diffusion sigma --last-step mean
       --steps 10 --noise-seed 3)
file(STRINGS "${WORK}/sde/samples.csv" rows20)
file(STRINGS "${WORK}/sde10/samples.csv" rows10)
list(SUBLIST rows20 0 11 head20)
if(NOT head20 STREQUAL rows10)
  message(FATAL_ERROR "sde-euler: the first 10 samples of a batch of 20 differ from a batch of 10")
endif()
run_ok(sdeheun --dataset moons --n-train 50 --samples 20 --solver sde-heun --diffusion constant:0.5 --last-step mean
       --last-step-size 0.04 --steps 10 --trajectories 2)
expect_contains("${WORK}/sdeheun/samples.csv" ",21,success,")  # 2 x 10 steps + the last step
expect_lines("${WORK}/sdeheun/trajectories.csv" 25)  # header + 2 samples x (11 steps + start)
run_ok(renoise --dataset 8gaussians --n-train 50 --samples 20 --solver renoise-euler --churn 0.5 --steps 10)
expect_contains("${WORK}/renoise/summary.json" "\"churn\": 0.5")
file(REMOVE_RECURSE "${WORK}/bad")
run_fails("--diffusion-norm" --solver sde-euler --diffusion-norm -1)
run_fails("--diffusion" --solver sde-euler --diffusion brownian)
run_fails("--diffusion" --solver euler --diffusion sigma)
run_fails("--last-step-size" --solver sde-euler --last-step mean --last-step-size 1)
run_fails("--last-step-size" --solver sde-euler --last-step-size 0.1)
run_fails("--last-step" --solver sde-heun --diffusion constant)
run_fails("--likelihood" --solver sde-heun --likelihood)
run_fails("--churn" --solver renoise-euler --churn 2)
if(EXISTS "${WORK}/bad")
  message(FATAL_ERROR "a stochastic run with a bad option wrote ${WORK}/bad")
endif()
message(STATUS "kinflow-sample: all end-to-end checks passed")
