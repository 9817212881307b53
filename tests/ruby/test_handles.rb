# test_handles.rb — host objects the guest holds by reference: calls on
# them, back to the host as the same object, the table cleared after each
# invocation, its cap, and what a guest cannot do with one.
require_relative "helper"

class TestHandles < Minitest::Test
  Account = Struct.new(:owner, :balance) do
    def deposit(n) = self.balance += n
    private def audit = :secret
  end

  class Bank
    attr_reader :seen

    def initialize
      @accounts = { "ann" => Account.new("ann", 10), "bob" => Account.new("bob", 5) }
    end

    def account(name) = @accounts.fetch(name)
    def fresh = Object.new
    def both = @accounts.values
    def total(*accounts) = accounts.sum(&:balance)
    def same?(a, b) = a.equal?(b)
    def remember(x) = (@seen = x)
    def each_account(&) = @accounts.each_value(&)
  end

  def setup
    @bank = Bank.new
    @sb = Kobako::Sandbox.new
    @sb.define(:Bank).bind(:Main, @bank)
  end

  def test_calls_on_a_handle
    assert_equal 15, @sb.eval("a = Bank::Main.account('ann'); a.deposit(5); a.balance")
    assert_equal 15, @bank.account("ann").balance
    assert_equal "#<Kobako::Handle 1>", @sb.eval("Bank::Main.account('ann').inspect")
  end

  def test_back_to_the_host_as_the_same_object
    assert @sb.eval("a = Bank::Main.account('ann'); Bank::Main.same?(a, Bank::Main.account('ann'))")
    @sb.eval("Bank::Main.remember([Bank::Main.account('bob'), {k: Bank::Main.account('ann')}])")
    assert_same @bank.account("bob"), @bank.seen[0]
    assert_same @bank.account("ann"), @bank.seen[1][:k]
    assert_equal 15, @sb.eval("Bank::Main.total(*Bank::Main.both)")
    assert_same @bank.account("ann"), @sb.eval("Bank::Main.account('ann')"), "eval's value too"
  end

  def test_handles_through_blocks
    assert_equal %w[ann bob], @sb.eval("r = []; Bank::Main.each_account { |a| r << a.owner }; r")
  end

  def test_run_passes_host_objects_as_handles
    sb = Kobako::Sandbox.new
    sb.preload(name: "rich.rb", code: "module Rich; def self.call(acct, by:) = acct.deposit(by); end")
    account = Account.new("cy", 1)
    assert_equal 101, sb.run(:Rich, account, by: 100)
    assert_equal 101, account.balance
    assert_same account, sb.run(:Rich, account, by: 0) && account
  end

  def test_ids_restart_each_invocation
    assert_equal "#<Kobako::Handle 2>", @sb.eval("Bank::Main.account('ann'); Bank::Main.account('bob').inspect")
    assert_equal "#<Kobako::Handle 1>", @sb.eval("Bank::Main.account('bob').inspect")
    assert_equal "bob", @sb.eval("Bank::Main.account('bob'); Bank::Main.account('bob').__send__(:method_missing, :owner)")
  end

  def test_a_handle_exposes_public_methods_only
    error = assert_raises(Kobako::ServiceError) { @sb.eval("Bank::Main.account('ann').audit") }
    assert_equal "undefined method 'audit' for #<Kobako::Handle 1>", error.message
    %w[instance_variable_get send class object_id].each do |m|
      error = assert_raises(Kobako::ServiceError) { @sb.eval("Bank::Main.account('ann').__send__(:method_missing, :#{m})") }
      assert_equal "undefined method '#{m}' for #<Kobako::Handle 1>", error.message
    end
  end

  def test_the_cap
    sb = Kobako::Sandbox.new(handle_limit: 3)
    sb.define(:Bank).bind(:Main, @bank)
    assert_equal 3, sb.eval("[Bank::Main.account('ann'), Bank::Main.account('bob'), Bank::Main.both].size")
    error = assert_raises(Kobako::HandlerExhaustedError) do
      sb.eval("(1..4).map { begin; Bank::Main.fresh; rescue Kobako::ServiceError; end }; :rescued")
    end
    assert_equal "more than 3 Kobako::Handles in one invocation", error.message
    assert_equal "handles", error.origin
    assert_raises(Kobako::HandlerExhaustedError) { sb.run(:Missing, *Array.new(4) { Object.new }) }
    assert_equal 2, sb.eval("Bank::Main.both.size"), "the next invocation has a fresh table"
    assert_raises(ArgumentError) { Kobako::Sandbox.new(handle_limit: 2**31) }
    assert_raises(ArgumentError) { Kobako::Sandbox.new(handle_limit: 0) }
    assert_equal 0x7fff_ffff, Kobako::Handle::MAX_ID
  end
end
