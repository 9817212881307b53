# test_ext.rb — the extension itself: only Init_kobako_ext exported,
# kobako.wasm found on the load path and loaded once per process.
require_relative "helper"

class TestExt < Minitest::Test
  def ext_path
    $LOADED_FEATURES.find { |f| f.end_with?("/kobako/kobako_ext.so") }
  end

  def test_only_init_is_exported
    out = IO.popen(["nm", "-D", "--defined-only", ext_path], &:read)
    symbols = out.lines.map { |l| l.split.last }.reject { |s| s.start_with?("_") }
    assert_equal ["Init_kobako_ext"], symbols
  end

  def test_the_artifact_is_beside_the_extension
    assert_equal File.join(File.dirname(ext_path), "kobako.wasm"), Kobako.wasm_path unless ENV["KOBAKO_WASM"]
    assert File.file?(Kobako.wasm_path)
  end

  def test_loaded_once
    Kobako::Sandbox.new.eval("1")
    saved = ENV["KOBAKO_WASM"]
    ENV["KOBAKO_WASM"] = "/nonexistent/kobako.wasm"
    assert_equal 2, Kobako::Sandbox.new.eval("2"), "the first Sandbox's runtime serves every later one"
  ensure
    ENV["KOBAKO_WASM"] = saved
  end

  def test_version
    assert_match(/\A\d+\.\d+\.\d+\z/, Kobako::VERSION)
  end
end
