# error.rb — an uncaught exception: the mruby CLI prints it to stderr and exits 1, natively
# and on the engine alike (cli.sh compares the two).
def deep(n) = n.zero? ? raise(TypeError, "boom at the bottom") : deep(n - 1)
puts "before"
deep(3)
puts "never"
