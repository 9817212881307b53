# build_gem.rb — stages the kobako gem and builds it: the gem's own files,
# the C of vm/, wasi/, abi/ and host/ as ext/kobako/vendor/, and kobako.wasm
# as lib/kobako/kobako.wasm, then `gem build`. Usage: build_gem.rb WASM DIR
require "fileutils"

wasm, dir = ARGV
abort "usage: ruby build_gem.rb KOBAKO.wasm STAGE_DIR" unless wasm && dir && ARGV.size == 2
abort "build_gem.rb: #{wasm} does not exist (build the kobako_wasm target first)" unless File.file?(wasm)

here = __dir__
root = File.expand_path("..", here)
FileUtils.rm_rf(dir)
FileUtils.mkdir_p(dir)
FileUtils.cp(File.join(here, "kobako.gemspec"), dir)
FileUtils.cp_r(File.join(here, "lib"), dir)
FileUtils.mkdir_p(File.join(dir, "ext"))
FileUtils.cp_r(File.join(here, "ext", "kobako"), File.join(dir, "ext"))
vendor = File.join(dir, "ext", "kobako", "vendor")
{ "vm" => "{*.c,*.h,include/*.h}", "wasi" => "{*.c,*.h,include/*.h}", "abi" => "*.{c,h}",
  "host" => "{lib/*.{c,h},include/*.h}" }.each do |layer, pattern|
  Dir.glob(pattern, base: File.join(root, layer)).each do |file|
    FileUtils.mkdir_p(File.join(vendor, layer, File.dirname(file)))
    FileUtils.cp(File.join(root, layer, file), File.join(vendor, layer, file))
  end
end
FileUtils.cp(wasm, File.join(dir, "lib", "kobako", "kobako.wasm"))
Dir.chdir(dir) { system("gem", "build", "kobako.gemspec", exception: true) }
