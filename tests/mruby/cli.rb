# cli.rb — run by the mruby CLI natively and on the engine (cli.sh compares the two):
# one line or two from each gem the guest carries, and the CLI's own ARGV and $0.
p ARGV, $0.end_with?("cli.rb")
puts "puts", [1, [2, [3]]], nil
print "print ", 1, " ", :two, "\n"
printf("%05.2f|%-4s|%x|%o|%e|%+d\n", 3.14159, "ab", 255, 8, 12345.678, 7)
p 1 + 2, 2**30, -(2**30), 7.quo(2), 10.divmod(-3), 1e100, 0.1 + 0.2, 1.0 / 3, -0.0, 2.5.round
p "12.34".to_f == 12.34, 1.2.to_s, 100.0.to_s, 1e-7, 123456789.123456789, Float::INFINITY
p [3, 1, 2].sort, [1, 2, 3, 4].each_slice(2).to_a, [[1, 2], [3, 4]].to_h
p({a: 1, "b" => 2}, {a: 1}.merge(b: 2) { |_, x, y| x + y }, {a: 1, b: 2}.select { |_, v| v > 1 })
p "Hello, %s" % "world", "abc".center(9, "*"), "a,b,,c".split(","), "snake_case".tr("_", " ")
p :upcase.to_proc.call("sym"), %i[a b].map(&:to_s), "hello world".count("lo")
p (1...10).each_cons(4).first, 1.step(10, 4).to_a, (1..10).each_slice(4).map(&:size)
p [1, 2, 3].lazy.map { |x| x * 2 }.select { |x| x % 4 == 0 }.first(2), [1, 2].each.chain([3]).to_a
e = Enumerator.new { |y| y << 1; y << 2; y << 3 }
p e.next, e.next, e.take(2)
f = Fiber.new { |x| y = Fiber.yield(x + 1); y * 2 }
p f.resume(1), f.resume(10), f.alive?
Point = Struct.new(:x, :y) { def norm2 = x * x + y * y }
p Point.new(3, 4).norm2, Point.new(1, 2).to_a, Point.new(1, 2) == Point.new(1, 2)
p [1, 2, 258].pack("CnN").unpack("C*"), ["abc"].pack("m0"), "YWJj".unpack1("m")
p Rational(3, 6), 1r / 3 + 1r / 6, Complex(1, 2) * Complex(3, 4), Math.sqrt(2), Math::PI.floor(3)
p catch(:done) { 10.times { |i| throw :done, i if i == 3 }; :never }
p eval("[__FILE__, 1 + 1]"), binding.local_variable_defined?(:e), 1.method(:+).call(2)
p 5.clamp(1, 3), 1.0.nan?, 255.to_s(2), Integer("0x1f", 16), 0b1010 << 3
p [3, 1].minmax, %w[a b c].each_with_index.map { |s, i| s * i }, [1, [2, [3]]].flatten
class Animal; def speak = "..."; end
class Dog < Animal; def speak = super + "woof"; end
p Dog.new.speak, Dog.ancestors.first(2), Dog.instance_method(:speak).owner, Dog.name
p Dog.new.respond_to?(:speak), Dog.method_defined?(:speak), Dog.singleton_class?
begin
  raise ArgumentError, "bad"
rescue => err
  p err, err.message, err.class.ancestors.include?(StandardError)
end
p((begin; Integer("zz"); rescue ArgumentError => ex; ex.message; end))
p [1, 2, 3].inject(:*), (1..Float::INFINITY).lazy.map { |x| x * x }.first(3)
p "%.10f" % (1.0 / 7), 1234567.89.to_s, 1.0e9.to_i, (2**30).class, -7 / 2, -7 % 3
h = Hash.new { |hash, k| hash[k] = k * 2 }
p h[3], h, h.to_a.transpose
p "ünïcödé".bytesize, "abc".each_char.to_a, "ab\tc\n".inspect, "x".ord, 120.chr
