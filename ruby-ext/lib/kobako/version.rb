# version.rb — the gem's version, read by kobako.gemspec and by
# Kobako::VERSION.
module Kobako
  VERSION = "0.1.0"
end
