# namespace.rb — Kobako::Namespace, what Sandbox#define returns: the guest
# sees each object bound to it as the constant Namespace::Member.
module Kobako
  class Namespace
    attr_reader :name

    def initialize(sandbox, name)
      @sandbox = sandbox
      @name = name
    end

    # The guest may call, as Name::Member.method, the object's public
    # methods that the application wrote, and the listed ones of Ruby's
    # (Kobako::CORE_METHODS); or those its private respond_to_guest?(name)
    # allows if it has one. ext/kobako/policy.c decides.
    def bind(member, object)
      @sandbox.__send__(:bind_service, @name, Kobako.constant_name(member, "a member"), object)
      self
    end

    def inspect
      "#<Kobako::Namespace #{@name}>"
    end
  end
end
