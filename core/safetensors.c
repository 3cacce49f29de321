/* safetensors.c — the safetensors reader: one file or a sharded set (the
 * format and the checks are described in safetensors.h).
 *
 * Each file is mmapped read-only; the header is parsed with jansson into a
 * table of sw_st_tensor whose data pointers point into the map. Nothing in
 * the header is trusted: every length and offset is checked against the
 * file before a pointer is formed, and every product is checked for
 * overflow. A failure frees everything opened so far.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct st_file {
    char *path;
    void *map;
    size_t size;
} st_file;

struct sw_st {
    char *path;
    st_file *files;
    size_t nfiles;
    sw_st_tensor *t;
    size_t nt, capt;
    char **meta; /* key, value, key, value, ... */
    size_t nmeta, capmeta;
};

/* ------------------------------------------------------------ dtypes */

static const struct {
    const char *name;
    int size;
    sw_dtype dt;
} dtypes[] = {
    {"F32", 4, SW_F32},  {"F16", 2, SW_F16},  {"BF16", 2, SW_BF16}, {"I32", 4, SW_I32},
    {"U8", 1, SW_U8},    {"I8", 1, SW_DTYPE_COUNT}, {"BOOL", 1, SW_DTYPE_COUNT},
    {"I16", 2, SW_DTYPE_COUNT}, {"U16", 2, SW_DTYPE_COUNT}, {"U32", 4, SW_DTYPE_COUNT},
    {"I64", 8, SW_DTYPE_COUNT}, {"U64", 8, SW_DTYPE_COUNT}, {"F64", 8, SW_DTYPE_COUNT},
    {"C64", 8, SW_DTYPE_COUNT}, {"F8_E4M3", 1, SW_DTYPE_COUNT}, {"F8_E5M2", 1, SW_DTYPE_COUNT},
    {"F8_E8M0", 1, SW_DTYPE_COUNT}, {"F8_E4M3FNUZ", 1, SW_DTYPE_COUNT},
    {"F8_E5M2FNUZ", 1, SW_DTYPE_COUNT},
};

int sw_st_dtype_size(const char *name, sw_dtype *dt) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        if (!strcmp(name, dtypes[i].name)) {
            if (dt) *dt = dtypes[i].dt;
            return dtypes[i].size;
        }
    }
    if (dt) *dt = SW_DTYPE_COUNT;
    return 0;
}

/* The interned name, so tensors can point at it without owning it. */
static const char *dtype_name_static(const char *name) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(name, dtypes[i].name)) return dtypes[i].name;
    return "?";
}

/* ------------------------------------------------------------ helpers */

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static sw_status add_meta(sw_ctx *ctx, sw_st *st, const char *k, const char *v) {
    if (st->nmeta + 2 > st->capmeta) {
        size_t cap = st->capmeta ? st->capmeta * 2 : 16;
        char **m = realloc(st->meta, cap * sizeof *m);
        if (!m) return sw_err(ctx, SW_ENOMEM, "host out of memory");
        st->meta = m;
        st->capmeta = cap;
    }
    char *kk = xstrdup(k), *vv = xstrdup(v);
    if (!kk || !vv) {
        free(kk);
        free(vv);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    st->meta[st->nmeta++] = kk;
    st->meta[st->nmeta++] = vv;
    return SW_OK;
}

static sw_st_tensor *new_tensor(sw_ctx *ctx, sw_st *st) {
    if (st->nt == st->capt) {
        size_t cap = st->capt ? st->capt * 2 : 64;
        sw_st_tensor *t = realloc(st->t, cap * sizeof *t);
        if (!t) {
            sw_err(ctx, SW_ENOMEM, "host out of memory");
            return NULL;
        }
        st->t = t;
        st->capt = cap;
    }
    sw_st_tensor *t = &st->t[st->nt];
    memset(t, 0, sizeof *t);
    return t;
}

/* A JSON integer in [0, max], or false. */
static bool get_uint(const json_t *v, uint64_t max, uint64_t *out) {
    if (!json_is_integer(v)) return false;
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x > max) return false;
    *out = (uint64_t)x;
    return true;
}

/* ------------------------------------------------------- one tensor entry */

static sw_status parse_entry(sw_ctx *ctx, sw_st *st, const st_file *f, const char *name,
                             json_t *e, const uint8_t *data, uint64_t data_size) {
    if (!json_is_object(e))
        return sw_err(ctx, SW_EFORMAT, "tensor '%s': the entry is not an object", name);
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    const char *missing = !jd ? "dtype" : !js ? "shape" : !jo ? "data_offsets" : NULL;
    if (missing) return sw_err(ctx, SW_EFORMAT, "tensor '%s': no \"%s\"", name, missing);
    if (!json_is_string(jd)) return sw_err(ctx, SW_EFORMAT, "tensor '%s': dtype is not a string", name);
    const char *dn = json_string_value(jd);
    sw_dtype dt;
    int esize = sw_st_dtype_size(dn, &dt);
    if (!esize) {
        if (!strcmp(dn, "F4") || !strncmp(dn, "F6_", 3))
            return sw_err(ctx, SW_EUNSUPPORTED, "tensor '%s': sub-byte dtype %s is not supported", name, dn);
        return sw_err(ctx, SW_EFORMAT, "tensor '%s': unknown dtype '%.40s'", name, dn);
    }
    if (!json_is_array(js)) return sw_err(ctx, SW_EFORMAT, "tensor '%s': shape is not a list", name);
    size_t nd = json_array_size(js);
    if (nd > SW_ST_MAX_DIMS)
        return sw_err(ctx, SW_EUNSUPPORTED, "tensor '%s': %zu dimensions (at most %d are supported)", name, nd,
                      SW_ST_MAX_DIMS);
    int64_t shape[SW_ST_MAX_DIMS];
    uint64_t numel = 1;
    bool overflow = false;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (!get_uint(json_array_get(js, i), INT64_MAX, &d))
            return sw_err(ctx, SW_EFORMAT, "tensor '%s': shape entry %zu is not a non-negative integer", name, i + 1);
        shape[i] = (int64_t)d;
        if (d && numel > UINT64_MAX / d) overflow = true;
        else numel *= d;
    }
    char sb[200];
    /* A zero anywhere makes the product 0 even if a prefix overflowed. */
    for (size_t i = 0; i < nd; i++) if (shape[i] == 0) { overflow = false; numel = 0; }
    if (overflow || numel > (uint64_t)INT64_MAX || (numel && numel > UINT64_MAX / (uint64_t)esize))
        return sw_err(ctx, SW_EFORMAT, "tensor '%s': shape %s is too large", name, shape_str(shape, (int)nd, sb, sizeof sb));
    uint64_t need = numel * (uint64_t)esize;
    uint64_t b, en;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !get_uint(json_array_get(jo, 0), INT64_MAX, &b) ||
        !get_uint(json_array_get(jo, 1), INT64_MAX, &en))
        return sw_err(ctx, SW_EFORMAT, "tensor '%s': data_offsets must be two non-negative integers", name);
    if (b > en)
        return sw_err(ctx, SW_EFORMAT, "tensor '%s': data_offsets [%llu, %llu] are reversed", name,
                      (unsigned long long)b, (unsigned long long)en);
    if (en > data_size)
        return sw_err(ctx, SW_EFORMAT, "tensor '%s': data_offsets [%llu, %llu] run past the end of the data (%llu bytes)",
                      name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_size);
    if (en - b != need)
        return sw_err(ctx, SW_EFORMAT, "tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %s %s needs %llu",
                      name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)(en - b), dn,
                      shape_str(shape, (int)nd, sb, sizeof sb), (unsigned long long)need);
    sw_st_tensor *t = new_tensor(ctx, st);
    if (!t) return ctx->status;
    char *nm = xstrdup(name);
    if (!nm) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    t->name = nm;
    t->dtype_name = dtype_name_static(dn);
    t->dtype = dt;
    t->elem_bytes = esize;
    t->ndim = (int)nd;
    memcpy(t->shape, shape, nd * sizeof(int64_t));
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)need;
    t->data = data + b;
    t->file = f->path;
    st->nt++;
    return SW_OK;
}

/* ------------------------------------------------------------- one file */

static int by_offset(const void *a, const void *b) {
    const sw_st_tensor *x = *(const sw_st_tensor *const *)a, *y = *(const sw_st_tensor *const *)b;
    if (x->data != y->data) return (const char *)x->data < (const char *)y->data ? -1 : 1;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

/* The tensors [first, st->nt) of one file must tile its data exactly. */
static sw_status check_tiling(sw_ctx *ctx, sw_st *st, size_t first, const uint8_t *data, uint64_t data_size) {
    size_t n = st->nt - first, k = 0;
    if (n == 0) {
        if (data_size) return sw_err(ctx, SW_EFORMAT, "the data (%llu bytes) belongs to no tensor", (unsigned long long)data_size);
        return SW_OK;
    }
    const sw_st_tensor **order = malloc(n * sizeof *order);
    if (!order) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    for (size_t i = 0; i < n; i++)
        if (st->t[first + i].nbytes) order[k++] = &st->t[first + i]; /* empty tensors own no bytes */
    qsort(order, k, sizeof *order, by_offset);
    uint64_t at = 0;
    const char *prev = NULL;
    sw_status s = SW_OK;
    for (size_t i = 0; i < k && !s; i++) {
        uint64_t b = (uint64_t)((const uint8_t *)order[i]->data - data);
        if (b < at)
            s = sw_err(ctx, SW_EFORMAT, "tensors '%s' and '%s' overlap", prev, order[i]->name);
        else if (b > at)
            s = sw_err(ctx, SW_EFORMAT, "bytes [%llu, %llu) of the data belong to no tensor (before '%s')",
                       (unsigned long long)at, (unsigned long long)b, order[i]->name);
        at = b + order[i]->nbytes;
        prev = order[i]->name;
    }
    if (!s && at != data_size)
        s = sw_err(ctx, SW_EFORMAT, "the last %llu bytes of the data belong to no tensor",
                   (unsigned long long)(data_size - at));
    free(order);
    return s;
}

static sw_status parse_header(sw_ctx *ctx, sw_st *st, st_file *f) {
    const uint8_t *p = f->map;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | p[i];
    if (n > SW_ST_MAX_HEADER)
        return sw_err(ctx, SW_EFORMAT, "header length %llu is over the limit of %u bytes", (unsigned long long)n,
                      SW_ST_MAX_HEADER);
    if (n > f->size - 8)
        return sw_err(ctx, SW_EFORMAT, "header length %llu runs past the end of the file (%zu bytes)",
                      (unsigned long long)n, f->size);
    if (n < 1 || p[8] != '{') return sw_err(ctx, SW_EFORMAT, "the header does not start with '{'");
    json_error_t jerr;
    json_t *root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return sw_err(ctx, SW_EFORMAT, "the header is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                      jerr.column);
    sw_status s = SW_OK;
    if (!json_is_object(root)) {
        s = sw_err(ctx, SW_EFORMAT, "the header is not a JSON object");
        goto done;
    }
    const uint8_t *data = p + 8 + n;
    uint64_t data_size = f->size - 8 - n;
    size_t first = st->nt;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (json_is_null(v)) continue;
            if (!json_is_object(v)) {
                s = sw_err(ctx, SW_EFORMAT, "__metadata__ is not an object");
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv)) {
                    s = sw_err(ctx, SW_EFORMAT, "__metadata__ entry '%s' is not a string", mk);
                    goto done;
                }
                if (!sw_st_meta_get(st, mk) && (s = add_meta(ctx, st, mk, json_string_value(mv)))) goto done;
            }
            continue;
        }
        if ((s = parse_entry(ctx, st, f, key, v, data, data_size))) goto done;
    }
    s = check_tiling(ctx, st, first, data, data_size);
done:
    json_decref(root);
    return s;
}

static sw_status map_file(sw_ctx *ctx, st_file *f) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sw_err(ctx, SW_EIO, "cannot open: %s", strerror(errno));
    struct stat sb;
    sw_status s = SW_OK;
    if (fstat(fd, &sb) < 0) {
        s = sw_err(ctx, SW_EIO, "cannot stat: %s", strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        s = sw_err(ctx, SW_EIO, "not a regular file");
    } else if (sb.st_size < 8) {
        s = sw_err(ctx, SW_EFORMAT, "the file is %lld bytes, too short for the 8-byte header length",
                   (long long)sb.st_size);
    } else {
        f->size = (size_t)sb.st_size;
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) s = sw_err(ctx, SW_EIO, "cannot map %zu bytes: %s", f->size, strerror(errno));
        else f->map = m;
    }
    close(fd);
    return s;
}

/* Open and parse one file into st (files are added, never replaced). */
static sw_status add_file(sw_ctx *ctx, sw_st *st, const char *path) {
    st_file *fs = realloc(st->files, (st->nfiles + 1) * sizeof *fs);
    if (!fs) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    st->files = fs;
    st_file *f = &fs[st->nfiles];
    memset(f, 0, sizeof *f);
    if (!(f->path = xstrdup(path))) return sw_err(ctx, SW_ENOMEM, "host out of memory");
    st->nfiles++;
    if (map_file(ctx, f) || parse_header(ctx, st, f)) return sw_err_prefix(ctx, "%s", path);
    return SW_OK;
}

/* ---------------------------------------------------------- sets, open */

static int by_name(const void *a, const void *b) {
    return strcmp(((const sw_st_tensor *)a)->name, ((const sw_st_tensor *)b)->name);
}

const sw_st_tensor *sw_st_find(const sw_st *st, const char *name) {
    sw_st_tensor key = {.name = name};
    return st->nt ? bsearch(&key, st->t, st->nt, sizeof key, by_name) : NULL;
}

static sw_status sort_tensors(sw_ctx *ctx, sw_st *st) {
    if (st->nt) qsort(st->t, st->nt, sizeof *st->t, by_name);
    for (size_t i = 1; i < st->nt; i++)
        if (!strcmp(st->t[i - 1].name, st->t[i].name))
            return sw_err(ctx, SW_EFORMAT, "tensor '%s' is in both %s and %s", st->t[i].name, st->t[i - 1].file,
                          st->t[i].file);
    return SW_OK;
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

static sw_status open_index(sw_ctx *ctx, sw_st *st, const char *index_path) {
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (access(index_path, R_OK) != 0)
            return sw_err(ctx, SW_EIO, "%s: cannot open: %s", index_path, strerror(errno));
        return sw_err(ctx, SW_EFORMAT, "%s: not valid JSON: %s (line %d, column %d)", index_path, jerr.text,
                      jerr.line, jerr.column);
    }
    sw_status s = SW_OK;
    char *dir = xstrdup(index_path), *shard = NULL;
    if (!dir) {
        s = sw_err(ctx, SW_ENOMEM, "host out of memory");
        goto done;
    }
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = '\0';
    else strcpy(dir, ".");
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm)) {
        s = sw_err(ctx, SW_EFORMAT, "%s: no \"weight_map\" object", index_path);
        goto done;
    }
    json_t *meta = json_object_get(root, "metadata");
    if (json_is_object(meta)) {
        const char *k;
        json_t *v;
        json_object_foreach(meta, k, v) {
            char num[32];
            const char *val = NULL;
            if (json_is_string(v)) val = json_string_value(v);
            else if (json_is_integer(v)) snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), val = num;
            else if (json_is_real(v)) snprintf(num, sizeof num, "%.17g", json_real_value(v)), val = num;
            if (val && (s = add_meta(ctx, st, k, val))) goto done;
        }
    }
    /* Each shard once, in order of first mention. */
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        if (!json_is_string(v)) {
            s = sw_err(ctx, SW_EFORMAT, "%s: weight_map entry '%s' is not a file name", index_path, name);
            goto done;
        }
        const char *fn = json_string_value(v);
        if (!fn[0] || fn[0] == '/' || strstr(fn, "..")) {
            s = sw_err(ctx, SW_EFORMAT, "%s: tensor '%s' names shard '%s', which is not a file in %s", index_path,
                       name, fn, dir);
            goto done;
        }
        free(shard);
        if (!(shard = join(dir, fn))) {
            s = sw_err(ctx, SW_ENOMEM, "host out of memory");
            goto done;
        }
        bool seen = false;
        for (size_t i = 0; i < st->nfiles && !seen; i++) seen = !strcmp(st->files[i].path, shard);
        if (!seen && (s = add_file(ctx, st, shard))) {
            sw_err_prefix(ctx, "%s: shard for tensor '%s'", index_path, name);
            goto done;
        }
    }
    if ((s = sort_tensors(ctx, st))) {
        sw_err_prefix(ctx, "%s", index_path);
        goto done;
    }
    json_object_foreach(wm, name, v) {
        free(shard);
        if (!(shard = join(dir, json_string_value(v)))) {
            s = sw_err(ctx, SW_ENOMEM, "host out of memory");
            goto done;
        }
        const sw_st_tensor *t = sw_st_find(st, name);
        if (!t || strcmp(t->file, shard)) {
            s = sw_err(ctx, SW_EFORMAT, "%s: tensor '%s' is mapped to %s, which does not hold it", index_path, name,
                       json_string_value(v));
            goto done;
        }
    }
done:
    free(shard);
    free(dir);
    json_decref(root);
    return s;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

sw_status sw_st_open(sw_ctx *ctx, const char *path, sw_st **out) {
    *out = NULL;
    sw_st *st = calloc(1, sizeof *st);
    if (!st || !(st->path = xstrdup(path))) {
        free(st);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    sw_status s = SW_OK;
    struct stat sb;
    if (stat(path, &sb) < 0) {
        s = sw_err(ctx, SW_EIO, "%s: %s", path, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        char *single = join(path, "model.safetensors"), *index = join(path, "model.safetensors.index.json");
        if (!single || !index) s = sw_err(ctx, SW_ENOMEM, "host out of memory");
        else if (access(single, F_OK) == 0) s = add_file(ctx, st, single);
        else if (access(index, F_OK) == 0) s = open_index(ctx, st, index);
        else s = sw_err(ctx, SW_EIO, "%s: no model.safetensors or model.safetensors.index.json here", path);
        if (!s && access(single, F_OK) == 0) s = sort_tensors(ctx, st);
        free(single);
        free(index);
    } else if (ends_with(path, ".json")) {
        s = open_index(ctx, st, path);
    } else {
        if (!(s = add_file(ctx, st, path))) s = sort_tensors(ctx, st);
    }
    if (s) {
        sw_st_close(st);
        return s;
    }
    *out = st;
    return SW_OK;
}

void sw_st_close(sw_st *st) {
    if (!st) return;
    for (size_t i = 0; i < st->nt; i++) free((char *)st->t[i].name);
    for (size_t i = 0; i < st->nfiles; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    for (size_t i = 0; i < st->nmeta; i++) free(st->meta[i]);
    free(st->meta);
    free(st->files);
    free(st->t);
    free(st->path);
    free(st);
}

const char *sw_st_path(const sw_st *st) { return st->path; }
size_t sw_st_count(const sw_st *st) { return st->nt; }
const sw_st_tensor *sw_st_at(const sw_st *st, size_t i) { return i < st->nt ? &st->t[i] : NULL; }
size_t sw_st_meta_count(const sw_st *st) { return st->nmeta / 2; }

bool sw_st_meta_at(const sw_st *st, size_t i, const char **key, const char **value) {
    if (i >= st->nmeta / 2) return false;
    *key = st->meta[2 * i];
    *value = st->meta[2 * i + 1];
    return true;
}

const char *sw_st_meta_get(const sw_st *st, const char *key) {
    for (size_t i = 0; i + 1 < st->nmeta; i += 2)
        if (!strcmp(st->meta[i], key)) return st->meta[i + 1];
    return NULL;
}
