#!/usr/bin/env ruby
# frozen_string_literal: true

# Builds load_time.c against the build tree's engine library (vm/libkvm.a)
# and runs it: the time kvm_module_new takes per byte of modules of several
# shapes, at three sizes up to --max-mb. Ruby 3.1, standard library only.

require 'optparse'

ROOT = File.expand_path('..', __dir__)
opts = { build: File.join(ROOT, 'build'), args: [] }
OptionParser.new do |o|
  o.banner = 'usage: ruby bench/load_time.rb [options]'
  o.on('--build DIR', 'the CMake build tree (default: build/)') { |v| opts[:build] = File.expand_path(v) }
  o.on('--max-mb MB', 'the largest module size (default 10)') { |v| opts[:args] += ['--max-mb', v] }
  o.on('--runs N', 'loads of each module, the median reported (default 3)') { |v| opts[:args] += ['--runs', v] }
  o.on('--only SHAPE', 'one shape, by its name in the table') { |v| opts[:args] += ['--only', v] }
end.parse!

cache = File.join(opts[:build], 'CMakeCache.txt')
abort "bench/load_time.rb: no #{cache}: configure the tree first" unless File.exist?(cache)
type = File.read(cache)[/^CMAKE_BUILD_TYPE:STRING=(.*)$/, 1]
warn "bench/load_time.rb: #{opts[:build]} is a #{type} build: the numbers mean little unless it is Release" unless type == 'Release'
system('cmake', '--build', opts[:build], '--target', 'kvm') or abort 'bench/load_time.rb: building kvm failed'
exe = File.join(opts[:build], 'bench', 'load_time')
Dir.mkdir(File.dirname(exe)) unless Dir.exist?(File.dirname(exe))
system(ENV.fetch('CC', 'cc'), '-O2', '-std=gnu11', '-Wall', '-Wextra', '-I', File.join(ROOT, 'vm', 'include'),
       File.join(__dir__, 'load_time.c'), File.join(opts[:build], 'vm', 'libkvm.a'), '-lm', '-o', exe) or
  abort 'bench/load_time.rb: compiling load_time.c failed'
exec(exe, *opts[:args])
