# test_gc.rb — the GC while Services run: GC.stress and GC.compact inside
# Service calls and yields, bound objects and Handles kept alive and in
# place, and nothing of a finished invocation kept.
require_relative "helper"

class TestGC < Minitest::Test
  class Churn
    def make(n) = Array.new(n) { |i| { "k#{i}" => "v" * i, sym: [i, i.to_s] } }
    def obj = Struct.new(:payload).new("x" * 100)
    def compact(x)
      GC.compact
      x
    end

    def each_compacting
      3.times do |i|
        GC.compact
        yield i, Object.new
      end
    end
  end

  def sandbox
    sb = Kobako::Sandbox.new(memory_limit: nil)
    sb.define(:G).bind(:Churn, Churn.new).bind(:Text, "a bound String #{rand}")
    sb
  end

  def test_gc_stress_during_service_calls
    sb = sandbox
    GC.stress = true
    value = sb.eval("r = G::Churn.make(5); h = G::Churn.obj; [r.size, h.payload.size, r[4]['k4']]")
    GC.stress = false
    assert_equal [5, 100, "vvvv"], value
  ensure
    GC.stress = false
  end

  def test_gc_compact_during_service_calls_and_yields
    skip "GC.compact is unsupported here" unless GC.respond_to?(:compact)
    sb = sandbox
    rounds = KobakoTest.scale(20)
    rounds.times do |i|
      assert_equal [[i, "s"], 100], sb.eval("[G::Churn.compact([#{i}, 's']), G::Churn.compact(G::Churn.obj).payload.size]")
      assert_equal [0, 1, 2], sb.eval("r = []; G::Churn.each_compacting { |i, o| r << i; G::Churn.compact(o) }; r")
      GC.compact
      assert_match(/a bound String/, sb.eval("G::Text.to_str"))
    end
  end

  def test_auto_compaction_and_threads
    skip "GC.auto_compact is unsupported here" unless GC.respond_to?(:auto_compact=)
    GC.auto_compact = true
    sandboxes = Array.new(4) { sandbox }
    sandboxes.map do |sb|
      Thread.new { KobakoTest.scale(30).times { |i| assert_equal i, sb.eval("G::Churn.make(20); G::Churn.compact(#{i})") } }
    end.each(&:join)
  ensure
    GC.auto_compact = false if GC.respond_to?(:auto_compact=)
  end

  def test_handles_are_not_kept_after_the_invocation
    sb = sandbox
    made = ObjectSpace::WeakMap.new
    maker = Class.new { def initialize(made) = @made = made; def fresh = (o = Object.new; @made[o] = true; o) }
    sb.define(:H).bind(:Maker, maker.new(made))
    50.times { sb.eval("H::Maker.fresh; nil") }
    4.times { GC.start(full_mark: true, immediate_sweep: true) }
    assert_operator made.size, :<, 10, "the table no longer holds them"
  end

  def test_dropped_sandboxes_are_freed
    100.times { Kobako::Sandbox.new.eval("1") }
    GC.start
    assert_equal 2, Kobako::Sandbox.new.eval("2")
  end
end
