# test_readme.rb — every ```ruby block of README.md's "## The gem" section
# runs, each in a ruby of its own, and each `expression  # => value` in it
# holds (the expression's value == the value's).
require_relative "helper"
require "rbconfig"

class TestReadme < Minitest::Test
  CHECK = <<~'RUBY'.freeze
    def __readme_check(got, want, line)
      expected = eval(want)
      raise "README.md:#{line}: #{got.inspect}, not #{want}" unless got == expected
    end
  RUBY

  def self.blocks
    lines = File.readlines(File.join(KobakoTest.source_dir, "README.md"))
    start = lines.index { |l| l.start_with?("## The gem") } or raise "README.md has no \"## The gem\""
    blocks = []
    current = nil
    lines.each_with_index.drop(start).each do |line, i|
      if current.nil? && line.start_with?("```ruby")
        current = { line: i + 2, code: +"" }
      elsif current && line.start_with?("```")
        blocks << current
        current = nil
      elsif current
        current[:code] << checked(line, i + 1)
      end
    end
    blocks
  end

  def self.checked(line, number)
    m = line.match(/\A(\s*)(\S.*?)  # => (.+)$/) or return line
    "#{m[1]}__readme_check((#{m[2]}), #{m[3].dump}, #{number})\n"
  end

  def test_the_section_has_examples
    assert_operator self.class.blocks.size, :>=, 9
    assert_operator self.class.blocks.sum { |b| b[:code].scan("__readme_check(").size }, :>=, 20
  end

  blocks.each do |block|
    define_method("test_block_at_line_#{block[:line]}") do
      out = IO.popen([RbConfig.ruby, *$LOAD_PATH.grep(/ruby-ext/).flat_map { |d| ["-I", d] }],
                     "r+", err: %i[child out]) do |io|
        io.write(CHECK, block[:code])
        io.close_write
        io.read
      end
      assert $?.success?, "README.md block at line #{block[:line]}:\n#{out}"
    end
  end
end
