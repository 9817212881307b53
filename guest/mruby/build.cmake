# build.cmake — one build of mruby (CMakeLists.txt runs it): fetches Debian's source package
# into the cache once, then runs mruby's rake with build_config.rb in the variant's directory,
# starting that directory afresh whenever the toolchain or the settings change.
#   cmake -DCACHE=dir -DVARIANT=name -DCONFIG=build_config.rb -DAPT_GET=apt-get -DRAKE=rake -DJOBS=n
#         -DHOST_CC=cc -DWASM_CC=clang -DWASM_AR=llvm-ar -DWASM_CFLAGS=list -DWASM_LDFLAGS=list
#         -DSJLJ_INCLUDE=dir -DSJLJ_LIB=lib.a -DMRUBY_DEFINES=list -DRUNTIME_GEM=dir
#         -DSTAMP=file -P build.cmake
cmake_minimum_required(VERSION 3.20)
set(version 3.1.0)
set(src ${CACHE}/src/mruby-${version})
file(MAKE_DIRECTORY ${CACHE})

# ---- the source: apt-get source into a scratch directory, renamed when complete, so
# that an interrupted fetch is never mistaken for a source tree. Build directories
# sharing the cache take turns. -----------------------------------------------------
file(LOCK ${CACHE}/src.lock GUARD PROCESS TIMEOUT 1800)
if(NOT EXISTS ${CACHE}/src)
  message(STATUS "guest: fetching Debian's mruby source package into ${CACHE}/src")
  file(REMOVE_RECURSE ${CACHE}/src.tmp)
  file(MAKE_DIRECTORY ${CACHE}/src.tmp)
  execute_process(COMMAND ${APT_GET} source -q mruby WORKING_DIRECTORY ${CACHE}/src.tmp
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "guest: `apt-get source mruby` failed; it needs a deb-src entry for "
                        "bookworm main and dpkg-dev, which scripts/setup.sh adds")
  endif()
  if(NOT EXISTS ${CACHE}/src.tmp/mruby-${version}/Rakefile)
    file(GLOB got LIST_DIRECTORIES true RELATIVE ${CACHE}/src.tmp ${CACHE}/src.tmp/mruby-*)
    message(FATAL_ERROR "guest: apt-get source gave ${got}, not mruby-${version}")
  endif()
  file(RENAME ${CACHE}/src.tmp ${CACHE}/src)
endif()
# ---- our changes to mruby's source, each applied once to the fetched tree, which
# then names it in a first-line marker. ------------------------------------------------
set(vm ${src}/src/vm.c)
file(READ ${vm} vm_text)
set(vm_fetched "${vm_text}")
function(change marker anchor replacement)
  string(FIND "${vm_text}" "/* kobako: ${marker} */" done)
  if(NOT done EQUAL -1)
    return()
  endif()
  string(FIND "${vm_text}" "${anchor}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "guest: ${vm} is not as kobako's change \"${marker}\" expects it")
  endif()
  string(REPLACE "${anchor}" "${replacement}" text "${vm_text}")
  set(vm_text "/* kobako: ${marker} */\n${text}" PARENT_SCOPE)
endfunction()
# $! in a rescue clause is the exception it rescued, as in Ruby (mruby 3.1 parses $!
# but never sets it). The rescue's first instruction, OP_EXCEPT, takes the exception
# out of mrb->exc; it sets $! too.
change("OP_EXCEPT sets $!"
       "        mrb->exc = NULL;\n      }\n      regs[a] = exc;"
       "        mrb->exc = NULL;\n      }\n      if (mrb_exception_p(exc)) mrb_gv_set(mrb, mrb_intern_lit(mrb, \"$!\"), exc);\n      regs[a] = exc;")
# A call reaching method_missing with keywords and no positional argument lost its
# keywords: prepare_missing wrote the packed arguments over the keyword Hash before
# moving it. It moves the Hash first.
change("method_missing keeps keywords"
       "  argv[0] = args;\n  if (nk == 0) {\n    argv[1] = blk;\n  }\n  else {\n    mrb_assert(nk == 15);\n    argv[1] = argv[n];\n"
       "  if (nk == 0) {\n    argv[0] = args;\n    argv[1] = blk;\n  }\n  else {\n    mrb_assert(nk == 15);\n    argv[1] = argv[n == 15 ? 1 : n];\n    argv[0] = args;\n")
# mrb_funcall (and so __send__, public_send, Method#call) of a method answered by
# method_missing packed stale stack slots as the arguments: prepare_missing reads
# them from the stack before mrb_funcall_with_block has copied them there. It copies
# them first.
change("funcall reaching method_missing passes its arguments"
       "      uint16_t ac = (uint16_t)argc;\n"
       "      uint16_t ac = (uint16_t)argc;\n      if (argc < 15) {\n        if (voff >= 0) argv = mrb->c->stbase + voff;\n        stack_copy(ci->stack+n+1, argv, argc);\n      }\n")
if(NOT vm_text STREQUAL vm_fetched)
  file(WRITE ${vm} "${vm_text}")
endif()
file(LOCK ${CACHE}/src.lock RELEASE)
file(GLOB dsc ${CACHE}/src/mruby_${version}-*.dsc)
string(REGEX REPLACE ".*/mruby_([^/]*)\\.dsc$" "\\1" debian_version "${dsc}")

# ---- the settings: everything rake does not see. Its file tasks depend on the sources,
# the headers and build_config.rb, not on the compilers or on what the environment says.
set(dir ${CACHE}/${VARIANT})
file(LOCK ${dir}.lock GUARD PROCESS TIMEOUT 3600)
function(first_line out)
  execute_process(COMMAND ${ARGN} OUTPUT_VARIABLE text ERROR_QUIET)
  string(REGEX MATCH "^[^\n]*" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()
first_line(host_cc_version ${HOST_CC} --version)
first_line(wasm_cc_version ${WASM_CC} --version)
first_line(wasi_libc_version dpkg-query -W -f=\${Version} wasi-libc)
foreach(list MRUBY_DEFINES WASM_CFLAGS WASM_LDFLAGS)
  list(JOIN ${list} " " ${list}_text)
endforeach()
string(CONCAT settings
       "mruby ${debian_version}\nconfig ${CONFIG}\ndefines ${MRUBY_DEFINES_text}\n"
       "host cc ${HOST_CC}: ${host_cc_version}\nwasm cc ${WASM_CC}: ${wasm_cc_version}\n"
       "wasm ar ${WASM_AR}\nwasm cflags ${WASM_CFLAGS_text}\nwasm ldflags ${WASM_LDFLAGS_text}\n"
       "wasi-libc ${wasi_libc_version}\nsjlj ${SJLJ_INCLUDE}")
set(old_settings "")
if(EXISTS ${dir}/settings.txt)
  file(READ ${dir}/settings.txt old_settings)
endif()
if(NOT old_settings STREQUAL "${settings}\n")
  if(EXISTS ${dir}/build)
    message(STATUS "guest: the settings of ${dir} changed, so it builds afresh")
  endif()
  file(REMOVE_RECURSE ${dir}/build ${dir}/bin)
  file(WRITE ${dir}/settings.txt "${settings}\n")
endif()
# The runtime is linked from a copy inside the variant, which stays put (and untouched
# while its bytes stay the same) whichever build directory produced it.
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${SJLJ_LIB}
                        ${dir}/sjlj/libkobako_sjlj.a)

# ---- rake: only our variables reach it, none of the caller's CC, CFLAGS and the like.
foreach(var CC CXX LD AR CFLAGS CXXFLAGS LDFLAGS YACC CONFIG DEB_TARGET_ARCH MRUBY_CONFIG)
  unset(ENV{${var}})
endforeach()
set(ENV{MRUBY_CONFIG} ${CONFIG})
set(ENV{MRUBY_BUILD_DIR} ${dir}/build)
set(ENV{INSTALL_DIR} ${dir}/bin)
set(ENV{KOBAKO_HOST_CC} ${HOST_CC})
set(ENV{KOBAKO_WASM_CC} ${WASM_CC})
set(ENV{KOBAKO_WASM_AR} ${WASM_AR})
set(ENV{KOBAKO_WASM_CFLAGS} "${WASM_CFLAGS}")
set(ENV{KOBAKO_WASM_LDFLAGS} "${WASM_LDFLAGS}")
set(ENV{KOBAKO_SJLJ_INCLUDE} ${SJLJ_INCLUDE})
set(ENV{KOBAKO_SJLJ_LIB} ${dir}/sjlj/libkobako_sjlj.a)
set(ENV{KOBAKO_MRUBY_DEFINES} "${MRUBY_DEFINES}")
set(ENV{KOBAKO_RUNTIME_GEM} ${RUNTIME_GEM})
message(STATUS "guest: mruby ${debian_version} (${VARIANT}), rake's log in ${dir}/rake.log")
execute_process(COMMAND ${RAKE} -m -j ${JOBS} test:build WORKING_DIRECTORY ${src}
                OUTPUT_FILE ${dir}/rake.log ERROR_FILE ${dir}/rake.log RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  execute_process(COMMAND tail -n 40 ${dir}/rake.log OUTPUT_VARIABLE tail)
  message(FATAL_ERROR "guest: mruby's rake build failed (${rc}); the end of ${dir}/rake.log:\n"
                      "${tail}")
endif()
file(TOUCH ${STAMP})
