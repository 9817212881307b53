# frozen_string_literal: true

# Rewrites a wasm module so that every function body runs inside a try block,
# to measure what try blocks on a hot path cost: bench/run.rb makes the
# variants of the call-heavy kernels with it. Ruby 3.1, standard library only.
#
#   ruby bench/try_wrap.rb legacy|exnref IN.wasm OUT.wasm
#
# legacy: try bt BODY catch_all unreachable end
# exnref: block try_table bt (catch_all 0) BODY end return end unreachable
#
# bt is the function's result type. A br in BODY that named the function's
# label now names the try (or try_table), whose results are the same and whose
# end is followed by the function's end (or a return), so the branch depths
# in BODY need no change. Only the type, function and code sections are read;
# the code section is re-encoded and, when a multi-value result needs a new
# block type, the type section; every other section is kept byte for byte.
module TryWrap
  FLAVOURS = %w[legacy exnref].freeze

  # A function type, as the type section lists it.
  FuncType = Struct.new(:params, :results)

  SECTION_TYPE = 1
  SECTION_FUNCTION = 3
  SECTION_CODE = 10

  # Value types that are one byte: numbers, v128, funcref, externref, exnref.
  # Anything else (a typed reference, 0x63/0x64 and a heap type) is past what
  # clang emits for these kernels, so it is refused rather than misparsed.
  ONE_BYTE_VALTYPES = [0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69].freeze

  class Error < StandardError; end

  # A cursor over a byte string.
  class Reader
    attr_reader :pos

    def initialize(bytes, pos = 0, limit = bytes.bytesize)
      @bytes = bytes
      @pos = pos
      @limit = limit
    end

    def eof? = @pos >= @limit

    def byte
      raise Error, 'unexpected end of module' if eof?

      b = @bytes.getbyte(@pos)
      @pos += 1
      b
    end

    def u32
      value = 0
      shift = 0
      loop do
        b = byte
        value |= (b & 0x7f) << shift
        return value if b < 0x80

        shift += 7
        raise Error, 'LEB128 longer than 5 bytes' if shift > 28
      end
    end

    def bytes(n)
      raise Error, 'unexpected end of module' if @pos + n > @limit

      s = @bytes.byteslice(@pos, n)
      @pos += n
      s
    end

    def valtype
      t = byte
      raise Error, format('value type 0x%02x is not one byte; not supported', t) unless ONE_BYTE_VALTYPES.include?(t)

      t
    end
  end

  module_function

  def u32(value)
    out = +''.b
    loop do
      b = value & 0x7f
      value >>= 7
      return out << b if value.zero?

      out << (b | 0x80)
    end
  end

  # Signed LEB128, as a block type's type index (an s33) is written.
  def s33(value)
    out = +''.b
    loop do
      b = value & 0x7f
      value >>= 7
      done = (value.zero? && b & 0x40 == 0) || (value == -1 && b & 0x40 != 0)
      return out << b if done

      out << (b | 0x80)
    end
  end

  def vec(items) = u32(items.size) + items.join.b

  # [[id, payload]] of every section, in order.
  def sections(bytes)
    raise Error, 'not a wasm binary' unless bytes.byteslice(0, 8) == "\0asm\x01\0\0\0".b

    r = Reader.new(bytes, 8)
    list = []
    until r.eof?
      id = r.byte
      list << [id, r.bytes(r.u32)]
    end
    list
  end

  def parse_types(payload)
    r = Reader.new(payload)
    Array.new(r.u32) do
      form = r.byte
      raise Error, format('type form 0x%02x is not a plain function type; not supported', form) unless form == 0x60

      params = Array.new(r.u32) { r.valtype }
      results = Array.new(r.u32) { r.valtype }
      FuncType.new(params, results)
    end
  end

  def parse_functions(payload)
    r = Reader.new(payload)
    Array.new(r.u32) { r.u32 }
  end

  # Each code entry as [locals, body]: the locals declarations byte for byte,
  # and the body's instructions without its final end.
  def parse_code(payload)
    r = Reader.new(payload)
    Array.new(r.u32) do
      size = r.u32
      entry_end = r.pos + size
      e = Reader.new(payload, r.pos, entry_end)
      start = e.pos
      e.u32.times do
        e.u32
        e.valtype
      end
      locals = payload.byteslice(start, e.pos - start)
      body = payload.byteslice(e.pos, entry_end - e.pos)
      raise Error, 'function body does not end with end (0x0b)' unless body.end_with?("\x0b".b)

      r.bytes(size)
      [locals, body.byteslice(0, body.bytesize - 1)]
    end
  end

  def encode_type(t) = "\x60".b + vec(t.params.map(&:chr)) + vec(t.results.map(&:chr))

  # The block type for results: empty, one value type, or the index of a type
  # [] -> results, appended to types when the module has none.
  def block_type(results, types)
    return "\x40".b if results.empty?
    return results.first.chr.b if results.size == 1

    index = types.index { |t| t.params.empty? && t.results == results }
    unless index
      types << FuncType.new([], results)
      index = types.size - 1
    end
    s33(index)
  end

  def wrap_body(body, bt, flavour)
    case flavour
    when 'legacy' then "\x06".b + bt + body + "\x19\x00\x0b\x0b".b
    when 'exnref' then "\x02\x40\x1f".b + bt + "\x01\x02\x00".b + body + "\x0b\x0f\x0b\x00\x0b".b
    else raise Error, "unknown flavour '#{flavour}' (have #{FLAVOURS.join(', ')})"
    end
  end

  # The module bytes with every function body wrapped for flavour.
  def wrap(bytes, flavour)
    list = sections(bytes)
    payload = ->(id) { list.find { |s, _| s == id }&.last }
    types = parse_types(payload.(SECTION_TYPE) || u32(0))
    original_types = types.size
    funcs = parse_functions(payload.(SECTION_FUNCTION) || u32(0))
    code = parse_code(payload.(SECTION_CODE) || u32(0))
    raise Error, "#{funcs.size} functions but #{code.size} bodies" unless funcs.size == code.size

    entries = code.zip(funcs).map do |(locals, body), type_index|
      type = types[type_index] or raise Error, "function type #{type_index} does not exist"
      entry = locals + wrap_body(body, block_type(type.results, types), flavour)
      u32(entry.bytesize) + entry
    end
    list = list.map do |id, data|
      if id == SECTION_CODE then [id, vec(entries)]
      elsif id == SECTION_TYPE && types.size > original_types then [id, vec(types.map { |t| encode_type(t) })]
      else [id, data]
      end
    end
    bytes.byteslice(0, 8) + list.map { |id, data| id.chr.b + u32(data.bytesize) + data }.join.b
  end
end

if $PROGRAM_NAME == __FILE__
  flavour, input, output = ARGV
  unless ARGV.size == 3 && TryWrap::FLAVOURS.include?(flavour)
    warn 'usage: ruby bench/try_wrap.rb legacy|exnref IN.wasm OUT.wasm'
    exit 1
  end
  begin
    File.binwrite(output, TryWrap.wrap(File.binread(input), flavour))
  rescue TryWrap::Error, SystemCallError => e
    warn "try_wrap: #{input}: #{e.message}"
    exit 1
  end
end
