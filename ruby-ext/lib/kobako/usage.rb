# usage.rb — Kobako::Usage, what one invocation used: wall_time in seconds
# (a Float) and memory_peak in bytes the guest's memory grew (an Integer).
module Kobako
  Usage = Struct.new(:wall_time, :memory_peak)
end
