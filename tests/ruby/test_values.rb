# test_values.rb — values by value both ways: what eval returns, what #run
# passes in, strings as text or binary, and what cannot cross.
require_relative "helper"

class TestValues < Minitest::Test
  def setup
    @sb = Kobako::Sandbox.new
  end

  def test_scalars
    assert_nil @sb.eval("nil")
    assert_equal true, @sb.eval("true")
    assert_equal false, @sb.eval("1 == 2")
    assert_equal 3, @sb.eval("1 + 2")
    assert_equal(-(2**63), @sb.eval("-9223372036854775807 - 1"))
    assert_equal 2**62, @sb.eval("2**62")
    assert_equal 1.5, @sb.eval("3.0 / 2")
    assert_equal :sym, @sb.eval(":sym")
  end

  def test_collections
    assert_equal [1, [2, [3]]], @sb.eval("[1, [2, [3]]]")
    assert_equal({ a: 1, "b" => [nil, true, 2.5] }, @sb.eval("{a: 1, 'b' => [nil, true, 2.5]}"))
    assert_equal({ [1, 2] => { x: :y } }, @sb.eval("{[1, 2] => {x: :y}}"))
  end

  def test_strings
    text = @sb.eval('"caf\u00e9"')
    assert_equal "café", text
    assert_equal Encoding::UTF_8, text.encoding
    bin = @sb.eval('"\xff\x00"')
    assert_equal "\xff\x00".b, bin
    assert_equal Encoding::ASCII_8BIT, bin.encoding
  end
end

class TestValuesIn < Minitest::Test
  def sandbox
    sb = Kobako::Sandbox.new
    sb.preload(name: "echo.rb", code: <<~RUBY)
      module Echo
        def self.call(*args, **kwargs) = [args, kwargs]
      end
      module Kinds
        def self.call(*args) = args.map { |a| a.class.to_s }
      end
    RUBY
    sb
  end

  def test_run_passes_values_in
    sb = sandbox
    args = [nil, true, false, 7, -2**40, 2.5, "text", "\xff".b, :sym, [1, [2]], { "k" => { v: 1 } }]
    assert_equal [args, { a: 1, b: "two" }], sb.run(:Echo, *args, a: 1, b: "two")
    assert_equal %w[NilClass TrueClass FalseClass Integer Float String String Symbol Array Hash],
                 sb.run(:Kinds, nil, true, false, 1, 1.0, "s", "\xff".b, :s, [], {})
  end

  def test_binary_and_text_strings_keep_their_kind
    sb = sandbox
    out = sb.run(:Echo, "caf\u00e9", "\xff\xfe".b, "ascii".encode("US-ASCII"))[0]
    assert_equal ["café", "\xff\xfe".b, "ascii"], out
    assert_equal [Encoding::UTF_8, Encoding::ASCII_8BIT, Encoding::UTF_8], out.map(&:encoding)
  end

  def test_what_cannot_cross_in
    sb = sandbox
    assert_raises(RangeError) { sb.run(:Echo, 2**64) }
    deep = (1..70).reduce([]) { |a, _| [a] }
    error = assert_raises(ArgumentError) { sb.run(:Echo, deep) }
    assert_match(/nested deeper than 64 levels/, error.message)
    cyclic = []
    cyclic << cyclic
    assert_raises(ArgumentError) { sb.run(:Echo, cyclic) }
    assert_equal [[[]], {}], sb.run(:Echo, []), "the Sandbox works on"
  end

  def test_what_cannot_cross_out
    sb = Kobako::Sandbox.new
    error = assert_raises(Kobako::SandboxError) { sb.eval("Object.new") }
    assert_equal "value", error.origin
    assert_match(/cannot leave the sandbox/, error.message)
    assert_raises(Kobako::SandboxError) { sb.eval("a = []; a << a; a") }
    assert_equal 1, sb.eval("1")
  end
end
