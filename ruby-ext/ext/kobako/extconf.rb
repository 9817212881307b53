# extconf.rb — builds kobako_ext, the gem's C extension: the extension's own
# files with the C of vm/, wasi/, abi/ and host/lib compiled in, and only
# Init_kobako_ext exported.
#
#   --with-kobako-src=DIR   where vm/, wasi/, abi/ and host/ are (by default
#                           vendor/ beside this file, as the gem has them)
#   --disable-threaded      the vm's switch dispatch loop (KOBAKO_THREADED=OFF)
#   --with-kobako-cflags=F, --with-kobako-ldflags=F   added to the flags
#   --enable-werror         warnings are errors
require "mkmf"

src = File.expand_path(with_config("kobako-src", File.join(__dir__, "vendor")))
dirs = [__dir__] + %w[vm wasi abi host/lib].map { |d| File.join(src, d) }
abort "kobako: no C sources in #{src}/vm (--with-kobako-src=DIR)" if Dir[File.join(src, "vm", "*.c")].empty?
names = dirs.flat_map { |d| Dir[File.join(d, "*.c")].sort }.map { |f| File.basename(f) }
dup = names.find { |n| names.count(n) > 1 }
abort "kobako: two C files named #{dup}" if dup

$srcs = names
$VPATH.concat(dirs.drop(1))
%w[vm/include wasi/include abi host/include].each { |d| $INCFLAGS << " -I#{File.join(src, d)}" }
$CFLAGS << " -std=gnu11 -O3 -fvisibility=hidden -MMD -MP"
$CFLAGS << " #{with_config("kobako-cflags")}" if with_config("kobako-cflags")
$LDFLAGS << " #{with_config("kobako-ldflags")}" if with_config("kobako-ldflags")
$defs << "-DKVM_THREADED=1" if enable_config("threaded", true)
have_library("m")
$CFLAGS << " -Werror" if enable_config("werror", false)
create_makefile("kobako/kobako_ext")
# header dependencies from the compiler, and every object made again with new flags
File.open("Makefile", "a") { |f| f.puts "-include $(OBJS:.o=.d)", "$(OBJS): Makefile" }
