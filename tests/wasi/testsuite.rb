# testsuite.rb — one ctest entry of the public WASI test suite (../shared/wasi-testsuite):
# runs one of its prebuilt tests through `kobako-wasm run` as the test's NAME.json says
# (args, env, a root folder preopened as /, exit_code, stdout) and checks the outcome.
#
#   ruby testsuite.rb KOBAKO_WASM TEST.wasm WORK
#
# A root folder is copied afresh to WORK/root for every run and only the copy is
# preopened, so the suite's folder is never written to. Files the tests make end in
# .cleanup; none is left in the copy, and nothing here follows a symlink a test made
# (one may point at /): rm_rf removes a link, not what it points at.
require "fileutils"
require "json"
require "open3"

tool, wasm, work = ARGV
abort "usage: testsuite.rb KOBAKO_WASM TEST.wasm WORK" unless work && File.file?(wasm)
json = wasm.sub(/\.wasm\z/, ".json")
spec = File.exist?(json) ? JSON.parse(File.read(json)) : {}

FileUtils.rm_rf(work)
FileUtils.mkdir_p(work)
cmd = [tool, "run"]
if (root = spec["root"])
  copy = File.join(work, "root")
  FileUtils.cp_r(File.join(File.dirname(wasm), root), copy)
  # The suite's files may be read-only (shared/ is); the copy must be writable, and a
  # symlink's mode is never changed through it.
  Dir.glob("**/*", File::FNM_DOTMATCH, base: copy).each do |rel|
    path = File.join(copy, rel)
    next if File.basename(rel) == "." || File.basename(rel) == ".."
    if File.basename(rel).end_with?(".cleanup")
      FileUtils.rm_rf(path)
      next
    end
    st = File.lstat(path)
    File.chmod(st.mode | 0o200, path) unless st.symlink?
  end
  File.chmod(File.stat(copy).mode | 0o200, copy)
  cmd += ["--dir", "#{copy}::/"]
end
(spec["env"] || {}).each { |k, v| cmd += ["--env", "#{k}=#{v}"] }
cmd << wasm
cmd += spec["args"] || []

out, err, status = Open3.capture3(*cmd, stdin_data: "", binmode: true)
want_code = spec["exit_code"] || 0
problems = []
if status.exitstatus.nil?
  problems << "killed by signal #{status.termsig}"
elsif status.exitstatus != want_code
  problems << "exited with #{status.exitstatus}, not #{want_code}"
end
if spec.key?("stdout") && out != spec["stdout"].b
  problems << "printed #{out.inspect}, not #{spec["stdout"].inspect}"
end
name = File.basename(wasm)
if problems.empty?
  FileUtils.rm_rf(work)
  puts "#{name}: exit #{want_code}#{spec.key?("stdout") ? ", stdout as expected" : ""}"
  exit 0
end
puts "FAIL: #{name}: #{problems.join("; ")}"
puts "command: #{cmd.join(" ")}"
puts "--- stdout:", out unless out.empty?
puts "--- stderr:", err unless err.empty?
exit 1
