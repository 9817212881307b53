# test_options.rb — Sandbox.new's options: defaults, nil disabling the
# timeout and the memory cap, every bad value an ArgumentError, profiles
# and the gvl modes.
require_relative "helper"

class TestOptions < Minitest::Test
  def test_defaults_and_nil
    assert_equal 2, Kobako::Sandbox.new.eval("1 + 1")
    sb = Kobako::Sandbox.new(timeout: nil, memory_limit: nil)
    assert_equal 8 << 20, sb.eval("('x' * (8 << 20)).size")
    assert_equal 3, Kobako::Sandbox.new(timeout: 5, memory_limit: 4 << 20, stdout_limit: 0,
                                        stderr_limit: 10).eval("3")
  end

  def test_a_huge_timeout_is_as_good_as_none
    sb = Kobako::Sandbox.new(timeout: 1e10)
    sb.define(:S).bind(:Echo, Class.new { def id(x) = x }.new)
    assert_equal [2, 3], [sb.eval("1 + 1"), sb.eval("S::Echo.id(3)")]
    assert_equal 4, Kobako::Sandbox.new(timeout: Float::MAX).eval("2 + 2")
  end

  def test_bad_values
    [
      { timeout: 0 }, { timeout: -1 }, { timeout: "1" }, { timeout: Float::INFINITY },
      { timeout: Float::NAN }, { timeout: Complex(1, 1) },
      { memory_limit: 0 }, { memory_limit: 1.5 }, { memory_limit: -1 }, { memory_limit: 1 << 64 },
      { stdout_limit: nil }, { stdout_limit: -1 }, { stderr_limit: "big" },
      { profile: :open }, { profile: "hermetic" }, { gvl: :maybe },
    ].each do |opts|
      assert_raises(ArgumentError, opts.inspect) { Kobako::Sandbox.new(**opts) }
    end
    assert_raises(ArgumentError) { Kobako::Sandbox.new(colour: :blue) }
  end

  def test_messages_name_the_option
    error = assert_raises(ArgumentError) { Kobako::Sandbox.new(memory_limit: 0) }
    assert_equal "memory_limit must be an Integer of bytes, at least 1 (or nil), not 0", error.message
    error = assert_raises(ArgumentError) { Kobako::Sandbox.new(timeout: -1) }
    assert_equal "timeout must be a positive number of seconds or nil, not -1", error.message
  end

  def test_profiles
    assert_equal 1, Kobako::Sandbox.new(profile: :permissive).eval("1")
    assert_equal 1, Kobako::Sandbox.new(profile: :hermetic).eval("1")
  end

  def test_gvl_modes_agree
    src = "(1..100).map { |i| i * i }.reduce(:+)"
    assert_equal Kobako::Sandbox.new(gvl: :release).eval(src), Kobako::Sandbox.new(gvl: :hold).eval(src)
  end
end
