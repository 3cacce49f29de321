/* tokenizer_util.c — byte buffers, UTF-8 and the hash tables the tokenizer
 * uses. UTF-8 here is forgiving on input (an invalid byte is a one-byte unit)
 * and strict on output (lossy conversion the way Rust does it, since HF's
 * decode goes through String::from_utf8_lossy). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

/* ---- buffers ---------------------------------------------------------------- */

bool tk_buf_reserve(tk_buf *b, size_t extra) {
    if (b->cap - b->n > extra) return true; /* keep one byte for a NUL */
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->n <= extra) {
        if (cap > SIZE_MAX / 2) return false;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

bool tk_buf_put(tk_buf *b, const void *s, size_t n) {
    if (!tk_buf_reserve(b, n)) return false;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

void tk_buf_free(tk_buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---- UTF-8 ------------------------------------------------------------------ */

/* Length of a valid sequence at s (1..4), or 0 with *bad = bytes that form the
 * maximal invalid prefix (Unicode's "maximal subpart", as Rust counts it). */
static int utf8_seq(const unsigned char *s, size_t n, int32_t *cp, int *bad) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = (int32_t)c;
        return 1;
    }
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    int32_t v = (int32_t)(c & (0x3F >> need));
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n) {
            *bad = k;
            return 0;
        }
        unsigned d = s[k];
        if (d < lo || d > hi) {
            *bad = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (int32_t)(d & 0x3F);
    }
    *cp = v;
    return need + 1;
}

int tk_utf8_next(const char *s, size_t n, int32_t *cp) {
    int bad;
    int k = utf8_seq((const unsigned char *)s, n, cp, &bad);
    if (k) return k;
    *cp = -1 - (int32_t)(unsigned char)s[0];
    return 1;
}

size_t tk_utf8_prev(const char *s, size_t i) {
    /* Walk back over at most 3 continuation bytes, then check that the
     * sequence found really ends at i; otherwise the last byte stands alone. */
    size_t j = i - 1;
    int k = 0;
    while (j > 0 && k < 3 && ((unsigned char)s[j] & 0xC0) == 0x80) {
        j--;
        k++;
    }
    int32_t cp;
    if ((size_t)tk_utf8_next(s + j, i - j, &cp) == i - j && cp >= 0) return j;
    return i - 1;
}

bool tk_utf8_valid(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int bad;
        int k = utf8_seq((const unsigned char *)s + i, n - i, &cp, &bad);
        if (!k) return false;
        i += (size_t)k;
    }
    return true;
}

bool tk_utf8_lossy(tk_buf *out, const char *s, size_t n) {
    static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t run = 0; /* start of the pending valid run */
    size_t i = 0;
    while (i < n) {
        int32_t cp;
        int bad;
        int k = utf8_seq((const unsigned char *)s + i, n - i, &cp, &bad);
        if (k) {
            i += (size_t)k;
            continue;
        }
        if (!tk_buf_put(out, s + run, i - run) || !tk_buf_put(out, fffd, 3)) return false;
        i += (size_t)bad;
        run = i;
    }
    return tk_buf_put(out, s + run, n - run);
}

bool tk_is_space(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* ---- string tables ---------------------------------------------------------- */

bool tk_strtab_set(tk_strtab *t, int32_t i, const char *s, size_t n) {
    if (i < 0 || n > UINT32_MAX || t->blob.n + n > UINT32_MAX) return false;
    if (i >= t->cap) {
        int32_t cap = t->cap ? t->cap : 256;
        while (cap <= i) {
            if (cap > INT32_MAX / 2) return false;
            cap *= 2;
        }
        uint32_t *off = realloc(t->off, (size_t)cap * sizeof *off);
        if (!off) return false;
        t->off = off;
        uint32_t *len = realloc(t->len, (size_t)cap * sizeof *len);
        if (!len) return false;
        t->len = len;
        for (int32_t k = t->cap; k < cap; k++) {
            t->off[k] = UINT32_MAX;
            t->len[k] = 0;
        }
        t->cap = cap;
    }
    if (i >= t->n) t->n = i + 1;
    t->off[i] = (uint32_t)t->blob.n;
    t->len[i] = (uint32_t)n;
    return tk_buf_put(&t->blob, s, n);
}

bool tk_strtab_has(const tk_strtab *t, int32_t i) {
    return i >= 0 && i < t->n && t->off[i] != UINT32_MAX;
}

const char *tk_strtab_get(const tk_strtab *t, int32_t i, size_t *len) {
    if (!tk_strtab_has(t, i)) return NULL;
    if (len) *len = t->len[i];
    return t->blob.p + t->off[i];
}

void tk_strtab_free(tk_strtab *t) {
    tk_buf_free(&t->blob);
    free(t->off);
    free(t->len);
    memset(t, 0, sizeof *t);
}

/* ---- hash maps ---------------------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static uint32_t table_size(size_t n) {
    uint32_t cap = 16;
    while (cap < 2 * n + 1 && cap < (1u << 30)) cap *= 2;
    return cap;
}

bool tk_strmap_build(tk_strmap *m, const tk_strtab *t, int32_t *dup_a, int32_t *dup_b) {
    free(m->slot);
    uint32_t cap = table_size((size_t)t->n);
    m->slot = malloc((size_t)cap * sizeof *m->slot);
    if (!m->slot) return false;
    m->mask = cap - 1;
    for (uint32_t k = 0; k < cap; k++) m->slot[k] = -1;
    *dup_a = *dup_b = -1;
    for (int32_t i = 0; i < t->n; i++) {
        if (!tk_strtab_has(t, i)) continue;
        const char *s = t->blob.p + t->off[i];
        size_t n = t->len[i];
        uint32_t h = hash_bytes(s, n) & m->mask;
        for (;; h = (h + 1) & m->mask) {
            int32_t j = m->slot[h];
            if (j < 0) {
                m->slot[h] = i;
                break;
            }
            if (t->len[j] == n && !memcmp(t->blob.p + t->off[j], s, n)) {
                *dup_a = j;
                *dup_b = i;
                m->slot[h] = i;
                break;
            }
        }
    }
    return true;
}

int32_t tk_strmap_get(const tk_strmap *m, const tk_strtab *t, const char *s, size_t n) {
    if (!m->slot) return -1;
    for (uint32_t h = hash_bytes(s, n) & m->mask;; h = (h + 1) & m->mask) {
        int32_t j = m->slot[h];
        if (j < 0) return -1;
        if (t->len[j] == n && !memcmp(t->blob.p + t->off[j], s, n)) return j;
    }
}

void tk_strmap_free(tk_strmap *m) {
    free(m->slot);
    m->slot = NULL;
    m->mask = 0;
}

#define PAIR_EMPTY UINT64_MAX

static uint32_t hash_pair(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (uint32_t)k;
}

bool tk_pairmap_init(tk_pairmap *m, size_t expected) {
    uint32_t cap = table_size(expected);
    m->key = malloc((size_t)cap * sizeof *m->key);
    m->rank = malloc((size_t)cap * sizeof *m->rank);
    m->merged = malloc((size_t)cap * sizeof *m->merged);
    if (!m->key || !m->rank || !m->merged) {
        tk_pairmap_free(m);
        return false;
    }
    for (uint32_t k = 0; k < cap; k++) m->key[k] = PAIR_EMPTY;
    m->mask = cap - 1;
    m->n = 0;
    return true;
}

static bool pairmap_grow(tk_pairmap *m) {
    tk_pairmap big = {0};
    if (!tk_pairmap_init(&big, (size_t)m->n * 2 + 16)) return false;
    for (uint32_t k = 0; k <= m->mask; k++)
        if (m->key[k] != PAIR_EMPTY)
            tk_pairmap_put(&big, (int32_t)(m->key[k] >> 32), (int32_t)(uint32_t)m->key[k], m->rank[k],
                           m->merged[k]);
    tk_pairmap_free(m);
    *m = big;
    return true;
}

bool tk_pairmap_put(tk_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    if (!m->key && !tk_pairmap_init(m, 1024)) return false;
    if ((size_t)(m->n + 1) * 2 > (size_t)m->mask + 1 && !pairmap_grow(m)) return false;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t h = hash_pair(key) & m->mask;; h = (h + 1) & m->mask) {
        if (m->key[h] == PAIR_EMPTY) {
            m->key[h] = key;
            m->n++;
        } else if (m->key[h] != key) {
            continue;
        }
        /* A repeated pair takes the later rank, like HF's HashMap collect. */
        m->rank[h] = rank;
        m->merged[h] = merged;
        return true;
    }
}

bool tk_pairmap_get(const tk_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged) {
    if (!m->key) return false;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t h = hash_pair(key) & m->mask;; h = (h + 1) & m->mask) {
        if (m->key[h] == PAIR_EMPTY) return false;
        if (m->key[h] == key) {
            *rank = m->rank[h];
            *merged = m->merged[h];
            return true;
        }
    }
}

void tk_pairmap_free(tk_pairmap *m) {
    free(m->key);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

/* ---- segment lists --------------------------------------------------------------- */

bool tk_segs_push(tk_segs *s, const char *p, size_t n, int32_t id, bool at_start) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        tk_seg *v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    size_t off = s->text.n;
    if (!tk_buf_put(&s->text, p, n)) return false;
    s->v[s->n++] = (tk_seg){off, n, id, at_start};
    return true;
}

void tk_segs_free(tk_segs *s) {
    tk_buf_free(&s->text);
    free(s->v);
    memset(s, 0, sizeof *s);
}
