# errors.rb — kobako's exceptions: exactly one per failed invocation (a
# trap, the guest's own error, a Service's error), and the setup errors.
module Kobako
  class Error < StandardError; end

  # kobako.wasm is missing or does not fit, or the guest could not start.
  class SetupError < Error; end

  # The engine stopped the guest: a timeout, the memory cap, stack
  # exhaustion, an interrupt or another fault. Nothing of the guest's state
  # survives into the next invocation.
  class TrapError < Error; end
  class TimeoutError < TrapError; end
  class MemoryLimitError < TrapError; end

  # The guest sent the host more objects or bytes in one invocation than
  # object_limit or byte_limit allow.
  class TransferLimitError < TrapError; end

  # Kobako::Pool#with waited checkout_timeout seconds for a free Sandbox.
  class PoolTimeoutError < Error; end

  # What the guest reported: where the error arose (origin: "sandbox",
  # "service", "value", "bytecode" or "handles"), the guest-side class
  # name, its backtrace lines and any details.
  module Reported
    attr_reader :origin, :klass, :backtrace_lines, :details

    def initialize(message = nil, origin: self.class::ORIGIN, klass: self.class.name,
                   backtrace_lines: [], details: nil)
      super(message)
      @origin = origin
      @klass = klass
      @backtrace_lines = backtrace_lines.freeze
      @details = details
    end
  end

  # The script raised, did not compile, or returned what cannot cross.
  class SandboxError < Error
    include Reported
    ORIGIN = "sandbox"
  end

  # More Handles in one invocation than handle_limit allows (at most
  # 2^31 - 1, what ids allow).
  class HandlerExhaustedError < SandboxError
    ORIGIN = "handles"
  end

  # A preload(binary:) payload that is not RITE bytecode this mruby loads.
  class BytecodeError < SandboxError
    ORIGIN = "bytecode"
  end

  # A Service raised and the script did not rescue it; cause is the
  # Service's exception when it is known.
  class ServiceError < Error
    include Reported
    ORIGIN = "service"
  end
end
