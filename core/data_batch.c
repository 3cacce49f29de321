/* data_batch.c — batches from a dataset: order, truncation, padding, packing.
 *
 * The order of an epoch is a permutation that is a pure function of (seed,
 * epoch, n): a Feistel network over the next even power of two, walked until
 * it lands inside [0, n). Any position of any epoch costs O(1) and nothing is
 * stored, so a cursor {epoch, index} is all it takes to resume a run exactly
 * where it stopped, in this process or the next.
 *
 * Packing is greedy and in order: a row takes the next samples while they
 * fit in max_len. That keeps the cursor a single index (the next sample) and
 * keeps the samples of a batch those the unpacked run would have seen.
 */
#include <stdlib.h>
#include <string.h>

#include "data_impl.h"
#include "mem.h"

/* ---- order ---------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

int64_t sw_data_shuffle(uint64_t seed, int64_t epoch, int64_t n, int64_t i) {
    if (n <= 1 || i < 0 || i >= n) return i;
    int bits = 2;
    while (bits < 62 && ((int64_t)1 << bits) < n) bits++;
    bits += bits & 1; /* two equal halves */
    int half = bits / 2;
    uint64_t mask = ((uint64_t)1 << half) - 1;
    uint64_t key = splitmix64(seed ^ splitmix64((uint64_t)epoch + 0x5157u));
    uint64_t x = (uint64_t)i;
    do { /* cycle-walk: the network permutes [0, 2^bits); stay inside [0, n) */
        uint64_t l = x >> half, r = x & mask;
        for (int round = 0; round < 6; round++) {
            uint64_t f = splitmix64(r ^ (key + (uint64_t)round * 0xD1B54A32D192ED03ull)) & mask;
            uint64_t t = l ^ f;
            l = r;
            r = t;
        }
        x = (l << half) | r;
    } while (x >= (uint64_t)n);
    return (int64_t)x;
}

/* ---- batches -------------------------------------------------------------------- */

void sw_batch_free(sw_batch *b) {
    if (b->row_start) sw_mem_free(SW_DEV_CPU, SW_MEM_DATA, b->row_start, b->bytes_);
    memset(b, 0, sizeof *b);
}

static int64_t sample_len(const sw_dataset *ds, int64_t i) {
    const int64_t *off = DV(int64_t, ds->tok_off);
    return off[i + 1] - off[i];
}

/* Walk the samples a batch takes from `index` on: how many samples, rows and
 * the longest row. fill: also write them into b. */
static void plan(const sw_dataset *ds, const sw_batch_opts *o, const sw_data_cursor *cur, sw_batch *b, bool fill,
                 int64_t *n_samples, int64_t *n_rows, int64_t *longest) {
    int64_t L = ds->max_len, rows = 0, taken = 0, used = 0, best = 0, k_off = 0;
    const int64_t *off = DV(int64_t, ds->tok_off);
    const int32_t *ids = DV(int32_t, ds->ids), *labels = DV(int32_t, ds->labels);
    for (int64_t idx = cur->index; idx < ds->n; idx++) {
        int64_t s = o->shuffle ? sw_data_shuffle(o->seed, cur->epoch, ds->n, idx) : idx;
        int64_t full = sample_len(ds, s), l = full < L ? full : L;
        bool new_row = rows == 0 || !o->packing || used + l > L;
        if (new_row) {
            if (rows == o->rows) break;
            if (fill) {
                if (rows > 0) b->offsets[k_off++] = (int32_t)used; /* close the previous row */
                b->row_start[rows] = k_off;
            }
            rows++;
            used = 0;
        }
        if (fill) {
            int64_t r = rows - 1, base = r * b->len + used;
            b->offsets[k_off++] = (int32_t)used;
            memcpy(b->ids + base, ids + off[s], sizeof(int32_t) * (size_t)l);
            memcpy(b->labels + base, labels + off[s], sizeof(int32_t) * (size_t)l);
            for (int64_t t = 0; t < l; t++) {
                b->positions[base + t] = (int32_t)t;
                b->n_trained += labels[off[s] + t] != SW_LABEL_IGNORE;
            }
            b->samples[taken] = s;
            b->n_tokens += l;
            b->n_truncated += full > L;
        }
        used += l;
        if (used > best) best = used;
        taken++;
    }
    if (fill && rows > 0) {
        b->offsets[k_off++] = (int32_t)used;
        b->row_start[rows] = k_off;
    }
    *n_samples = taken;
    *n_rows = rows;
    *longest = best;
}

sw_status sw_dataset_batch(sw_ctx *ctx, const sw_dataset *ds, const sw_batch_opts *o, sw_data_cursor *cursor,
                           sw_batch *out) {
    memset(out, 0, sizeof *out);
    if (!ds || !o || !cursor) return sw_err(ctx, SW_EINVAL, "batch: missing dataset, options or cursor");
    if (o->rows <= 0) return sw_err(ctx, SW_EINVAL, "batch: rows must be positive, got %lld", (long long)o->rows);
    if (cursor->epoch < 0 || cursor->index < 0 || cursor->index > ds->n)
        return sw_err(ctx, SW_EINVAL, "batch: cursor {epoch %lld, index %lld} is outside this dataset of %lld samples",
                      (long long)cursor->epoch, (long long)cursor->index, (long long)ds->n);
    sw_data_cursor cur = *cursor;
    if (cur.index == ds->n) { /* the epoch is over: the next one starts */
        cur.epoch++;
        cur.index = 0;
    }
    int64_t ns, nr, len;
    plan(ds, o, &cur, NULL, false, &ns, &nr, &len);
    if (len < 1) len = 1;
    /* One block: int64 arrays first, then the int32 ones. */
    size_t cells = (size_t)nr * (size_t)len;
    size_t bytes = sizeof(int64_t) * ((size_t)nr + 1 + (size_t)ns) + sizeof(int32_t) * (3 * cells + (size_t)(ns + nr));
    char *p = sw_mem_alloc(ctx, SW_DEV_CPU, SW_MEM_DATA, bytes);
    if (!p) return ctx->status;
    out->bytes_ = bytes;
    out->row_start = (int64_t *)p;
    out->samples = out->row_start + nr + 1;
    out->ids = (int32_t *)(out->samples + ns);
    out->labels = out->ids + cells;
    out->positions = out->labels + cells;
    out->offsets = out->positions + cells;
    out->rows = nr;
    out->len = len;
    out->n_samples = ns;
    out->pad_id = ds->pad_id;
    out->start = cur;
    for (size_t c = 0; c < cells; c++) {
        out->ids[c] = ds->pad_id;
        out->labels[c] = SW_LABEL_IGNORE; /* padding never trains, whatever its id */
        out->positions[c] = 0;
    }
    out->row_start[0] = 0;
    plan(ds, o, &cur, out, true, &ns, &nr, &len);
    cursor->epoch = cur.epoch;
    cursor->index = cur.index + ns;
    return SW_OK;
}
