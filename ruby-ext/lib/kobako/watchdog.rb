# watchdog.rb — Kobako::Watchdog's thread: one per process, started at the
# first Service call, that looks every POLL seconds at the invocations
# running one (ext/kobako/watchdog.c) and sleeps while there are none.
module Kobako
  module Watchdog
    # Raised by the watchdog into a thread while it runs a Service, and
    # handled by the extension: never a StandardError, never seen outside.
    class Stop < Exception; end

    # Seconds between two looks at the invocations.
    POLL = 0.02

    # What wakes the thread when the first invocation comes to be watched.
    WAKE = Thread::Queue.new

    # Called by the extension when the thread is not running (the first
    # time, and in a forked child).
    def self.start
      Thread.new do
        Thread.current.name = "kobako watchdog"
        Thread.handle_interrupt(Object => :immediate) do
          loop do
            WAKE.pop unless poll
            sleep POLL
          end
        end
      end
    end
  end
end
