# kobako.rb — the gem's entry: the error classes, the C extension and the
# Ruby classes, the rule for names, and where the bundled kobako.wasm is.
module Kobako
  # Where the gem's own Ruby is: the policy counts it as Ruby's, not the
  # application's (ext/kobako/policy.c).
  LIB_DIRS = [__dir__, File.dirname(__FILE__)].uniq.freeze
end

require_relative "kobako/version"
require_relative "kobako/errors"
require_relative "kobako/usage"
require_relative "kobako/watchdog"
require "kobako/kobako_ext"
require_relative "kobako/namespace"
require_relative "kobako/sandbox"
require_relative "kobako/pool"

module Kobako
  # Namespaces, their members and run targets: what a Ruby constant may be.
  NAME = /\A[A-Z]\w*\z/

  # The guest artifact the first Sandbox loads: $KOBAKO_WASM, or else
  # kobako/kobako.wasm in the first load-path entry that has one (the gem's
  # lib/, or the build tree's ruby-ext/ when running from the repository).
  def self.wasm_path
    return ENV["KOBAKO_WASM"] if ENV["KOBAKO_WASM"]

    $LOAD_PATH.each do |dir|
      path = File.join(dir.to_s, "kobako", "kobako.wasm")
      return path if File.file?(path)
    end
    raise SetupError, "kobako.wasm is not in kobako/ on the load path (or set KOBAKO_WASM)"
  end

  # name as a String, if it is a Symbol or String matching NAME.
  def self.constant_name(name, what)
    text = name.to_s if name.is_a?(Symbol) || name.is_a?(String)
    return text if text&.match?(NAME)

    raise ArgumentError, "#{what} must be a Symbol or String matching #{NAME.inspect}, " \
                         "not #{name.inspect}"
  end
end
