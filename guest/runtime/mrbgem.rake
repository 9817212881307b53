# mrbgem.rake — kobako's guest runtime as an mrbgem of kobako.wasm's mruby build: the
# entry points the host calls (abi/kobako_abi.h), the value codec, and the write-only IO.
MRuby::Gem::Specification.new('kobako-runtime') do |spec|
  spec.license = 'MIT'
  spec.author  = 'kobako developers'
  spec.summary = "kobako's guest runtime"

  # The codec is abi/'s, one source for guest and host.
  abi = File.expand_path('../../abi', __dir__)
  spec.cc.include_paths << abi
  codec = objfile("#{build_dir}/abi/kobako_codec")
  file codec => "#{abi}/kobako_codec.c" do |t|
    spec.cc.run t.name, t.prerequisites.first
  end
  spec.objs << codec
end
