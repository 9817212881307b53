# alt_names.cmake — writes the header that renames every external symbol the
# engine library LIB defines to kvmalt_NAME, for the second engine of fuzz_diff.
# cmake -DNM=nm -DLIB=libkvm.a -DOUT=names.h -P alt_names.cmake
execute_process(COMMAND ${NM} -g --defined-only ${LIB} OUTPUT_VARIABLE symbols
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${LIB}")
endif()
string(REGEX MATCHALL "[^\n]+" lines "${symbols}")
set(names)
foreach(line ${lines})
  # "ADDRESS TYPE NAME": only C identifiers; the sanitizers' own (__*) stay.
  if(line MATCHES "^[0-9a-fA-F]+ [A-Za-z] ([A-Za-z_][A-Za-z0-9_]*)$")
    set(sym ${CMAKE_MATCH_1})
    if(NOT sym MATCHES "^__")
      list(APPEND names ${sym})
    endif()
  endif()
endforeach()
list(REMOVE_DUPLICATES names)
list(SORT names)
set(text "/* names.h — made by tests/fuzz/alt_names.cmake: the second engine's symbols. */\n")
foreach(sym ${names})
  string(APPEND text "#define ${sym} kvmalt_${sym}\n")
endforeach()
file(WRITE ${OUT} "${text}")
