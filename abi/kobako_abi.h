/* kobako_abi.h — the contract between kobako.wasm (the mruby guest) and the
 * host: the guest's exports and the host functions it imports, their
 * signatures, the layout of every message, and the ABI version. Both sides
 * include this one header; messages are MessagePack (kobako_codec.h). */
#ifndef KOBAKO_ABI_H
#define KOBAKO_ABI_H

/* The host refuses an artifact whose kobako_abi_version() differs. */
#define KOBAKO_ABI_VERSION 1

/* ---- the guest's exports ------------------------------------------------
 * All are called by the host; every `len` is in bytes and every pointer an
 * offset into the guest's memory 0. An "outcome" is returned as an i64:
 * the message's pointer in the high 32 bits, its length in the low 32; the
 * host reads it, then the guest's next call may reuse the buffer.
 *
 *   kobako_abi_version() -> i32
 *   kobako_alloc(len i32) -> i32      a buffer the host fills, 0 if none;
 *                                     the call that consumes it frees it
 *   kobako_boot() -> i32              after _initialize: mrb_open and the
 *                                     runtime; 0 on success
 *   kobako_define(msg i32, len i32) -> i64
 *       msg: DEFINE. Creates the namespaces and members the guest may call.
 *   kobako_preload(msg i32, len i32) -> i64
 *       msg: PRELOAD. Compiles and runs a snippet now (its definitions stay).
 *   kobako_eval(src i32, len i32) -> i64
 *       src: the Ruby source, UTF-8, compiled under the file name "(eval)".
 *   kobako_run(msg i32, len i32) -> i64
 *       msg: RUN. Calls Target.call(*args, **kwargs) on a top-level constant.
 *   kobako_yield(block i32, msg i32, len i32) -> i64
 *       While a host call is in progress: runs the guest block `block` that
 *       the call passed, with msg: ARGS. Its outcome's BREAK means `break`.
 */
#define KOBAKO_EXPORT_VERSION "kobako_abi_version"
#define KOBAKO_EXPORT_ALLOC "kobako_alloc"
#define KOBAKO_EXPORT_BOOT "kobako_boot"
#define KOBAKO_EXPORT_DEFINE "kobako_define"
#define KOBAKO_EXPORT_PRELOAD "kobako_preload"
#define KOBAKO_EXPORT_EVAL "kobako_eval"
#define KOBAKO_EXPORT_RUN "kobako_run"
#define KOBAKO_EXPORT_YIELD "kobako_yield"

/* ---- the host functions the guest imports (module "kobako") -------------
 *   call(msg i32, len i32) -> i64
 *       msg: CALL. A Service or Handle method call. The host answers with a
 *       REPLY it writes into a buffer it gets from kobako_alloc; the i64
 *       names it as an outcome does. The guest frees it once decoded.
 */
#define KOBAKO_IMPORT_MODULE "kobako"
#define KOBAKO_IMPORT_CALL "call"

/* ---- messages ----------------------------------------------------------
 * Values are MessagePack: nil, true, false, integers (signed 64-bit),
 * floats (64-bit), str (UTF-8 text), bin (binary strings), arrays, maps,
 * and two extension types: KOBAKO_EXT_SYMBOL (payload: the name, UTF-8)
 * and KOBAKO_EXT_HANDLE (payload: a big-endian u32 id, from 1; an opaque
 * reference to a host object, valid for the invocation that made it).
 *
 * DEFINE  [[namespace, [member, ...]], ...]        names are str
 * PRELOAD [name, source]  (str, str) | [name, nil, bytecode (bin)]
 * RUN     [target, args (array), kwargs (map of symbol keys)]
 * ARGS    [args (array), kwargs (map)]
 * CALL    [target, method (str), args (array), kwargs (map), block]
 *         target: "Namespace::Member" (str) or a Handle; block: the id of
 *         the guest block passed along (int, from 1), or nil
 *
 * OUTCOME [KOBAKO_OK, value]
 *       | [KOBAKO_ERROR, error]
 *       | [KOBAKO_BREAK, value]      (kobako_yield only: the block broke)
 * REPLY   [KOBAKO_OK, value] | [KOBAKO_ERROR, error] | [KOBAKO_BREAK, value]
 *         (BREAK: a block the call yielded to broke; the call returns value)
 *         An error of origin KOBAKO_ORIGIN_SERVICE raises, in the guest, an
 *         exception of its class when the guest has a StandardError of that
 *         name (ArgumentError, KeyError, ...), else a Kobako::ServiceError,
 *         with its message; if the script does not rescue it the outcome
 *         keeps origin, class and message. An error of origin
 *         KOBAKO_ORIGIN_SANDBOX re-raises the exception the guest's block
 *         raised in the last kobako_yield of this call (it went through the
 *         Service unrescued). Any other origin is refused with a
 *         Kobako::ServiceError.
 *
 * error   {"origin" => str, "class" => str, "message" => str,
 *          "backtrace" => [str, ...], "details" => value}
 *         origin: KOBAKO_ORIGIN_* below.
 */
#define KOBAKO_EXT_SYMBOL 0
#define KOBAKO_EXT_HANDLE 1

#define KOBAKO_OK 0
#define KOBAKO_ERROR 1
#define KOBAKO_BREAK 2

#define KOBAKO_ORIGIN_SANDBOX "sandbox"   /* the script raised, or did not compile */
#define KOBAKO_ORIGIN_SERVICE "service"   /* a Service raised and nothing rescued it */
#define KOBAKO_ORIGIN_BYTECODE "bytecode" /* a preloaded binary was refused */
#define KOBAKO_ORIGIN_VALUE "value"       /* a value that cannot cross */
#define KOBAKO_ORIGIN_HANDLES "handles"   /* past KOBAKO_MAX_HANDLE handles */

/* Limits both sides enforce while decoding. */
#define KOBAKO_MAX_DEPTH 64           /* arrays and maps nested deeper are refused */
#define KOBAKO_MAX_HANDLE 0x7fffffffu /* 2^31 - 1 */

#endif
