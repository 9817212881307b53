# services.rb — the Ruby side of Kobako::Proxy (Services and Handles): every
# method call but a few local ones goes to the host; and Kobako.__run.

class Kobako::Proxy
  def method_missing(name, *args, **kwargs, &block)
    ::Kobako.__call(self, name, args, kwargs, block)
  end

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
end
