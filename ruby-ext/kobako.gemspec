# kobako.gemspec — the kobako gem: the C extension (with the engine, WASI,
# the ABI codec and libkobako vendored), the Ruby classes and the prebuilt
# kobako.wasm; staged and built by build_gem.rb, needing no wasm toolchain.
require_relative "lib/kobako/version"

Gem::Specification.new do |s|
  s.name = "kobako"
  s.version = Kobako::VERSION
  s.summary = "Untrusted Ruby in a WebAssembly sandbox, in process"
  s.description = "Runs untrusted Ruby (mruby compiled to wasm32-wasi) on kobako's own " \
                  "WebAssembly interpreter, with a timeout, a memory cap, output caps and " \
                  "only the host objects you bind."
  s.authors = ["kobako"]
  s.required_ruby_version = ">= 3.1"
  s.files = Dir["lib/**/*.rb", "lib/kobako/kobako.wasm", "ext/kobako/**/*.{c,h,rb}"]
  s.extensions = ["ext/kobako/extconf.rb"]
  s.require_paths = ["lib"]
end
