#!/usr/bin/env ruby
# frozen_string_literal: true

# Measures the benchmark kernels (bench/kernels/*.c) natively, on
# `kobako-wasm invoke`, as wasm32-wasi programs on `kobako-wasm run` and on
# node, checks that all agree on each checksum, and prints one table of median
# times and slowdowns to native; then a section on exception handling: the
# cost per throw (bench/eh/*.c) and the cost of try blocks on a hot path
# (variants made by bench/try_wrap.rb); then the start-up time of a
# hello-world program (bench/hello.c) natively, on `kobako-wasm run` and on
# node:wasi. Ruby 3.1, standard library only. `ruby bench/run.rb --help` lists
# the options.

require 'optparse'
require 'tempfile'
require_relative 'try_wrap'

ROOT = File.expand_path('..', __dir__)
BENCH = File.join(ROOT, 'bench')

# WebAssembly 2.0 without SIMD, as clang names its features; the engine runs
# nothing newer, so a module that declares anything else is rejected up front.
ALLOWED_FEATURES = %w[
  bulk-memory bulk-memory-opt call-indirect-overlong multivalue mutable-globals
  nontrapping-fptoint reference-types sign-ext
].freeze

TARGET_SLOWDOWN = 6.0

# The exception-handling kernels are the one place exception handling is
# allowed on top of 2.0; each is built in both of clang's encodings of it.
EH_FEATURES = (ALLOWED_FEATURES + ['exception-handling']).freeze
EH_FLAVOURS = TryWrap::FLAVOURS

# Kernels that run a second and third time with every function body in a try
# block: fib enters and leaves one per call, stackvm runs its whole dispatch
# loop inside one. With try blocks they must be no slower: up to 1.03x counts
# as the noise between medians of runs of one module on a quiet machine.
TRY_KERNELS = %w[fib stackvm].freeze
TRY_NOISE = 0.03

# V8 had exnref behind this flag before it shipped; a node whose V8 lacks the
# flag refuses to start with it, which the probe takes as no exnref.
NODE_EXNREF_FLAG = '--experimental-wasm-exnref'

# wasm is the module's path; for an exception-handling kernel, a hash of one
# path per flavour. wasi is the kernel's wasm32-wasi program (nil for eh/).
KernelSpec = Struct.new(:name, :full, :quick, :wasm, :native, :wasi) do
  def entry = "bench_#{name}"
  def size(opts) = opts[:quick] ? quick : full
  def modules = wasm.is_a?(Hash) ? wasm.values : [wasm]
end

# One runner's measurements of one kernel: whole-process times in ms per run,
# the times the process reported for the call alone, the checksum it returned
# (and for kobako the fuel, that is wasm instructions, the call used), or the
# error that stopped it.
Result = Struct.new(:times, :inner, :checksum, :error, :fuel) do
  def median(values = times)
    return nil if values.empty?

    sorted = values.sort
    (sorted[(sorted.size - 1) / 2] + sorted[sorted.size / 2]) / 2.0
  end
end

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

def die(message)
  warn "run.rb: #{message}"
  exit 1
end

def parse_options
  opts = { runs: nil, quick: false, build_dir: File.join(ROOT, 'build'), kobako: nil,
           node: 'node', use_kobako: true, use_wasi: true, use_node: true, build: true, only: nil,
           timeout: 300, eh: true, hello: true, hello_runs: nil }
  OptionParser.new do |o|
    o.banner = "usage: ruby bench/run.rb [options]\n" \
               'Builds the kernels (CMake target bench-kernels), runs each natively, on ' \
               'kobako-wasm (invoke, and run as a wasm32-wasi program) and on node, and prints ' \
               'medians and slowdowns; then the cost per throw and of try blocks on a hot path; ' \
               'then the start-up time of hello world.'
    o.on('--runs N', Integer, 'runs per kernel and runner; the median is reported (default 5, 1 with --quick)') do |n|
      die '--runs must be at least 1' if n < 1
      opts[:runs] = n
    end
    o.on('--quick', 'small sizes and one run: a smoke test, not a measurement') { opts[:quick] = true }
    o.on('--only LIST', Array, 'only these kernels (comma-separated names, from kernels/ and eh/, ' \
                               'and hello for the start-up section)') do |l|
      opts[:only] = l
    end
    o.on('--no-eh', 'skip the exception-handling section (throw kernels, try blocks)') { opts[:eh] = false }
    o.on('--no-hello', 'skip the start-up section (hello world)') { opts[:hello] = false }
    o.on('--hello-runs N', Integer, 'runs per runner of hello world (default 40, 10 with --quick)') do |n|
      die '--hello-runs must be at least 1' if n < 1
      opts[:hello_runs] = n
    end
    o.on('--build-dir DIR', 'CMake build tree holding bin/ and bench/ (default: build/ in the repository)') do |d|
      opts[:build_dir] = File.expand_path(d)
    end
    o.on('--kobako PATH', 'the kobako-wasm binary (default: BUILD_DIR/bin/kobako-wasm, rebuilt first)') do |p|
      opts[:kobako] = File.expand_path(p)
    end
    o.on('--node PATH', 'the node binary (default: node on PATH)') { |p| opts[:node] = p }
    o.on('--no-kobako', 'skip kobako-wasm (invoke and run)') { opts[:use_kobako] = false }
    o.on('--no-wasi', 'skip kobako-wasm run (the wasi column and kobako\'s start-up)') { opts[:use_wasi] = false }
    o.on('--no-node', 'skip node') { opts[:use_node] = false }
    o.on('--no-build', 'do not run CMake; use what is in BUILD_DIR') { opts[:build] = false }
    o.on('--timeout SECONDS', Float, 'kill a run after this long (default 300)') do |t|
      die '--timeout must be positive' unless t.positive?
      opts[:timeout] = t
    end
  end.parse!
rescue OptionParser::ParseError => e
  die "#{e.message}; see --help"
else
  die "unexpected argument '#{ARGV.first}'; see --help" unless ARGV.empty?
  opts[:runs] ||= opts[:quick] ? 1 : 5
  opts[:hello_runs] ||= opts[:quick] ? 10 : 40
  opts[:use_wasi] &&= opts[:use_kobako]
  opts
end

def sh(*argv)
  warn "+ #{argv.join(' ')}"
  system(*argv, out: $stderr, err: $stderr)
end

def cache_value(build_dir, key)
  cache = File.join(build_dir, 'CMakeCache.txt')
  return nil unless File.exist?(cache)

  File.foreach(cache) { |line| return Regexp.last_match(1) if line =~ /^#{key}:\w+=(.*)$/ }
  nil
end

# The build tree gets configured as Release when it does not exist yet: a
# Debug engine would measure the C compiler's -O0, not the interpreter.
def build(opts, default_kobako)
  dir = opts[:build_dir]
  unless File.exist?(File.join(dir, 'CMakeCache.txt'))
    sh('cmake', '-S', ROOT, '-B', dir, '-DCMAKE_BUILD_TYPE=Release') or
      die "configuring #{dir} failed; see the CMake output above"
  end
  sh('cmake', '--build', dir, '-j2', '--target', 'bench-kernels') or
    die 'building the kernels failed. They need clang-22 and wasm-ld-22 (scripts/setup.sh ' \
        'installs them); reconfigure the build tree after installing'
  return unless opts[:use_kobako] && default_kobako

  sh('cmake', '--build', dir, '-j2', '--target', 'kobako-wasm') or
    die 'building kobako-wasm failed; fix the build, or pass --kobako PATH or --no-kobako'
end

# The kernels of kernels/ (WebAssembly 2.0, and each as a wasm32-wasi program)
# and, unless --no-eh, those of eh/ (one module per exception-handling
# flavour), as selected by --only; and whether the start-up section runs.
def discover_kernels(opts)
  out = File.join(opts[:build_dir], 'bench')
  specs = lambda do |dir, wasi, &wasm|
    Dir[File.join(BENCH, dir, '*.c')].sort.map do |src|
      name = File.basename(src, '.c')
      File.read(src) =~ /run\.rb sizes: full (\d+), quick (\d+)/ or
        die "#{src} has no 'run.rb sizes: full N, quick M' comment"
      KernelSpec.new(name, Integer(Regexp.last_match(1)), Integer(Regexp.last_match(2)),
                     wasm.call(File.join(out, name)), File.join(out, "#{name}-native"),
                     wasi ? File.join(out, "#{name}-wasi.wasm") : nil)
    end
  end
  kernels = specs.call('kernels', true) { |base| "#{base}.wasm" }
  eh_kernels = specs.call('eh', false) { |base| EH_FLAVOURS.to_h { |f| [f, "#{base}-#{f}.wasm"] } }
  hello = opts[:hello]
  if opts[:only]
    known = (kernels + eh_kernels).map(&:name) + ['hello']
    unknown = opts[:only] - known
    die "no kernel named #{unknown.join(', ')}; have #{known.join(', ')}" unless unknown.empty?
    kernels.select! { |k| opts[:only].include?(k.name) }
    eh_kernels.select! { |k| opts[:only].include?(k.name) }
    hello &&= opts[:only].include?('hello')
  end
  eh_kernels = [] unless opts[:eh]
  if kernels.empty? && eh_kernels.empty? && !hello
    die 'nothing to run: --only names only eh/ kernels or hello, and --no-eh or --no-hello skips them'
  end
  wasi_missing = "; build the bench-kernels target (or drop --no-build). The wasm32-wasi programs " \
                 'need wasi-libc and libclang-rt-22-dev-wasm32 (scripts/setup.sh; reconfigure after ' \
                 'installing), or pass --no-wasi'
  kernels.each do |k|
    [k.wasm, k.native].each do |f|
      die "#{f} is missing; build the bench-kernels target (or drop --no-build)" unless File.exist?(f)
    end
    die "#{k.wasi} is missing#{wasi_missing}" if opts[:use_wasi] && !File.exist?(k.wasi)
  end
  if hello
    %w[hello.wasm hello-native spawn-timer].map { |f| File.join(out, f) }.each do |f|
      die "#{f} is missing#{wasi_missing.sub('--no-wasi', '--no-hello')}" unless File.exist?(f)
    end
  end
  eh_kernels.each do |k|
    [*k.modules, k.native].each do |f|
      next if File.exist?(f)

      die "#{f} is missing; build the bench-kernels target (or drop --no-build). The eh/ kernels also " \
          "need guest/'s toolchain (llvm-ar-22), or pass --no-eh"
    end
  end
  [kernels, eh_kernels, hello]
end

def read_leb(bytes, pos)
  value = 0
  shift = 0
  loop do
    byte = bytes.getbyte(pos) or raise ArgumentError, 'truncated LEB128'
    pos += 1
    value |= (byte & 0x7f) << shift
    shift += 7
    return [value, pos] if byte < 0x80
  end
end

# The features clang declared in the module's target_features section; nil
# when the section is absent.
def declared_features(path)
  bytes = File.binread(path)
  raise ArgumentError, 'not a wasm binary' unless bytes.start_with?("\0asm")

  pos = 8
  while pos < bytes.bytesize
    id = bytes.getbyte(pos)
    size, pos = read_leb(bytes, pos + 1)
    section_end = pos + size
    if id.zero?
      len, p = read_leb(bytes, pos)
      if bytes.byteslice(p, len) == 'target_features'
        count, p = read_leb(bytes, p + len)
        return Array.new(count) do
          prefix = bytes.getbyte(p)
          len, p = read_leb(bytes, p + 1)
          name = bytes.byteslice(p, len)
          p += len
          [prefix.chr, name]
        end
      end
    end
    pos = section_end
  end
  nil
end

def check_features(paths, allowed = ALLOWED_FEATURES, limit = 'WebAssembly 2.0 without SIMD')
  paths.each do |path|
    features = declared_features(path)
    if features.nil?
      warn "run.rb: #{path} has no target_features section, so its features are unchecked"
      next
    end
    extra = features.select { |prefix, name| prefix != '-' && !allowed.include?(name) }.map(&:last)
    die "#{path} uses #{extra.join(', ')}, beyond #{limit}" unless extra.empty?
  rescue ArgumentError => e
    die "#{path}: #{e.message}"
  end
end

# Spawns argv and times it from spawn to exit on the monotonic clock. A
# watchdog thread kills it after the timeout so the waiting itself adds no
# polling delay to the measurement.
def run_process(argv, timeout)
  out_r, out_w = IO.pipe
  err_r, err_w = IO.pipe
  start = now
  # Its own process group, so a timeout also ends whatever it started.
  pid = Process.spawn(*argv, in: File::NULL, out: out_w, err: err_w, pgroup: true)
  out_w.close
  err_w.close
  readers = [Thread.new { out_r.read }, Thread.new { err_r.read }]
  timed_out = false
  watchdog = Thread.new do
    sleep timeout
    timed_out = true
    Process.kill('KILL', -pid)
  rescue Errno::ESRCH
    nil
  end
  _, status = Process.wait2(pid)
  elapsed = (now - start) * 1000.0
  watchdog.kill
  out, err = readers.map(&:value)
  [status, out, err, elapsed, timed_out]
rescue SystemCallError => e
  [nil, '', e.message, 0.0, false]
ensure
  [out_r, out_w, err_r, err_w].each { |io| io.close if io && !io.closed? }
end

def checksum(out)
  match = out.lines.lazy.map { |l| l.match(/\A(i32|i64):(-?\d+)\s*\z/) }.find(&:itself) or return nil
  Integer(match[2]) & ((1 << (match[1] == 'i32' ? 32 : 64)) - 1)
end

# One run of one kernel on one runner: fills result, or sets its error.
def measure(runner, kernel, size, opts, result)
  program = { native: kernel.native, wasi: kernel.wasi }.fetch(runner, kernel.wasm)
  run_once(command(runner, program, kernel.entry, size, opts), opts, result)
end

# The command line that runs entry(size) of program (a native executable or a
# wasm module) on runner; node_flags go to node before the script.
def command(runner, program, entry, size, opts, node_flags = [])
  case runner
  when :native then [program, size.to_s]
  when :kobako then [opts[:kobako], 'invoke', '--stats', program, entry, size.to_s]
  when :wasi then [opts[:kobako], 'run', program, size.to_s]
  when :node
    # Without Liftoff node compiles with TurboFan before the call; with it
    # a long-running call would stay in baseline code for good.
    [opts[:node], '--no-liftoff', *node_flags, File.join(BENCH, 'node_invoke.mjs'), program, entry, size.to_s]
  end
end

# Runs argv once and adds its times, checksum and fuel to result, or sets its
# error.
def run_once(argv, opts, result)
  status, out, err, elapsed, timed_out = run_process(argv, opts[:timeout])
  detail = err.to_s.strip.lines.last(3).join.strip
  if timed_out
    result.error = "killed after #{opts[:timeout]} s"
  elsif status.nil?
    result.error = "could not start: #{detail}"
  elsif !status.success?
    what = if status.exitstatus == 2 then 'trapped'
           elsif status.signaled? then "died of signal #{status.termsig}"
           else "exited with status #{status.exitstatus}"
           end
    result.error = "#{what}#{detail.empty? ? '' : ": #{detail}"}"
  elsif (sum = checksum(out)).nil?
    result.error = "printed no i32/i64 result: #{out.strip[0, 80].inspect}"
  elsif result.checksum && result.checksum != sum
    result.error = "checksum changed between runs (#{result.checksum} then #{sum})"
  else
    result.checksum = sum
    result.times << elapsed
    inner = err[/(?:kernel_ms|call_ms):([\d.]+)/, 1]
    result.inner << Float(inner) if inner
    fuel = err[/fuel used: (\d+)/, 1]
    result.fuel = Integer(fuel) if fuel
  end
end

def fmt_ms(value) = value.nil? ? '-' : format('%.1f', value)
def fmt_ratio(value) = value.nil? ? '-' : format('%.2fx', value)

def geomean(values)
  values = values.compact
  values.empty? ? nil : Math.exp(values.sum { |v| Math.log(v) } / values.size)
end

def ratio(numerator, denominator)
  numerator && denominator&.positive? ? numerator / denominator : nil
end

def main
  opts = parse_options
  default_kobako = opts[:kobako].nil?
  opts[:kobako] ||= File.join(opts[:build_dir], 'bin', 'kobako-wasm')
  build(opts, default_kobako) if opts[:build]
  kernels, eh_kernels, hello = discover_kernels(opts)
  check_features(kernels.map(&:wasm))
  check_features(kernels.map(&:wasi)) if opts[:use_wasi]
  check_features([File.join(opts[:build_dir], 'bench', 'hello.wasm')]) if hello
  check_features(eh_kernels.flat_map(&:modules), EH_FEATURES, 'WebAssembly 2.0 without SIMD plus exception handling')

  runners = [:native]
  if opts[:use_kobako]
    die "#{opts[:kobako]} not found; build kobako-wasm, or pass --kobako PATH or --no-kobako" unless File.executable?(opts[:kobako])
    runners << :kobako
    runners << :wasi if opts[:use_wasi]
  end
  if opts[:use_node]
    version = `#{opts[:node]} --version 2>/dev/null`.strip
    die "node not found as '#{opts[:node]}'; pass --node PATH or --no-node" if version.empty?
    runners << :node
  end
  if runners.include?(:kobako) && default_kobako
    type = cache_value(opts[:build_dir], 'CMAKE_BUILD_TYPE')
    warn "run.rb: warning: #{opts[:build_dir]} is a #{type.to_s.empty? ? 'untyped' : type} build; " \
         'kobako numbers mean little unless it is Release' unless type == 'Release'
  end

  results = {}
  kernels.each do |k|
    size = opts[:quick] ? k.quick : k.full
    results[k.name] = runners.to_h { |r| [r, Result.new([], [], nil, nil)] }
    $stderr.print "#{k.name} (size #{size}):"
    opts[:runs].times do
      # Interleaving the runners spreads slow drifts of the machine over all of them.
      runners.each do |r|
        res = results[k.name][r]
        measure(r, k, size, opts, res) unless res.error
      end
      $stderr.print '.'
    end
    $stderr.puts
  end
  eh = opts[:eh] ? eh_section(kernels, eh_kernels, runners, opts, version) : nil
  start = hello ? startup_section(runners, opts, version) : nil

  failures = kernels.empty? ? [] : report(kernels, runners, results, opts, version)
  failures += eh.report if eh
  failures += start.report if start
  return if failures.empty?

  puts
  puts 'FAILED:'
  failures.each { |f| puts "  #{f}" }
  exit 1
end

def report(kernels, runners, results, opts, node_version)
  failures = []
  rows = kernels.map do |k|
    res = results[k.name]
    native = res[:native].median
    native_inner = res[:native].median(res[:native].inner)
    kobako = res[:kobako]&.median
    wasi = res[:wasi]&.median
    node_call = res[:node]&.median(res[:node].inner)
    rate = kobako && res[:kobako].fuel ? res[:kobako].fuel / (kobako * 1000.0) : nil
    node_proc = res[:node]&.median
    runners.each { |r| failures << "#{k.name} on #{r}: #{res[r].error}" if res[r].error }
    sums = runners.to_h { |r| [r, res[r].checksum] }.compact
    mismatch = sums.values.uniq.size > 1
    failures << "#{k.name}: checksums differ (#{sums.map { |r, s| "#{r} #{s}" }.join(', ')})" if mismatch
    # A runner that computed something else did not run the same program, so
    # its time says nothing.
    agrees = ->(r) { sums[:native] && sums[r] == sums[:native] }
    kobako_ratio = agrees.(:kobako) ? ratio(kobako, native) : nil
    wasi_ratio = agrees.(:wasi) ? ratio(wasi, native) : nil
    node_ratio = agrees.(:node) ? ratio(node_call, native_inner) : nil
    { cells: { 'kernel' => k.name, 'size' => (opts[:quick] ? k.quick : k.full).to_s,
               'native' => fmt_ms(native), 'native kern' => fmt_ms(native_inner),
               'kobako' => fmt_ms(kobako), 'kobako Mi/s' => rate ? format('%.0f', rate) : '-', 'wasi' => fmt_ms(wasi),
               'node call' => fmt_ms(node_call), 'node proc' => fmt_ms(node_proc),
               'kobako/native' => fmt_ratio(kobako_ratio), 'wasi/native' => fmt_ratio(wasi_ratio),
               'node/native' => fmt_ratio(node_ratio), 'checksum' => mismatch ? 'MISMATCH' : (sums[:native] || '-').to_s },
      kobako_ratio: kobako_ratio, wasi_ratio: wasi_ratio, node_ratio: node_ratio }
  end
  kobako_geo = geomean(rows.map { |r| r[:kobako_ratio] })
  wasi_geo = geomean(rows.map { |r| r[:wasi_ratio] })
  node_geo = geomean(rows.map { |r| r[:node_ratio] })
  header = ['kernel', 'size', 'native', 'native kern']
  header += ['kobako', 'kobako Mi/s'] if runners.include?(:kobako)
  header += ['wasi'] if runners.include?(:wasi)
  header += ['node call', 'node proc'] if runners.include?(:node)
  header += ['kobako/native'] if runners.include?(:kobako)
  header += ['wasi/native'] if runners.include?(:wasi)
  header += ['node/native'] if runners.include?(:node)
  header += ['checksum']
  geo_row = { 'kernel' => 'geomean', 'kobako/native' => fmt_ratio(kobako_geo), 'wasi/native' => fmt_ratio(wasi_geo),
              'node/native' => fmt_ratio(node_geo) }
  body = rows.map { |r| r[:cells] }
  body << geo_row if runners.size > 1
  table = [header] + body.map { |cells| header.map { |h| cells[h] || '' } }
  widths = header.each_index.map { |i| table.map { |row| row[i].size }.max }
  line = ->(row) { row.each_with_index.map { |c, i| i.zero? ? c.ljust(widths[i]) : c.rjust(widths[i]) }.join('  ').rstrip }

  puts
  puts "kobako bench: #{kernels.size} kernels, median of #{opts[:runs]} run(s)" \
       "#{opts[:quick] ? ' at --quick sizes (a smoke test: start-up is not noise here)' : ''}, times in ms"
  puts "  native       whole process #{File.join(opts[:build_dir], 'bench', 'NAME-native')} SIZE, spawn to exit, monotonic clock"
  puts '  native kern  the kernel call alone, timed inside that process'
  if runners.include?(:kobako)
    puts "  kobako       whole process #{opts[:kobako]} invoke (fuel metering on), spawn to exit"
    puts '  kobako Mi/s  millions of wasm instructions (the fuel the call used, per --stats) per second of kobako'
  end
  if runners.include?(:wasi)
    puts "  wasi         whole process #{opts[:kobako]} run #{File.join(opts[:build_dir], 'bench', 'NAME-wasi.wasm')} SIZE:"
    puts '               the kernel as a wasm32-wasi program (wasi-libc, native_main.c), spawn to exit'
  end
  if runners.include?(:node)
    puts "  node call    the export call alone on node #{node_version} --no-liftoff (TurboFan code), process.hrtime"
    puts '  node proc    whole node process: start-up, compile and the call'
  end
  puts '  kobako/native = kobako / native (both whole processes)' if runners.include?(:kobako)
  puts '  wasi/native   = wasi / native (both whole processes)' if runners.include?(:wasi)
  puts '  node/native   = node call / native kern' if runners.include?(:node)
  puts
  puts line.call(table.first)
  puts line.call(widths.map { |w| '-' * w })
  table[1, rows.size].each { |row| puts line.call(row) }
  if runners.size > 1
    puts line.call(widths.map { |w| '-' * w })
    puts line.call(table.last)
  end
  if kobako_geo && !opts[:quick]
    verdict = kobako_geo <= TARGET_SLOWDOWN ? 'meets' : 'misses'
    puts
    puts "kobako geomean slowdown #{fmt_ratio(kobako_geo)} #{verdict} the #{fmt_ratio(TARGET_SLOWDOWN)} target " \
         '(wasm3 and WAMR fast-interp measure about 11x and 13x on such kernels)'
    puts 'note: kernels that failed on kobako are left out of the geomean' if rows.any? { |r| r[:kobako_ratio].nil? }
  end
  failures
end

# ---- exception handling ---------------------------------------------------

# One program of the exception-handling section on one runner: flavour is nil
# for the native program and the plain (try-less) module. skip says why it
# does not run at all (a node that cannot compile exnref), which is not a
# failure.
EhCase = Struct.new(:runner, :flavour, :program, :node_flags, :skip, :result) do
  def label = [runner, flavour].compact.join(' ')
  def failed? = !skip && result.error

  # What the section times: the kernel or export call alone where the process
  # reports it (native, node), the whole process for kobako, as in the main table.
  def ms = runner == :kobako ? result.median : result.median(result.inner)
end

# The cases measured together, interleaved run by run: one throw kernel on
# every runner, or one try kernel with and without try blocks.
EhGroup = Struct.new(:kind, :kernel, :size, :cases) do
  def sums = cases.map { |c| c.result.checksum }.compact
  def mismatch? = sums.uniq.size > 1
  def find(runner, flavour) = cases.find { |c| c.runner == runner && c.flavour == flavour }

  def describe(c)
    return "#{kernel.name} on #{c.label}" if kind == :throw

    "#{kernel.name}#{c.flavour ? " +try #{c.flavour}" : ''} on #{c.runner}"
  end
end

# The measured exception-handling section: report prints it and returns its
# failures.
EhSection = Struct.new(:groups, :runners, :opts, :node_version, :failures) do
  def report
    throws = groups.select { |g| g.kind == :throw }
    tries = groups.select { |g| g.kind == :try }
    puts
    puts "exception handling (these modules use it on top of 2.0): median of #{opts[:runs]} run(s)" \
         "#{opts[:quick] ? ' at --quick sizes' : ''}, times in ms"
    report_throws(throws) unless throws.empty?
    report_tries(tries) unless tries.empty?
    failures + groups.flat_map do |g|
      errors = g.cases.select(&:failed?).map { |c| "#{g.describe(c)}: #{c.result.error}" }
      sums = g.cases.select { |c| c.result.checksum }.map { |c| "#{g.describe(c)} #{c.result.checksum}" }
      errors << "#{g.kernel.name}: checksums differ (#{sums.join(', ')})" if g.mismatch?
      errors
    end
  end

  def report_throws(throws)
    puts
    puts '  throw kernels (bench/eh/NAME.c; SIZE setjmp/longjmp round trips): natively glibc\'s setjmp, in wasm'
    puts '  guest/sjlj/\'s runtime, which clang\'s -wasm-enable-sjlj turns into a throw and a catch'
    puts '  ms        native: the kernel call alone; kobako: whole process, as above; node: the export call alone'
    puts '  ns/throw  ms / SIZE: one setjmp, two calls down, the longjmp, and the catch that lands it'
    puts '  x native  ms over native\'s'
    puts
    rows = throws.flat_map do |g|
      native = g.find(:native, nil)&.ms
      g.cases.map do |c|
        ms = c.failed? || c.skip ? nil : c.ms
        note = if c.skip then 'n/a'
               elsif c.failed? then 'FAILED'
               elsif g.mismatch? then "MISMATCH #{c.result.checksum}"
               else c.result.checksum.to_s
               end
        [g.kernel.name, g.size.to_s, c.label, c.skip ? 'n/a' : fmt_ms(ms),
         c.skip ? 'n/a' : (ms ? format('%.1f', ms * 1e6 / g.size) : '-'),
         c.skip ? 'n/a' : fmt_ratio(c.runner == :native ? nil : ratio(ms, native)), note]
      end
    end
    print_table(%w[kernel size runner ms ns/throw x\ native checksum], rows)
    skipped(throws)
  end

  def report_tries(tries)
    puts
    puts '  try blocks on the hot path: each function body of the kernel wrapped by bench/try_wrap.rb in'
    puts '    legacy  try bt BODY catch_all unreachable end'
    puts '    exnref  block try_table bt (catch_all 0) BODY end return end unreachable'
    puts '  plain, +try  kobako: whole process; node: the export call alone'
    puts '  ratio        with try / without, the same runner, from interleaved runs; no slower is <= 1.00x'
    puts
    rows = []
    worst = nil
    spread = nil
    tries.each do |g|
      runners.each do |r|
        next if r == :native

        plain = g.find(r, nil)
        next unless plain

        base = plain.failed? ? nil : plain.ms
        # nil where the rewrite did not check out (a failure listed below)
        times = EH_FLAVOURS.map { |f| g.find(r, f) }
        ratios = times.map do |c|
          next nil if c.nil? || c.skip || c.failed? || c.result.checksum != plain.result.checksum

          ratio(c.ms, base)
        end
        if r == :kobako
          times.zip(ratios).each do |c, q|
            worst = [q, "#{g.kernel.name} +try #{c.flavour}"] if q && (worst.nil? || q > worst[0])
          end
          if base
            s = (plain.result.times.max - plain.result.times.min) / base
            spread = [s, spread || 0].max
          end
        end
        note = if g.mismatch? then 'MISMATCH'
               elsif [plain, *times].compact.any?(&:failed?) || times.include?(nil) then 'FAILED'
               else (plain.result.checksum || '-').to_s
               end
        rows << [g.kernel.name, g.size.to_s, r.to_s, fmt_ms(base),
                 *times.map { |c| c&.skip ? 'n/a' : fmt_ms(c.nil? || c.failed? ? nil : c.ms) },
                 *times.zip(ratios).map { |c, q| c&.skip ? 'n/a' : fmt_ratio(q) }, note]
      end
    end
    header = ['kernel', 'size', 'runner', 'plain', *EH_FLAVOURS.map { |f| "+try #{f}" },
              *EH_FLAVOURS.map { |f| "#{f}/plain" }, 'checksum']
    print_table(header, rows)
    skipped(tries)
    return unless worst && !opts[:quick]

    verdict = worst[0] <= 1.0 + TRY_NOISE ? 'meets' : 'misses'
    puts
    puts "kobako with try blocks: worst ratio #{fmt_ratio(worst[0])} (#{worst[1]}) #{verdict} the no-slower " \
         "target (<= 1.00x within #{(TRY_NOISE * 100).round}% noise; the spread of kobako's plain runs, " \
         "slowest minus fastest over the median, is up to #{format('%.0f', spread * 100)}%)"
  end

  def skipped(groups)
    groups.flat_map(&:cases).map(&:skip).compact.uniq.each { |why| puts "  n/a: #{why}" }
  end

  def print_table(header, rows) = print_columns(header, rows, [0, header.index('runner')])
end

# Names (the columns in left) to the left, numbers to the right, as in the
# main table.
def print_columns(header, rows, left)
  table = [header] + rows
  widths = header.each_index.map { |i| table.map { |row| row[i].size }.max }
  line = lambda do |row|
    row.each_with_index.map { |c, i| left.include?(i) ? c.ljust(widths[i]) : c.rjust(widths[i]) }.join('  ').rstrip
  end
  puts line.call(header)
  puts line.call(widths.map { |w| '-' * w })
  rows.each { |row| puts line.call(row) }
end

# The node flags that let this node compile the module at path ([] when it
# needs none), or nil when it cannot: node 20's V8 11.3 has no exnref at all.
def node_flags_for(path, opts)
  script = "process.exit(WebAssembly.validate(require('fs').readFileSync(process.argv[1])) ? 0 : 3)"
  [[], [NODE_EXNREF_FLAG]].find do |flags|
    system(opts[:node], *flags, '-e', script, path, in: File::NULL, out: File::NULL, err: File::NULL)
  end
end

# The cases of one module on node: legacy modules always run (node has had
# legacy exception handling since V8 9.5); an exnref module only where this
# node compiles it, otherwise it is shown as n/a.
def node_case(flavour, path, opts, node_version)
  flags = flavour == 'exnref' ? node_flags_for(path, opts) : []
  skip = flags ? nil : "node #{node_version} cannot compile exnref modules, with or without " \
                       "#{NODE_EXNREF_FLAG} (newer nodes can; see --node)"
  EhCase.new(:node, flavour, path, flags || [], skip, Result.new([], [], nil, nil))
end

# The try variants of kernel k, written next to its module: {flavour => path}.
# A variant that the rewriter refuses or that kobako does not run to the
# plain module's checksum (at the quick size) is left out with a failure.
def try_variants(k, runners, opts, failures)
  EH_FLAVOURS.each_with_object({}) do |flavour, variants|
    path = File.join(opts[:build_dir], 'bench', "#{k.name}-try-#{flavour}.wasm")
    begin
      File.binwrite(path, TryWrap.wrap(File.binread(k.wasm), flavour))
    rescue TryWrap::Error, SystemCallError => e
      failures << "#{k.name} +try #{flavour}: bench/try_wrap.rb: #{e.message}"
      next
    end
    if runners.include?(:kobako)
      plain = Result.new([], [], nil, nil)
      wrapped = Result.new([], [], nil, nil)
      run_once(command(:kobako, k.wasm, k.entry, k.quick, opts), opts, plain)
      run_once(command(:kobako, path, k.entry, k.quick, opts), opts, wrapped)
      if wrapped.error || plain.error || wrapped.checksum != plain.checksum
        why = wrapped.error || plain.error || "checksum #{wrapped.checksum}, plain #{plain.checksum}"
        failures << "#{k.name} +try #{flavour}: #{path} does not check out on kobako at size #{k.quick}: #{why}"
        next
      end
    end
    variants[flavour] = path
  end
end

def eh_section(kernels, eh_kernels, runners, opts, node_version)
  failures = []
  fresh = -> { Result.new([], [], nil, nil) }
  groups = eh_kernels.map do |k|
    cases = [EhCase.new(:native, nil, k.native, [], nil, fresh.call)]
    if runners.include?(:kobako)
      cases += EH_FLAVOURS.map { |f| EhCase.new(:kobako, f, k.wasm[f], [], nil, fresh.call) }
    end
    cases += EH_FLAVOURS.map { |f| node_case(f, k.wasm[f], opts, node_version) } if runners.include?(:node)
    EhGroup.new(:throw, k, k.size(opts), cases)
  end
  wasm_runners = runners & %i[kobako node]
  try_kernels = wasm_runners.empty? ? [] : kernels.select { |k| TRY_KERNELS.include?(k.name) }
  try_kernels.each do |k|
    variants = try_variants(k, runners, opts, failures)
    cases = wasm_runners.flat_map do |r|
      [EhCase.new(r, nil, k.wasm, [], nil, fresh.call)] +
        variants.map do |f, path|
          r == :node ? node_case(f, path, opts, node_version) : EhCase.new(r, f, path, [], nil, fresh.call)
        end
    end
    groups << EhGroup.new(:try, k, k.size(opts), cases)
  end
  return nil if groups.empty?

  groups.each do |g|
    $stderr.print "#{g.kernel.name}#{g.kind == :try ? ' with and without try' : ''} (size #{g.size}):"
    opts[:runs].times do
      g.cases.each do |c|
        next if c.skip || c.result.error

        run_once(command(c.runner, c.program, g.kernel.entry, g.size, opts, c.node_flags), opts, c.result)
      end
      $stderr.print '.'
    end
    $stderr.puts
  end
  EhSection.new(groups, runners, opts, node_version, failures)
end

# ---- start-up --------------------------------------------------------------

# Hello world in under 2 ms of wall time on `kobako-wasm run`: the whole
# process, as someone running a small wasm32-wasi program sees it.
HELLO_TARGET_MS = 2.0
HELLO_OUTPUT = "hello, world\n"
EXIT_USAGE = 64 # kobako-wasm's status for a command line it cannot use

# The smallest command module: one function of type [] -> [] exported as
# _start that returns at once; no imports, no memory. Running it costs
# kobako-wasm's run path and nothing of a program.
EMPTY_COMMAND = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
                 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,                   # types: [] -> []
                 0x03, 0x02, 0x01, 0x00,                               # function 0 has type 0
                 0x07, 0x0a, 0x01, 0x06, *'_start'.bytes, 0x00, 0x00,  # exports: "_start", function 0
                 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b].pack('C*').freeze # code: no locals, end

# One program the start-up section times: what a run must do to count (exit
# status, stdout, a pattern stderr must match) and the times of those that did.
StartCase = Struct.new(:key, :argv, :status, :stdout, :stderr, :times, :error) do
  # The time below which a fraction q of the runs fall, interpolated.
  def quantile(q)
    return nil if error || times.empty?

    sorted = times.sort
    pos = q * (times.size - 1)
    lo = sorted[pos.floor]
    lo + ((sorted[pos.ceil] - lo) * (pos - pos.floor))
  end

  def median = quantile(0.5)
end

# Runs argv once under bench/spawn_timer.c, which times it from posix_spawn to
# waitpid: Ruby's own spawn is a fork of the interpreter, about half a
# millisecond that would land in every start-up figure. stdin, stdout and
# stderr are files opened once. Returns [status, stdout, stderr, ms,
# timed_out] like run_process, with the timer's line taken off stderr; ms is
# nil when the timer did not report.
def run_brief(timer, argv, io, timeout)
  io.values_at(:out, :err).each do |f|
    f.truncate(0)
    f.rewind
  end
  timed_out = false
  pid = Process.spawn(timer, *argv, in: io[:in], out: io[:out], err: io[:err], pgroup: true)
  watchdog = Thread.new do
    sleep timeout
    timed_out = true
    Process.kill('KILL', -pid)
  rescue Errno::ESRCH
    nil
  end
  _, status = Process.wait2(pid)
  watchdog.kill
  out, err = io.values_at(:out, :err).map do |f|
    f.rewind
    f.read
  end
  ms = nil
  err = err.sub(/^spawn_ms:([\d.]+)\n\z/) do
    ms = Float(Regexp.last_match(1))
    ''
  end
  [status, out, err, ms, timed_out]
rescue SystemCallError => e
  [nil, '', e.message, nil, false]
end

# Why one run of c does not count, or nil when it does.
def start_failure(c, status, out, err, ms, timed_out, timeout)
  detail = err.to_s.strip.lines.last(3).join.strip
  return "killed after #{timeout} s" if timed_out
  return "could not start: #{detail}" if status.nil? || ms.nil?
  unless status.exitstatus == c.status
    what = status.signaled? ? "died of signal #{status.termsig}" : "exited with status #{status.exitstatus}"
    return "#{what}, not status #{c.status}#{detail.empty? ? '' : ": #{detail}"}"
  end
  return "printed #{out[0, 80].inspect}, not #{c.stdout.inspect}" unless out == c.stdout
  return "printed #{detail.inspect} on stderr, which does not match #{c.stderr.inspect}" if c.stderr && err !~ c.stderr

  nil
end

def fmt_ms2(value) = value.nil? ? '-' : format('%.2f', value)

# Hello world natively, on kobako-wasm run and on node:wasi, plus the steps
# that show where kobako's time goes; all cases interleaved run by run, after
# one untimed round that warms the page cache and checks every case.
def startup_section(runners, opts, node_version)
  out = File.join(opts[:build_dir], 'bench')
  timer = File.join(out, 'spawn-timer')
  hello = File.join(out, 'hello.wasm')
  empty = File.join(out, 'empty.wasm')
  cases = [StartCase.new(:native, [File.join(out, 'hello-native')], 0, HELLO_OUTPUT)]
  if runners.include?(:wasi)
    File.binwrite(empty, EMPTY_COMMAND)
    kobako = opts[:kobako]
    cases << StartCase.new(:kobako, [kobako, 'run', hello], 0, HELLO_OUTPUT)
    cases << StartCase.new(:tool, [kobako], EXIT_USAGE, '')
    cases << StartCase.new(:empty, [kobako, 'run', empty], 0, '')
    # invoke links only the spectest module, so it stops at hello.wasm's
    # first WASI import: after reading, decoding, validating and compiling it.
    cases << StartCase.new(:decode, [kobako, 'invoke', hello, '_start'], 1, '', /unknown import/)
  end
  if runners.include?(:node)
    cases << StartCase.new(:node, [opts[:node], '--no-warnings', File.join(BENCH, 'node_wasi.mjs'), hello], 0,
                           HELLO_OUTPUT)
  end
  cases.each { |c| c.times = [] }
  files = { out: Tempfile.new('kobako-bench-out'), err: Tempfile.new('kobako-bench-err') }
  fuel = nil
  File.open(File::NULL) do |null|
    io = files.merge(in: null)
    if runners.include?(:wasi)
      _, _, err, = run_brief(timer, [opts[:kobako], 'run', '--stats', hello], io, opts[:timeout])
      fuel = err[/fuel used: (\d+)/, 1]&.then { |f| Integer(f) }
    end
    $stderr.print "hello world (#{opts[:hello_runs]} runs):"
    (opts[:hello_runs] + 1).times do |round|
      # Rotating the order puts each case after every other one equally often,
      # so what a case leaves behind (node's caches, a busy core) is shared out.
      cases.rotate(round).each do |c|
        next if c.error

        status, stdout, stderr, ms, timed_out = run_brief(timer, c.argv, io, opts[:timeout])
        c.error = start_failure(c, status, stdout, stderr, ms, timed_out, opts[:timeout])
        c.times << ms unless c.error || round.zero?
      end
      $stderr.print '.' if (round % 10).zero?
    end
    $stderr.puts
  end
  files.each_value(&:close!)
  StartSection.new(cases, fuel, opts, node_version, hello, empty)
end

# The measured start-up section: report prints it and returns its failures.
StartSection = Struct.new(:cases, :fuel, :opts, :node_version, :hello, :empty) do
  def find(key) = cases.find { |c| c.key == key }

  def report
    native = find(:native).median
    kobako = find(:kobako)
    node = find(:node)
    puts
    puts "start-up: hello world (bench/hello.c, one printf), the whole process from spawn to exit; " \
         "#{opts[:hello_runs]} runs of each, interleaved; times in ms"
    puts "  native  #{find(:native).argv.join(' ')}"
    puts "  kobako  #{kobako.argv.join(' ')}" if kobako
    puts "  node    node #{node_version} --no-warnings bench/node_wasi.mjs #{hello} (node:wasi preview1)" if node
    puts '  q1, q3  the quartiles: half of the runs took between the two'
    puts
    rows = [find(:native), kobako, node].compact.map do |c|
      m = c.median
      [c.key.to_s, fmt_ms2(m), fmt_ms2(c.quantile(0)), fmt_ms2(c.quantile(0.25)), fmt_ms2(c.quantile(0.75)),
       fmt_ms2(c.quantile(1)), c.key == :native ? '' : fmt_ms2(m && native && m - native),
       c.key == :native ? '' : fmt_ratio(ratio(m, native)), c.error ? 'FAILED' : '']
    end
    print_columns(['runner', 'median', 'min', 'q1', 'q3', 'max', '- native', 'x native', ''], rows, [0, 8])
    report_kobako(kobako, native) if kobako&.median
    cases.select(&:error).map { |c| "hello world: #{c.argv.join(' ')}: #{c.error}" }
  end

  def report_kobako(kobako, native)
    verdict = kobako.median < HELLO_TARGET_MS ? 'meets' : 'misses'
    puts
    puts "kobako hello world: #{fmt_ms2(kobako.median)} ms median #{verdict} the target of under " \
         "#{fmt_ms2(HELLO_TARGET_MS)} ms (native's whole process: #{fmt_ms2(native)} ms)"
    # Each step does what the step in `over` does, and more.
    steps = [['tool', :tool, nil, 'kobako-wasm with no arguments: starts, prints its usage, exits 64'],
             ['empty', :empty, 'tool', "kobako-wasm run #{File.basename(empty)}: the run path on a module whose " \
                                       '_start returns'],
             ['decode', :decode, 'tool', 'kobako-wasm invoke hello.wasm _start: reads, decodes, validates and ' \
                                         'compiles hello.wasm, stops at its first WASI import'],
             ['hello', :kobako, 'empty', 'kobako-wasm run hello.wasm: decode as above, instantiate, run _start' \
                                         "#{fuel ? " (#{fuel} wasm instructions)" : ''}, exit"]]
    medians = steps.to_h { |name, key, _, _| [name, find(key).median] }
    return if medians.values.include?(nil)

    puts
    puts "where kobako's time goes (medians from the same runs):"
    puts
    rows = steps.map do |name, _, over, what|
      [name, fmt_ms2(medians[name]), over ? format('%+.2f', medians[name] - medians[over]) : '', over.to_s, what]
    end
    print_columns(%w[step median added over what], rows, [0, 3, 4])
  end
end

main if $PROGRAM_NAME == __FILE__
