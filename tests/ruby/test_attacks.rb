# test_attacks.rb — the attacks of issue 12's security review, each as it was
# observed on the gem: each must now end in a typed Kobako::Error within the
# timeout plus a second, with the host's RSS grown by under 10 MiB, no code
# run on the host, and the Sandbox healthy afterwards.
require_relative "helper"

class TestAttacks < Minitest::Test
  PAYLOAD = "$kobako_pwned = true".freeze

  def setup
    $kobako_pwned = nil
  end

  def rss_mib
    File.read("/proc/self/status")[/^VmRSS:\s+(\d+) kB/, 1].to_i / 1024.0
  end

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  # Runs the attack, which must raise error_class, and checks the rest.
  def attack(sb, src, error_class, timeout: 5.0)
    GC.start
    rss = rss_mib
    started = now
    error = assert_raises(error_class, src) { sb.eval(src) }
    assert_operator now - started, :<=, timeout + 1, "#{src}: ended in time"
    GC.start
    assert_operator rss_mib - rss, :<, 10, "#{src}: host RSS" unless KobakoTest::SANITIZED
    assert_nil $kobako_pwned, "#{src}: code ran on the host"
    assert_equal 2, sb.eval("1 + 1"), "#{src}: the Sandbox is healthy"
    error
  end

  # 1. A method that calls a method by a name the guest gave.
  def test_1_dispatch_by_name
    sb = Kobako::Sandbox.new(timeout: 5)
    sb.define(:Cfg).bind(:Env, { "region" => "eu" })
    attack(sb, "Cfg::Env.store(#{PAYLOAD.dump}, 1); Cfg::Env.each_key.inject(:instance_eval)",
           Kobako::ServiceError)
    attack(sb, "Cfg::Env.inject(:instance_eval)", Kobako::ServiceError)
    frozen = Struct.new(:a, :b).new(1, 2).freeze
    sb = Kobako::Sandbox.new(timeout: 5)
    sb.define(:App).bind(:S, frozen)
    attack(sb, "(App::S.each + ['self', #{PAYLOAD.dump}]).lazy.drop(2).inject('', :instance_eval)",
           Kobako::ServiceError)
  end

  # 2. Reflective objects reachable as Handles.
  def test_2_reflective_handles
    sb = Kobako::Sandbox.new(timeout: 5)
    sb.define(:App).bind(:Cache, Hash.new { |_, key| key })
    error = attack(sb, "App::Cache.default_proc.binding.eval(#{PAYLOAD.dump})", Kobako::ServiceError)
    assert_equal "undefined method 'default_proc' for App::Cache", error.message
    sb = Kobako::Sandbox.new(timeout: 5)
    sb.define(:App).bind(:Leak, Class.new { def handler = @handler ||= proc { 1 } }.new)
    error = attack(sb, "App::Leak.handler.binding.eval(#{PAYLOAD.dump})", Kobako::ServiceError)
    assert_equal "a Proc cannot cross to the guest", error.message
  end

  # 3. A private method called through a block.
  class Broad
    def respond_to_missing?(*) = true
    def method_missing(*) = :dynamic

    private def wipe = $kobako_pwned = true
  end

  def test_3_private_methods_through_a_block
    sb = Kobako::Sandbox.new(timeout: 5)
    sb.define(:App).bind(:B, Broad.new)
    attack(sb, "App::B.wipe { }", Kobako::ServiceError)
    attack(sb, "App::B.wipe", Kobako::ServiceError)
    assert_equal :dynamic, sb.eval("App::B.dynamic { }")
  end

  # 4. Host work outside every budget.
  Account = Struct.new(:owner, :balance) do
    def audit = loop { balance }
  end

  class Bank
    def account(owner) = Account.new(owner, 10)
  end

  class Clock
    def now = Time.now
  end

  def test_4_host_work_is_budgeted
    sb = Kobako::Sandbox.new(timeout: 1.0)
    sb.define(:Bank).bind(:Main, Bank.new)
    attack(sb, "Bank::Main.account('ann').cycle.count", Kobako::ServiceError, timeout: 1.0)
    attack(sb, "Bank::Main.account('ann').audit", Kobako::TimeoutError, timeout: 1.0)
    sb = Kobako::Sandbox.new(timeout: 8.0, memory_limit: 1 << 20)
    sb.define(:Sys).bind(:Clock, Clock.new)
    attack(sb, "loop { Sys::Clock.now }", Kobako::HandlerExhaustedError, timeout: 8.0)
    attack(sb, "loop { begin; Sys::Clock.now; rescue Exception; end }", Kobako::HandlerExhaustedError,
           timeout: 8.0)
    sb = Kobako::Sandbox.new(timeout: 5.0, memory_limit: 64 << 20)
    attack(sb, "a = [[]] * 1000; [a] * 1000", Kobako::TransferLimitError)
  end

  # 5. An interrupt the guest could swallow.
  class Work
    def work = 1
    def nap = sleep(0.01)
  end

  def test_5_interrupts_stay_interrupts
    sb = Kobako::Sandbox.new(timeout: 20)
    sb.define(:Svc).bind(:Main, Work.new)
    %w[work nap].each do |m|
      thread = Thread.new { sb.eval("loop { begin; Svc::Main.#{m}; rescue Exception; end }") }
      thread.report_on_exception = false
      sleep 0.3
      started = now
      thread.raise(ArgumentError, "stop")
      assert_raises(ArgumentError) { thread.join }
      assert_operator now - started, :<, 1, "Thread#raise into a guest calling #{m}"
    end
    assert_equal 2, sb.eval("1 + 1")
  end

  # 6. memory_limit bounds what the script allocates.
  def test_6_memory_limit_bounds_the_script
    sb = Kobako::Sandbox.new(memory_limit: 1 << 20)
    attack(sb, 'a = []; 100.times { a << "x" * 50_000 }; nil', Kobako::MemoryLimitError)
  end

  # 7. The floor looks at the method the call reaches.
  def test_7_the_seed_readme_struct
    user = Struct.new(:name)
    sb = Kobako::Sandbox.new
    sb.define(:App).bind(:User, user.new("Aotoki"))
    assert_equal "Aotoki", sb.eval("App::User.name")
  end
end
