/* gem.c — the kobako-runtime gem's init and final, which mruby calls from
 * mrb_open and mrb_close: the IO primitive and the Service proxies. */
#include "runtime.h"

void mrb_kobako_runtime_gem_init(mrb_state *mrb) {
  kr_io_init(mrb);
  kr_services_init(mrb);
}

void mrb_kobako_runtime_gem_final(mrb_state *mrb) { (void)mrb; }
