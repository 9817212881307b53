# sandbox.rb — Kobako::Sandbox's Ruby half: its options, define, preload,
# eval and run over the C half (kobako_ext.c), which holds the guest, the
# bound objects, the output and usage of the last invocation.
module Kobako
  class Sandbox
    PROFILES = %i[hermetic permissive].freeze
    GVL_MODES = %i[release hold].freeze
    SEALED = "the Sandbox is sealed (it has run an invocation): no more define, bind or preload".freeze

    # timeout: seconds of wall clock per invocation, Service calls included;
    # memory_limit: bytes the guest's memory may grow per invocation, from
    # what the boot and the preloads left (nil disables either);
    # stdout_limit, stderr_limit: bytes of output kept per invocation;
    # profile: :hermetic (clocks read 0, random is zeros) or :permissive;
    # gvl: :release (other threads run while the guest does) or :hold;
    # handle_limit: Handles per invocation (at most 2^31 - 1); object_limit,
    # byte_limit: the objects and the bytes of strings the host may decode
    # from the guest's values per invocation (nil: no budget).
    def initialize(timeout: 60.0, memory_limit: 1 << 20, stdout_limit: 1 << 20,
                   stderr_limit: 1 << 20, profile: :hermetic, gvl: :release,
                   handle_limit: 10_000, object_limit: 200_000, byte_limit: 16 << 20)
      unless PROFILES.include?(profile)
        raise ArgumentError, "profile must be :hermetic or :permissive, not #{profile.inspect}"
      end
      raise ArgumentError, "gvl must be :release or :hold, not #{gvl.inspect}" unless GVL_MODES.include?(gvl)

      @namespaces = {}
      setup(Sandbox.seconds(timeout), Sandbox.bytes(:memory_limit, memory_limit, 1, nil_ok: true),
            Sandbox.bytes(:stdout_limit, stdout_limit, 0), Sandbox.bytes(:stderr_limit, stderr_limit, 0),
            profile == :permissive, gvl == :hold, handle_limit, object_limit, byte_limit)
    end

    # The namespace the guest sees as the constant name; bind its members.
    def define(name)
      name = Kobako.constant_name(name, "a namespace")
      raise ArgumentError, SEALED if sealed?

      @namespaces[name] ||= Namespace.new(self, name)
    end

    # preload(code:, name:) compiles and runs Ruby source now (name is its
    # file name in backtraces); preload(binary:) keeps mrbc's RITE bytecode,
    # loaded when the first invocation seals the Sandbox. Their definitions
    # are there for every invocation.
    def preload(code: nil, name: nil, binary: nil)
      if binary && !code && !name
        preload_bytecode(binary)
      elsif code && name && !binary
        preload_source(name, code)
      else
        raise ArgumentError, "preload takes code: and name:, or binary:"
      end
      self
    end

    # The value of the source's last expression.
    def eval(source)
      eval_source(source)
    end

    # Target.call(*args, **kwargs) on a top-level constant the preloaded
    # snippets defined.
    def run(target, *args, **kwargs)
      run_target(Kobako.constant_name(target, "a run target"), args, kwargs)
    end

    def inspect
      "#<Kobako::Sandbox#{" sealed" if sealed?}>"
    end

    def self.seconds(value)
      return nil if value.nil?
      return value.to_f if value.is_a?(Numeric) && value.real? && value.positive? && value.to_f.finite?

      raise ArgumentError, "timeout must be a positive number of seconds or nil, not #{value.inspect}"
    end

    def self.bytes(option, value, min, nil_ok: false)
      return nil if nil_ok && value.nil?
      return value if value.is_a?(Integer) && value >= min && value < 1 << 63

      raise ArgumentError, "#{option} must be an Integer of bytes, at least #{min}" \
                           "#{" (or nil)" if nil_ok}, not #{value.inspect}"
    end
  end
end
