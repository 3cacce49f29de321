/* safetensors.h — reading and writing safetensors files, Hugging Face's
 * tensor format, alone or as a sharded set.
 *
 * File layout (all little-endian):
 *   1. u64 N: the length of the header;
 *   2. N bytes of UTF-8 JSON, starting with '{' and maybe padded with
 *      spaces: {"<name>": {"dtype": "F32", "shape": [2, 3],
 *      "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v", ...}};
 *   3. the data: each tensor's bytes, row-major, at [begin, end) counted
 *      from the start of the data. The tensors tile the data exactly: no
 *      overlaps and no unowned bytes (the reference reader insists too).
 * A model directory holds model.safetensors, or shards listed by
 * model.safetensors.index.json ({"metadata": {...}, "weight_map":
 * {"<tensor>": "<shard file>", ...}}).
 *
 * The reader maps each file read-only and checks everything against the
 * file before use: header length (at most 100,000,000 bytes and inside the
 * file), JSON well-formed and an object, each entry's dtype, shape (at most
 * 8 dimensions, product without overflow), offsets (ordered, inside the
 * data, matching shape x element size), the tiling, and for a set, that each
 * weight_map entry is in its shard. Errors name the file and the tensor.
 * Data pointers stay valid until sw_st_close(); they are only as aligned as
 * the file makes them (writers of this library align every element).
 */
#ifndef SW_SAFETENSORS_H
#define SW_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "device.h"
#include "dtype.h"
#include "mem.h"
#include "tensor.h"

#define SW_ST_MAX_DIMS 8
#define SW_ST_MAX_HEADER 100000000u

typedef struct sw_st sw_st;

typedef struct sw_st_tensor {
    const char *name;
    const char *dtype_name;  /* as in the file: "F32", "BF16", "I64", "BOOL", ... */
    sw_dtype dtype;          /* SW_DTYPE_COUNT when stepwise has no such type */
    int elem_bytes;
    int ndim;
    int64_t shape[SW_ST_MAX_DIMS]; /* outermost first */
    int64_t numel;
    size_t nbytes;
    const void *data;        /* into the read-only map */
    const char *file;        /* the file that holds it */
} sw_st_tensor;

/* path: a .safetensors file, a model.safetensors.index.json, or a directory
 * holding model.safetensors or model.safetensors.index.json. */
sw_status sw_st_open(sw_ctx *ctx, const char *path, sw_st **out);
void      sw_st_close(sw_st *st);   /* NULL is fine */
const char *sw_st_path(const sw_st *st);

/* Tensors in name order. */
size_t              sw_st_count(const sw_st *st);
const sw_st_tensor *sw_st_at(const sw_st *st, size_t i);
const sw_st_tensor *sw_st_find(const sw_st *st, const char *name); /* NULL if absent */

/* "__metadata__" of a file; for a set, the index's "metadata" (numbers
 * written as decimal strings) then the shards' entries not already there. */
size_t      sw_st_meta_count(const sw_st *st);
bool        sw_st_meta_at(const sw_st *st, size_t i, const char **key, const char **value);
const char *sw_st_meta_get(const sw_st *st, const char *key); /* NULL if absent */

/* Element size of a safetensors dtype name, 0 if unknown; *dt gets the
 * stepwise dtype (SW_DTYPE_COUNT if none). */
int sw_st_dtype_size(const char *name, sw_dtype *dt);

/* A copy of t as a new contiguous tensor on dev. F32/F16/BF16/I32/U8 stay
 * as they are; BOOL becomes u8; I8/I16/U16/U32/I64/U64 become i32 (values
 * outside i32 are an error); F64 becomes f32. At most SW_MAX_DIMS dims. */
sw_status sw_st_load(sw_ctx *ctx, const sw_st_tensor *t, sw_device dev, sw_mem_cat cat,
                     sw_tensor **out);

/* ---- writing -------------------------------------------------------------- */

/* One tensor to write: either a stepwise tensor (any device, any strides,
 * a plain dtype) or raw host bytes with a safetensors dtype and a shape. */
typedef struct sw_st_entry {
    const char *name;
    const sw_tensor *tensor;       /* or NULL, and then: */
    const char *dtype_name;        /* "F32", "I64", "BOOL", ... */
    int ndim;
    int64_t shape[SW_ST_MAX_DIMS];
    const void *data;              /* numel x element size bytes, row-major */
} sw_st_entry;

/* Write n tensors and n_meta metadata pairs (meta[2i] = key, meta[2i+1] =
 * value) to path. Tensors are laid out largest element first, then by name,
 * so every element is aligned; the header is padded with spaces to a
 * multiple of 8. The file is written beside path under a temporary name and
 * renamed at the end: a failure leaves no partial file and path untouched. */
sw_status sw_st_write(sw_ctx *ctx, const char *path, size_t n, const sw_st_entry *entries,
                      size_t n_meta, const char *const *meta);

#endif
