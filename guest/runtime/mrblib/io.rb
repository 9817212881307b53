# io.rb — the guest's write-only IO: STDOUT and STDERR (fds 1 and 2, which WASI
# captures), $stdout and $stderr, and the Kernel methods that write through them.

class IO
  def initialize(fd)
    raise ArgumentError, "only fds 1 and 2 can be written" unless fd == 1 || fd == 2
    @fd = fd
  end

  def fileno
    @fd
  end

  def write(*objs)
    n = 0
    objs.each do |o|
      s = o.to_s
      __kobako_write(@fd, s)
      n += s.bytesize
    end
    n
  end

  def <<(obj)
    write(obj)
    self
  end

  def print(*args)
    args.each { |a| write(a) }
    nil
  end

  def puts(*args)
    if args.empty?
      write("\n")
    else
      args.each do |a|
        if a.is_a?(Array)
          a.empty? ? write("\n") : puts(*a)
        else
          s = a.nil? ? "" : a.to_s
          write(s)
          write("\n") unless s.end_with?("\n")
        end
      end
    end
    nil
  end

  def printf(format, *args)
    write(sprintf(format, *args))
    nil
  end

  def putc(c)
    write(c.is_a?(Integer) ? (c & 0xff).chr : c.to_s[0].to_s)
    c
  end

  def flush
    self
  end

  def sync
    true
  end

  def sync=(v)
    v
  end

  def fsync
    0
  end

  def tty?
    false
  end
  alias isatty tty?

  def inspect
    "#<IO:#{@fd == 1 ? '<STDOUT>' : '<STDERR>'}>"
  end
end

STDOUT = IO.new(1)
STDERR = IO.new(2)
$stdout = STDOUT
$stderr = STDERR

module Kernel
  def puts(*args)
    $stdout.puts(*args)
  end

  def print(*args)
    $stdout.print(*args)
  end

  def putc(c)
    $stdout.putc(c)
  end

  def p(*args)
    args.each { |a| $stdout.write(a.inspect, "\n") }
    args.size <= 1 ? args[0] : args
  end

  # printf(format, ...) or printf(io, format, ...), as in Ruby
  def printf(*args)
    return nil if args.empty?
    io = args[0].is_a?(String) ? $stdout : args.shift
    io.write(sprintf(*args))
    nil
  end

  def warn(*msgs, uplevel: nil, category: nil)
    msgs.flatten.each do |m|
      s = m.to_s
      $stderr.write(s.end_with?("\n") ? s : "#{s}\n")
    end
    nil
  end
end
