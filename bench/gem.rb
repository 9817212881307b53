#!/usr/bin/env ruby
# frozen_string_literal: true

# Measures kobako through the gem, in one run: Sandbox.new, a warm
# eval("nil"), an eval making one Service call, the per-call cost inside a
# 1,000-call loop, a #run dispatch, a Handle round trip, a yield round trip,
# the RSS of 1,000 idle Sandboxes (never used, and used once), and evals per
# second of a compute-bound script on 1 and 2 threads, each against its
# target; and, for the last, what the machine gives two native processes.
# Medians of many repetitions. Ruby 3.1; the gem from the build tree
# (--build) or as installed.

require 'optparse'

opts = { build: File.expand_path('../build', __dir__), reps: 2000, seconds: 3.0 }
OptionParser.new do |o|
  o.banner = 'usage: ruby bench/gem.rb [options]'
  o.on('--build DIR', 'the CMake build tree whose gem to load (default: build/)') { |v| opts[:build] = File.expand_path(v) }
  o.on('--reps N', Integer, 'repetitions of each timed step (default 2000)') { |v| opts[:reps] = v }
  o.on('--seconds S', Float, 'how long each thread measurement runs (default 3)') { |v| opts[:seconds] = v }
end.parse!

$LOAD_PATH.unshift(File.expand_path('../ruby-ext/lib', __dir__), File.join(opts[:build], 'ruby-ext'))
require 'kobako'

REPS = opts[:reps]

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def median(xs)
  s = xs.sort
  s[s.size / 2]
end

# The median time of one call of the block, over REPS calls after as many
# unmeasured ones (method caches, the allocator and the GC warmed up).
def timed(reps = REPS)
  reps.times { yield }
  Array.new(reps) do
    t = now
    yield
    now - t
  end.then { |xs| median(xs) }
end

def rss_bytes
  File.read('/proc/self/status')[/^VmRSS:\s+(\d+) kB/, 1].to_i * 1024
end

def report(name, seconds, target, unit: :us)
  scale, label = unit == :us ? [1e6, 'us'] : [1e3, 'ms']
  verdict = seconds <= target ? 'met' : 'missed'
  puts format('%-44s %10.2f %s   (target: %s %s, %s)', name, seconds * scale, label,
              format('%g', target * scale), label, verdict)
end

# The host objects the benchmarks bind.
class Store
  def initialize
    @h = { 'a' => 1 }
  end

  def get(key)
    @h[key]
  end
end

class Maker
  Thing = Struct.new(:value)

  def make
    Thing.new(42)
  end

  def take(thing)
    thing.value
  end

  def each_n(n)
    i = 0
    while i < n
      yield i
      i += 1
    end
    n
  end
end

def sandbox
  sb = Kobako::Sandbox.new
  sb.define(:KV).bind(:Store, Store.new)
  sb.define(:F).bind(:Maker, Maker.new)
  sb.preload(code: 'Target = ->(x) { x }', name: 'target.rb')
  sb.eval('nil')
  sb
end

puts "kobako through the gem (#{RUBY_DESCRIPTION}), medians of #{REPS}"
report('Sandbox.new', timed { Kobako::Sandbox.new }, 3e-6)
sb = sandbox
report('a warm eval("nil")', timed { sb.eval('nil') }, 20e-6)
report('an eval making one Service call', timed { sb.eval("KV::Store.get('a')") }, 20e-6 + 2e-6)

loop_calls = timed(REPS / 10) { sb.eval("i = 0; while i < 1000; KV::Store.get('a'); i += 1; end") }
loop_empty = timed(REPS / 10) { sb.eval('i = 0; while i < 1000; i += 1; end') }
report('a Service call inside a 1,000-call loop', (loop_calls - loop_empty) / 1000, 2e-6)
report('a #run dispatch', timed { sb.run(:Target, 1) }, 20e-6 + 2e-6)
one_call = timed { sb.eval('F::Maker.make') }
report('a Handle round trip (make, then pass it back)', timed { sb.eval('F::Maker.take(F::Maker.make)') } - one_call, 2e-6)
yields = timed(REPS / 10) { sb.eval('F::Maker.each_n(1000) { |i| i }') }
no_yields = timed(REPS / 10) { sb.eval('F::Maker.each_n(0) { |i| i }') }
report('a yield round trip inside a 1,000-yield loop', (yields - no_yields) / 1000, 2e-6)

GC.start
before = rss_bytes
idle = Array.new(1000) { Kobako::Sandbox.new }
GC.start
puts format('%-44s %10.1f MB   (target: 32 MB, %s)', 'RSS of 1,000 idle Sandboxes',
            (rss_bytes - before) / 1e6, rss_bytes - before <= 32e6 ? 'met' : 'missed')
before = rss_bytes
idle.each { |s| s.eval('nil') }
GC.start
puts format('%-44s %10.1f MB', 'the same after one eval each', (rss_bytes - before) / 1e6)
idle = nil

# Evals per second of a compute-bound script, each thread with its own Sandbox.
SCRIPT = 'i = 0; s = 0; while i < 20_000; s += i; i += 1; end; s'
def evals_per_second(threads, seconds)
  boxes = Array.new(threads) { Kobako::Sandbox.new.tap { |s| s.eval('nil') } }
  counts = Array.new(threads, 0)
  deadline = now + seconds
  boxes.each_with_index.map do |box, i|
    Thread.new do
      while now < deadline
        box.eval(SCRIPT)
        counts[i] += 1
      end
    end
  end.each(&:join)
  counts.sum / seconds
end
one = evals_per_second(1, opts[:seconds])
two = evals_per_second(2, opts[:seconds])
puts format('%-44s %10.0f /s', 'compute-bound evals, 1 thread', one)
puts format('%-44s %10.0f /s   (%.2fx one thread; target: at least 1.8x, %s)', 'compute-bound evals, 2 threads',
            two, two / one, two / one >= 1.8 ? 'met' : 'missed')

# What the machine itself gives two CPU-bound processes: native mruby
# running the same loop, longer, once alone and twice at a time.
paths = File.join(opts[:build], 'bench', 'mruby-paths.txt')
native = File.file?(paths) && File.read(paths)[/^native_cli=(.*)$/, 1]
if native && File.executable?(native)
  loop_script = SCRIPT.sub('20_000', '20_000_000')
  run_native = -> { system(native, '-e', loop_script, out: File::NULL) or abort "#{native} failed" }
  alone = Array.new(3) { t = now; run_native.call; now - t }.min
  paired = Array.new(3) { t = now; Array.new(2) { Thread.new { run_native.call } }.each(&:join); now - t }.min
  puts format('%-44s %10.2fx   (two native mruby processes against one, the ceiling here)',
              'the machine: 2 processes', 2 * alone / paired)
end
