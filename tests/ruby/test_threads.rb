# test_threads.rb — threads: 8 on 8 Sandboxes and 8 on one shared Sandbox
# (serialized, never mixed up), the GVL released while the guest runs and
# taken back for Service calls, and Thread#raise / #kill reaching a guest.
require_relative "helper"

class TestThreads < Minitest::Test
  class Counter
    def initialize
      @n = 0
    end

    def bump(by) = @n += by
    attr_reader :n
  end

  def test_eight_threads_on_eight_sandboxes
    counter = Counter.new
    sandboxes = Array.new(8) do |i|
      sb = Kobako::Sandbox.new
      sb.define(:C).bind(:Counter, counter)
      sb.preload(name: "work.rb", code: "module Work; def self.call(i) = (1..200).map { |k| C::Counter.bump(1); k * i }.last; end")
      sb
    end
    rounds = KobakoTest.scale(50)
    results = sandboxes.each_with_index.map do |sb, i|
      Thread.new { Array.new(rounds) { [sb.run(:Work, i), sb.eval("#{i} * 2")] } }
    end.map(&:value)
    results.each_with_index { |r, i| assert_equal [[200 * i, 2 * i]] * rounds, r }
    assert_equal 8 * rounds * 200, counter.n
  end

  def test_eight_threads_on_one_sandbox
    sb = Kobako::Sandbox.new
    sb.define(:Echo).bind(:Id, Class.new { def id(x) = x }.new)
    rounds = KobakoTest.scale(100)
    results = Array.new(8) do |t|
      Thread.new do
        Array.new(rounds) do |k|
          value = sb.eval("puts #{t}; Echo::Id.id([#{t}, #{k}])")
          [value, sb.usage.is_a?(Kobako::Usage)]
        end
      end
    end.map(&:value)
    results.each_with_index do |r, t|
      assert_equal Array.new(rounds) { |k| [[t, k], true] }, r
    end
  end

  def test_the_gvl_is_released_while_the_guest_runs
    sb = Kobako::Sandbox.new(timeout: 10)
    ticks = 0
    ticker = Thread.new { loop { ticks += 1; sleep 0.01 } }
    sb.eval("i = 0; while i < #{KobakoTest.scale(3_000_000)}; i += 1; end")
    ticker.kill
    assert_operator ticks, :>=, 5, "another thread ran during a long guest run"
  end

  def test_gvl_hold_keeps_other_threads_waiting
    sb = Kobako::Sandbox.new(gvl: :hold)
    ticks = 0
    ticker = Thread.new { loop { ticks += 1; sleep 0.001 } }
    sleep 0.02
    before = ticks
    sb.eval("i = 0; while i < 2_000_000; i += 1; end")
    assert_operator ticks - before, :<=, 2
  ensure
    ticker&.kill
  end

  def test_thread_raise_and_kill_interrupt_the_guest
    sb = Kobako::Sandbox.new(timeout: 4)
    started = Time.now
    t = Thread.new { sb.eval("loop {}") }
    t.report_on_exception = false
    sleep 0.2
    t.raise(ArgumentError, "stop")
    assert_raises(ArgumentError) { t.join }
    t = Thread.new { sb.eval("loop {}") }
    sleep 0.2
    t.kill
    t.join
    assert_operator Time.now - started, :<, 3, "interrupted long before the timeout"
    assert_equal 1, sb.eval("1")
  end

  def test_a_service_reentering_its_own_sandbox_is_refused
    sb = Kobako::Sandbox.new
    reenter = Class.new { def initialize(sb) = @sb = sb; def again = @sb.eval("1") }.new(sb)
    sb.define(:R).bind(:Again, reenter)
    error = assert_raises(Kobako::ServiceError) { sb.eval("R::Again.again") }
    assert_equal "ThreadError", error.klass
    assert_equal 2, sb.eval("2")
  end

  def test_a_service_may_use_another_sandbox
    inner = Kobako::Sandbox.new
    outer = Kobako::Sandbox.new
    outer.define(:Inner).bind(:Eval, Class.new { def initialize(sb) = @sb = sb; def run_code(s) = @sb.eval(s) }.new(inner))
    assert_equal 42, outer.eval("Inner::Eval.run_code('6 * 7')")
  end
end
