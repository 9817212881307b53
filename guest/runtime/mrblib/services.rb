# services.rb — the Ruby side of Kobako::Proxy (Services and Handles): the
# methods that stay in the guest (every other goes to the host through the
# C method_missing of services.c); Kobako.__run and Kobako.__yield.

class Kobako::Proxy
  def inspect
    __kobako_describe
  end

  def to_s
    __kobako_describe
  end

  # what Array#inspect and Hash#inspect call
  def _inspect(_recur_list = nil)
    __kobako_describe
  end
end

module Kobako
  # kobako_run: Target.call(*args, **kwargs) on a top-level constant.
  def self.__run(name, args, kwargs)
    Object.const_get(name).call(*args, **kwargs)
  end

  # kobako_yield with keywords, which C can pass only as a last Hash
  def self.__yield(block, args, kwargs)
    block.call(*args, **kwargs)
  end
end
