# test_gem.rb — the gem end to end: build_gem.rb stages and builds it,
# `gem install --local` installs it offline into a fresh GEM_HOME
# (compiling the extension there, no wasm toolchain), and a plain ruby
# with only that GEM_HOME requires kobako and evaluates.
require_relative "helper"
require "rbconfig"
require "tmpdir"

class TestGem < Minitest::Test
  def test_build_install_require
    skip "the packaging is checked by the unsanitized builds" if KobakoTest::SANITIZED
    wasm = ENV.fetch("KOBAKO_WASM_BUILT") { Kobako.wasm_path }
    Dir.mktmpdir("kobako-gem") do |dir|
      stage = File.join(dir, "stage")
      home = File.join(dir, "home")
      sh(RbConfig.ruby, File.join(KobakoTest.source_dir, "ruby-ext", "build_gem.rb"), wasm, stage)
      gem = File.join(stage, "kobako-#{Kobako::VERSION}.gem")
      assert File.file?(gem)
      listing = sh("sh", "-c", "tar -xOf \"$0\" data.tar.gz | tar -tz", gem)
      assert_includes listing, "lib/kobako/kobako.wasm"
      assert_includes listing, "ext/kobako/vendor/vm/interp.c"
      refute listing.lines.any? { |l| l.end_with?(".o\n", ".so\n") }, "sources only"
      env = { "GEM_HOME" => home, "GEM_PATH" => home, "RUBYOPT" => nil, "RUBYLIB" => nil,
              "KOBAKO_WASM" => nil, "http_proxy" => "http://127.0.0.1:9", "https_proxy" => "http://127.0.0.1:9" }
      sh(env, "gem", "install", "--local", "--no-document", "--install-dir", home, gem)
      out = sh(env, RbConfig.ruby, "-e", <<~RUBY)
        require "kobako"
        sb = Kobako::Sandbox.new
        sb.define(:Host).bind(:Clock, Struct.new(:now).new(42))
        p sb.eval("puts 'hi'; [Host::Clock.now, :ok]"), sb.stdout
        puts Kobako.wasm_path
      RUBY
      value, printed, path = out.lines.map(&:chomp)
      assert_equal ["[42, :ok]", '"hi\\n"'], [value, printed]
      assert path.start_with?(home), path
    end
  end

  def sh(*cmd)
    env = cmd.first.is_a?(Hash) ? cmd.shift : {}
    text = IO.popen(env, cmd, err: %i[child out], &:read)
    assert $?.success?, "#{cmd.join(" ")} failed:\n#{text}"
    text
  end
end
