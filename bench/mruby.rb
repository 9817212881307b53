#!/usr/bin/env ruby
# frozen_string_literal: true

# Measures the mruby guest: mruby's own benchmark scripts (the source
# package's benchmark/bm_*.rb) with the mruby CLI built natively and for
# wasm32-wasi from one source, run on `kobako-wasm run`, each ratio and their
# geometric mean; then, through libkobako (eval_cost), loading kobako.wasm,
# the first eval("nil") of a fresh process and a warm eval("nil"). Medians
# of --runs runs. Ruby 3.1, standard library only.

require 'optparse'
require 'open3'

TARGET_RATIO = 4.0
TARGET_WARM_EVAL = 20e-6
TARGET_FIRST_EVAL = 5e-3

opts = { build: File.expand_path('../build', __dir__), runs: 3, processes: 11, warm: 5000, only: nil }
OptionParser.new do |o|
  o.banner = 'usage: ruby bench/mruby.rb [options]'
  o.on('--build DIR', 'the CMake build tree (default: build/)') { |v| opts[:build] = File.expand_path(v) }
  o.on('--runs N', Integer, 'runs of each script each way (default 3)') { |v| opts[:runs] = v }
  o.on('--processes N', Integer, 'fresh processes for the eval costs (default 11)') { |v| opts[:processes] = v }
  o.on('--warm N', Integer, 'warm evals in each process (default 5000)') { |v| opts[:warm] = v }
  o.on('--only NAME', 'only the scripts whose name contains NAME') { |v| opts[:only] = v }
end.parse!

paths_file = File.join(opts[:build], 'bench', 'mruby-paths.txt')
abort "bench/mruby.rb: no #{paths_file}: build the tree with the mruby guest first" unless File.exist?(paths_file)
PATHS = File.readlines(paths_file, chomp: true).to_h { |l| l.split('=', 2) }

def median(xs)
  s = xs.sort
  s.size.odd? ? s[s.size / 2] : (s[s.size / 2 - 1] + s[s.size / 2]) / 2.0
end

def timed(cmd)
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  out, err, st = Open3.capture3(*cmd)
  t = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
  abort "bench/mruby.rb: #{cmd.join(' ')} failed (#{st}): #{err}" unless st.success?
  [t, out]
end

dir = PATHS.fetch('benchmarks')
scripts = Dir[File.join(dir, 'bm_*.rb')].sort
scripts.select! { |s| File.basename(s).include?(opts[:only]) } if opts[:only]
puts "mruby's benchmarks, median of #{opts[:runs]} runs (seconds)"
puts format('%-24s %10s %10s %8s', 'script', 'native', 'kobako', 'ratio')
ratios = []
scripts.each do |path|
  name = File.basename(path, '.rb')
  native = []
  wasm = []
  outputs = []
  opts[:runs].times do
    t, out = timed([PATHS.fetch('native_cli'), path])
    native << t
    outputs << out
    t, out = timed([PATHS.fetch('kobako_wasm_tool'), 'run', '--dir', "#{dir}::/bench:ro",
                    PATHS.fetch('wasm_cli'), "/bench/#{File.basename(path)}"])
    wasm << t
    outputs << out
  end
  abort "bench/mruby.rb: #{name}: native and kobako print different output" if outputs.uniq.size != 1
  ratio = median(wasm) / median(native)
  ratios << ratio
  puts format('%-24s %10.3f %10.3f %7.2fx', name, median(native), median(wasm), ratio)
end
unless ratios.empty?
  geomean = Math.exp(ratios.sum { |r| Math.log(r) } / ratios.size)
  puts format('%-24s %10s %10s %7.2fx  (target: at most %.0fx)', 'geometric mean', '', '', geomean, TARGET_RATIO)
end

puts
puts "eval(\"nil\") through libkobako, median of #{opts[:processes]} fresh processes"
samples = Array.new(opts[:processes]) do
  _, out = timed([PATHS.fetch('eval_cost'), PATHS.fetch('kobako_wasm'), opts[:warm].to_s])
  out.split.to_h { |kv| k, v = kv.split('='); [k, Float(v)] }
end
load, first, warm = %w[load first_eval warm_eval].map { |k| median(samples.map { |s| s.fetch(k) }) }
puts format('%-34s %10.3f ms', 'loading kobako.wasm', load * 1e3)
puts format('%-34s %10.3f ms  (target: under %.0f ms)', 'the first eval in a process', first * 1e3,
            TARGET_FIRST_EVAL * 1e3)
puts format('%-34s %10.1f us  (target: under %.0f us)', "a warm eval (median of #{opts[:warm]})", warm * 1e6,
            TARGET_WARM_EVAL * 1e6)
