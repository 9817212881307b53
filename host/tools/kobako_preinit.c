/* kobako_preinit.c — the build step that pre-initializes kobako.wasm:
 * `kobako-preinit IN.wasm OUT.wasm` boots IN once and writes the booted module. */
#include "kobako.h"

#include <stdio.h>
#include <stdlib.h>

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *buf = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
      free(buf);
      buf = NULL;
    }
    *len = n > 0 ? (size_t)n : 0;
  }
  fclose(f);
  return buf;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: kobako-preinit IN.wasm OUT.wasm\n");
    return 64;
  }
  size_t len = 0;
  uint8_t *in = read_file(argv[1], &len);
  if (!in) {
    fprintf(stderr, "kobako-preinit: cannot read %s\n", argv[1]);
    return 1;
  }
  uint8_t *out;
  size_t out_len;
  char err[512];
  bool ok = kobako_preinit(in, len, &out, &out_len, err, sizeof err);
  free(in);
  if (!ok) {
    fprintf(stderr, "kobako-preinit: %s\n", err);
    return 1;
  }
  FILE *f = fopen(argv[2], "wb");
  ok = f && fwrite(out, 1, out_len, f) == out_len;
  if (f && fclose(f) != 0) ok = false;
  free(out);
  if (!ok) {
    fprintf(stderr, "kobako-preinit: cannot write %s\n", argv[2]);
    remove(argv[2]);
    return 1;
  }
  return 0;
}
