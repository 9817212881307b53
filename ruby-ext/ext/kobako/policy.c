/* policy.c — what the guest may reach of the host, decided here and nowhere
 * else: which method a guest call may run on a bound Service or a Handle,
 * and which host objects may cross to the guest as Handles. */
#include "kobako_ext.h" /* ruby.h defines _GNU_SOURCE, for dladdr */

#include <dlfcn.h>
#include <string.h>

/* A guest call reaches a method only if it is public and it is the
 * application's: its owner is a class or module the application defined
 * (not one of Ruby's core or standard library, nor a C extension's or this
 * gem's), and its code is the application's too (Ruby source outside Ruby's
 * own directories, or a member of the application's Struct). Else it must
 * be one of the core and standard-library methods below: for the value
 * types an application plausibly binds or returns, none reflective, none
 * calling a method named by an argument, none making the host allocate more
 * than the receiver and the arguments hold (no Array#*, String#ljust,
 * Array#join, Integer#**, Time#strftime, ...). The methods listed when
 * the object was bound, and its private respond_to_guest?(name), decide
 * instead when there are: above the floor, methods of BasicObject, Kernel,
 * Object, Module and Class, and
 * Ruby's own methods that call a method by name (inject, reduce) or alias
 * one of the floor's, are never reachable. */
static const struct {
  const char *owner, *names;
} core_methods[] = {
    {"Comparable", "== < <= > >= between? clamp"},
    {"Enumerable",
     "all? any? none? one? count include? member? first min max minmax min_by max_by "
     "minmax_by sort sort_by sum to_a entries to_h to_set map collect flat_map collect_concat "
     "select filter reject filter_map find detect find_index find_all each_with_index "
     "each_with_object group_by partition chunk_while slice_when tally uniq zip take_while "
     "drop drop_while reverse_each grep grep_v compact"},
    {"Hash",
     "[] fetch dig key? has_key? include? member? value? has_value? key keys values values_at "
     "fetch_values length size empty? to_h to_a to_hash any? each each_pair each_key "
     "each_value select filter reject slice except invert merge "
     "transform_values transform_keys compact default == eql? hash []= store delete clear "
     "update merge! delete_if keep_if select! filter! reject! compact! transform_values! "
     "transform_keys!"},
    {"Array",
     "[] at dig fetch first last length size empty? include? index find_index rindex count "
     "values_at slice take take_while drop drop_while sum min max minmax sort to_a to_ary to_h "
     "reverse rotate compact flatten uniq each each_index reverse_each map collect select filter "
     "reject zip any? all? none? one? sample shuffle + - & | <=> == eql? hash "
     "push append << pop shift unshift prepend concat delete delete_at delete_if clear keep_if "
     "select! filter! reject! map! collect! compact! uniq! sort! reverse! flatten! shuffle! "
     "replace assoc rassoc intersect? intersection union difference transpose bsearch sort_by!"},
    {"String",
     "== eql? <=> + length size bytesize empty? [] slice byteslice include? start_with? "
     "end_with? index rindex upcase downcase capitalize swapcase strip lstrip rstrip chomp chop "
     "chr split to_s to_str to_sym to_i to_f reverse tr delete squeeze count sub each_char "
     "each_line each_byte chars bytes lines hash ord succ next << concat prepend insert replace "
     "upcase! downcase! capitalize! swapcase! strip! lstrip! rstrip! chomp! chop! reverse! "
     "squeeze! tr! delete! sub! clear =~ match? ascii_only? valid_encoding? unicode_normalize"},
    {"Integer",
     "+ - * / % div modulo fdiv divmod remainder abs -@ ~ & | ^ >> == < <= > >= <=> zero? "
     "even? odd? succ pred next times upto downto to_s inspect to_i to_int to_f round floor ceil "
     "truncate digits gcd lcm bit_length size chr ord integer? allbits? anybits? nobits?"},
    {"Float",
     "+ - * / % ** divmod modulo fdiv abs -@ == < <= > >= <=> zero? nan? infinite? finite? "
     "to_s inspect to_i to_int to_f round floor ceil truncate positive? negative?"},
    {"Numeric",
     "positive? negative? zero? nonzero? integer? finite? infinite? abs magnitude step "
     "div divmod modulo remainder round floor ceil truncate"},
    {"Struct",
     "members to_a deconstruct to_h values size length each each_pair [] []= dig == eql? hash "
     "values_at select filter"},
    {"Set",
     "include? member? === size length empty? to_a each add << add? delete delete? merge "
     "subset? <= superset? >= proper_subset? < proper_superset? > disjoint? intersect? | union "
     "+ & intersection - difference ^ == eql? hash clear map! collect! select! filter! reject! "
     "delete_if keep_if to_set"},
    {"Time",
     "year month mon day mday hour min sec usec tv_usec nsec tv_nsec subsec wday yday zone "
     "utc_offset gmt_offset gmtoff utc? gmt? dst? isdst to_i tv_sec to_f to_a to_s inspect + - "
     "<=> eql? hash sunday? monday? tuesday? wednesday? thursday? friday? saturday? round "
     "floor ceil getutc getgm utc gmtime"},
    {"Date",
     "year mon month day mday wday yday jd mjd cwday cweek cwyear leap? + - >> << next_day "
     "prev_day next_month prev_month next_year prev_year next succ to_s iso8601 inspect <=> === "
     "eql? hash sunday? monday? tuesday? wednesday? thursday? friday? saturday? to_date "
     "to_time"},
    {"DateTime", "hour min minute sec second zone offset to_s iso8601 to_date to_time"},
    {"Proc", "call [] yield arity lambda?"},
    {"Method", "call [] arity"},
};

/* The classes whose instances may become Handles: the application's own
 * classes sit on Object, BasicObject, Struct or a Delegator; the rest are
 * value types above that do not cross by value. Any other class of Ruby's
 * own (Proc, Method, Binding, Module and Class, Thread, IO, Enumerator,
 * Mutex, Random, Exception, ...) keeps its objects, and those of whatever
 * inherits from it, on the host: the Service call that returns one fails. */
static const char *const handle_classes[] = {
    "Object", "BasicObject", "Struct", "Delegator", "SimpleDelegator", "Set", "Time", "Date",
    "DateTime"};

/* What a (class, method name) pair is, decided once per invocation. */
enum verdict {
  V_FLOOR,          /* never */
  V_APP,            /* the application's own method */
  V_CORE,           /* one of core_methods */
  V_OPT_IN,         /* Ruby's own and not listed: only if respond_to_guest? allows it */
  V_MISSING,        /* no such method: method_missing, the application's, answers */
  V_MISSING_OPT_IN, /* no such method, and method_missing is Ruby's own */
};

/* Whose a class or module is. */
enum origin { O_RUBY, O_APP, O_UNKNOWN };

static VALUE core_table;   /* "Owner" => {name Symbol => true}, frozen */
static VALUE handle_table; /* "Class" => true */
static VALUE ruby_dirs;    /* the directories of Ruby's own library, and of the gem */
static ID id_owner, id_source_location, id_original_name, id_respond_to_guest,
    id_method_missing, id_inject, id_reduce, id_const_source_location, id_compare_by_identity;

/* Is path Ruby's own: a builtin (<internal:...>, <main>), or a file under
 * one of ruby_dirs? */
static bool ruby_file(VALUE path) {
  if (!RB_TYPE_P(path, T_STRING)) return true;
  const char *p = RSTRING_PTR(path);
  long n = RSTRING_LEN(path);
  if (n > 0 && p[0] == '<') return true;
  for (long i = 0; i < RARRAY_LEN(ruby_dirs); i++) {
    VALUE dir = RARRAY_AREF(ruby_dirs, i);
    long d = RSTRING_LEN(dir);
    if (n > d && !memcmp(p, RSTRING_PTR(dir), (size_t)d) && p[d] == '/') return true;
  }
  return false;
}

/* The Sandbox's caches, made when first needed: most never call a Service. */
static VALUE identity_hash(VALUE *slot) {
  if (NIL_P(*slot)) {
    *slot = rb_hash_new();
    rb_funcall(*slot, id_compare_by_identity, 0);
  }
  return *slot;
}

/* Where its constant was first defined tells whose a named module is: by C
 * code (no place, or line 0: the interpreter's or an extension's) or in
 * Ruby's own files, Ruby's; elsewhere, the application's. A singleton class
 * or an anonymous module is of unknown origin. */
static enum origin judge_origin(VALUE mod) {
  if (RB_FL_TEST(mod, RUBY_FL_SINGLETON)) return O_UNKNOWN;
  VALUE name = rb_mod_name(mod);
  if (NIL_P(name)) return O_UNKNOWN;
  VALUE where = rb_funcall(rb_cObject, id_const_source_location, 1, name);
  if (!RB_TYPE_P(where, T_ARRAY)) return O_UNKNOWN;
  if (RARRAY_LEN(where) < 2 || RARRAY_AREF(where, 1) == INT2FIX(0)) return O_RUBY;
  return ruby_file(RARRAY_AREF(where, 0)) ? O_RUBY : O_APP;
}

static enum origin origin(kx_sandbox *x, VALUE mod) {
  VALUE cache = identity_hash(&x->origins);
  VALUE v = rb_hash_lookup2(cache, mod, Qnil);
  if (NIL_P(v)) {
    v = INT2FIX(judge_origin(mod));
    rb_hash_aset(cache, mod, v);
  }
  return (enum origin)FIX2INT(v);
}

static bool floor_owner(VALUE owner) {
  return owner == rb_cBasicObject || owner == rb_mKernel || owner == rb_cObject ||
         owner == rb_cModule || owner == rb_cClass;
}

/* A name the floor holds whatever it reaches: one Class, Module, Object,
 * Kernel or BasicObject has (at any visibility), or a name-calling one.
 * For the names a method_missing answers and the originals of aliases. */
static bool floor_name(ID mid) {
  return rb_method_boundp(rb_cClass, mid, 0) || mid == id_inject || mid == id_reduce;
}

static bool listed(VALUE module, ID mid) {
  VALUE name = rb_mod_name(module);
  if (NIL_P(name)) return false;
  VALUE names = rb_hash_lookup2(core_table, name, Qnil);
  return !NIL_P(names) && RTEST(rb_hash_lookup2(names, ID2SYM(mid), Qfalse));
}

/* An alias of Ruby's own method, by its original name, is listed if some
 * listed module of the receiver's defines that name. */
static bool listed_anywhere(VALUE klass, ID mid) {
  VALUE ancestors = rb_mod_ancestors(klass);
  for (long i = 0; i < RARRAY_LEN(ancestors); i++)
    if (listed(RARRAY_AREF(ancestors, i), mid)) return true;
  return false;
}

static bool struct_member(VALUE owner, ID mid) {
  if (!RB_TYPE_P(owner, T_CLASS) || owner == rb_cStruct ||
      !RTEST(rb_class_inherited_p(owner, rb_cStruct)))
    return false;
  VALUE name = rb_id2str(mid);
  long n = RSTRING_LEN(name);
  if (n > 1 && RSTRING_PTR(name)[n - 1] == '=') name = rb_str_new(RSTRING_PTR(name), n - 1);
  ID member = rb_check_id(&name);
  return member && RTEST(rb_ary_includes(rb_struct_s_members(owner), ID2SYM(member)));
}

/* The verdict on the method m (a Method) that a call of mid reaches. */
static enum verdict judge_method(kx_sandbox *x, VALUE klass, VALUE m, ID mid) {
  VALUE owner = rb_funcall(m, id_owner, 0);
  if (floor_owner(owner)) return V_FLOOR;
  VALUE where = rb_funcall(m, id_source_location, 0);
  ID original = SYM2ID(rb_funcall(m, id_original_name, 0));
  bool native = NIL_P(where), rubys = native || ruby_file(RARRAY_AREF(where, 0));
  if (rubys && (original == id_inject || original == id_reduce)) return V_FLOOR;
  if (rubys && original != mid && floor_name(original)) return V_FLOOR;
  /* a method of Ruby's own classes, whoever wrote it, only if listed */
  if (origin(x, owner) == O_RUBY) return listed(owner, original) ? V_CORE : V_OPT_IN;
  /* else by its code: Ruby source tells whose by its file, an alias of
   * Ruby's native code is judged by the method it names */
  if (!native) return !rubys ? V_APP : listed(owner, original) ? V_CORE : V_OPT_IN;
  if (original != mid) return listed_anywhere(klass, original) ? V_CORE : V_OPT_IN;
  return struct_member(owner, mid) ? V_APP : V_OPT_IN;
}

static enum verdict judge(kx_sandbox *x, VALUE recv, VALUE klass, ID mid) {
  if (rb_method_boundp(klass, mid, 0)) {
    /* a method exists: it must be public (1: not private, 2: nor protected) */
    if (!rb_method_boundp(klass, mid, 3)) return V_FLOOR;
    return judge_method(x, klass, rb_obj_method(recv, ID2SYM(mid)), mid);
  }
  if (floor_name(mid) || !rb_method_boundp(klass, id_method_missing, 0)) return V_FLOOR;
  VALUE missing = rb_obj_method(recv, ID2SYM(id_method_missing));
  switch (judge_method(x, klass, missing, id_method_missing)) {
  case V_APP: return V_MISSING;
  case V_OPT_IN:
  case V_CORE: return V_MISSING_OPT_IN;
  default: return V_FLOOR;
  }
}

/* The verdict for klass and mid, from this invocation's cache. */
static enum verdict cached(kx_sandbox *x, VALUE recv, VALUE klass, ID mid) {
  VALUE per = rb_hash_lookup2(identity_hash(&x->verdicts), klass, Qnil);
  if (NIL_P(per)) {
    per = rb_hash_new();
    rb_hash_aset(x->verdicts, klass, per);
  }
  VALUE v = rb_hash_lookup2(per, ID2SYM(mid), Qnil);
  if (NIL_P(v)) {
    v = INT2FIX(judge(x, recv, klass, mid));
    rb_hash_aset(per, ID2SYM(mid), v);
  }
  return (enum verdict)FIX2INT(v);
}

bool kx_policy_callable(kx_sandbox *x, VALUE recv, ID mid, VALUE methods) {
  VALUE klass = CLASS_OF(recv);
  enum verdict v = cached(x, recv, klass, mid);
  if (v == V_FLOOR) return false;
  /* a missing method answers only the names respond_to_missing? claims */
  if ((v == V_MISSING || v == V_MISSING_OPT_IN) && !rb_obj_respond_to(recv, mid, FALSE))
    return false;
  /* the methods listed at bind, and the object's respond_to_guest?, each
   * decide instead of the verdict when there is one: both must allow */
  bool listed_at_bind = !NIL_P(methods);
  if (listed_at_bind && !RTEST(rb_hash_lookup2(methods, ID2SYM(mid), Qfalse))) return false;
  if (rb_method_boundp(klass, id_respond_to_guest, 0))
    return RTEST(rb_funcall(recv, id_respond_to_guest, 1, ID2SYM(mid)));
  return listed_at_bind || v == V_APP || v == V_CORE || v == V_MISSING;
}

/* ---- Handles --------------------------------------------------------------------- */

VALUE kx_policy_refusal(kx_sandbox *x, VALUE obj) {
  /* up the superclasses: one of handle_classes allows; one of the
   * application's, or an anonymous one, passes the question on; one of
   * Ruby's own refuses */
  for (VALUE k = rb_obj_class(obj); !NIL_P(k); k = rb_class_superclass(k)) {
    VALUE name = rb_mod_name(k);
    if (!NIL_P(name) && RTEST(rb_hash_lookup2(handle_table, name, Qfalse))) return Qnil;
    if (origin(x, k) == O_RUBY) return name;
  }
  return Qnil;
}

/* ---- the tables ------------------------------------------------------------------- */

void kx_policy_init(VALUE mKobako) {
  id_owner = rb_intern("owner");
  id_source_location = rb_intern("source_location");
  id_original_name = rb_intern("original_name");
  id_respond_to_guest = rb_intern("respond_to_guest?");
  id_method_missing = rb_intern("method_missing");
  id_inject = rb_intern("inject");
  id_reduce = rb_intern("reduce");
  id_const_source_location = rb_intern("const_source_location");
  id_compare_by_identity = rb_intern("compare_by_identity");
  /* Kobako::CORE_METHODS: the same table, for the application to read */
  core_table = rb_hash_new();
  VALUE readable = rb_hash_new();
  for (size_t i = 0; i < sizeof core_methods / sizeof *core_methods; i++) {
    VALUE names = rb_hash_new(), list = rb_ary_new();
    const char *p = core_methods[i].names;
    while (*p) {
      const char *end = strchr(p, ' ');
      size_t n = end ? (size_t)(end - p) : strlen(p);
      VALUE sym = ID2SYM(rb_intern2(p, (long)n));
      rb_hash_aset(names, sym, Qtrue);
      rb_ary_push(list, sym);
      p += n + (end ? 1 : 0);
    }
    VALUE owner = rb_obj_freeze(rb_str_new_cstr(core_methods[i].owner));
    rb_hash_aset(core_table, owner, rb_obj_freeze(names));
    rb_hash_aset(readable, owner, rb_obj_freeze(list));
  }
  rb_obj_freeze(core_table);
  rb_gc_register_mark_object(core_table);
  rb_define_const(mKobako, "CORE_METHODS", rb_obj_freeze(readable));
  handle_table = rb_hash_new();
  for (size_t i = 0; i < sizeof handle_classes / sizeof *handle_classes; i++)
    rb_hash_aset(handle_table, rb_obj_freeze(rb_str_new_cstr(handle_classes[i])), Qtrue);
  rb_obj_freeze(handle_table);
  rb_gc_register_mark_object(handle_table);
  ruby_dirs = rb_ary_new();
  VALUE config = rb_const_get(rb_const_get(rb_cObject, rb_intern("RbConfig")), rb_intern("CONFIG"));
  static const char *const keys[] = {"rubylibdir", "rubyarchdir"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    VALUE dir = rb_hash_lookup2(config, rb_str_new_cstr(keys[i]), Qnil);
    if (RB_TYPE_P(dir, T_STRING)) rb_ary_push(ruby_dirs, rb_obj_freeze(rb_str_dup(dir)));
  }
  /* the gem's: its Ruby, and this extension, which defines its classes */
  VALUE own = rb_const_get(mKobako, rb_intern("LIB_DIRS"));
  for (long i = 0; i < RARRAY_LEN(own); i++)
    rb_ary_push(ruby_dirs, rb_obj_freeze(rb_str_dup(RARRAY_AREF(own, i))));
  Dl_info self;
  const char *slash;
  if (dladdr((void *)kx_policy_init, &self) && self.dli_fname &&
      (slash = strrchr(self.dli_fname, '/')))
    rb_ary_push(ruby_dirs, rb_obj_freeze(rb_str_new(self.dli_fname, slash - self.dli_fname)));
  rb_obj_freeze(ruby_dirs);
  rb_gc_register_mark_object(ruby_dirs);
}
