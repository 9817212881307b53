# compare.cmake — one ctest entry: runs the native build of the setjmp/longjmp cases and
# a wasm build on the engine, and fails unless both succeed and print the same bytes.
# cmake -DNATIVE=exe -DRUNNER=run_sjlj -DMODULE=x.wasm -DOUT=dir -P compare.cmake
cmake_minimum_required(VERSION 3.20)
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${NATIVE} OUTPUT_FILE ${OUT}/native.txt RESULT_VARIABLE native_rc)
execute_process(COMMAND ${RUNNER} ${MODULE} OUTPUT_FILE ${OUT}/wasm.txt RESULT_VARIABLE wasm_rc)
file(READ ${OUT}/native.txt native)
file(READ ${OUT}/wasm.txt wasm)
if(NOT native_rc EQUAL 0)
  message(FATAL_ERROR "the native build failed (${native_rc}):\n${native}")
endif()
if(NOT wasm_rc EQUAL 0)
  message(FATAL_ERROR "${MODULE} failed on the engine (${wasm_rc}):\n${wasm}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT}/native.txt ${OUT}/wasm.txt
                RESULT_VARIABLE differ)
if(NOT differ EQUAL 0)
  message(FATAL_ERROR "${MODULE} printed otherwise than the native build.\n"
                      "native:\n${native}\nwasm:\n${wasm}")
endif()
message(STATUS "${MODULE}: the same output as the native build")
