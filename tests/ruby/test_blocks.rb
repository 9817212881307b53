# test_blocks.rb — a Service yielding into the guest's block: values both
# ways, break, next, exceptions either way, nested yields, a trap inside a
# block, and a block kept past its call.
require_relative "helper"

class TestBlocks < Minitest::Test
  class Items
    attr_reader :log, :kept

    def initialize
      @log = []
    end

    def each
      [1, 2, 3].each { |i| @log << yield(i) }
      :finished
    end

    def each_pair = { a: 1, b: 2 }.each { |k, v| yield k, v }
    def map_twice(x) = [yield(x), yield(x + 1)]
    def with_kwargs = yield(1, scale: 10)

    def guarded
      yield
    rescue Kobako::SandboxError => e
      "service rescued #{e.klass}: #{e.message}"
    end

    def ensuring
      yield
    ensure
      @log << :ensured
    end

    def wrapping
      yield
    rescue Kobako::SandboxError => e
      raise ArgumentError, "wrapped #{e.message}"
    end

    def keep(&blk)
      @kept = blk
      :kept
    end

    def call_kept = @kept.call(1)
    def nest(depth, &blk) = depth.zero? ? yield(:bottom) : yield(depth) + [nest(depth - 1, &blk)]
  end

  def setup
    @items = Items.new
    @sb = Kobako::Sandbox.new(timeout: 2)
    @sb.define(:Lib).bind(:Items, @items).bind(:Other, Items.new)
  end

  def test_yield_and_values
    assert_equal [:finished, [10, 20, 30]], @sb.eval("r = []; x = Lib::Items.each { |i| r << i * 10; i }; [x, r]")
    assert_equal [1, 2, 3], @items.log
    assert_equal [["a", 1], ["b", 2]], @sb.eval("r = []; Lib::Items.each_pair { |k, v| r << [k.to_s, v] }; r")
    assert_equal [4, 6], @sb.eval("Lib::Items.map_twice(2) { |x| x * 2 }")
  end

  def test_keywords_reach_the_block_as_keywords
    assert_equal 10, @sb.eval("Lib::Items.with_kwargs { |i, scale:| i * scale }")
  end

  def test_break
    assert_equal 42, @sb.eval("Lib::Items.each { |i| break 42 if i == 2; i }")
    assert_equal [1], @items.log, "break stops the Service"
    assert_equal :after, @sb.eval("Lib::Items.each { break }; :after")
  end

  def test_next
    assert_equal :finished, @sb.eval("Lib::Items.each { |i| next 0 if i == 2; i }")
    assert_equal [1, 0, 3], @items.log
  end

  def test_block_raises_and_the_service_does_not_rescue
    error = assert_raises(Kobako::SandboxError) { @sb.eval("Lib::Items.each { |i| raise IndexError, 'inner' }") }
    assert_equal "IndexError", error.klass
    assert_equal "inner", error.message
    assert_equal "caught IndexError inner",
                 @sb.eval("begin; Lib::Items.each { raise IndexError, 'inner' }; rescue IndexError => e; 'caught ' + e.class.to_s + ' ' + e.message; end")
    assert_raises(Kobako::SandboxError) { @sb.eval("Lib::Items.ensuring { raise 'x' }") }
    assert_equal [:ensured], @items.log
  end

  def test_block_raises_and_the_service_rescues
    assert_equal "service rescued RuntimeError: boom", @sb.eval("Lib::Items.guarded { raise 'boom' }")
    error = assert_raises(Kobako::ServiceError) { @sb.eval("Lib::Items.wrapping { raise 'boom' }") }
    assert_equal "ArgumentError", error.klass
    assert_equal "wrapped boom", error.message
  end

  def test_service_error_inside_a_block
    error = assert_raises(Kobako::ServiceError) do
      @sb.eval("Lib::Items.each { Lib::Other.secret }")
    end
    assert_equal "undefined method 'secret' for Lib::Other", error.message
  end

  def test_nested_yields
    assert_equal [3, [2, [1, "bottom"]]], @sb.eval("Lib::Items.nest(3) { |d| d == :bottom ? 'bottom' : [d] }")
    assert_equal [[1, 10], [1, 20], [1, 30], [2, 10]],
                 @sb.eval(<<~RUBY).first(4)
                   r = []
                   Lib::Items.each { |i| Lib::Other.each { |j| r << [i, j * 10]; j } ; i }
                   r
                 RUBY
  end

  def test_a_trap_inside_a_block_ends_the_invocation
    assert_raises(Kobako::TimeoutError) { @sb.eval("Lib::Items.ensuring { loop {} }") }
    assert_equal [:ensured], @items.log, "the Service unwound"
    assert_raises(Kobako::MemoryLimitError) { @sb.eval("Lib::Items.each { 'x' * (64 << 20) }") }
    assert_equal 6, @sb.eval("r = 0; Lib::Items.each { |i| r += i }; r")
  end

  def test_a_kept_block_is_dead_after_its_call
    assert_equal :kept, @sb.eval("Lib::Items.keep { |x| x }")
    error = assert_raises(Kobako::Error) { @items.kept.call(1) }
    assert_match(/only during the Service call/, error.message)
    error = assert_raises(Kobako::ServiceError) { @sb.eval("Lib::Items.call_kept") }
    assert_match(/only during the Service call/, error.message)
  end

  def test_a_block_called_from_another_thread_is_refused
    items = Class.new do
      def other_thread(&blk) = Thread.new { blk.call(1) }.value
    end.new
    sb = Kobako::Sandbox.new
    sb.define(:T).bind(:X, items)
    error = assert_raises(Kobako::ServiceError) { sb.eval("T::X.other_thread { |x| x }") }
    assert_match(/on that call's thread/, error.message)
  end
end
