#!/usr/bin/env ruby
# frozen_string_literal: true

# Measures the benchmark kernels (bench/kernels/*.c) natively, on
# `kobako-wasm invoke` and on node, checks that all three agree on each
# checksum, and prints one table of median times and slowdowns to native.
# Ruby 3.1, standard library only. `ruby bench/run.rb --help` lists the options.

require 'optparse'

ROOT = File.expand_path('..', __dir__)
BENCH = File.join(ROOT, 'bench')

# WebAssembly 2.0 without SIMD, as clang names its features; the engine runs
# nothing newer, so a module that declares anything else is rejected up front.
ALLOWED_FEATURES = %w[
  bulk-memory bulk-memory-opt call-indirect-overlong multivalue mutable-globals
  nontrapping-fptoint reference-types sign-ext
].freeze

TARGET_SLOWDOWN = 6.0

KernelSpec = Struct.new(:name, :full, :quick, :wasm, :native) do
  def entry = "bench_#{name}"
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
           node: 'node', use_kobako: true, use_node: true, build: true, only: nil, timeout: 300 }
  OptionParser.new do |o|
    o.banner = "usage: ruby bench/run.rb [options]\n" \
               'Builds the kernels (CMake target bench-kernels), runs each natively, on ' \
               'kobako-wasm and on node, and prints medians and slowdowns.'
    o.on('--runs N', Integer, 'runs per kernel and runner; the median is reported (default 5, 1 with --quick)') do |n|
      die '--runs must be at least 1' if n < 1
      opts[:runs] = n
    end
    o.on('--quick', 'small sizes and one run: a smoke test, not a measurement') { opts[:quick] = true }
    o.on('--only LIST', Array, 'only these kernels (comma-separated names)') { |l| opts[:only] = l }
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

def discover_kernels(opts)
  out = File.join(opts[:build_dir], 'bench')
  kernels = Dir[File.join(BENCH, 'kernels', '*.c')].sort.map do |src|
    name = File.basename(src, '.c')
    File.read(src) =~ /run\.rb sizes: full (\d+), quick (\d+)/ or
      die "#{src} has no 'run.rb sizes: full N, quick M' comment"
    KernelSpec.new(name, Integer(Regexp.last_match(1)), Integer(Regexp.last_match(2)),
                File.join(out, "#{name}.wasm"), File.join(out, "#{name}-native"))
  end
  if opts[:only]
    unknown = opts[:only] - kernels.map(&:name)
    die "no kernel named #{unknown.join(', ')}; have #{kernels.map(&:name).join(', ')}" unless unknown.empty?
    kernels.select! { |k| opts[:only].include?(k.name) }
  end
  kernels.each do |k|
    [k.wasm, k.native].each do |f|
      die "#{f} is missing; build the bench-kernels target (or drop --no-build)" unless File.exist?(f)
    end
  end
  kernels
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

def check_features(kernels)
  kernels.each do |k|
    features = declared_features(k.wasm)
    if features.nil?
      warn "run.rb: #{k.wasm} has no target_features section, so its features are unchecked"
      next
    end
    extra = features.select { |prefix, name| prefix != '-' && !ALLOWED_FEATURES.include?(name) }.map(&:last)
    die "#{k.wasm} uses #{extra.join(', ')}, beyond WebAssembly 2.0 without SIMD" unless extra.empty?
  rescue ArgumentError => e
    die "#{k.wasm}: #{e.message}"
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
  argv = case runner
         when :native then [kernel.native, size.to_s]
         when :kobako then [opts[:kobako], 'invoke', '--stats', kernel.wasm, kernel.entry, size.to_s]
         when :node
           # Without Liftoff node compiles with TurboFan before the call; with it
           # a long-running call would stay in baseline code for good.
           [opts[:node], '--no-liftoff', File.join(BENCH, 'node_invoke.mjs'), kernel.wasm, kernel.entry,
            size.to_s]
         end
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
  kernels = discover_kernels(opts)
  check_features(kernels)

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

  report(kernels, runners, results, opts, version)
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
  return if failures.empty?

  puts
  puts 'FAILED:'
  failures.each { |f| puts "  #{f}" }
  exit 1
end

main if $PROGRAM_NAME == __FILE__
