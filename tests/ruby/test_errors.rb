# test_errors.rb — each failed invocation raises exactly one error: traps
# (timeout, memory cap, other faults), the script's own errors, Services'
# errors with their cause; each with its class, message and details.
require_relative "helper"

class TestErrors < Minitest::Test
  class Failing
    def fail_key = raise(KeyError, "no such key")
    def fail_custom = raise(Custom, "custom failure")
    def fail_name = no_such_local_method_here
    def fail_exit = exit(3)
    def fail_interrupt = raise(Interrupt)
    def fail_throw = throw(:outside, :thrown)
    Custom = Class.new(StandardError)
  end

  def setup
    @sb = Kobako::Sandbox.new(timeout: 1, memory_limit: 2 << 20)
    @sb.define(:Svc).bind(:Failing, Failing.new)
  end

  def test_hierarchy
    assert_operator Kobako::TimeoutError, :<, Kobako::TrapError
    assert_operator Kobako::MemoryLimitError, :<, Kobako::TrapError
    assert_operator Kobako::HandlerExhaustedError, :<, Kobako::SandboxError
    assert_operator Kobako::BytecodeError, :<, Kobako::SandboxError
    [Kobako::TrapError, Kobako::SandboxError, Kobako::ServiceError, Kobako::PoolTimeoutError,
     Kobako::SetupError].each { |c| assert_operator c, :<, Kobako::Error }
    assert_operator Kobako::Error, :<, StandardError
  end

  def test_timeout
    error = assert_raises(Kobako::TimeoutError) { @sb.eval("loop {}") }
    assert_equal "deadline exceeded", error.message
    assert_operator @sb.usage.wall_time, :>=, 0.9
    assert_equal 1, @sb.eval("1")
  end

  def test_memory_limit
    error = assert_raises(Kobako::MemoryLimitError) { @sb.eval("'x' * (40 << 20)") }
    assert_equal "memory limit exceeded", error.message
    assert_raises(Kobako::MemoryLimitError) { @sb.eval("a = []; loop { a << 'y' * 4096 }") }
    assert_equal 1, @sb.eval("1")
  end

  def test_script_errors
    error = assert_raises(Kobako::SandboxError) { @sb.eval("def f\n  raise ArgumentError, 'bad'\nend\nf") }
    assert_equal "bad", error.message
    assert_equal "ArgumentError", error.klass
    assert_equal "sandbox", error.origin
    assert_match(/\(eval\):2/, error.backtrace_lines.first)
    assert_predicate error.backtrace_lines, :frozen?
    error = assert_raises(Kobako::SandboxError) { @sb.eval("1 +") }
    assert_equal "SyntaxError", error.klass
    error = assert_raises(Kobako::SandboxError) { @sb.eval("NoSuchConstant") }
    assert_equal "NameError", error.klass
    error = assert_raises(Kobako::SandboxError) { @sb.eval("def r(n) = r(n + 1); r(0)") }
    assert_equal "SystemStackError", error.klass
  end

  def test_service_errors_keep_class_message_and_cause
    error = assert_raises(Kobako::ServiceError) { @sb.eval("Svc::Failing.fail_key") }
    assert_equal "no such key", error.message
    assert_equal "KeyError", error.klass
    assert_equal "service", error.origin
    assert_instance_of KeyError, error.cause
    error = assert_raises(Kobako::ServiceError) { @sb.eval("Svc::Failing.fail_custom") }
    assert_equal "TestErrors::Failing::Custom", error.klass
    assert_instance_of Failing::Custom, error.cause
  end

  def test_the_guest_sees_class_and_message_but_no_host_backtrace
    seen = @sb.eval(<<~RUBY)
      begin
        Svc::Failing.fail_key
      rescue KeyError => e
        [e.class.to_s, e.message, e.backtrace.join("\n")]
      end
    RUBY
    assert_equal %w[KeyError], seen.first(1)
    assert_equal "no such key", seen[1]
    refute_match(/test_errors\.rb|ruby-ext/, seen[2])
  end

  def test_a_host_name_error_keeps_the_host_source_to_itself
    error = assert_raises(Kobako::ServiceError) { @sb.eval("Svc::Failing.fail_name") }
    assert_equal "NameError", error.klass
    refute_match(/\^\^\^|fail_name =|Did you mean/, error.message)
  end

  def test_a_rescued_service_error_is_no_error
    assert_equal "rescued", @sb.eval("begin; Svc::Failing.fail_custom; rescue => e; 'rescued'; end")
  end

  def test_non_standard_errors_reach_the_caller_after_the_guest
    assert_equal 3, assert_raises(SystemExit) { @sb.eval("Svc::Failing.fail_exit") }.status
    assert_raises(Interrupt) { @sb.eval("begin; Svc::Failing.fail_interrupt; rescue Exception; :swallowed; end") }
    assert_equal :thrown, catch(:outside) { @sb.eval("Svc::Failing.fail_throw") }
    assert_equal 1, @sb.eval("1")
  end

  def test_setup_error_without_the_artifact
    skip "the runtime is loaded once per process" if ENV["KOBAKO_WASM"]
    out = IO.popen({ "KOBAKO_WASM" => "/nonexistent/kobako.wasm" },
                   [RbConfig.ruby, *$LOAD_PATH.flat_map { |d| ["-I", d] }, "-e",
                    "require 'kobako'; begin; Kobako::Sandbox.new; rescue Kobako::SetupError => e; print e.message; end"],
                   &:read)
    assert_match(%r{/nonexistent/kobako.wasm}, out)
  end
end
