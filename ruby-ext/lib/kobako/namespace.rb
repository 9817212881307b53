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
    # (Kobako::CORE_METHODS); or, if given, only the methods: listed here
    # (Symbols or Strings), and if it has one, only those its private
    # respond_to_guest?(name) allows. ext/kobako/policy.c decides.
    def bind(member, object, methods: nil)
      @sandbox.__send__(:bind_service, @name, Kobako.constant_name(member, "a member"), object,
                        Namespace.method_set(methods))
      self
    end

    def self.method_set(methods)
      return nil if methods.nil?
      unless methods.is_a?(Array) && methods.all? { |m| m.is_a?(Symbol) || m.is_a?(String) }
        raise ArgumentError, "methods: must be an Array of Symbols or Strings, not #{methods.inspect}"
      end

      methods.to_h { |m| [m.to_sym, true] }.freeze
    end

    def inspect
      "#<Kobako::Namespace #{@name}>"
    end
  end
end
