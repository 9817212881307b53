# frozen_string_literal: true

# main.rb — the main job (scripts/run.sh): the gem against the real sandbox, as
# an application uses it: a Service bound, a script that calls it, writes
# output and yields, then a script that loops forever and one that raises.

$LOAD_PATH.unshift(File.expand_path('../ruby-ext/lib', __dir__), File.expand_path('../build/ruby-ext', __dir__))
require 'kobako'

# A key-value store the script may use, and nothing else of the host.
class Store
  def initialize
    @data = { 'apples' => 3, 'pears' => 5 }
  end

  def get(key)
    @data.fetch(key)
  end

  def each_pair
    @data.each { |k, v| yield k, v }
    nil
  end
end

sandbox = Kobako::Sandbox.new(timeout: 2.0)
sandbox.define(:KV).bind(:Store, Store.new)

script = <<~RUBY
  total = 0
  KV::Store.each_pair { |name, n| puts "\#{name}: \#{n}"; total += n }
  begin
    KV::Store.get("plums")
  rescue KeyError => e
    puts "no plums (\#{e.message})"
  end
  { total: total, apples: KV::Store.get("apples") }
RUBY
value = sandbox.eval(script)
print sandbox.stdout
puts "value: #{value.inspect}"
puts format('usage: %.2f ms, %d bytes of memory growth', sandbox.usage.wall_time * 1e3, sandbox.usage.memory_peak)

begin
  sandbox.eval('loop {}')
rescue Kobako::TimeoutError => e
  puts "a script that loops: #{e.class} after #{format('%.2f', sandbox.usage.wall_time)} s"
end
begin
  sandbox.eval('raise ArgumentError, "bad input"')
rescue Kobako::SandboxError => e
  puts "a script that raises: #{e.class}: #{e.message}"
end
puts "and the sandbox goes on: #{sandbox.eval('[1, 2, 3].inject(:+)')}"
