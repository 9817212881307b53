# namespace.rb — Kobako::Namespace, what Sandbox#define returns: the guest
# sees each object bound to it as the constant Namespace::Member.
module Kobako
  class Namespace
    attr_reader :name

    def initialize(sandbox, name)
      @sandbox = sandbox
      @name = name
    end

    # The guest may call object's public methods, as Name::Member.method,
    # but none of Object's, Kernel's, BasicObject's, Module's or Class's,
    # and only those its private respond_to_guest?(name) allows if it has one.
    def bind(member, object)
      @sandbox.__send__(:bind_service, @name, Kobako.constant_name(member, "a member"), object)
      self
    end

    def inspect
      "#<Kobako::Namespace #{@name}>"
    end
  end
end
