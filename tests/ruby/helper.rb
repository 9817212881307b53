# helper.rb — what every test file of the gem's suite loads: minitest, the
# gem from the build tree (ctest puts it on the load path), and the knobs
# for the sanitized build, where everything runs several times slower.
require "minitest/autorun"
require "kobako"

module KobakoTest
  SANITIZED = ENV["KOBAKO_SANITIZED"] == "1"

  # n, or a tenth of it under the sanitizers
  def self.scale(n)
    SANITIZED ? [n / 10, 1].max : n
  end

  def self.source_dir
    ENV.fetch("KOBAKO_SOURCE_DIR") { File.expand_path("../..", __dir__) }
  end
end
