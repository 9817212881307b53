# test_budgets.rb — every invocation is bounded on both sides: the timeout
# covers Services and Handles running on the host (a hung one is stopped),
# an exception from outside ends the invocation and reaches the caller, the
# Handles and what the host decodes have budgets, a reply cannot outgrow the
# guest, and memory_limit counts everything the script allocates.
require_relative "helper"
require "timeout"

class TestBudgets < Minitest::Test
  class Slow
    def spin = loop {}
    def nap(seconds = 30) = sleep(seconds)
    def work = 1

    def swallow
      sleep 30
    rescue Exception
      :swallowed
    end

    def each_forever = loop { yield 1 }
    def fresh = Object.new
    def take(*) = :taken
    def each_value = yield([[]] * 5)
    def big(n) = "x" * n
    def helper = Helper.new
  end

  class Helper
    def spin = loop {}
  end

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  def sandbox(**options)
    sb = Kobako::Sandbox.new(**options)
    sb.define(:S).bind(:Slow, Slow.new)
    sb
  end

  def assert_within(seconds, what)
    started = now
    yield
    assert_operator now - started, :<=, seconds, what
  end

  # ---- host time ------------------------------------------------------------------------

  def test_a_service_running_past_the_deadline_is_stopped
    [{}, { gvl: :hold }].each do |mode|
      sb = sandbox(timeout: 0.4, **mode)
      %w[S::Slow.spin S::Slow.nap S::Slow.swallow S::Slow.helper.spin
         S::Slow.each_forever{} S::Slow.each_forever{S::Slow.work}].each do |src|
        assert_within(1.4, "#{src} #{mode}") do
          error = assert_raises(Kobako::TimeoutError, src) { sb.eval(src) }
          assert_equal "deadline exceeded", error.message
        end
        assert_operator sb.usage.wall_time, :>=, 0.4
        assert_equal 2, sb.eval("1 + 1")
      end
    end
  end

  def test_the_guest_cannot_rescue_the_deadline
    sb = sandbox(timeout: 0.4)
    src = "loop { begin; S::Slow.nap; rescue Exception; end }"
    assert_within(1.4, src) { assert_raises(Kobako::TimeoutError) { sb.eval(src) } }
  end

  def test_without_a_timeout_services_run_as_long_as_they_take
    sb = sandbox(timeout: nil)
    assert_equal :ok, sb.eval("S::Slow.nap(0.3); :ok")
  end

  # ---- exceptions from outside --------------------------------------------------------

  def in_thread(sb, src)
    thread = Thread.new { sb.eval(src) }
    thread.report_on_exception = false
    sleep 0.3
    thread
  end

  def test_thread_raise_reaches_the_caller_whatever_the_guest_rescues
    sb = sandbox(timeout: 30)
    ["loop { begin; S::Slow.work; rescue Exception; end }", "S::Slow.nap",
     "loop { begin; S::Slow.nap; rescue Exception; end }", "S::Slow.each_forever { S::Slow.work }",
     "loop { begin; S::Slow.each_forever { }; rescue Exception; end }"].each do |src|
      thread = in_thread(sb, src)
      assert_within(1.0, src) do
        thread.raise(ArgumentError, "from outside")
        error = assert_raises(ArgumentError, src) { thread.join }
        assert_equal "from outside", error.message
      end
      assert_equal 2, sb.eval("1 + 1")
    end
  end

  def test_thread_kill_and_timeout
    sb = sandbox(timeout: 30)
    thread = in_thread(sb, "S::Slow.nap")
    assert_within(1.0, "kill") { thread.kill.join }
    refute_predicate thread, :alive?
    assert_within(1.0, "Timeout.timeout") do
      assert_raises(Timeout::Error) { Timeout.timeout(0.3) { sb.eval("S::Slow.nap") } }
    end
    assert_equal 2, sb.eval("1 + 1")
  end

  def test_a_signal_reaches_the_caller
    sb = sandbox(timeout: 30)
    Thread.new { sleep 0.3; Process.kill("INT", Process.pid) }
    assert_within(1.0, "SIGINT") do
      assert_raises(Interrupt) { sb.eval("loop { begin; S::Slow.nap; rescue Exception; end }") }
    end
    assert_equal 2, sb.eval("1 + 1")
  end

  def test_the_services_own_errors_stay_the_guests_to_rescue
    sb = Kobako::Sandbox.new
    sb.define(:S).bind(:Failing, Class.new { def go = raise(ArgumentError, "own") }.new)
    assert_equal "own", sb.eval("begin; S::Failing.go; rescue ArgumentError => e; e.message; end")
  end

  # ---- Handles and what the host decodes -----------------------------------------------

  def test_the_handle_budget_ends_the_invocation
    sb = sandbox(handle_limit: 100)
    assert_equal 100, sb.eval("Array.new(100) { S::Slow.fresh }.size")
    ["loop { S::Slow.fresh }", "loop { begin; S::Slow.fresh; rescue Exception; end }"].each do |src|
      error = assert_raises(Kobako::HandlerExhaustedError, src) { sb.eval(src) }
      assert_equal "more than 100 Kobako::Handles in one invocation", error.message
    end
    assert_raises(Kobako::HandlerExhaustedError) { sb.run(:Missing, *Array.new(101) { Object.new }) }
    assert_equal 100, sb.eval("Array.new(100) { S::Slow.fresh }.size"), "each invocation anew"
  end

  def test_the_object_budget
    sb = sandbox(object_limit: 500)
    assert_equal :taken, sb.eval("S::Slow.take(Array.new(498) { 'x' })"), "498 + their Array + :taken"
    assert_equal 5000, sb.eval("5000.times { S::Slow.work; S::Slow.take(1, 2.5, nil, true) }"),
                 "arguments that make no objects cost none"
    { "S::Slow.take(Array.new(500) { 'x' })" => "argument", "6.times { S::Slow.take(['a'] * 99) }" => "calls",
      "S::Slow.take(k: [[]] * 600)" => "keywords", "[[]] * 600" => "outcome",
      "S::Slow.each_value { [[]] * 600 }" => "a block's value",
      "loop { begin; S::Slow.take([[]] * 100); rescue Exception; end }" => "rescued" }.each do |src, what|
      error = assert_raises(Kobako::TransferLimitError, what) { sb.eval(src) }
      assert_equal "the guest sent the host more than 500 objects in one invocation (object_limit)",
                   error.message
    end
    assert_kind_of Kobako::TrapError, Kobako::TransferLimitError.new
    assert_equal 600, sandbox(object_limit: nil).eval("S::Slow.take([[]] * 600); ([[]] * 600).size")
  end

  def test_the_byte_budget
    sb = sandbox(byte_limit: 1000, memory_limit: nil)
    assert_equal :taken, sb.eval("S::Slow.take('x' * 995)"), "995 bytes, and 'taken'"
    ["S::Slow.take('x' * 1001)", "S::Slow.take(:a, 'x' * 999, 'y')", "'x' * 1001",
     "3.times { S::Slow.take('x' * 400) }"].each do |src|
      error = assert_raises(Kobako::TransferLimitError, src) { sb.eval(src) }
      assert_match(/more than 1000 bytes of strings/, error.message)
    end
    assert_equal 100_000, sandbox(byte_limit: nil).eval("S::Slow.take('x' * 100_000); ('x' * 100_000).size")
  end

  def test_a_reply_cannot_outgrow_the_guests_memory
    sb = sandbox(memory_limit: 1 << 20)
    error = assert_raises(Kobako::ServiceError) { sb.eval("S::Slow.big(2 << 20)") }
    assert_equal "a value of more than 1048576 bytes (the memory_limit) cannot cross to the guest", error.message
    assert_equal 1000, sb.eval("S::Slow.big(1000).size")
    assert_equal 2 << 20, sandbox(memory_limit: nil).eval("S::Slow.big(2 << 20).size")
  end

  def test_bad_budgets
    [0, -1, 1.5, "9", 2**63].each do |bad|
      %i[object_limit byte_limit].each do |option|
        assert_raises(ArgumentError, "#{option}: #{bad.inspect}") { Kobako::Sandbox.new(option => bad) }
      end
    end
    assert_raises(ArgumentError) { Kobako::Sandbox.new(handle_limit: Kobako::Handle::MAX_ID + 1) }
  end

  # ---- memory ----------------------------------------------------------------------------

  def test_memory_limit_counts_what_the_script_allocates
    sb = Kobako::Sandbox.new(memory_limit: 1 << 20)
    assert_raises(Kobako::MemoryLimitError) { sb.eval('a = []; 100.times { a << "x" * 50_000 }; nil') }
    assert_operator sb.usage.memory_peak, :>, 512 << 10
    assert_operator sb.usage.memory_peak, :<=, 1 << 20
    sb.eval("nil")
    assert_operator sb.usage.memory_peak, :<, 256 << 10, "an empty eval grows the memory little"
    sb.eval("a = 'x' * 300_000; nil")
    assert_operator sb.usage.memory_peak, :>=, 300_000
    assert_raises(Kobako::SandboxError) { sb.eval("s = 'y' * 200_000; raise s[0, 3]") }
    assert_operator sb.usage.memory_peak, :>=, 200_000, "usage on an error outcome too"
  end

  def test_preloads_are_part_of_the_baseline
    sb = Kobako::Sandbox.new(memory_limit: 1 << 20)
    sb.preload(name: "big.rb", code: "BIG = 'z' * 2_000_000")
    assert_equal 2_000_000, sb.eval("BIG.size")
    assert_operator sb.usage.memory_peak, :<, 256 << 10
  end
end
