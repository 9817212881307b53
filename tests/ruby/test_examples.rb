# test_examples.rb — every program in examples/*.rb runs as its header
# says (a ruby with the gem on the load path) and prints what it shows.
require_relative "helper"
require "rbconfig"

class TestExamples < Minitest::Test
  EXPECTED = {
    "code_mode.rb" => ['ok: true, value: {:restock=>["kettle", "teapot"], :mug_stock_value=>160.0}',
                       'output: "restock: kettle, teapot\n"', 'kv now: ["restock"]',
                       "runaway: TimeoutError: deadline exceeded",
                       "probing: ServiceError: undefined method 'instance_variable_get' for Tools::KV"],
    "formulas.rb" => ["acme vat: 7200.0", "acme discount: 45.0", "globex vat: 53.5", "globex bulk: bulk",
                      "globex lacks acme's helper: error: NoMethodError: undefined method 'discount'",
                      /\Aa broken formula: error: SyntaxError: /, "a runaway formula: stopped: deadline exceeded"],
    "plugins.rb" => ["word_count: 5", "shouty: :shouted", 'longest: "notes"',
                     "greedy: refused (Kobako::MemoryLimitError)",
                     'log: ["notes: 5 words", "shouted notes"]', "notes now: ONE TWO THREE FOUR FIVE"],
  }.freeze

  def test_every_example_is_checked
    found = Dir.children(File.join(KobakoTest.source_dir, "examples")).grep(/\.rb\z/).sort
    assert_equal EXPECTED.keys.sort, found
  end

  EXPECTED.each do |file, lines|
    define_method("test_#{File.basename(file, ".rb")}") do
      path = File.join(KobakoTest.source_dir, "examples", file)
      out = IO.popen([RbConfig.ruby, *$LOAD_PATH.grep(/ruby-ext/).flat_map { |d| ["-I", d] }, path],
                     err: %i[child out], &:read)
      assert $?.success?, out
      got = out.lines.map(&:chomp)
      assert_equal lines.size, got.size, out
      lines.zip(got).each { |want, line| want.is_a?(Regexp) ? assert_match(want, line) : assert_equal(want, line) }
    end
  end
end
