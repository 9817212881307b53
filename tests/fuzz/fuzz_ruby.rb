# fuzz_ruby.rb — the gem's surface fuzzed: generated guest scripts (method
# chains over mruby's core classes, deep nesting, huge literals, calls of a
# bound Service with blocks, Handles and re-entry) through Kobako::Sandbox#eval.
# Each must end in a value or exactly one Kobako::Error, within the timeout
# and a second, and the Sandbox and the process must stay healthy; a script
# that breaks this is kept in the findings directory and fails the run.
#
#   ruby -I ruby-ext/lib -I BUILD/ruby-ext fuzz_ruby.rb [--seed N]
#        [--count N | --seconds S] [--timeout T] [--findings DIR]
require "fileutils"
require "optparse"
require "kobako"

opts = { seed: 1, count: nil, seconds: nil, timeout: 1.0, findings: "fuzz-ruby-findings" }
OptionParser.new do |o|
  o.on("--seed N", Integer) { |v| opts[:seed] = v }
  o.on("--count N", Integer, "scripts to run") { |v| opts[:count] = v }
  o.on("--seconds S", Float, "run for this long instead") { |v| opts[:seconds] = v }
  o.on("--timeout T", Float, "the Sandbox's timeout per script") { |v| opts[:timeout] = v }
  o.on("--findings DIR") { |v| opts[:findings] = v }
  o.on("--verbose", "print every script and its outcome") { opts[:verbose] = true }
end.parse!
opts[:count] ||= 100 unless opts[:seconds]
SANITIZED = ENV["KOBAKO_SANITIZED"] == "1"
# Past the deadline a script must be over within a second; the sanitized
# build unwinds several times slower.
GRACE = SANITIZED ? 5.0 : 1.0

# The bound Service: plain methods, blocks, keywords, errors, objects that
# cross as Handles, and calls back into the guest.
class FuzzService
  Item = Struct.new(:name, :value) do
    def double = value * 2
  end

  def echo(x) = x
  def add(a, b) = a + b
  def kw(a, b: 2, **rest) = [a, b, rest]
  def each_item(n)
    Integer(n).clamp(0, 50).times.map { |i| yield i }
  end

  def boom(msg = "boom") = raise(ArgumentError, msg.to_s)
  def item(name, value) = Item.new(name.to_s, value)
  def size_of(x) = x.respond_to?(:size) ? x.size : -1
  def big(n) = "z" * Integer(n).clamp(0, 2_000_000)
  def deep(n, &blk) = n.to_i <= 0 ? 0 : 1 + blk.call(n.to_i - 1)
  def slow(t) = sleep(Float(t).clamp(0, 3))
end

# A random guest script.
class ScriptGen
  INT_METHODS = %w[+ - * / % ** & | ^ << >> <=> == abs to_s to_f chr times upto succ pred divmod
                   fdiv gcd lcm digits even? odd? zero? pow bit_length floor ceil round coerce].freeze
  FLOAT_METHODS = %w[+ - * / % ** floor ceil round truncate to_i to_s nan? infinite? finite? abs
                     divmod <=> == step].freeze
  STRING_METHODS = %w[+ * % length size upcase downcase capitalize swapcase reverse chars bytes
                      split strip sub gsub index rindex [] slice center ljust rjust start_with?
                      end_with? include? to_i to_f to_sym ord succ tr delete squeeze count
                      each_char lines chomp chop dup freeze concat << insert prepend inspect
                      unpack bytesize byteslice each_byte scan =~ match hash].freeze
  ARRAY_METHODS = %w[+ - * & | << push pop shift unshift insert first last take drop map select
                     reject each each_with_index inject reduce sort sort_by min max sum uniq flatten
                     compact reverse rotate join zip product include? index count length size
                     empty? fill clear concat slice [] []= pack transpose each_slice group_by
                     partition cycle flat_map find all? any? none? dig assoc delete_at].freeze
  HASH_METHODS = %w[[] []= fetch key? keys values each map select reject merge to_a sort_by min_by
                    max_by count size delete dig transform_values invert group_by any? each_pair
                    store default values_at].freeze
  OTHER_METHODS = %w[to_s inspect to_a hash class frozen? dup nil? is_a? respond_to? send
                     instance_variables object_id freeze tap then itself method methods
                     instance_eval define_singleton_method].freeze
  SERVICE_CALLS = ["S::Svc.echo(%s)", "S::Svc.add(%s, %s)", "S::Svc.kw(%s, b: %s, c: %s)",
                   "S::Svc.each_item(%s) { |i| %s }", "S::Svc.boom(%s)", "S::Svc.item(%s, %s)",
                   "S::Svc.item(%s, %s).double", "S::Svc.item(%s, %s).value",
                   "S::Svc.size_of(%s)", "S::Svc.big(%s)", "S::Svc.nope(%s)",
                   "S::Svc.deep(%s) { |k| S::Svc.deep(k) { |j| j } }", "S::Svc.echo(S::Svc)",
                   "S::Svc.__send__(%s, %s)", "S::Svc.instance_variable_get(:@x)",
                   "S::Svc.slow(%s)"].freeze

  def initialize(rng)
    @rng = rng
  end

  def pick(list) = list[@rng.rand(list.size)]
  def chance(p) = @rng.rand < p

  def int
    case @rng.rand(8)
    when 0 then pick(%w[0 1 -1 2 3 7 10 255 65536 2147483647 -2147483648 9223372036854775807])
    when 1 then "(2 ** #{@rng.rand(200)})"
    when 2 then "-#{@rng.rand(1000)}"
    when 3 then "0x#{@rng.rand(1 << 40).to_s(16)}"
    when 4 then "1_000_000_000_000"
    else @rng.rand(100).to_s
    end
  end

  def float = pick(%w[0.0 -0.0 1.5 -2.25 1e308 1e-308 (0.0/0.0) (1.0/0.0) 3.14159 1e20])

  def string
    case @rng.rand(8)
    when 0 then %("#{pick(["", "abc", "héllo", "\\u00e9\\u{1F600}", "a\\tb\\n", "\\x00\\xff", "%s %d"])}")
    when 1 then "'#{"q" * @rng.rand(50)}'"
    when 2 then %("x\#{#{expr(1)}}y")
    when 3 then "(\"ab\" * #{pick(%w[3 1000 100_000 10_000_000 (1<<40) -1])})"
    when 4 then "%w[#{Array.new(@rng.rand(5)) { pick(%w[a bb ccc]) }.join(' ')}]"
    when 5 then "\"#{"long" * @rng.rand(5000)}\""
    else "\"s#{@rng.rand(100)}\""
    end
  end

  def literal(depth)
    case @rng.rand(12)
    when 0, 1 then int
    when 2 then float
    when 3, 4 then string
    when 5 then ":#{pick(%w[sym a b + <=> []])}"
    when 6 then "[#{Array.new(@rng.rand(4)) { expr(depth + 1) }.join(', ')}]"
    when 7 then "{#{Array.new(@rng.rand(3)) { "#{literal(depth + 1)} => #{expr(depth + 1)}" }.join(', ')}}"
    when 8 then "(#{int}..#{int})"
    when 9 then pick(%w[nil true false self])
    when 10 then "[#{Array.new(@rng.rand(3000), &:to_s).join(',')}]"
    else "->(a, b = 1) { #{expr(depth + 1)} }"
    end
  end

  def args(depth, n) = Array.new(n) { expr(depth + 1) }.join(", ")

  def chain(depth)
    methods = pick([INT_METHODS, FLOAT_METHODS, STRING_METHODS, ARRAY_METHODS, HASH_METHODS,
                    OTHER_METHODS])
    call = "(#{expr(depth + 1)}).#{pick(methods)}"
    call += "(#{args(depth, @rng.rand(3))})" if chance(0.6)
    call += " { |a, b| #{expr(depth + 1)} }" if chance(0.3)
    call
  end

  # Nesting hundreds or thousands deep: mruby's parser and compiler recurse.
  def deep
    n = pick([10, 100, 1000, 5000, 20_000])
    case @rng.rand(6)
    when 0 then "[" * n + "1" + "]" * n
    when 1 then "(" * n + "1" + ")" * n
    when 2 then "if true then " * n + "1" + " end" * n
    when 3 then "-> { " * n + "1" + " }" * n
    when 4 then "[1].map { |x| " * n + "x" + " }" * n
    else "1" + ".succ" * n
    end
  end

  def expr(depth = 0)
    return literal(depth + 3) if depth > 4
    case @rng.rand(14)
    when 0, 1, 2 then literal(depth)
    when 3, 4, 5 then chain(depth)
    when 6, 7 then format(pick(SERVICE_CALLS), *Array.new(3) { expr(depth + 1) })
    when 8 then "(#{expr(depth + 1)} #{pick(%w[+ - * / % == < <=> && || ** << & |])} #{expr(depth + 1)})"
    when 9 then "(begin; #{expr(depth + 1)}; rescue => e; e.class.to_s; end)"
    when 10 then "(#{expr(depth + 1)} ? #{expr(depth + 1)} : #{expr(depth + 1)})"
    when 11 then "[#{args(depth, 2)}].#{pick(%w[sum max first sort inspect])}"
    when 12 then chance(0.2) ? deep : literal(depth)
    else "Kernel.#{pick(%w[format sprintf Integer Float String Array rand])}(#{args(depth, 1 + @rng.rand(2))})"
    end
  end

  def statement
    case @rng.rand(16)
    when 0 then "x#{@rng.rand(3)} = #{expr}"
    when 1 then "def m#{@rng.rand(3)}(a = 1) = #{expr}"
    when 2 then "#{@rng.rand(4)}.times { |i| #{expr} }"
    when 3 then "i = 0; while i < #{@rng.rand(20)}; i += 1; #{expr}; end"
    when 4 then "raise #{pick(%w[RuntimeError ArgumentError TypeError StandardError])}, #{string}"
    when 5 then "begin; #{expr}; rescue #{pick(%w[StandardError Exception NoMethodError])} => e; e; end"
    when 6 then "loop { break #{expr} }"
    when 7 then chance(0.3) ? "loop { }" : "nil"
    when 8 then chance(0.3) ? "a = []; loop { a << 'x' * 100_000 }" : "nil"
    when 9 then chance(0.3) ? "def r(n) = r(n + 1); r(0)" : "nil"
    when 10 then "puts #{expr}"
    when 11 then "catch(:t) { throw :t, #{expr} }"
    when 12 then "Struct.new(:a, :b).new(#{args(0, 2)}).to_a"
    when 13 then chance(0.2) ? pick(["exit", "exit!(3)", "abort 'x'", "GC.start", "ObjectSpace.count_objects"]) : "nil"
    else expr
    end
  end

  # Statements, some rescued so that a script gets past its first error.
  def script
    Array.new(1 + @rng.rand(5)) do
      chance(0.4) ? "begin\n#{statement}\nrescue => e\n  e.message\nend" : statement
    end.join("\n")
  end
end

def fresh_sandbox(timeout)
  sb = Kobako::Sandbox.new(timeout: timeout, memory_limit: 8 << 20, stdout_limit: 4096,
                           stderr_limit: 4096)
  sb.define(:S).bind(:Svc, FuzzService.new)
  sb
end

findings = []
keep = lambda do |n, src, why|
  FileUtils.mkdir_p(opts[:findings])
  path = File.join(opts[:findings], "script-#{opts[:seed]}-#{n}.rb")
  File.write(path, "# #{why.gsub("\n", "\n# ")}\n#{src}\n")
  findings << "#{path}: #{why.lines.first.chomp}"
  warn "fuzz_ruby: script #{n}: #{why.lines.first.chomp}; kept in #{path}"
end

rng = Random.new(opts[:seed])
gen = ScriptGen.new(rng)
sb = fresh_sandbox(opts[:timeout])
started = Time.now
outcomes = Hash.new(0)
n = 0
loop do
  break if opts[:count] && n >= opts[:count]
  break if opts[:seconds] && Time.now - started >= opts[:seconds]
  n += 1
  src = gen.script
  sb = fresh_sandbox(opts[:timeout]) if rng.rand(20).zero?
  result = nil
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  worker = Thread.new do
    result = [:value, sb.eval(src)]
  rescue Exception => e # rubocop:disable Lint/RescueException -- what escapes is judged below
    result = [:error, e]
  end
  unless worker.join(opts[:timeout] + GRACE + 30)
    keep.call(n, src, "no outcome after #{opts[:timeout] + GRACE + 30} s: hung")
    break # a hung eval holds the Sandbox: nothing after it can be trusted
  end
  elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
  kind, what = result
  if kind == :error && !what.is_a?(Kobako::Error)
    keep.call(n, src, "raised #{what.class}, not a Kobako::Error: #{what.message}\n" \
                      "#{what.backtrace&.first(5)&.join("\n")}")
  elsif elapsed > opts[:timeout] + GRACE
    keep.call(n, src, "took #{elapsed.round(2)} s with a timeout of #{opts[:timeout]} s")
  end
  outcomes[kind == :value ? "value" : what.class.name] += 1
  puts "#{n}: #{kind == :value ? 'value' : what.class} #{elapsed.round(3)}s" if opts[:verbose]
  healthy = begin
    sb.eval("1 + 1") == 2
  rescue Exception => e # rubocop:disable Lint/RescueException
    keep.call(n, src, "the Sandbox is unhealthy afterwards: #{e.class}: #{e.message}")
    sb = fresh_sandbox(opts[:timeout])
    true
  end
  keep.call(n, src, "the Sandbox is unhealthy afterwards: 1 + 1 is not 2") unless healthy
end
puts "fuzz_ruby: #{n} scripts (seed #{opts[:seed]}) in #{(Time.now - started).round(1)} s: " \
     "#{outcomes.sort_by { |_, v| -v }.map { |k, v| "#{k} #{v}" }.join(', ')}; #{findings.size} findings"
findings.each { |f| puts "  #{f}" }
exit(findings.empty? ? 0 : 1)
