# diff_engines.rb — the differential run against other engines: modules gen.c
# makes portable (fuzz_wasmgen) run on kobako, on wabt's wasm-interp and on
# node's V8, whichever this machine has; results, trap classes and the final
# hash of memory, globals and tables must agree. A disagreement keeps its
# input, module and outputs in the findings directory and fails the run,
# unless it is one engine's alone against kobako and another.
#
#   ruby diff_engines.rb --tool build/bin/fuzz_wasmgen [--seed N] [--count N |
#        --seconds S] [--work DIR] [--findings DIR] [INPUT|CASE-DIR]...
#
# Given inputs (files, or the case directories a run kept) it runs those
# instead of random ones.
require "fileutils"
require "open3"
require "optparse"
require "timeout"

opts = { seed: 1, count: nil, seconds: nil, work: "fuzz-engines", findings: nil }
OptionParser.new do |o|
  o.on("--tool PATH", "fuzz_wasmgen") { |v| opts[:tool] = v }
  o.on("--seed N", Integer) { |v| opts[:seed] = v }
  o.on("--count N", Integer, "cases to run") { |v| opts[:count] = v }
  o.on("--seconds S", Float, "run for this long instead") { |v| opts[:seconds] = v }
  o.on("--work DIR", "scratch directory") { |v| opts[:work] = v }
  o.on("--findings DIR", "where disagreements are kept (default WORK/findings)") { |v| opts[:findings] = v }
end.parse!
abort "diff_engines.rb: --tool is required" unless opts[:tool]
replay = ARGV.map { |a| File.directory?(a) ? File.join(a, "input") : a }
opts[:count] ||= replay.empty? ? 50 : replay.size unless opts[:seconds]
findings = opts[:findings] || File.join(opts[:work], "findings")
FileUtils.mkdir_p(opts[:work])

# How each engine says what kobako's trap classes (run.c's trap_class) mean.
TRAPS = {
  "unreachable" => /unreachable/,
  "memory" => /out of bounds memory access|memory access out of bounds|data segment is out of bounds/,
  "table" => Regexp.union("undefined table index", "out of bounds table access",
                          "table index is out of bounds", "element segment out of bounds"),
  "null-element" => /uninitialized table element|null function/,
  "signature" => /indirect call signature mismatch|function signature mismatch/,
  "div-zero" => /divide by zero|remainder by zero/,
  "overflow" => /integer overflow|divide result unrepresentable|float unrepresentable/,
  "conversion" => /invalid conversion to integer|float unrepresentable/,
  "stack" => /call stack exhausted|stack overflow/,
  "exception" => /uncaught exception|unhandled exception/,
}.freeze

def which(cmd)
  ENV["PATH"].split(File::PATH_SEPARATOR).map { |d| File.join(d, cmd) }.find { |p| File.executable?(p) }
end

ENGINES = {}
if (interp = which("wasm-interp"))
  ENGINES["wasm-interp"] = lambda do |wasm|
    [interp, "--enable-exceptions", "--enable-tail-call", "--run-all-exports", wasm]
  end
end
if (node = which("node"))
  runner = File.join(__dir__, "diff_runner.js")
  ENGINES["node"] = ->(wasm) { [node, runner, wasm] }
end

def run(cmd, limit)
  out = +""
  status = nil
  Open3.popen2e(*cmd) do |_in, io, wait|
    begin
      Timeout.timeout(limit) { out = io.read; status = wait.value }
    rescue Timeout::Error
      Process.kill("KILL", wait.pid)
      wait.value
      return [out, nil]
    end
  end
  [out, status]
end

# "name: VALUES" or "name: trap TEXT", from either engine's form.
def lines_of(text)
  text.each_line.map(&:chomp).reject(&:empty?).map do |l|
    if (m = l.match(/\Aerror initializing module: (.*)\z/)) then "instantiate: trap #{m[1]}"
    elsif (m = l.match(/\A(\w+)\(\) => error: (.*)\z/)) then "#{m[1]}: trap #{m[2]}"
    elsif (m = l.match(/\A(\w+)\(\) =>(.*)\z/)) then "#{m[1]}:#{m[2].delete(',')}"
    else l
    end
  end
end

def agree?(ours, theirs)
  return false unless ours.size == theirs.size
  ours.zip(theirs).all? do |a, b|
    next true if a == b
    ta = a.match(/\A(\w+): trap (\S+)\z/)
    tb = b.match(/\A(\w+): trap (.*)\z/)
    ta && tb && ta[1] == tb[1] && TRAPS.fetch(ta[2], /\A\z/).match?(tb[2])
  end
end

started = Time.now
rng = Random.new(opts[:seed])
cases = compared = 0
failed = []
skipped = Hash.new(0)
loop do
  break if opts[:count] && cases >= opts[:count]
  break if opts[:seconds] && Time.now - started >= opts[:seconds]
  break if !replay.empty? && cases >= replay.size
  input = replay.empty? ? rng.bytes(64 + rng.rand(4000)) : File.binread(replay[cases])
  dir = opts[:work]
  in_path = File.join(dir, "input")
  wasm = File.join(dir, "module.wasm")
  File.binwrite(in_path, input)
  cases += 1
  ours, status = run([opts[:tool], in_path, wasm], 60)
  keep = lambda do |why, outputs|
    to = File.join(findings, "case-#{opts[:seed]}-#{cases}")
    FileUtils.mkdir_p(to)
    FileUtils.cp(in_path, to)
    FileUtils.cp(wasm, to) if File.exist?(wasm)
    outputs.each { |name, text| File.write(File.join(to, "#{name}.txt"), text) }
    failed << "#{to}: #{why}"
    warn "diff_engines: case #{cases}: #{why}; kept in #{to}"
  end
  unless status&.success?
    keep.call("fuzz_wasmgen failed (a crash, or the dispatch loops disagree)", { "kobako" => ours })
    next
  end
  agreed = []
  differed = {}
  ENGINES.each do |name, cmd|
    theirs, st = run(cmd.call(wasm), 60)
    if st.nil?
      keep.call("#{name} did not finish", { "kobako" => ours, name => theirs })
      next
    end
    # What the other engine refuses to load is a feature it lacks, and where
    # it dies itself (wabt 1.0.32 asserts on some exception handling) the
    # bug is its own: both skipped, and counted.
    if theirs.match?(/\Arefused|error: (reading|validating|unable)|\A\S+\.wasm:\d/)
      skipped["refused by #{name}"] += 1
      next
    end
    if st.signaled?
      skipped["#{name} crashed"] += 1
      next
    end
    compared += 1
    if agree?(lines_of(ours), lines_of(theirs))
      agreed << name
    else
      differed[name] = theirs
    end
  end
  next if differed.empty?
  # One engine against kobako and another that agree is that engine's bug
  # as far as this run can tell (wabt 1.0.32 runs some big functions on
  # wrong slots: its --trace stores an f32 into a funcref local): kept apart
  # in outvoted-*, counted, and not a failure. Any other disagreement is.
  if differed.size == 1 && !agreed.empty?
    name, theirs = differed.first
    to = File.join(findings, "outvoted-#{opts[:seed]}-#{cases}")
    FileUtils.mkdir_p(to)
    FileUtils.cp([in_path, wasm], to)
    { "kobako" => ours, name => theirs }.each { |n, t| File.write(File.join(to, "#{n}.txt"), t) }
    skipped["#{name} alone against kobako and #{agreed.join(', ')}"] += 1
    next
  end
  differed.each do |name, theirs|
    keep.call("kobako and #{name} disagree", { "kobako" => ours, name => theirs })
  end
end
engines = ENGINES.keys.join(", ")
engines = "no other engine found" if engines.empty?
puts "diff_engines: #{cases} modules (seed #{opts[:seed]}), #{compared} comparisons with #{engines}" \
     "#{skipped.map { |k, v| "; #{v} #{k}" }.join}, #{failed.size} disagreements " \
     "in #{(Time.now - started).round(1)} s"
failed.each { |f| puts "  #{f}" }
exit(failed.empty? ? 0 : 1)
