# build_config.rb — kobako's mruby build for mruby's own rake: the core gems the guest
# carries and the three targets: host (native mrbc, mruby CLI and mrbtest), wasm32-wasi (the
# same set for our engine) and kobako (the guest's libmruby, with our runtime gem in place of
# mruby-print and the CLI). build.cmake runs it; the KOBAKO_* variables are its facts.

# rake would write build_config.rb.lock beside this file, into our source tree.
MRuby::Lockfile.disable

def kobako_env(name)
  ENV.fetch("KOBAKO_#{name}") { fail "KOBAKO_#{name} is not set: guest/mruby/build.cmake runs this build" }
end

def kobako_list(name)
  kobako_env(name).split(";")
end

# The same gems natively and on wasm, so that mrbtest runs the same tests on both and the
# benchmarks time the same interpreter (guest/README.md says why each is in or out).
KOBAKO_GEMS = %w[
  compiler eval metaprog method proc-ext binding proc-binding
  array-ext hash-ext string-ext symbol-ext numeric-ext range-ext object-ext kernel-ext
  class-ext compar-ext toplevel-ext enum-ext enumerator enum-lazy enum-chain fiber
  error catch struct pack sprintf math rational complex
  print
  bin-mruby test-inline-struct
].freeze

def kobako_common(conf, gems = KOBAKO_GEMS)
  gems.each { |name| conf.gem core: "mruby-#{name}" }
  # What changes mrb_value and mrb_int, so the same for libmruby and all that links it.
  conf.cc.defines.concat kobako_list("MRUBY_DEFINES")
end

# clang's -O3 and warnings as for the host, without -g (the modules are stripped), and
# mruby's setjmp/longjmp through guest/sjlj: wasi-libc has no <setjmp.h>.
def kobako_wasm_compiler(conf)
  conf.toolchain :clang
  conf.cc.command = kobako_env("WASM_CC")
  conf.cc.flags = conf.cc.flags.flatten - %w[-g] + kobako_list("WASM_CFLAGS")
  conf.cc.include_paths.unshift kobako_env("SJLJ_INCLUDE")
  conf.archiver.command = kobako_env("WASM_AR")
end

MRuby::Build.new do |conf|
  conf.toolchain :gcc
  conf.cc.command = conf.linker.command = kobako_env("HOST_CC")
  kobako_common(conf)
  conf.enable_test
end

MRuby::CrossBuild.new("wasm32-wasi") do |conf|
  kobako_wasm_compiler(conf)
  conf.exts.executable = ".wasm"

  # A command (_start runs main) with a 1 MiB stack placed below the data: mruby's C
  # recursion (nested VM entries up to its 512 call levels, the parser, codegen on nested
  # expressions) fits in 128 KiB in our tests, and --stack-first makes an overflow an
  # out-of-bounds trap instead of a silent write over static data.
  sjlj = kobako_env("SJLJ_LIB")
  conf.linker.command = kobako_env("WASM_CC")
  conf.linker.flags = kobako_list("WASM_LDFLAGS") +
                      %w[-mexec-model=command -Wl,-z,stack-size=1048576 -Wl,--stack-first]
  conf.linker.flags_after_libraries << sjlj
  # rake knows the archive only as a flag; a new runtime must relink the modules.
  %w[mruby mrbtest].each { |bin| file exefile("#{build_dir}/bin/#{bin}") => sjlj }

  kobako_common(conf)
  conf.enable_test
end

# The guest itself: only libmruby.a, which guest/CMakeLists.txt links into kobako.wasm with
# its exports. Our runtime writes through its own IO (guest/runtime/mrblib/io.rb), so
# mruby-print is not in; nor is the CLI.
MRuby::CrossBuild.new("kobako") do |conf|
  kobako_wasm_compiler(conf)
  kobako_common(conf, KOBAKO_GEMS - %w[print bin-mruby test-inline-struct])
  conf.gem kobako_env("RUNTIME_GEM")
end
