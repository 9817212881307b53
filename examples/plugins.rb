# plugins.rb — a plugin host: third-party plugins are Ruby snippets
# preloaded into one Sandbox each; the host offers them an event log and
# its documents (as Handles) and calls each plugin's hooks with #run.
#   ruby -I ruby-ext/lib -I build/ruby-ext examples/plugins.rb
require "kobako"

Document = Struct.new(:title, :body) do
  def words = body.split.size
end

# What plugins may do to the host: log, and walk the documents.
class HostApi
  attr_reader :log

  def initialize(docs)
    @docs = docs
    @log = []
  end

  def info(message) = @log << message.to_s
  def each_document(&) = @docs.each(&)
  def document(title) = @docs.find { |d| d.title == title }
end

PLUGINS = {
  "word_count" => <<~RUBY,
    module OnPublish
      def self.call(doc)
        App::Api.info("\#{doc.title}: \#{doc.words} words")
        doc.words
      end
    end
  RUBY
  "shouty" => <<~RUBY,
    module OnPublish
      def self.call(doc)
        doc.body = doc.body.upcase
        App::Api.info("shouted \#{doc.title}")
        :shouted
      end
    end
  RUBY
  "longest" => <<~RUBY,
    module OnPublish
      def self.call(_doc)
        best = nil
        App::Api.each_document { |d| best = d unless best && best.words >= d.words }
        best.title
      end
    end
  RUBY
  "greedy" => <<~RUBY,
    module OnPublish
      def self.call(_doc) = "x" * (64 << 20)
    end
  RUBY
}.freeze

docs = [Document.new("intro", "hello plugin world"), Document.new("notes", "one two three four five")]
api = HostApi.new(docs)
sandboxes = PLUGINS.to_h do |name, code|
  sb = Kobako::Sandbox.new(timeout: 1.0, memory_limit: 2 << 20)
  sb.define(:App).bind(:Api, api)
  sb.preload(name: "#{name}.rb", code: code)
  [name, sb]
end

sandboxes.each do |name, sb|
  result = begin
    sb.run(:OnPublish, api.document("notes")).inspect
  rescue Kobako::Error => e
    "refused (#{e.class.name})"
  end
  puts "#{name}: #{result}"
end
puts "log: #{api.log.inspect}"
puts "notes now: #{docs[1].body}"
