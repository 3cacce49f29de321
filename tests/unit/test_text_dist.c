/* test_text_dist.c — the data-parallel trainer on the emulated device:
 * ranks are threads of this process joined by the local communicator
 * (core/dist.h), each with its own model copy, adapter, engine and dataset,
 * as separate processes would have.
 *
 * What it shows:
 *   - the same effective batch on 1 and N ranks (N = 2, 4; accum a N on one
 *     rank = accum a on N) gives the same losses, token counts and gradient
 *     norms step after step (float32 sum order only: 1e-5), with shuffling
 *     on, so every rank reads the one-device seeded order and trains its
 *     round-robin share of it;
 *   - replicated and ZeRO-1 updates end with the same adapter;
 *   - a checkpoint written by N ranks is one adapter + optimizer state +
 *     trainer.json of the one-rank layout (same tensors, same shapes,
 *     values within 1e-5), ZeRO-1's moments gathered first;
 *   - bad options are refused with a message naming them.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/data.h"
#include "core/device.h"
#include "core/dist.h"
#include "core/gpu.h"
#include "core/load.h"
#include "core/lora.h"
#include "core/safetensors.h"
#include "core/tokenizer.h"
#include "core/trainer.h"

enum { STEPS = 3, MAXR = 4 };

static char fixture[512], tmpdir[256];

/* Byte-level BPE over ids 0..253 (bytes 0xFE and 0xFF never occur in
 * UTF-8) with ChatML's markers at 254 and 255: it fits the fixture's
 * 256-entry vocabulary. */
static char tokjson[1 << 15];
static sw_tokenizer *bytes_tok(sw_ctx *ctx) {
    size_t n = 0;
    n += (size_t)snprintf(tokjson + n, sizeof tokjson - n,
                          "{\"added_tokens\": [{\"id\": 254, \"content\": \"<|im_start|>\", \"special\": true},"
                          "{\"id\": 255, \"content\": \"<|im_end|>\", \"special\": true}], \"normalizer\": null,"
                          "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
                          "\"post_processor\": null, \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": "
                          "\"BPE\", \"vocab\": {");
    for (unsigned i = 0; i < 254; i++) {
        /* GPT-2's printable stand-in of byte i */
        bool keep = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE);
        unsigned c = i;
        if (!keep) {
            unsigned rank = 0;
            for (unsigned b = 0; b < i; b++)
                if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) rank++;
            c = 256 + rank;
        }
        const char *sep = i ? ", " : "";
        if (c == '"' || c == '\\') n += (size_t)snprintf(tokjson + n, sizeof tokjson - n, "%s\"\\%c\": %u", sep, (char)c, i);
        else if (c < 0x80) n += (size_t)snprintf(tokjson + n, sizeof tokjson - n, "%s\"%c\": %u", sep, (char)c, i);
        else n += (size_t)snprintf(tokjson + n, sizeof tokjson - n, "%s\"\\u%04x\": %u", sep, c, i);
    }
    n += (size_t)snprintf(tokjson + n, sizeof tokjson - n, "}, \"merges\": []}}");
    const char *cfg = "{\"eos_token\": \"<|im_end|>\", \"chat_template\": \"{% for message in messages %}"
                      "{{'<|im_start|>' + message['role'] + '\\\\n' + message['content'] + '<|im_end|>' + '\\\\n'}}"
                      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\\\n' }}{% endif %}\"}";
    sw_tokenizer *t = NULL;
    if (sw_tokenizer_from_json_text(ctx, tokjson, n, cfg, strlen(cfg), "bytes.json", &t))
        fprintf(stderr, "tokenizer: %s\n", ctx->msg);
    return t;
}

static char records[1 << 14];
static void make_records(void) {
    size_t n = 0;
    const char *words[] = {"ferry", "train", "museum", "harbour", "ticket", "castle", "market", "bridge"};
    for (int i = 0; i < 24; i++) {
        char q[128], a[256];
        snprintf(q, sizeof q, "How do I reach the %s number %d?", words[i % 8], i);
        int k = snprintf(a, sizeof a, "Take the %s", words[(i * 3) % 8]);
        for (int j = 0; j < i % 5; j++) k += snprintf(a + k, sizeof a - (size_t)k, ", then the %s", words[(i + j) % 8]);
        n += (size_t)snprintf(records + n, sizeof records - n,
                              "{\"messages\": [{\"role\": \"user\", \"content\": \"%s\"}, {\"role\": \"assistant\", "
                              "\"content\": \"%s.\"}]}\n",
                              q, a);
    }
}

/* One rank's world: its own model, adapter, engine and dataset. */
typedef struct rank_state {
    sw_model *m;
    sw_tokenizer *tok;
    sw_dataset *ds;
    sw_dist *d;
    sw_trainer_opts o;
    const char *save_dir;
    sw_step_stats st[STEPS];
    sw_status status;
    char msg[1024];
} rank_state;

static int rank_dev = SW_GPU_EMULATE; /* CUDA 0 for the NCCL case */

static bool make_rank(sw_ctx *ctx, rank_state *R) {
    memset(R, 0, sizeof *R);
    sw_load_opts lo = {SW_LOAD_KEEP, 128};
    if (sw_load_hf(ctx, fixture, &lo, &R->m)) return false;
    /* dropout on: each rank draws the masks one device would (core/trainer.c) */
    sw_lora_opts la = {.r = 4, .alpha = 8, .targets = 0x7f, .seed = 3407, .dropout = 0.1};
    sw_lora *l;
    if (sw_lora_new(ctx, R->m, &la, &l)) return false;
    R->m->lora = l;
    sw_gpu_opts go = {.weights = SW_GPU_W_AS_STORED};
    if (sw_gpu_new(ctx, R->m, rank_dev, &go, &R->m->gpu)) return false;
    if (!(R->tok = bytes_tok(ctx))) return false;
    sw_dataset_opts dopt = {.tok = R->tok, .max_len = 128};
    return sw_dataset_from_text(ctx, records, strlen(records), "travel.jsonl", false, &dopt, &R->ds) == SW_OK;
}

static void free_rank(rank_state *R) {
    sw_dataset_free(R->ds);
    sw_tokenizer_free(R->tok);
    if (R->m) {
        sw_lora *l = R->m->lora;
        R->m->lora = NULL;
        sw_lora_free(l);
        sw_model_free(R->m);
    }
}

static void *rank_main(void *p) {
    rank_state *R = p;
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_trainer *tr = NULL;
    sw_status st = sw_trainer_new(&ctx, R->m, R->ds, &R->o, &tr);
    for (int s = 0; s < STEPS && !st; s++) st = sw_trainer_step(&ctx, tr, &R->st[s]);
    if (!st && R->save_dir) st = sw_trainer_save(&ctx, tr, R->save_dir);
    sw_trainer_free(tr);
    R->status = st;
    snprintf(R->msg, sizeof R->msg, "%s", ctx.msg);
    return NULL;
}

static sw_trainer_opts base_opts(void) {
    sw_trainer_opts o = {.batch = 2, .accum = 4, .lr = 5e-3, .schedule = SW_SCHED_COSINE, .warmup_steps = 1,
                         .max_steps = 10, .seed = 7, .shuffle = true, .max_grad_norm = 1.0};
    o.optim = (sw_optim_opts){.kind = SW_OPTIM_ADAMW, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
    return o;
}

/* Run world ranks (world 1 without a communicator: the plain trainer). */
static bool run(int world, int accum, bool zero1, size_t bucket, const char *dir, rank_state *R) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_dist *ds[MAXR] = {0};
    if (world > 1 && sw_dist_local_group(&ctx, world, 60, ds)) return false;
    for (int r = 0; r < world; r++) {
        if (!make_rank(&ctx, &R[r])) {
            fprintf(stderr, "rank setup: %s\n", ctx.msg);
            return false;
        }
        R[r].o = base_opts();
        R[r].o.accum = accum;
        R[r].o.dist = ds[r];
        R[r].o.zero1 = zero1;
        R[r].o.bucket_bytes = bucket;
        R[r].save_dir = dir;
    }
    pthread_t th[MAXR];
    for (int r = 0; r < world; r++) pthread_create(&th[r], NULL, rank_main, &R[r]);
    for (int r = 0; r < world; r++) pthread_join(th[r], NULL);
    for (int r = 0; r < world; r++) sw_dist_free(ds[r]);
    bool ok = true;
    for (int r = 0; r < world; r++)
        if (R[r].status) {
            fprintf(stderr, "world %d rank %d: %s\n", world, r, R[r].msg);
            ok = false;
        }
    return ok;
}

static double tensors_rel(const char *a, const char *b, bool *same_layout) {
    sw_ctx ctx;
    sw_ctx_init(&ctx);
    sw_st *A = NULL, *B = NULL;
    *same_layout = false;
    if (sw_st_open(&ctx, a, &A) || sw_st_open(&ctx, b, &B)) {
        fprintf(stderr, "%s\n", ctx.msg);
        sw_st_close(A);
        return INFINITY;
    }
    double e = 0, r = 1e-30;
    bool same = sw_st_count(A) == sw_st_count(B);
    for (size_t i = 0; same && i < sw_st_count(A); i++) {
        const sw_st_tensor *x = sw_st_at(A, i), *y = sw_st_at(B, i);
        same = !strcmp(x->name, y->name) && x->numel == y->numel && x->ndim == y->ndim && x->dtype == y->dtype &&
               x->dtype == SW_F32;
        for (int64_t k = 0; same && k < x->numel; k++) {
            double u = ((const float *)x->data)[k], v = ((const float *)y->data)[k];
            e += (u - v) * (u - v), r += v * v;
        }
    }
    sw_st_close(A);
    sw_st_close(B);
    *same_layout = same;
    return sqrt(e / r);
}

static void compare(const char *what, rank_state *R, int world, rank_state *ref) {
    for (int r = 0; r < world; r++)
        for (int s = 0; s < STEPS; s++) {
            const sw_step_stats *x = &R[r].st[s], *y = &ref->st[s];
            double el = fabs(x->loss - y->loss) / fabs(y->loss), en = fabs(x->grad_norm - y->grad_norm) / y->grad_norm;
            if (el > 1e-5 || en > 1e-5)
                fprintf(stderr, "%s rank %d step %d: loss %.7f vs %.7f, grad norm %.7f vs %.7f\n", what, r, s + 1,
                        x->loss, y->loss, x->grad_norm, y->grad_norm);
            CHECK(el <= 1e-5);
            CHECK(en <= 1e-5);
            CHECK_EQ_INT(x->trained, y->trained);
            CHECK_EQ_INT(x->tokens, y->tokens);
            CHECK(fabs(x->lr - y->lr) <= 1e-12);
            CHECK(!x->skipped);
        }
}

static void compare_ckpt(const char *a, const char *b) {
    const char *files[] = {"adapter/adapter_model.safetensors", "optimizer.safetensors"};
    for (int k = 0; k < 2; k++) {
        char pa[1024], pb[1024];
        snprintf(pa, sizeof pa, "%s/%s", a, files[k]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[k]);
        bool same;
        double e = tensors_rel(pa, pb, &same);
        if (!same || e > 1e-5) fprintf(stderr, "%s vs %s: layout %s, rel %.3g\n", pa, pb, same ? "same" : "differs", e);
        CHECK(same);
        CHECK(e <= 1e-5);
    }
    char pa[1024];
    snprintf(pa, sizeof pa, "%s/trainer.json", b);
    CHECK(access(pa, R_OK) == 0);
    snprintf(pa, sizeof pa, "%s/adapter/adapter_config.json", b);
    CHECK(access(pa, R_OK) == 0);
}

int main(void) {
    snprintf(fixture, sizeof fixture, "%s", __FILE__);
    char *slash = strrchr(fixture, '/');
    if (slash) snprintf(slash, sizeof fixture - (size_t)(slash - fixture), "/../fixtures/llama");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sw_test_dist_%d", (int)getpid());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmpdir);
    if (system(cmd)) return 1;
    make_records();

    char d1[300], d2[300], d4[300];
    snprintf(d1, sizeof d1, "%s/one", tmpdir);
    snprintf(d2, sizeof d2, "%s/two", tmpdir);
    snprintf(d4, sizeof d4, "%s/four", tmpdir);
    static rank_state ref[1], two[2], four[4], four_rep[4];
    /* one device, accum 4: the reference */
    CHECK(run(1, 4, false, 0, d1, ref));
    /* two ranks, accum 2; a bucket per layer */
    CHECK(run(2, 2, false, 1, d2, two));
    compare("2 ranks", two, 2, ref);
    compare_ckpt(d1, d2);
    /* four ranks, accum 1, ZeRO-1, and the same replicated */
    CHECK(run(4, 1, true, 0, d4, four));
    compare("4 ranks zero1", four, 4, ref);
    compare_ckpt(d1, d4);
    CHECK(run(4, 1, false, 0, NULL, four_rep));
    for (int s = 0; s < STEPS; s++) CHECK(four_rep[0].st[s].loss == four[0].st[s].loss);
    for (int r = 0; r < 4; r++) CHECK(four[r].st[STEPS - 1].loss == four[0].st[STEPS - 1].loss);

    /* refusals name the option */
    {
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        rank_state R;
        CHECK(make_rank(&ctx, &R));
        sw_trainer_opts o = base_opts();
        o.zero1 = true;
        sw_trainer *tr;
        CHECK_EQ_INT(sw_trainer_new(&ctx, R.m, R.ds, &o, &tr), SW_EINVAL);
        CHECK_CONTAINS(ctx.msg, "zero");
        sw_gpu_free(R.m->gpu);
        R.m->gpu = NULL;
        sw_dist *d[1];
        CHECK_EQ_INT(sw_dist_local_group(&ctx, 1, 5, d), SW_OK);
        o.zero1 = false;
        o.dist = d[0];
        CHECK_EQ_INT(sw_trainer_new(&ctx, R.m, R.ds, &o, &tr), SW_EINVAL);
        CHECK_CONTAINS(ctx.msg, "gpus");
        sw_dist_free(d[0]);
        free_rank(&R);
    }
    /* On a GPU with NCCL: the trainer through a one-rank NCCL communicator
     * against the plain trainer, both on CUDA 0 (bf16: 1e-5 still holds,
     * the sums of one rank are copies). */
    char why[256];
    if (sw_device_cuda_count() > 0 && sw_dist_nccl_available(why, sizeof why)) {
        rank_dev = 0;
        static rank_state plain[1], viaccl[1];
        CHECK(run(1, 4, false, 0, NULL, plain));
        sw_ctx ctx;
        sw_ctx_init(&ctx);
        uint8_t id[SW_DIST_ID_BYTES];
        sw_dist *d = NULL;
        CHECK_EQ_INT(sw_dist_nccl_id(&ctx, id), SW_OK);
        CHECK_EQ_INT(sw_dist_nccl_new(&ctx, id, 0, 1, 0, &d), SW_OK);
        CHECK(make_rank(&ctx, &viaccl[0]));
        viaccl[0].o = base_opts();
        viaccl[0].o.dist = d;
        viaccl[0].o.zero1 = true;
        rank_main(&viaccl[0]);
        if (viaccl[0].status) fprintf(stderr, "nccl trainer: %s\n", viaccl[0].msg);
        CHECK_EQ_INT(viaccl[0].status, SW_OK);
        compare("nccl 1 rank", viaccl, 1, plain);
        fprintf(stderr, "trainer over NCCL (1 rank) = plain trainer on CUDA 0: %s\n", why);
        free_rank(&plain[0]);
        free_rank(&viaccl[0]);
        sw_dist_free(d);
    } else {
        fprintf(stderr, "NCCL trainer case skipped (needs a GPU and NCCL)\n");
    }
    for (int r = 0; r < 1; r++) free_rank(&ref[r]);
    for (int r = 0; r < 2; r++) free_rank(&two[r]);
    for (int r = 0; r < 4; r++) free_rank(&four[r]), free_rank(&four_rep[r]);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    CHECK_DONE();
}
