# code_mode.rb — an LLM "code mode" tool: instead of one tool call at a
# time, the agent writes Ruby against bound Services (a key-value store and
# an inventory) and the host runs it in a Sandbox, returning value and output.
#   ruby -I ruby-ext/lib -I build/ruby-ext examples/code_mode.rb
require "kobako"

# A key-value store the agent may read and write; only these methods.
class KeyValue
  def initialize = @data = {}
  def get(key) = @data[key]
  def set(key, value) = (@data[key] = value)
  def keys = @data.keys.sort
end

# A read-only inventory; each item is handed to the guest as a Handle.
class Inventory
  Item = Struct.new(:sku, :title, :stock, :price)

  def initialize(items) = @items = items.map { |row| Item.new(*row) }
  def find(sku) = @items.find { |i| i.sku == sku }
  def each_item(&) = @items.each(&)
end

# The tool: one call runs one script under tight caps and reports back
# what the model needs, never raising into the agent loop.
class CodeModeTool
  def initialize(kv, inventory)
    @kv = kv
    @inventory = inventory
  end

  def call(script)
    sb = Kobako::Sandbox.new(timeout: 2.0, memory_limit: 8 << 20, stdout_limit: 4096)
    sb.define(:Tools).bind(:KV, @kv).bind(:Inventory, @inventory)
    value = sb.eval(script)
    { ok: true, value: value, output: sb.stdout, ms: (sb.usage.wall_time * 1000).round(2) }
  rescue Kobako::TrapError, Kobako::SandboxError, Kobako::ServiceError => e
    { ok: false, error: "#{e.class.name.split("::").last}: #{e.message}", output: sb&.stdout }
  end
end

kv = KeyValue.new
inventory = Inventory.new([["A1", "kettle", 4, 25.0], ["B2", "teapot", 0, 18.5], ["C3", "mug", 40, 4.0]])
tool = CodeModeTool.new(kv, inventory)

# What a model might write: several tool uses in one round trip.
agent_script = <<~RUBY
  low = []
  Tools::Inventory.each_item { |item| low << item.title if item.stock < 5 }
  Tools::KV.set("restock", low)
  mug = Tools::Inventory.find("C3")
  value = mug.stock * mug.price
  puts "restock: \#{low.join(', ')}"
  { restock: Tools::KV.get("restock"), mug_stock_value: value }
RUBY

result = tool.call(agent_script)
puts "ok: #{result[:ok]}, value: #{result[:value].inspect}"
puts "output: #{result[:output].inspect}"
puts "kv now: #{kv.keys.inspect}"
puts "runaway: #{tool.call("loop { Tools::KV.keys }")[:error]}"
puts "probing: #{tool.call("Tools::KV.instance_variable_get(:@data)")[:error]}"
