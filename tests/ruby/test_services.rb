# test_services.rb — Services: define and bind, positional and keyword
# arguments and blocks, names, the seal, and what a guest may call.
require_relative "helper"

class TestServices < Minitest::Test
  class Store
    def initialize
      @data = {}
    end

    def get(key) = @data[key]
    def set(key, value) = (@data[key] = value)
    def fetch(key, default: nil, strict: false) = strict ? @data.fetch(key) : @data.fetch(key, default)
    def options(**opts) = opts
    def mixed(a, b = 2, *rest, c:, **more) = [a, b, rest, c, more]

    protected def guarded = :protected

    private def secret = :private
  end

  class Narrowed
    def open = :open
    def closed = :closed

    private

    def respond_to_guest?(name) = name != :closed
  end

  def setup
    @store = Store.new
    @sb = Kobako::Sandbox.new
    @sb.define(:KV).bind(:Store, @store).bind(:Other, Narrowed.new)
  end

  def test_calls_reach_the_object
    assert_equal 5, @sb.eval("KV::Store.set('a', 5); KV::Store.get('a')")
    assert_equal 5, @store.get("a")
    assert_equal [1, 2, [], 3, {}], @sb.eval("KV::Store.mixed(1, c: 3)")
    assert_equal [1, 9, [8, 7], 3, { d: 4 }], @sb.eval("KV::Store.mixed(1, 9, 8, 7, c: 3, d: 4)")
    assert_equal({ a: 1, b: [2] }, @sb.eval("KV::Store.options(a: 1, b: [2])"))
    assert_equal :none, @sb.eval("KV::Store.fetch('x', default: :none)")
    assert_equal :open, @sb.eval("KV::Other.open")
    assert_equal [6, 6], @sb.eval("[KV::Store.__send__(:set, 'b', 6), KV::Store.__send__(:get, 'b')]")
  end

  def test_define_and_bind_return_values_and_names
    sb = Kobako::Sandbox.new
    ns = sb.define(:Tools)
    assert_instance_of Kobako::Namespace, ns
    assert_equal "Tools", ns.name
    assert_same ns, ns.bind(:Clock, Object.new)
    assert_same ns, sb.define("Tools")
    %w[tools 1Tools Tools-x Tools::X].each do |bad|
      assert_raises(ArgumentError, bad) { sb.define(bad) }
      assert_raises(ArgumentError, bad) { ns.bind(bad, Object.new) }
    end
    assert_raises(ArgumentError) { sb.define(42) }
  end

  def test_rebinding_replaces_the_object
    ns = @sb.define(:Again)
    ns.bind(:X, Struct.new(:value).new(1))
    ns.bind(:X, Struct.new(:value).new(2))
    assert_equal 2, @sb.eval("Again::X.value")
  end

  def test_the_first_invocation_seals
    refute @sb.sealed?
    @sb.eval("1")
    assert @sb.sealed?
    message = "the Sandbox is sealed (it has run an invocation): no more define, bind or preload"
    assert_equal message, assert_raises(ArgumentError) { @sb.define(:Late) }.message
    assert_equal message, assert_raises(ArgumentError) { @sb.define(:KV).bind(:Late, 1) }.message
    assert_raises(ArgumentError) { @sb.preload(code: "1", name: "late.rb") }
    assert_raises(ArgumentError) { @sb.preload(binary: "RITE") }
  end

  def refused(src, method, target = "KV::Store")
    error = assert_raises(Kobako::ServiceError, src) { @sb.eval(src) }
    assert_equal "NoMethodError", error.klass
    assert_equal "service", error.origin
    assert_equal "undefined method '#{method}' for #{target}", error.message
    error
  end

  def test_the_floor
    %w[send __send__ public_send instance_eval instance_exec instance_variable_get
       instance_variable_set instance_variables method methods define_method define_singleton_method
       const_get class_eval module_eval class singleton_class extend freeze dup clone
       object_id display itself then tap respond_to? is_a? inspect to_s hash eql? ==
       system exec spawn eval require load exit abort fork open puts binding
       allocate new superclass ancestors name].each do |m|
      refused("KV::Store.__send__(:method_missing, :#{m})", m)
    end
    refused("KV::Store.send(:get, 'a')", "send")
    refused("KV::Store.instance_variable_get(:@data)", "instance_variable_get")
  end

  def test_only_public_methods
    refused("KV::Store.secret", "secret")
    refused("KV::Store.guarded", "guarded")
    refused("KV::Store.__send__(:method_missing, :initialize)", "initialize")
    refused("KV::Store.no_such_method", "no_such_method")
    refused("KV::Store.respond_to_guest?(:x)", "respond_to_guest?")
  end

  def test_respond_to_guest_narrows
    refused("KV::Other.closed", "closed", "KV::Other")
    refused("KV::Other.respond_to_guest?(:open)", "respond_to_guest?", "KV::Other")
  end

  def test_a_refusal_reveals_nothing_of_the_object
    error = refused("KV::Store.peek", "peek")
    refute_match(/TestServices|Store:0x|@data/, error.message)
    assert_nil error.cause
  end

  def test_a_name_kernel_has_privately_is_the_objects_own
    files = Class.new do
      def open(name) = "opened #{name}"
      def puts(line) = "logged #{line}"
      public :eval, :system
    end
    @sb.define(:Files).bind(:Disk, files.new)
    assert_equal "opened a.txt", @sb.eval("Files::Disk.open('a.txt')")
    assert_equal "logged hi", @sb.eval("Files::Disk.puts('hi')")
    refused("Files::Disk.eval('1 + 1')", "eval", "Files::Disk")
    refused("Files::Disk.system('true')", "system", "Files::Disk")
  end

  def test_methods_added_to_object_later_are_in_the_floor
    Object.class_eval { def kobako_late_helper = :late }
    refused("KV::Store.kobako_late_helper", "kobako_late_helper")
  ensure
    Object.class_eval { remove_method :kobako_late_helper }
  end

  def test_the_guest_can_rescue_a_refusal
    assert_equal "NoMethodError", @sb.eval("begin; KV::Store.secret; rescue NoMethodError => e; e.class.to_s; end")
  end
end
