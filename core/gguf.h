/* gguf.h — reading GGUF files (v2 and v3), the llama.cpp model format.
 *
 * File layout (all little-endian):
 *   1. magic "GGUF", u32 version (2 or 3)
 *   2. u64 tensor_count, u64 kv_count
 *   3. kv_count metadata pairs: string key, u32 value type, value
 *      (string = u64 length + bytes; array = u32 elem type + u64 count + elems)
 *   4. tensor_count infos: string name, u32 n_dims, u64 ne[n_dims]
 *      (innermost first), u32 ggml type, u64 offset (relative to data start)
 *   5. padding to general.alignment (default 32), then the tensor data.
 * Every count, length and offset is checked against the bytes left before
 * anything is allocated or read; errors name the file and the field.
 * Rejected: versions other than 2 and 3, arrays of arrays, duplicate keys or
 * tensor names, keys and names that are not UTF-8 (or hold a NUL), n_dims
 * outside 1..4, a general.alignment that is not a u32 power of two, tensor
 * data that is misaligned or past the end, and ggml type numbers ggml does
 * not define. Types ggml defines but stepwise cannot decode (q5_0, iq*, ...)
 * open with dtype SW_DTYPE_COUNT, so the file can still be inspected.
 * The file is mmapped read-only; tensor data pointers point into the map
 * and stay valid until sw_gguf_close().
 */
#ifndef SW_GGUF_H
#define SW_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "dtype.h"
#include "mem.h"
#include "tensor.h"

typedef struct sw_gguf sw_gguf;

typedef enum sw_gguf_type {
    SW_GGUF_U8 = 0, SW_GGUF_I8 = 1, SW_GGUF_U16 = 2, SW_GGUF_I16 = 3, SW_GGUF_U32 = 4,
    SW_GGUF_I32 = 5, SW_GGUF_F32 = 6, SW_GGUF_BOOL = 7, SW_GGUF_STRING = 8, SW_GGUF_ARRAY = 9,
    SW_GGUF_U64 = 10, SW_GGUF_I64 = 11, SW_GGUF_F64 = 12
} sw_gguf_type;

/* "u8" ... "f64", "string", "array"; "?" for anything else. */
const char *sw_gguf_type_name(sw_gguf_type t);
/* ggml's name for a tensor type number in lower case ("q4_k", "iq2_xxs"),
 * or NULL for a number ggml does not define. */
const char *sw_gguf_ggml_type_name(uint32_t ggml_type);

typedef struct sw_gguf_tensor {
    const char *name;        /* NUL-terminated, owned by the reader */
    int ndim;                /* 1..4 */
    int64_t ne[4];           /* GGUF order: ne[0] is the innermost (row length) */
    uint32_t ggml_type;      /* the raw ggml type number */
    sw_dtype dtype;          /* SW_DTYPE_COUNT when stepwise cannot read the type */
    uint64_t offset;         /* from the start of the data section */
    size_t nbytes;
    const void *data;        /* into the mmapped file */
} sw_gguf_tensor;

sw_status sw_gguf_open(sw_ctx *ctx, const char *path, sw_gguf **out);
/* The same from size bytes at data, which must outlive the sw_gguf; name
 * stands for the path in messages. Lets tests give the reader a buffer of
 * the exact size, so a sanitizer catches any read past the end (reads past
 * the end of a mapped file land in the last page's zero fill unnoticed). */
sw_status sw_gguf_open_buffer(sw_ctx *ctx, const char *name, const void *data, size_t size, sw_gguf **out);
void      sw_gguf_close(sw_gguf *g);   /* NULL is fine */
const char *sw_gguf_path(const sw_gguf *g);
uint32_t  sw_gguf_version(const sw_gguf *g);
uint32_t  sw_gguf_alignment(const sw_gguf *g);   /* general.alignment, or 32 */
uint64_t  sw_gguf_data_offset(const sw_gguf *g); /* file offset of the data section */

/* ---- metadata ---- */
int64_t      sw_gguf_n_kv(const sw_gguf *g);
int64_t      sw_gguf_find_key(const sw_gguf *g, const char *key); /* -1 if absent */
const char  *sw_gguf_key(const sw_gguf *g, int64_t i);
sw_gguf_type sw_gguf_kv_type(const sw_gguf *g, int64_t i);
/* Scalars, converted to the asked type when lossless (any int -> int64,
 * any int/float -> double). False when absent or of another kind. */
bool sw_gguf_get_int(const sw_gguf *g, const char *key, int64_t *out);
bool sw_gguf_get_float(const sw_gguf *g, const char *key, double *out);
bool sw_gguf_get_bool(const sw_gguf *g, const char *key, bool *out);
/* Strings are not NUL-terminated in the file: pointer + length. */
bool sw_gguf_get_str(const sw_gguf *g, const char *key, const char **s, size_t *len);
/* Arrays: element type and count; string elements by index; numeric
 * elements as a raw little-endian pointer into the map. */
bool sw_gguf_get_arr(const sw_gguf *g, const char *key, sw_gguf_type *elem, int64_t *n);
bool sw_gguf_arr_str(const sw_gguf *g, const char *key, int64_t j, const char **s, size_t *len);
const void *sw_gguf_arr_data(const sw_gguf *g, const char *key);

/* ---- tensors ---- */
int64_t sw_gguf_n_tensors(const sw_gguf *g);
const sw_gguf_tensor *sw_gguf_tensor_at(const sw_gguf *g, int64_t i);
const sw_gguf_tensor *sw_gguf_find_tensor(const sw_gguf *g, const char *name); /* NULL if absent */

/* A new contiguous host tensor holding t, shape outermost first (ne
 * reversed), named after it and charged to cat. dtype SW_F32 dequantizes
 * (any type stepwise decodes); dtype == t->dtype copies the raw blocks.
 * SW_EUNSUPPORTED for a type stepwise cannot decode; SW_EINTR on Ctrl-C. */
sw_status sw_gguf_load(sw_ctx *ctx, const sw_gguf *g, const sw_gguf_tensor *t, sw_dtype dtype,
                       sw_mem_cat cat, sw_tensor **out);

#endif
