# test_hostile.rb — scripts that attack: reflection on proxies, forged and
# misused Handles, deep recursion through Services, huge strings and
# messages, output floods, symbol floods; each ends in the right error and
# the process and the Sandbox stay healthy.
require_relative "helper"

class TestHostile < Minitest::Test
  class Svc
    def initialize
      @secret = "the host's secret"
    end

    def echo(x) = x
    def nest(n) = n.zero? ? 0 : yield(n)
    def thing = Object.new
  end

  def setup
    @sb = Kobako::Sandbox.new(timeout: 2, memory_limit: 4 << 20, stdout_limit: 1000, stderr_limit: 1000)
    @sb.define(:A).bind(:Svc, Svc.new)
  end

  def teardown
    assert_equal 3, @sb.eval("1 + 2"), "the Sandbox is healthy afterwards"
  end

  def refused(src)
    error = assert_raises(Kobako::ServiceError, src) { @sb.eval(src) }
    assert_equal "NoMethodError", error.klass
    refute_match(/secret|TestHostile|0x[0-9a-f]{6}/, error.message)
    error
  end

  def test_reflection_on_proxies
    refused("A::Svc.instance_variable_get(:@secret)")
    refused("A::Svc.instance_variables")
    refused("A::Svc.send(:instance_variable_get, :@secret)")
    refused("A::Svc.public_send(:instance_variable_get, :@secret)")
    refused("A::Svc.method(:echo)")
    refused("A::Svc.singleton_class")
    refused("A::Svc.__send__(:method_missing, :instance_eval, '@secret')")
    refused("A::Svc.__send__(:method_missing, :class_eval, '1')")
    refused("A::Svc.__send__(:method_missing, :define_singleton_method, :x)")
    refused("A::Svc.thing.__send__(:method_missing, :instance_variable_get, :@x)")
    refused("A::Svc.instance_eval { instance_variables }")
  end

  def test_forged_and_misused_handles
    ["Kobako::Proxy.allocate", "Class.new(Kobako::Proxy).new",
     "Kobako::Proxy.instance_method(:method_missing).bind(Object.new).call(:echo, 1)",
     "A::Svc.__send__(:method_missing, 42)", "A::Svc.__send__(:method_missing)"].each do |src|
      assert_raises(Kobako::SandboxError, src) { @sb.eval(src) }
    end
    assert_match(/Kobako::Handle 1/, @sb.eval("h = A::Svc.thing; h.inspect"))
  end

  def test_long_method_names_are_clipped
    error = refused("A::Svc.__send__(:method_missing, ('f' * 10_000).to_sym)")
    assert_operator error.message.size, :<, 200
  end

  def test_deep_recursion
    assert_equal "SystemStackError", assert_raises(Kobako::SandboxError) { @sb.eval("def r(n) = r(n + 1); r(0)") }.klass
    assert_raises(Kobako::TrapError) { @sb.eval("$r = ->(n) { A::Svc.nest(n) { |m| $r.(m - 1) + 1 } }; $r.(100_000)") }
    assert_equal 50, @sb.eval("$r = ->(n) { A::Svc.nest(n) { |m| $r.(m - 1) + 1 } }; $r.(50)")
  end

  def test_huge_strings
    assert_raises(Kobako::MemoryLimitError) { @sb.eval("'x' * (100 << 20)") }
    assert_raises(Kobako::MemoryLimitError) { @sb.eval("s = 'x'; loop { s += s }") }
    assert_equal 1_000_000, @sb.eval("A::Svc.echo('x' * 1_000_000).size")
    error = assert_raises(Kobako::SandboxError) { @sb.eval("raise 'm' * 1_000_000") }
    assert_equal 1_000_000, error.message.size
  end

  def test_output_floods
    assert_raises(Kobako::TimeoutError) { @sb.eval("loop { print 'x' * 100; $stderr.print 'y' }") }
    assert_equal "x" * 1000, @sb.stdout
    assert_equal "y" * 1000, @sb.stderr
    assert @sb.stdout_truncated?
    @sb.eval("#{KobakoTest.scale(5_000)}.times { puts 'flood' }")
    assert @sb.stdout_truncated?
    assert_equal 1000, @sb.stdout.bytesize
  end

  def test_floods_of_values
    assert_equal 2000, @sb.eval("(1..2000).map { |i| :\"s\#{i}\" }").size
    assert_raises(Kobako::SandboxError) { @sb.eval("x = nil; 100.times { x = [x] }; x") }
    assert_raises(Kobako::SandboxError) { @sb.eval("A::Svc.echo((1..100).reduce([]) { |a, _| [a] })") }
  end

  def test_breaking_the_runtime
    ["Object.send(:remove_const, :Kobako); A::Svc.echo(1)",
     "class Kobako::Proxy; def method_missing(*) = :mine; end; A::Svc.echo(1)",
     "class BasicObject; def method_missing(*) = raise('mine'); end; A::Svc.echo(1)"].each do |src|
      @sb.eval(src)
    rescue Kobako::SandboxError
      next
    end
    assert_equal [1, "Kobako::Proxy"], @sb.eval("[A::Svc.echo(1), Kobako::Proxy.to_s]"),
                 "nothing of the last invocation is left"
  end
end
