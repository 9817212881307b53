# test_snippets.rb — preloaded snippets: source compiled and run at once,
# RITE bytecode loaded at the seal, #run on what they define, and the seal.
require_relative "helper"
require "tmpdir"

class TestSnippets < Minitest::Test
  MRBC = ENV["KOBAKO_MRBC"]

  def test_preload_code_and_run
    sb = Kobako::Sandbox.new
    assert_same sb, sb.preload(name: "greet.rb", code: <<~RUBY)
      module Greet
        def self.call(name, punct: "!") = "hello, \#{name}\#{punct}"
      end
    RUBY
    assert_equal "hello, ann!", sb.run(:Greet, "ann")
    assert_equal "hello, bob?", sb.run("Greet", "bob", punct: "?")
    assert_equal "hello, cy!", sb.eval("Greet.call('cy')")
    assert_equal "hello, dee!", sb.run(:Greet, "dee"), "each invocation from the same snapshot"
  end

  def test_a_snippets_value_does_not_matter
    sb = Kobako::Sandbox.new
    sb.preload(name: "lambda.rb", code: "Double = ->(x) { x * 2 }")
    assert_equal 8, sb.run(:Double, 4)
  end

  def test_preloaded_state_is_reset_each_invocation
    sb = Kobako::Sandbox.new
    sb.preload(name: "counter.rb", code: "$count = 0\nmodule Bump; def self.call = $count += 1; end")
    assert_equal [1, 1, 1], Array.new(3) { sb.run(:Bump) }
  end

  def test_preload_errors_raise_at_once
    sb = Kobako::Sandbox.new
    error = assert_raises(Kobako::SandboxError) { sb.preload(name: "bad.rb", code: "def broken(") }
    assert_equal "SyntaxError", error.klass
    error = assert_raises(Kobako::SandboxError) { sb.preload(name: "raise.rb", code: "\nraise 'at load'") }
    assert_equal "at load", error.message
    assert_match(/raise\.rb:2/, error.backtrace_lines.join)
    assert_equal 1, sb.eval("1")
  end

  def test_run_errors
    sb = Kobako::Sandbox.new
    sb.preload(name: "fail.rb", code: "module Fail; def self.call = raise(KeyError, 'k'); end")
    assert_equal "KeyError", assert_raises(Kobako::SandboxError) { sb.run(:Fail) }.klass
    assert_equal "NameError", assert_raises(Kobako::SandboxError) { sb.run(:Missing) }.klass
    assert_raises(ArgumentError) { sb.run(:lower) }
    assert_raises(ArgumentError) { sb.run("A::B") }
  end

  def test_preload_arguments
    sb = Kobako::Sandbox.new
    assert_raises(ArgumentError) { sb.preload(code: "1") }
    assert_raises(ArgumentError) { sb.preload(name: "x.rb") }
    assert_raises(ArgumentError) { sb.preload(code: "1", name: "x.rb", binary: "x") }
    assert_raises(ArgumentError) { sb.preload }
  end

  def mrbc(source)
    skip "no mrbc (KOBAKO_MRBC)" unless MRBC && File.executable?(MRBC)
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "s.rb"), source)
      system(MRBC, "-o", File.join(dir, "s.mrb"), File.join(dir, "s.rb"), exception: true)
      File.binread(File.join(dir, "s.mrb"))
    end
  end

  def test_preload_binary
    sb = Kobako::Sandbox.new
    sb.preload(binary: mrbc("module Triple; def self.call(x) = x * 3; end"))
    refute sb.sealed?
    assert_equal 9, sb.run(:Triple, 3)
    assert_equal 12, sb.eval("Triple.call(4)")
  end

  def test_bad_bytecode_raises_at_the_first_invocation
    good = mrbc("1")
    ["not bytecode at all", good[0, 20], good.sub("0300", "9999")].each do |payload|
      sb = Kobako::Sandbox.new
      sb.preload(binary: payload)
      error = assert_raises(Kobako::BytecodeError) { sb.eval("1") }
      assert_equal "bytecode", error.origin
      assert_raises(Kobako::BytecodeError) { sb.eval("1") }
    end
  end
end
