# test_soak.rb — 100,000 invocations on one Sandbox (evals, runs, Service
# calls with Handles and blocks, errors and traps among them) with the
# process's resident memory flat once warmed up.
require_relative "helper"

class TestSoak < Minitest::Test
  def rss_kb
    File.read("/proc/self/status")[/^VmRSS:\s+(\d+)/, 1].to_i
  end

  def test_one_hundred_thousand_invocations
    svc = Class.new do
      def pair(x) = [x, Object.new]
      def each = 2.times { |i| yield i }
      def fail = raise(KeyError, "k")
    end.new
    sb = Kobako::Sandbox.new(timeout: 5)
    sb.define(:S).bind(:Svc, svc)
    sb.preload(name: "soak.rb", code: "module Add; def self.call(a, b:) = a + b; end")
    step = lambda do |i|
      case i % 10
      when 0 then sb.run(:Add, i, b: 1)
      when 1 then sb.eval("S::Svc.pair(#{i})[1].inspect")
      when 2 then sb.eval("r = 0; S::Svc.each { |j| r += j }; r")
      when 3 then (sb.eval("S::Svc.fail") rescue Kobako::ServiceError)
      when 4 then (sb.eval("raise 'x'") rescue Kobako::SandboxError)
      when 5 then sb.eval("puts 'line'; 'x' * 100")
      else sb.eval("#{i} + 1")
      end
    end
    total = KobakoTest.scale(100_000)
    warm = total / 10
    warm.times(&step)
    GC.start
    before = rss_kb
    (warm...total).each(&step)
    GC.start
    grown = rss_kb - before
    assert_operator grown, :<, 16 * 1024, "RSS grew #{grown} KiB over #{total - warm} invocations"
    assert_equal 2, sb.eval("1 + 1")
  end
end
