#!/usr/bin/env ruby
# frozen_string_literal: true

# Measures the benchmark kernels (bench/kernels/*.c) natively, on
# `kobako-wasm invoke` and on node, checks that all three agree on each
# checksum, and prints one table of median times and slowdowns to native;
# then a section on exception handling: the cost per throw (bench/eh/*.c) and
# the cost of try blocks on a hot path (variants made by bench/try_wrap.rb).
# Ruby 3.1, standard library only. `ruby bench/run.rb --help` lists the options.

require 'optparse'
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
# path per flavour.
KernelSpec = Struct.new(:name, :full, :quick, :wasm, :native) do
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
           node: 'node', use_kobako: true, use_node: true, build: true, only: nil, timeout: 300, eh: true }
  OptionParser.new do |o|
    o.banner = "usage: ruby bench/run.rb [options]\n" \
               'Builds the kernels (CMake target bench-kernels), runs each natively, on ' \
               'kobako-wasm and on node, and prints medians and slowdowns; then the cost per throw ' \
               'and of try blocks on a hot path.'
    o.on('--runs N', Integer, 'runs per kernel and runner; the median is reported (default 5, 1 with --quick)') do |n|
      die '--runs must be at least 1' if n < 1
      opts[:runs] = n
    end
    o.on('--quick', 'small sizes and one run: a smoke test, not a measurement') { opts[:quick] = true }
    o.on('--only LIST', Array, 'only these kernels (comma-separated names, from kernels/ and eh/)') do |l|
      opts[:only] = l
    end
    o.on('--no-eh', 'skip the exception-handling section (throw kernels, try blocks)') { opts[:eh] = false }
    o.on('--build-dir DIR', 'CMake build tree holding bin/ and bench/ (default: build/ in the repository)') do |d|
      opts[:build_dir] = File.expand_path(d)
    end
    o.on('--kobako PATH', 'the kobako-wasm binary (default: BUILD_DIR/bin/kobako-wasm, rebuilt first)') do |p|
      opts[:kobako] = File.expand_path(p)
    end
    o.on('--node PATH', 'the node binary (default: node on PATH)') { |p| opts[:node] = p }
    o.on('--no-kobako', 'skip kobako-wasm') { opts[:use_kobako] = false }
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

# The kernels of kernels/ (WebAssembly 2.0) and, unless --no-eh, those of eh/
# (one module per exception-handling flavour), as selected by --only.
def discover_kernels(opts)
  out = File.join(opts[:build_dir], 'bench')
  specs = lambda do |dir, &wasm|
    Dir[File.join(BENCH, dir, '*.c')].sort.map do |src|
      name = File.basename(src, '.c')
      File.read(src) =~ /run\.rb sizes: full (\d+), quick (\d+)/ or
        die "#{src} has no 'run.rb sizes: full N, quick M' comment"
      KernelSpec.new(name, Integer(Regexp.last_match(1)), Integer(Regexp.last_match(2)),
                     wasm.call(File.join(out, name)), File.join(out, "#{name}-native"))
    end
  end
  kernels = specs.call('kernels') { |base| "#{base}.wasm" }
  eh_kernels = specs.call('eh') { |base| EH_FLAVOURS.to_h { |f| [f, "#{base}-#{f}.wasm"] } }
  if opts[:only]
    known = (kernels + eh_kernels).map(&:name)
    unknown = opts[:only] - known
    die "no kernel named #{unknown.join(', ')}; have #{known.join(', ')}" unless unknown.empty?
    kernels.select! { |k| opts[:only].include?(k.name) }
    eh_kernels.select! { |k| opts[:only].include?(k.name) }
  end
  eh_kernels = [] unless opts[:eh]
  die 'nothing to run: --only names only eh/ kernels, and --no-eh skips them' if kernels.empty? && eh_kernels.empty?
  kernels.each do |k|
    [k.wasm, k.native].each do |f|
      die "#{f} is missing; build the bench-kernels target (or drop --no-build)" unless File.exist?(f)
    end
  end
  eh_kernels.each do |k|
    [*k.modules, k.native].each do |f|
      next if File.exist?(f)

      die "#{f} is missing; build the bench-kernels target (or drop --no-build). The eh/ kernels also " \
          "need guest/'s toolchain (llvm-ar-22), or pass --no-eh"
    end
  end
  [kernels, eh_kernels]
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
  run_once(command(runner, runner == :native ? kernel.native : kernel.wasm, kernel.entry, size, opts),
           opts, result)
end

# The command line that runs entry(size) of program (a native executable or a
# wasm module) on runner; node_flags go to node before the script.
def command(runner, program, entry, size, opts, node_flags = [])
  case runner
  when :native then [program, size.to_s]
  when :kobako then [opts[:kobako], 'invoke', '--stats', program, entry, size.to_s]
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
  kernels, eh_kernels = discover_kernels(opts)
  check_features(kernels.map(&:wasm))
  check_features(eh_kernels.flat_map(&:modules), EH_FEATURES, 'WebAssembly 2.0 without SIMD plus exception handling')

  runners = [:native]
  if opts[:use_kobako]
    die "#{opts[:kobako]} not found; build kobako-wasm, or pass --kobako PATH or --no-kobako" unless File.executable?(opts[:kobako])
    runners << :kobako
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

  failures = kernels.empty? ? [] : report(kernels, runners, results, opts, version)
  failures += eh.report if eh
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
    node_ratio = agrees.(:node) ? ratio(node_call, native_inner) : nil
    { cells: { 'kernel' => k.name, 'size' => (opts[:quick] ? k.quick : k.full).to_s,
               'native' => fmt_ms(native), 'native kern' => fmt_ms(native_inner),
               'kobako' => fmt_ms(kobako), 'kobako Mi/s' => rate ? format('%.0f', rate) : '-', 'node call' => fmt_ms(node_call), 'node proc' => fmt_ms(node_proc),
               'kobako/native' => fmt_ratio(kobako_ratio), 'node/native' => fmt_ratio(node_ratio),
               'checksum' => mismatch ? 'MISMATCH' : (sums[:native] || '-').to_s },
      kobako_ratio: kobako_ratio, node_ratio: node_ratio }
  end
  kobako_geo = geomean(rows.map { |r| r[:kobako_ratio] })
  node_geo = geomean(rows.map { |r| r[:node_ratio] })
  header = ['kernel', 'size', 'native', 'native kern']
  header += ['kobako', 'kobako Mi/s'] if runners.include?(:kobako)
  header += ['node call', 'node proc'] if runners.include?(:node)
  header += ['kobako/native'] if runners.include?(:kobako)
  header += ['node/native'] if runners.include?(:node)
  header += ['checksum']
  geo_row = { 'kernel' => 'geomean', 'kobako/native' => fmt_ratio(kobako_geo), 'node/native' => fmt_ratio(node_geo) }
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
  if runners.include?(:node)
    puts "  node call    the export call alone on node #{node_version} --no-liftoff (TurboFan code), process.hrtime"
    puts '  node proc    whole node process: start-up, compile and the call'
  end
  puts '  kobako/native = kobako / native (both whole processes)' if runners.include?(:kobako)
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

  # Names to the left, numbers to the right, as in the main table.
  def print_table(header, rows)
    table = [header] + rows
    widths = header.each_index.map { |i| table.map { |row| row[i].size }.max }
    left = [0, header.index('runner')]
    line = lambda do |row|
      row.each_with_index.map { |c, i| left.include?(i) ? c.ljust(widths[i]) : c.rjust(widths[i]) }.join('  ').rstrip
    end
    puts line.call(header)
    puts line.call(widths.map { |w| '-' * w })
    rows.each { |row| puts line.call(row) }
  end
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
  wasm_runners = runners - [:native]
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

main if $PROGRAM_NAME == __FILE__
