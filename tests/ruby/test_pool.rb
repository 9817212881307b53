# test_pool.rb — Kobako::Pool: Sandboxes built lazily and set up once,
# lent exclusively, a checkout timeout, and a trapped Sandbox replaced.
require_relative "helper"

class TestPool < Minitest::Test
  def test_lazy_setup_once_and_reuse
    setups = 0
    pool = Kobako::Pool.new(slots: 2, timeout: 1) do |sb|
      setups += 1
      sb.preload(name: "sq.rb", code: "module Sq; def self.call(x) = x * x; end")
    end
    assert_equal 0, setups
    assert_equal 9, pool.with { |sb| sb.run(:Sq, 3) }
    assert_equal 16, pool.with { |sb| sb.run(:Sq, 4) }
    assert_equal 1, setups, "the same Sandbox came back"
  end

  def test_exclusive_checkout_and_timeout
    pool = Kobako::Pool.new(slots: 2, checkout_timeout: 0.2)
    inside = Queue.new
    release = Queue.new
    holders = Array.new(2) { Thread.new { pool.with { |sb| inside << sb; release.pop } } }
    lent = [inside.pop, inside.pop]
    refute_same lent[0], lent[1]
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    error = assert_raises(Kobako::PoolTimeoutError) { pool.with { flunk "no slot was free" } }
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :>=, 0.2
    assert_match(/no free Sandbox/, error.message)
    2.times { release << :go }
    holders.each(&:join)
    assert_includes lent, pool.with { |sb| sb }
  end

  def test_a_waiter_gets_the_returned_sandbox
    pool = Kobako::Pool.new(slots: 1, checkout_timeout: 5)
    results = Queue.new
    threads = Array.new(4) { |i| Thread.new { results << pool.with { |sb| sb.eval("#{i} * 10") } } }
    threads.each(&:join)
    assert_equal [0, 10, 20, 30], Array.new(4) { results.pop }.sort
  end

  def test_a_trapped_sandbox_is_replaced
    built = []
    pool = Kobako::Pool.new(slots: 1, timeout: 0.2) { |sb| built << sb }
    assert_raises(Kobako::TimeoutError) { pool.with { |sb| sb.eval("loop {}") } }
    assert_equal 1, pool.with { |sb| sb.eval("1") }
    assert_equal 2, built.size
    assert_raises(Kobako::SandboxError) { pool.with { |sb| sb.eval("raise 'x'") } }
    pool.with { |sb| sb.eval("1") }
    assert_equal 2, built.size, "an error that is not a trap keeps the Sandbox"
  end

  def test_a_failing_setup_frees_its_slot
    calls = 0
    pool = Kobako::Pool.new(slots: 1, checkout_timeout: 0.1) do
      calls += 1
      raise "setup failed" if calls == 1
    end
    assert_raises(RuntimeError) { pool.with { flunk } }
    assert_equal 5, pool.with { |sb| sb.eval("5") }
  end

  def test_bad_arguments
    assert_raises(ArgumentError) { Kobako::Pool.new(slots: 0) }
    assert_raises(ArgumentError) { Kobako::Pool.new(slots: 1, checkout_timeout: -1) }
    assert_raises(ArgumentError) { Kobako::Pool.new(slots: 1, memory_limit: 0).with { } }
  end
end
