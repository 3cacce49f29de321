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

typedef struct sw_gguf sw_gguf;

typedef enum sw_gguf_type {
    SW_GGUF_U8 = 0, SW_GGUF_I8 = 1, SW_GGUF_U16 = 2, SW_GGUF_I16 = 3, SW_GGUF_U32 = 4,
    SW_GGUF_I32 = 5, SW_GGUF_F32 = 6, SW_GGUF_BOOL = 7, SW_GGUF_STRING = 8, SW_GGUF_ARRAY = 9,
    SW_GGUF_U64 = 10, SW_GGUF_I64 = 11, SW_GGUF_F64 = 12
} sw_gguf_type;

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
void      sw_gguf_close(sw_gguf *g);   /* NULL is fine */
const char *sw_gguf_path(const sw_gguf *g);
uint32_t  sw_gguf_version(const sw_gguf *g);

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

#endif
