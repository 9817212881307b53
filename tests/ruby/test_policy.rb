# test_policy.rb — what the guest may reach of the host (ext/kobako/policy.c):
# the application's own public methods, the listed core methods of the values
# it binds, never a reflective one nor one that calls a method by a name the
# guest gave, on every path (with a block or not, through method_missing, by
# an alias); and which host objects may cross as Handles.
require_relative "helper"
require "date"
require "delegate"
require "forwardable"
require "ostruct"
require "set"

class TestPolicy < Minitest::Test
  # A guest that got host code to run would set this.
  def setup
    $kobako_pwned = nil
  end

  def teardown
    assert_nil $kobako_pwned, "the guest ran code on the host"
  end

  PAYLOAD = "$kobako_pwned = true".freeze

  def sandbox(**members)
    sb = Kobako::Sandbox.new(timeout: 5)
    ns = sb.define(:App)
    members.each { |name, object| ns.bind(name, object) }
    sb
  end

  def refused(sb, src, name)
    error = assert_raises(Kobako::ServiceError, src) { sb.eval(src) }
    assert_equal "NoMethodError", error.klass, src
    assert_match(/\Aundefined method '#{Regexp.escape(name)}' for /, error.message, src)
    error
  end

  # ---- the application's own code ----------------------------------------------------

  def test_the_struct_of_the_seed_readme
    user = Struct.new(:name).new("Aotoki")
    sb = sandbox(User: user)
    assert_equal "Aotoki", sb.eval("App::User.name")
    assert_equal "Kobako", sb.eval("App::User.name = 'Kobako'; App::User.name")
    assert_equal ["Kobako"], sb.eval("App::User.to_a")
    assert_equal [:name], sb.eval("App::User.members")
    refused(sb, "App::User.instance_variable_get(:@name)", "instance_variable_get")
  end

  class Shop
    attr_reader :items

    def initialize = @items = []
    def add(item) = (@items << item; self.class::OK)
    def total = @items.size
    OK = :ok
  end

  module Util
    def self.double(x) = x * 2
  end

  def test_application_methods_modules_and_singletons
    shop = Shop.new
    def shop.special = :only_this_one
    sb = sandbox(Shop: shop, Util: Util)
    assert_equal [:ok, 1, ["pen"]], sb.eval("[App::Shop.add('pen'), App::Shop.total, App::Shop.items]")
    assert_equal :only_this_one, sb.eval("App::Shop.special")
    assert_equal 42, sb.eval("App::Util.double(21)")
    %w[new name const_get instance_methods module_eval define_method constants ancestors
       instance_method private_instance_methods].each do |m|
      refused(sb, "App::Util.#{m}(:x)", m)
    end
  end

  def test_methods_added_to_core_classes_stay_core
    Hash.class_eval { def kobako_summary = "#{size} entries" }
    cfg = { "a" => 1 }
    sb = sandbox(Cfg: cfg)
    refused(sb, "App::Cfg.kobako_summary", "kobako_summary")
    def cfg.respond_to_guest?(name) = name == :kobako_summary
    assert_equal "1 entries", sandbox(Cfg: cfg).eval("App::Cfg.kobako_summary")
  ensure
    Hash.class_eval { remove_method :kobako_summary }
  end

  # ---- the values an application binds ------------------------------------------------

  Point = Struct.new(:x, :y)

  # Each bound value answers the listed calls as Ruby does on the host.
  CORE_CALLS = {
    hash: [{ "a" => 1, "b" => 2 },
           %w[keys values size to_a fetch("a") dig("b") key?("a") include?("z") values_at("a","b")
              slice("a") merge({"c"=>3}) invert min_by{|k,v|v} map{|k,v|v*2} select{|k,v|v>1}
              sort_by{|k,v|-v} sum{|k,v|v} count any?{|k,v|v>1} group_by{|k,v|v%2} to_h{|k,v|[v,k]}
              transform_values{|v|v+1} first first(1) find{|k,v|v==2} store("c",3) delete("a") keys]],
    array: [[3, 1, 2],
            %w[size first last(2) sort max min sum reverse include?(2) index(1) take(2) drop(1)
               map{|x|x*2} select{|x|x%2==1} rotate uniq compact zip([4,5,6]) minmax sort_by{|x|-x}
               partition{|x|x%2==0} tally +([9]) -([1]) push(7) pop shift unshift(0)]],
    string: ["Grüße, Welt",
             %w[size bytesize upcase downcase reverse split(",") include?("Welt") start_with?("G")
                index("W") chars strip sub("Welt","Ruby") tr("e","3") to_sym count("e") <<("!") size]],
    struct: [Point.new(1, 2), %w[x y to_a to_h members values dig(:x) size ==(1) [](:y) x=(5) to_a]],
    set: [Set[1, 2, 3], %w[size include?(2) to_a map{|x|x*2} sort add(4).size |([5]).size]],
    integer: [42, %w[succ digits(2) even? digits divmod(5) +(1) gcd(12)]],
    float: [2.5, %w[round floor ceil to_i nan? *(2) divmod(2)]],
    lambda: [->(x, y = 1) { x * y }, %w[call(3) call(3,4) [](5) yield(6) arity lambda?]],
  }.freeze

  def test_core_values_bound_as_services
    CORE_CALLS.each do |name, (value, calls)|
      sb = sandbox(V: value)
      copy = value.is_a?(Proc) ? value : Marshal.load(Marshal.dump(value))
      calls.each do |call|
        expected = copy.instance_eval("self.#{call}", __FILE__, __LINE__)
        got = sb.eval("App::V.#{call}")
        assert_equal expected.is_a?(Set) ? expected.to_a : expected, got, "#{name}: App::V.#{call}"
      end
    end
  end

  # What no bound value answers: reflection, code, names to call, and
  # objects that would widen what the guest holds.
  REFUSED = %w[send __send__ public_send instance_eval instance_exec instance_variable_get
               instance_variables method public_method singleton_method methods define_singleton_method
               singleton_class extend tap then yield_self itself display freeze frozen? dup clone
               class object_id respond_to? is_a? instance_of? to_enum enum_for inject reduce lazy
               each_entry cycle default_proc to_proc curry binding receiver unbind source_location
               parameters owner].freeze

  def test_what_no_bound_value_answers
    values = CORE_CALLS.transform_values(&:first).merge(time: Time.at(0), date: Date.new(2026, 1, 2),
                                                        ostruct: OpenStruct.new(a: 1), object: Object.new)
    values.each do |name, value|
      sb = sandbox(V: value)
      REFUSED.each do |m|
        src = "App::V.__send__(:method_missing, :#{m}, #{PAYLOAD.dump})"
        error = assert_raises(Kobako::ServiceError, "#{name}.#{m}") { sb.eval(src) }
        assert_equal "NoMethodError", error.klass, "#{name}.#{m}"
      end
    end
  end

  def test_amplifying_core_methods_are_not_listed
    sb = sandbox(A: [1, 2], S: "ab", T: Time.at(0), I: 3)
    { "App::A.*(10**9)" => "*", "App::A.product([1]*100,[1]*100)" => "product",
      "App::A.fill(0, 0, 10**9)" => "fill", "App::A.join('x' * 1000)" => "join",
      "App::A.[]=(10**9, 1)" => "[]=", "App::A.pack('x1000000000')" => "pack",
      "App::S.*(10**9)" => "*", "App::S.ljust(10**9)" => "ljust", "App::S.%([])" => "%",
      "App::S.gsub('a', 'x' * 1000)" => "gsub", "App::T.strftime('%9999999Y')" => "strftime",
      "App::I.**(10**9)" => "**", "App::I.<<(10**9)" => "<<" }.each do |src, name|
      refused(sb, src, name)
    end
  end

  def test_time_set_and_date_cross_as_handles
    clock = Class.new do
      def now = Time.at(1_700_000_000).utc
      def day = Date.new(2026, 12, 7)
      def tags = Set["a", "b"]
    end.new
    sb = sandbox(Clock: clock)
    assert_equal [2023, 11, 14, 22], sb.eval("t = App::Clock.now; [t.year, t.month, t.day, t.hour]")
    assert_equal 1_700_000_060, sb.eval("(App::Clock.now + 60).to_i")
    assert_equal ["2026-12-08", 1], sb.eval("d = App::Clock.day; [(d + 1).iso8601, d.wday]")
    assert_equal [true, 2], sb.eval("s = App::Clock.tags; [s.include?('a'), s.size]")
  end

  # ---- calling by a name the guest gave ------------------------------------------------

  class Catalog
    include Enumerable

    def initialize = @names = %w[self x]
    def each(&) = @names.each(&)
  end

  class Delegating
    extend Forwardable

    def initialize = @h = { "a" => 1 }
    def_delegators :@h, :inject, :reduce, :keys
    def_delegator :@h, :inject, :total
  end

  class Forwarder < BasicObject
    def initialize(target) = @target = target
    def method_missing(name, *args, &block) = @target.__send__(name, *args, &block)
    def respond_to_missing?(*) = true
  end

  def test_symbol_dispatch_on_every_enumerable
    targets = { Hash: { "self" => 1 }, Array: %w[self x], Struct: Point.new("self", "x"),
                Frozen: Point.new("self", "x").freeze, Set: Set["self", "x"], Catalog: Catalog.new,
                Delegating: Delegating.new, Delegator: SimpleDelegator.new(%w[self x]),
                Forwarder: Forwarder.new(%w[self x]) }
    sb = sandbox(**targets)
    payload = PAYLOAD.dump
    targets.each_key do |name|
      t = "App::#{name}"
      ["#{t}.inject(:instance_eval)", "#{t}.inject(#{payload}, :instance_eval)",
       "#{t}.reduce(#{payload}, :instance_eval)", "#{t}.reduce(:send)", "#{t}.inject { |a, b| a }",
       "#{t}.each.inject(:instance_eval)", "#{t}.lazy.inject(:instance_eval)",
       "#{t}.each_entry.inject(:instance_eval)", "#{t}.total(#{payload}, :instance_eval)",
       "(#{t}.each + ['self', #{payload}]).lazy.drop(2).inject('', :instance_eval)",
       "#{t}.each_slice(1).inject(:instance_eval)"].each do |src|
        assert_raises(Kobako::Error, src) { sb.eval(src) }
      end
    end
  end

  def test_the_issues_first_attack
    sb = sandbox(Env: { "region" => "eu" })
    assert_equal 1, sb.eval("App::Env.store(#{PAYLOAD.dump}, 1)")
    error = assert_raises(Kobako::ServiceError) { sb.eval("App::Env.each_key.inject(:instance_eval)") }
    assert_equal "an Enumerator cannot cross to the guest", error.message
  end

  # ---- reflective objects ---------------------------------------------------------------

  class Gadgets
    def initialize(object) = @object = object
    def get = @object
    def nested = [1, { k: @object }]
    def give(&) = yield(@object)
  end

  def reflective_objects
    file = File.open(__FILE__)
    {
      "Proc" => proc { PAYLOAD }, "Method" => method(:setup), "UnboundMethod" => Object.instance_method(:tap),
      "Binding" => binding, "Class" => Class.new, "Module" => Module.new, "Thread" => Thread.current,
      "IO" => $stdout, "File" => file, "Dir" => Dir.new("."), "Enumerator" => [1].each,
      "Enumerator::Lazy" => [1].lazy, "Thread::Mutex" => Mutex.new, "Thread::Queue" => Queue.new,
      "Fiber" => Fiber.new { 1 }, "Random" => Random.new, "ObjectSpace::WeakMap" => ObjectSpace::WeakMap.new,
      "TracePoint" => TracePoint.new {}, "Regexp" => /x/, "Encoding" => Encoding::UTF_8,
      "Kobako::Sandbox" => Kobako::Sandbox.new, "OpenStruct" => OpenStruct.new(a: 1),
      "StandardError" => ArgumentError.new("x"), "Range" => (1..10**12), "Rational" => 1r,
      "RubyVM::InstructionSequence" => RubyVM::InstructionSequence.compile(PAYLOAD)
    }
  end

  def test_reflective_objects_never_become_handles
    reflective_objects.each do |name, object|
      sb = sandbox(G: Gadgets.new(object))
      %w[get nested].each do |call|
        error = assert_raises(Kobako::ServiceError, "#{name} #{call}") { sb.eval("App::G.#{call}") }
        assert_match(/\Aan? [\w:]+ cannot cross to the guest\z/, error.message, name)
        refute_match(/0x\h{6}|#</, error.message)
      end
      assert_equal "Kobako::ServiceError",
                   sb.eval("begin; App::G.get; rescue Kobako::ServiceError => e; e.class.to_s; end")
      assert_raises(Kobako::ServiceError, name) { sb.eval("App::G.give { |x| x }") }
    end
  end

  def test_subclasses_of_reflective_classes_stay_too
    my_proc = Class.new(Proc) { def call(*) = $kobako_pwned = true }
    my_io = Class.new(IO) { def helper = 1 }
    [my_proc.new {}, my_io.for_fd(1, autoclose: false)].each do |object|
      error = assert_raises(Kobako::ServiceError) { sandbox(G: Gadgets.new(object)).eval("App::G.get") }
      assert_match(/cannot cross/, error.message)
    end
  end

  def test_run_refuses_reflective_arguments
    sb = Kobako::Sandbox.new
    sb.preload(name: "t.rb", code: "module T; def self.call(*a) = a.size; end")
    error = assert_raises(Kobako::SandboxError) { sb.run(:T, proc {}) }
    assert_equal "a Proc cannot cross to the guest", error.message
    assert_equal 1, sb.run(:T, Object.new)
  end

  def test_objects_of_the_application_cross
    decorated = Class.new(SimpleDelegator) { def shout = __getobj__.upcase }
    sb = sandbox(G: Gadgets.new(Point.new(1, 2)), D: Gadgets.new(decorated.new("hi")), O: Gadgets.new(Shop.new))
    assert_equal 3, sb.eval("p = App::G.get; p.x + p.y")
    assert_equal "HI", sb.eval("App::D.get.shout")
    refused(sb, "App::D.get.__getobj__", "__getobj__")
    assert_equal 0, sb.eval("App::O.get.total")
  end

  # ---- visibility, method_missing, aliases --------------------------------------------

  class Broad
    def respond_to_missing?(*) = true

    def method_missing(name, *args, &block)
      return super unless name == :dynamic

      [args, block&.call(1)]
    end

    protected def guarded = $kobako_pwned = true

    private def secret = $kobako_pwned = true
  end

  def test_visibility_is_checked_on_every_path
    sb = sandbox(B: Broad.new)
    %w[secret guarded].each do |m|
      refused(sb, "App::B.#{m}", m)
      refused(sb, "App::B.#{m} { }", m)
      refused(sb, "App::B.#{m}(1) { |x| x }", m)
      refused(sb, "App::B.__send__(:method_missing, :#{m})", m)
    end
    assert_equal [[1], nil], sb.eval("App::B.dynamic(1)")
    assert_equal [[1], 2], sb.eval("App::B.dynamic(1) { |x| x + 1 }")
    refused(sb, "App::B.__send__(:method_missing, :instance_eval, #{PAYLOAD.dump})", "instance_eval")
  end

  def test_a_forwarder_forwards_nothing_of_the_floor
    sb = sandbox(F: Forwarder.new({ "a" => 1 }))
    assert_equal ["a"], sb.eval("App::F.keys")
    %w[send instance_eval inject reduce public_send instance_variable_get method].each do |m|
      refused(sb, "App::F.__send__(:method_missing, :#{m}, #{PAYLOAD.dump})", m)
    end
  end

  class Aliases < Hash
    alias_method :run_code, :instance_eval
    alias_method :call_it, :public_send
    alias_method :all_keys, :keys
    define_method(:ev, BasicObject.instance_method(:instance_eval))
    define_method(:tap2, Kernel.instance_method(:tap))
    define_method(:sym, &:instance_eval)
  end

  def test_aliases_of_reflective_methods
    sb = sandbox(A: Aliases[1, 2])
    %w[run_code call_it ev tap2 sym].each { |m| refused(sb, "App::A.#{m}(#{PAYLOAD.dump})", m) }
    assert_equal [1], sb.eval("App::A.all_keys")
  end

  def test_forwardable_and_delegate_need_an_opt_in
    sb = sandbox(D: Delegating.new, S: SimpleDelegator.new({ "a" => 1 }))
    refused(sb, "App::D.keys", "keys")
    refused(sb, "App::S.keys", "keys")
  end

  # ---- respond_to_guest? ---------------------------------------------------------------

  class Settings < Hash
    private

    def respond_to_guest?(name) = %i[keys each_slice instance_eval inject].include?(name)
  end

  def test_respond_to_guest_opts_in_and_narrows_but_never_opens_the_floor
    sb = sandbox(S: Settings[1, 2, 3, 4])
    assert_equal [1, 3], sb.eval("App::S.keys")
    assert_equal [[[1, 2], [3, 4]]], sb.eval("r = []; App::S.each_slice(2) { |x| r << x }; r")
    refused(sb, "App::S.fetch(1)", "fetch")
    refused(sb, "App::S.__send__(:method_missing, :instance_eval, #{PAYLOAD.dump})", "instance_eval")
    refused(sb, "App::S.inject(:+)", "inject")
    refused(sb, "App::S.respond_to_guest?(:fetch)", "respond_to_guest?")
  end

  def test_a_list_at_bind_opts_in_and_narrows_but_never_opens_the_floor
    sb = Kobako::Sandbox.new
    sb.define(:App).bind(:H, { 1 => 2, 3 => 4 }, methods: [:keys, "each_slice", :instance_eval, :inject])
                   .bind(:Shop, Shop.new, methods: %i[total])
    assert_equal [1, 3], sb.eval("App::H.keys")
    assert_equal [[[1, 2], [3, 4]]], sb.eval("r = []; App::H.each_slice(2) { |x| r << x }; r")
    refused(sb, "App::H.fetch(1)", "fetch")
    refused(sb, "App::H.__send__(:method_missing, :instance_eval, #{PAYLOAD.dump})", "instance_eval")
    refused(sb, "App::H.inject(:+)", "inject")
    assert_equal 0, sb.eval("App::Shop.total")
    refused(sb, "App::Shop.add(1)", "add")
    narrowed = Kobako::Sandbox.new
    narrowed.define(:App).bind(:S, Settings[1, 2], methods: %i[keys fetch])
    assert_equal [1], narrowed.eval("App::S.keys")
    refused(narrowed, "App::S.fetch(1)", "fetch") # respond_to_guest? says no
    rebound = Kobako::Sandbox.new
    rebound.define(:App).bind(:H, { 1 => 2 }, methods: %i[keys]).bind(:H, { 1 => 2 })
    assert_equal 2, rebound.eval("App::H.fetch(1)"), "binding again drops the list"
    [:keys, [1], [:keys, nil]].each do |bad|
      assert_raises(ArgumentError) { Kobako::Sandbox.new.define(:App).bind(:X, 1, methods: bad) }
    end
  end

  def test_kobakos_own_objects_are_out_of_reach
    inner = Kobako::Sandbox.new
    sb = sandbox(SB: inner, P: Kobako::Pool.new(slots: 1))
    %w[eval run preload define with].each { |m| refused(sb, "App::SB.#{m}('1')", m) }
    refused(sb, "App::P.with", "with")
  end

  # ---- the table -------------------------------------------------------------------------

  def test_every_listed_method_exists
    assert_predicate Kobako::CORE_METHODS, :frozen?
    Kobako::CORE_METHODS.each do |owner, names|
      mod = Object.const_get(owner)
      names.each do |name|
        assert mod.public_method_defined?(name, false) || mod.public_method_defined?(name),
               "#{owner}##{name} is listed but not a public method"
      end
      refute_includes names, :inject
      refute_includes names, :reduce
      refute_includes names, :send
    end
  end
end
