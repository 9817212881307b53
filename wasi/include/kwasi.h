/* kwasi.h — WASI preview 1 (wasi_snapshot_preview1) for programs on the kvm
 * engine: a context holds what the embedder grants (args, environment,
 * preopened directories, stdio, a clock and random profile) and links it into
 * a module's imports as host functions. */
#ifndef KWASI_H
#define KWASI_H

#include "kvm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kwasi kwasi;

/* HERMETIC: both clocks read 0 and random_get yields zero bytes, so that a
 * run depends on its inputs alone. PERMISSIVE: the host's clocks and random
 * source. Sockets are refused under both. */
typedef enum kwasi_profile { KWASI_HERMETIC, KWASI_PERMISSIVE } kwasi_profile;

/* A context with no arguments, no environment, no preopens, an empty stdin
 * and stdout/stderr captured with a cap of 0 (discarded, flagged as
 * truncated if anything was written). NULL when out of memory. */
kwasi *kwasi_new(kwasi_profile profile);
void kwasi_free(kwasi *w);

/* Capabilities. Each copies what it is given and returns false, with a
 * message in err, on bad input or when out of memory. */
bool kwasi_set_args(kwasi *w, size_t argc, const char *const *argv, char *err, size_t errlen);
bool kwasi_add_env(kwasi *w, const char *key_value, char *err, size_t errlen); /* "KEY=VALUE" */
/* The host directory becomes the guest directory guest_path (e.g. "/data").
 * Nothing the guest does through it reaches outside host_dir: not "..", not
 * an absolute path, not a symlink leading out. read_only takes away every
 * right to change anything below it. */
bool kwasi_preopen(kwasi *w, const char *host_dir, const char *guest_path, bool read_only,
                   char *err, size_t errlen);

/* stdin: a host fd (read as is, never closed by kwasi), or a copy of bytes. */
void kwasi_stdin_fd(kwasi *w, int fd);
bool kwasi_stdin_bytes(kwasi *w, const void *data, size_t len);

/* stdout (which = 1) and stderr (which = 2): a host fd, never closed by
 * kwasi, or a capture buffer keeping the first cap bytes written; what goes
 * past the cap is dropped and flags the buffer as truncated. */
void kwasi_output_fd(kwasi *w, int which, int fd);
void kwasi_output_capture(kwasi *w, int which, size_t cap);
/* The captured bytes (valid until the next write or reset) and whether any
 * were dropped. */
const uint8_t *kwasi_output(const kwasi *w, int which, size_t *len, bool *truncated);
void kwasi_output_reset(kwasi *w, int which); /* empties the buffer, clears the flag */

/* A save point of what the guest can change in the context: the fd table
 * (which fds are open, what they are, their rights and flags; a closed one
 * is kept open on the host to come back), the offset and status flags of
 * each file kwasi opened, and stdin's position. kwasi_restore brings all of
 * it back: an fd opened since is closed, one closed or renumbered since is
 * where it was. It costs nothing when no call changed any of it (writing to
 * a capture buffer does not). The capture buffers are the embedder's and are
 * left alone (kwasi_output_reset empties them); files' contents are not
 * saved. Set stdio and preopens before saving: a restore undoes changes to
 * the table made after the save, the embedder's too, except that stdin
 * bytes given later are read from their start. kwasi_save replaces any
 * earlier save point; false, with a message in err, when out of memory. */
bool kwasi_save(kwasi *w, char *err, size_t errlen);
void kwasi_restore(kwasi *w);

/* Fills imports[i] for every import of m from "wasi_snapshot_preview1" with
 * a host function of store s bound to w, checking each import's name and
 * type; the other entries are left as they are, for the embedder. Returns
 * false, with err naming the import, for an unknown WASI function or a
 * mismatching type. w must outlive s's use of the functions. */
bool kwasi_link(kwasi *w, kvm_store *s, const kvm_module *m, kvm_extern *imports, char *err,
                size_t errlen);

/* How a command ended: returned from _start or called proc_exit (exited,
 * with the exit code; 0 for a return), or trapped (trap says why). */
typedef struct kwasi_outcome {
  bool exited;
  int32_t exit_code;
  kvm_trap trap;
} kwasi_outcome;

/* Runs the command instance's `_start`. False (and an outcome with a host
 * trap) when it has no `_start` of type [] -> []. */
bool kwasi_run_start(kvm_store *s, kvm_instance *inst, kwasi_outcome *out);

#ifdef __cplusplus
}
#endif
#endif
