# formulas.rb — a per-tenant formula evaluator: each tenant's helper
# functions are preloaded into a pool of Sandboxes of its own, and a
# user's formula is evaluated against a row of data with those helpers.
#   ruby -I ruby-ext/lib -I build/ruby-ext examples/formulas.rb
require "kobako"

TENANTS = {
  "acme" => <<~RUBY,
    def vat(x) = (x * 1.2).round(2)
    def discount(x, pct) = x - x * pct / 100.0
  RUBY
  "globex" => <<~RUBY,
    def vat(x) = (x * 1.07).round(2)
    def bulk?(qty) = qty >= 100
  RUBY
}.freeze

# Evaluates formulas for many tenants, each with its own helpers and at
# most two Sandboxes at a time.
class FormulaEngine
  EVALUATOR = <<~RUBY.freeze
    module Formula
      def self.call(source, row)
        row.each { |name, value| Object.const_set(name.to_s.capitalize, value) }
        eval(source)
      end
    end
  RUBY

  def initialize(tenants)
    @pools = tenants.to_h do |name, helpers|
      pool = Kobako::Pool.new(slots: 2, timeout: 0.5, memory_limit: 4 << 20) do |sb|
        sb.preload(name: "#{name}.rb", code: helpers)
        sb.preload(name: "formula.rb", code: EVALUATOR)
      end
      [name, pool]
    end
  end

  def evaluate(tenant, formula, row)
    @pools.fetch(tenant).with { |sb| sb.run(:Formula, formula, row) }
  rescue Kobako::SandboxError => e
    "error: #{e.klass}: #{e.message}"
  rescue Kobako::TrapError => e
    "stopped: #{e.message}"
  end
end

engine = FormulaEngine.new(TENANTS)
row = { price: 50.0, qty: 120 }
puts "acme vat: #{engine.evaluate("acme", "vat(Price * Qty)", row)}"
puts "acme discount: #{engine.evaluate("acme", "discount(Price, 10)", row)}"
puts "globex vat: #{engine.evaluate("globex", "vat(Price)", row)}"
puts "globex bulk: #{engine.evaluate("globex", "bulk?(Qty) ? 'bulk' : 'retail'", row)}"
puts "globex lacks acme's helper: #{engine.evaluate("globex", "discount(Price, 10)", row)}"
puts "a broken formula: #{engine.evaluate("acme", "Price +", row)}"
puts "a runaway formula: #{engine.evaluate("acme", "loop { }", row)}"
