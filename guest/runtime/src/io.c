/* io.c — the one primitive under the guest's IO (mrblib/io.rb): bytes to
 * fd 1 or 2 through WASI, where the host captures them under its caps. */
#include "runtime.h"

#include <mruby/string.h>

#include <errno.h>
#include <unistd.h>

/* __kobako_write(fd, string): writes it all; the capture never refuses. */
static mrb_value io_write(mrb_state *mrb, mrb_value self) {
  mrb_int fd;
  mrb_value s;
  mrb_get_args(mrb, "iS", &fd, &s);
  if (fd != 1 && fd != 2) mrb_raise(mrb, E_ARGUMENT_ERROR, "only fds 1 and 2 can be written");
  const char *p = RSTRING_PTR(s);
  mrb_int left = RSTRING_LEN(s);
  while (left > 0) {
    ssize_t n = write((int)fd, p, (size_t)left);
    if (n < 0) {
      if (errno == EINTR) continue;
      mrb_raisef(mrb, E_RUNTIME_ERROR, "writing to fd %d failed", (int)fd);
    }
    p += n;
    left -= n;
  }
  return self;
}

void kr_io_init(mrb_state *mrb) {
  mrb_define_method(mrb, mrb->kernel_module, "__kobako_write", io_write, MRB_ARGS_REQ(2));
}
