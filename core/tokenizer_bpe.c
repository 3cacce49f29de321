/* tokenizer_bpe.c — the BPE model as HF's models/bpe runs it.
 *
 * A word starts as one symbol per character (a character missing from the
 * vocabulary becomes its <0xNN> byte tokens with byte fallback, else the
 * unknown token, fused when fuse_unk). Then the adjacent pair with the lowest
 * merge rank merges, leftmost first among equal ranks, until no pair has a
 * merge: a heap of candidate merges with stale entries skipped on pop.
 * With ignore_merges (Llama 3), a word that is itself in the vocabulary is
 * one token and skips merging. Also here: the GPT-2 byte-level alphabet, and
 * SentencePiece score-ranked merges for GGUF "llama" vocabularies.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

/* ---- byte-level alphabet ------------------------------------------------------
 * Printable Latin-1 bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
 * themselves; the other 68 bytes take U+0100.. in byte order. */

static bool printable(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static int32_t byte_cp(uint8_t b) {
    if (printable(b)) return b;
    if (b <= 0x20) return 256 + b;
    if (b >= 0x7F && b <= 0xA0) return 256 + 33 + (b - 0x7F);
    return 256 + 67; /* 0xAD */
}

int tk_byte_to_char(uint8_t b, char out[2]) {
    int32_t cp = byte_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int tk_char_to_byte(int32_t cp) {
    if (cp >= 0 && cp <= 0xFF) return printable(cp) ? cp : -1;
    if (cp < 256 || cp >= 256 + 68) return -1;
    int n = cp - 256;
    if (n <= 0x20) return n;
    if (n < 33 + 34) return 0x7F + (n - 33);
    return 0xAD;
}

/* ---- merging -------------------------------------------------------------------- */

typedef struct sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    bool gone;
} sym;

typedef struct cand {
    uint32_t rank;
    int32_t pos;
    int32_t merged;
} cand;

static bool cand_less(const cand *a, const cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

typedef struct heap {
    cand *v;
    size_t n, cap;
} heap;

static bool heap_push(heap *h, cand c) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        cand *v = realloc(h->v, cap * sizeof *v);
        if (!v) return false;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return true;
}

static cand heap_pop(heap *h) {
    cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < h->n && cand_less(&h->v[l], best)) {
            m = l;
            best = &h->v[l];
        }
        if (r < h->n && cand_less(&h->v[r], best)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static bool push_id(int32_t **ids, int64_t *n, int64_t *cap, int32_t id) {
    if (*n == *cap) {
        int64_t c = *cap ? *cap * 2 : 64;
        int32_t *v = realloc(*ids, (size_t)c * sizeof *v);
        if (!v) return false;
        *ids = v;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return true;
}

typedef struct word {
    sym *s;
    int32_t n, cap;
} word;

static bool word_add(word *w, int32_t id) {
    if (w->n == w->cap) {
        int32_t cap = w->cap ? w->cap * 2 : 32;
        sym *s = realloc(w->s, (size_t)cap * sizeof *s);
        if (!s) return false;
        w->s = s;
        w->cap = cap;
    }
    w->s[w->n] = (sym){id, w->n - 1, -1, false};
    if (w->n > 0) w->s[w->n - 1].next = w->n;
    w->n++;
    return true;
}

static bool merge_all(const tk_pairmap *m, word *w) {
    heap h = {0};
    uint32_t rank;
    int32_t merged;
    for (int32_t i = 0; i + 1 < w->n; i++)
        if (tk_pairmap_get(m, w->s[i].id, w->s[i + 1].id, &rank, &merged) &&
            !heap_push(&h, (cand){rank, i, merged})) {
            free(h.v);
            return false;
        }
    while (h.n) {
        cand c = heap_pop(&h);
        sym *a = &w->s[c.pos];
        if (a->gone || a->next < 0) continue;
        sym *b = &w->s[a->next];
        /* Stale entry: the pair at this position changed since it was queued. */
        if (!tk_pairmap_get(m, a->id, b->id, &rank, &merged) || merged != c.merged) continue;
        a->id = c.merged;
        b->gone = true;
        a->next = b->next;
        if (b->next >= 0) w->s[b->next].prev = c.pos;
        bool ok = true;
        if (a->prev >= 0 && tk_pairmap_get(m, w->s[a->prev].id, a->id, &rank, &merged))
            ok = heap_push(&h, (cand){rank, a->prev, merged});
        if (ok && a->next >= 0 && tk_pairmap_get(m, a->id, w->s[a->next].id, &rank, &merged))
            ok = heap_push(&h, (cand){rank, c.pos, merged});
        if (!ok) {
            free(h.v);
            return false;
        }
    }
    free(h.v);
    return true;
}

sw_status tk_bpe_word(sw_ctx *ctx, const sw_tokenizer *t, const char *wd, size_t n, int32_t **ids,
                      int64_t *n_ids, int64_t *cap) {
    if (!n) return SW_OK;
    if (t->ignore_merges) {
        int32_t id = tk_strmap_get(&t->vmap, &t->vocab, wd, n);
        if (id >= 0) return push_id(ids, n_ids, cap, id) ? SW_OK : sw_err(ctx, SW_ENOMEM, "out of memory encoding");
    }
    word w = {0};
    int32_t unk = -1; /* a pending unknown token, for fusing */
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t l = (size_t)tk_utf8_next(wd + i, n - i, &cp);
        int32_t id = tk_strmap_get(&t->vmap, &t->vocab, wd + i, l);
        if (id >= 0) {
            if ((unk >= 0 && !word_add(&w, unk)) || !word_add(&w, id)) goto nomem;
            unk = -1;
        } else {
            bool done = false;
            if (t->byte_fallback) {
                done = true;
                for (size_t k = 0; k < l; k++)
                    if (t->byte_id[(uint8_t)wd[i + k]] < 0) done = false;
                for (size_t k = 0; done && k < l; k++)
                    if (!word_add(&w, t->byte_id[(uint8_t)wd[i + k]])) goto nomem;
            }
            if (!done && t->unk_id >= 0) {
                if (unk >= 0 && !t->fuse_unk && !word_add(&w, unk)) goto nomem;
                unk = t->unk_id;
            }
            /* No unk token: HF drops the character; so do we. */
        }
        i += l;
    }
    if (unk >= 0 && !word_add(&w, unk)) goto nomem;
    if (!merge_all(&t->merges, &w)) goto nomem;
    for (int32_t i = 0; i < w.n; i++)
        if (!w.s[i].gone && !push_id(ids, n_ids, cap, w.s[i].id)) goto nomem;
    free(w.s);
    return SW_OK;
nomem:
    free(w.s);
    return sw_err(ctx, SW_ENOMEM, "out of memory encoding");
}

/* ---- merges from SentencePiece scores -------------------------------------------
 * SentencePiece BPE merges the adjacent pair whose joined piece scores
 * highest. As ranks: every split of a piece into two vocabulary pieces is a
 * merge (pieces marked unused aside), ordered by the joined piece's score
 * (high first), then its id, then the left and right ids — the order HF's
 * converter gave Llama/Mistral tokenizer.json files. */

typedef struct smerge {
    float score;
    int32_t merged, left, right;
} smerge;

static int smerge_cmp(const void *pa, const void *pb) {
    const smerge *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->merged != b->merged) return a->merged < b->merged ? -1 : 1;
    if (a->left != b->left) return a->left < b->left ? -1 : 1;
    return (a->right > b->right) - (a->right < b->right);
}

sw_status tk_merges_from_scores(sw_ctx *ctx, sw_tokenizer *t, const float *scores, const uint8_t *mergeable) {
    smerge *v = NULL;
    size_t n = 0, cap = 0;
    for (int32_t id = 0; id < t->vocab.n; id++) {
        size_t len;
        const char *s = tk_strtab_get(&t->vocab, id, &len);
        if (!s || !mergeable[id]) continue;
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)s[k] & 0xC0) == 0x80) continue; /* split at characters */
            int32_t l = tk_strmap_get(&t->vmap, &t->vocab, s, k);
            int32_t r = tk_strmap_get(&t->vmap, &t->vocab, s + k, len - k);
            if (l < 0 || r < 0 || !mergeable[l] || !mergeable[r]) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 4096;
                smerge *nv = realloc(v, cap * sizeof *nv);
                if (!nv) {
                    free(v);
                    return sw_err(ctx, SW_ENOMEM, "out of memory building merges");
                }
                v = nv;
            }
            v[n++] = (smerge){scores[id], id, l, r};
        }
    }
    if (n) qsort(v, n, sizeof *v, smerge_cmp);
    for (size_t i = 0; i < n; i++)
        if (!tk_pairmap_put(&t->merges, v[i].left, v[i].right, (uint32_t)i, v[i].merged)) {
            free(v);
            return sw_err(ctx, SW_ENOMEM, "out of memory building merges");
        }
    free(v);
    return SW_OK;
}
