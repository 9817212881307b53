/* internal.h — what libkobako's files share and do not export: a sandbox's
 * booted instance, for preinit.c to write out, and its store, for
 * bench/eval_profile.c to sample. */
#ifndef KOBAKO_INTERNAL_H
#define KOBAKO_INTERNAL_H

#include "kobako.h"

/* Starts the guest (instance, _initialize, ABI check, boot) without sealing;
 * NULL, with *why set, when that fails. */
kvm_instance *kobako_sandbox_booted(kobako_sandbox *sb, const char **why);

/* The store the guest runs in, once started (else NULL). */
kvm_store *kobako_sandbox_store(kobako_sandbox *sb);

#endif
