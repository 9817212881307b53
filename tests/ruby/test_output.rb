# test_output.rb — what an invocation wrote and used: stdout and stderr
# clipped at their caps with the flags, and usage, after every outcome.
require_relative "helper"

class TestOutput < Minitest::Test
  def test_stdout_and_stderr
    sb = Kobako::Sandbox.new
    assert_equal "", sb.stdout
    assert_nil sb.usage
    sb.eval("puts 'out'; print 1, 2; $stderr.puts 'err'; p :x; 0")
    assert_equal "out\n12:x\n", sb.stdout
    assert_equal "err\n", sb.stderr
    assert_equal Encoding::UTF_8, sb.stdout.encoding
    refute sb.stdout_truncated?
    refute sb.stderr_truncated?
    sb.eval("nil")
    assert_equal "", sb.stdout, "each invocation starts with nothing written"
  end

  def test_caps
    sb = Kobako::Sandbox.new(stdout_limit: 10, stderr_limit: 3)
    sb.eval("print 'a' * 100; $stderr.print 'bcdef'")
    assert_equal "a" * 10, sb.stdout
    assert_equal "bcd", sb.stderr
    assert sb.stdout_truncated?
    assert sb.stderr_truncated?
  end

  def test_set_by_failures_too
    sb = Kobako::Sandbox.new(timeout: 0.3)
    assert_raises(Kobako::TimeoutError) { sb.eval("puts 'before'; loop {}") }
    assert_equal "before\n", sb.stdout
    assert_operator sb.usage.wall_time, :>=, 0.3
    assert_raises(Kobako::SandboxError) { sb.eval("$stderr.puts 'oops'; raise 'x'") }
    assert_equal "oops\n", sb.stderr
    assert_equal "", sb.stdout
  end

  def test_usage
    sb = Kobako::Sandbox.new(memory_limit: nil)
    sb.eval("1")
    assert_instance_of Kobako::Usage, sb.usage
    assert_kind_of Float, sb.usage.wall_time
    small = sb.usage.memory_peak
    sb.eval("('x' * (32 << 20)).size")
    assert_operator sb.usage.memory_peak, :>=, 16 << 20
    assert_operator small, :<, sb.usage.memory_peak
  end

  def test_stdout_is_a_copy
    sb = Kobako::Sandbox.new
    sb.eval("print 'abc'")
    sb.stdout << "changed"
    assert_equal "abc", sb.stdout
  end
end
