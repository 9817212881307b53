# pool.rb — Kobako::Pool: up to `slots` Sandboxes with the same options,
# each built when first needed and set up once by the pool's block, lent to
# one caller at a time; one whose block trapped is dropped and replaced.
module Kobako
  class Pool
    def initialize(slots:, checkout_timeout: 5.0, **sandbox_options, &setup)
      unless slots.is_a?(Integer) && slots.positive?
        raise ArgumentError, "slots must be a positive Integer, not #{slots.inspect}"
      end
      unless checkout_timeout.is_a?(Numeric) && checkout_timeout.real? && checkout_timeout >= 0
        raise ArgumentError, "checkout_timeout must be a number of seconds, not #{checkout_timeout.inspect}"
      end

      @slots = slots
      @checkout_timeout = checkout_timeout
      @sandbox_options = sandbox_options
      @setup = setup
      @idle = []
      @built = 0
      @mutex = Mutex.new
      @freed = ConditionVariable.new
    end

    # Lends a Sandbox to the block and takes it back, raising
    # Kobako::PoolTimeoutError if none is free within checkout_timeout.
    def with
      sandbox = checkout
      trapped = false
      begin
        yield sandbox
      rescue TrapError
        trapped = true
        raise
      ensure
        checkin(sandbox, !trapped)
      end
    end

    private

    def checkout
      deadline = now + @checkout_timeout
      @mutex.synchronize do
        loop do
          return @idle.pop unless @idle.empty?

          if @built < @slots
            @built += 1
            break
          end
          left = deadline - now
          raise PoolTimeoutError, "no free Sandbox in #{@checkout_timeout} s (#{@slots} slots)" if left <= 0

          @freed.wait(@mutex, left)
        end
      end
      build
    end

    def build
      ready = false
      sandbox = Sandbox.new(**@sandbox_options)
      @setup&.call(sandbox)
      ready = true
      sandbox
    ensure
      checkin(nil, false) unless ready
    end

    def checkin(sandbox, keep)
      @mutex.synchronize do
        if keep
          @idle.push(sandbox)
        else
          @built -= 1
        end
        @freed.signal
      end
    end

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
