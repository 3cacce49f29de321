/* trainer_io.c — checkpoints: save a trainer's whole state and restore it
 * so the next steps are bit-for-bit those an uninterrupted run takes.
 *
 *   dir/adapter/            the adapter, PEFT format
 *   dir/optimizer.safetensors   m.<name>, v.<name> per parameter tensor
 *   dir/trainer.json        step, cursor, dropout stream, options
 * Everything is written into dir.tmp-<pid>, then swapped in with renames;
 * a crash at any point leaves the previous checkpoint readable (as dir, or,
 * in the instant between the two renames, as dir.old-<pid>).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "safetensors.h"
#include "trainer.h"
#include "dist.h"
#include "gpu.h"

static const char *const files[] = {"adapter/adapter_model.safetensors", "adapter/adapter_config.json",
                                    "optimizer.safetensors", "trainer.json", NULL};

static void remove_tree(const char *dir) {
    char p[4300];
    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/adapter", dir);
    rmdir(p);
    rmdir(dir);
}

static const char *sched_name(sw_schedule s) {
    return s == SW_SCHED_COSINE ? "cosine" : s == SW_SCHED_LINEAR ? "linear" : "constant";
}

static sw_status save_here(sw_ctx *ctx, const sw_trainer *tr, const char *dir);

/* Data parallel: one checkpoint, the same as one device writes. Every rank
 * holds the same adapter; with ZeRO-1 each holds current moments only for
 * its slice, so they are gathered first (every rank must call save). Rank 0
 * writes; the others learn whether it could, so a script that saves and then
 * resumes sees the same outcome on every rank. */
sw_status sw_trainer_save(sw_ctx *ctx, const sw_trainer *tr, const char *dir) {
    sw_dist *d = tr->o.dist;
    if (!d) return save_here(ctx, tr, dir);
    if (tr->o.zero1 && sw_gpu_mirrors(tr->m->gpu, tr->lora) && sw_dist_gather_optim(ctx, tr->m->gpu, d))
        return sw_err_prefix(ctx, "trainer: save");
    sw_status st = sw_dist_rank(d) == 0 ? save_here(ctx, tr, dir) : SW_OK;
    /* back to this rank's slice (the gather made whole arrays) */
    sw_ctx c1;
    sw_ctx_init(&c1);
    if (tr->o.zero1 && sw_gpu_mirrors(tr->m->gpu, tr->lora) && sw_dist_shard_optim(&c1, tr->m->gpu, d) && !st)
        st = sw_err(ctx, c1.status, "trainer: save: %s", c1.msg);
    double failed = st ? 1 : 0;
    sw_ctx c2;
    sw_ctx_init(&c2);
    if (sw_dist_sum_host(&c2, d, &failed, 1)) return st ? st : sw_err(ctx, c2.status, "%s", c2.msg);
    if (!st && failed > 0) return sw_err(ctx, SW_EIO, "trainer: rank 0 could not save %s", dir);
    return st;
}

static sw_status save_here(sw_ctx *ctx, const sw_trainer *tr, const char *dir) {
    char tmp[4200], p[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", dir, (int)getpid());
    remove_tree(tmp);
    if (mkdir(tmp, 0777) && errno != EEXIST) return sw_err(ctx, SW_EIO, "%s: cannot create (%s)", tmp, strerror(errno));
    snprintf(p, sizeof p, "%s/adapter", tmp);
    if (sw_adapter_save(ctx, tr->lora, p, tr->m->source)) goto fail;
    /* the moments live on the GPU while it trains; bring them to the host copy */
    if (tr->m->gpu && sw_gpu_mirrors(tr->m->gpu, tr->lora) && sw_gpu_download_optim(ctx, tr->m->gpu, tr->opt)) goto fail;

    const sw_optim *o = tr->opt;
    sw_st_entry *e = calloc((size_t)(2 * o->n + 1), sizeof *e);
    char (*names)[112] = calloc((size_t)(2 * o->n + 1), sizeof *names);
    if (!e || !names) {
        free(e), free(names);
        sw_err(ctx, SW_ENOMEM, "host out of memory");
        goto fail;
    }
    size_t n = 0;
    for (int64_t j = 0; j < o->n; j++)
        for (int k = 0; k < 2; k++) {
            sw_tensor *t = k ? o->v[j] : o->m[j];
            if (!t) continue;
            snprintf(names[n], sizeof names[n], "%c.%s", k ? 'v' : 'm', o->names[j]);
            e[n].name = names[n];
            e[n].tensor = t;
            n++;
        }
    snprintf(p, sizeof p, "%s/optimizer.safetensors", tmp);
    sw_status st = sw_st_write(ctx, p, n, e, 0, NULL);
    free(e), free(names);
    if (st) goto fail;

    json_t *j = json_object(), *opts = json_object();
    json_object_set_new(j, "format", json_string("stepwise-trainer-1"));
    json_object_set_new(j, "step", json_integer(tr->step));
    json_object_set_new(j, "optimizer_step", json_integer(o->step));
    json_object_set_new(j, "epoch", json_integer(tr->cursor.epoch));
    json_object_set_new(j, "index", json_integer(tr->cursor.index));
    json_object_set_new(j, "dropout_calls", json_integer((json_int_t)tr->lora->dropout_calls));
    json_object_set_new(j, "adapter_name", json_string(tr->lora->name));
    json_object_set_new(j, "adapter_seed", json_integer((json_int_t)tr->lora->seed));
    json_object_set_new(opts, "batch", json_integer(tr->o.batch));
    json_object_set_new(opts, "accum", json_integer(tr->o.accum));
    /* accum is per rank: a step read accum x gpus micro-batches */
    json_object_set_new(opts, "gpus", json_integer(tr->o.dist ? sw_dist_world(tr->o.dist) : 1));
    json_object_set_new(opts, "lr", json_real(tr->o.lr));
    json_object_set_new(opts, "schedule", json_string(sched_name(tr->o.schedule)));
    json_object_set_new(opts, "warmup", json_integer(tr->o.warmup_steps));
    json_object_set_new(opts, "optim", json_string(tr->o.optim.kind == SW_OPTIM_SGD ? "sgd" : "adamw"));
    json_object_set_new(opts, "beta1", json_real(tr->o.optim.beta1));
    json_object_set_new(opts, "beta2", json_real(tr->o.optim.beta2));
    json_object_set_new(opts, "eps", json_real(tr->o.optim.eps));
    json_object_set_new(opts, "weight_decay", json_real(tr->o.optim.weight_decay));
    json_object_set_new(opts, "momentum", json_real(tr->o.optim.momentum));
    json_object_set_new(opts, "max_grad_norm", json_real(tr->o.max_grad_norm));
    json_object_set_new(opts, "max_steps", json_integer(tr->total_steps));
    json_object_set_new(opts, "seed", json_integer((json_int_t)tr->o.seed));
    json_object_set_new(opts, "packing", json_boolean(tr->o.packing));
    json_object_set_new(opts, "shuffle", json_boolean(tr->o.shuffle));
    json_object_set_new(opts, "checkpointing",
                        tr->o.offload ? json_string("offload") : json_boolean(tr->o.checkpointing));
    json_object_set_new(j, "options", opts);
    snprintf(p, sizeof p, "%s/trainer.json", tmp);
    int rc = json_dump_file(j, p, JSON_INDENT(2));
    json_decref(j);
    if (rc) {
        sw_err(ctx, SW_EIO, "%s: cannot write", p);
        goto fail;
    }
    /* Swap: the old checkpoint stays whole until the new one is complete. */
    char old[4300];
    snprintf(old, sizeof old, "%s.old-%d", dir, (int)getpid());
    struct stat sb;
    bool had = stat(dir, &sb) == 0;
    if (had && rename(dir, old)) {
        sw_err(ctx, SW_EIO, "%s: cannot replace (%s)", dir, strerror(errno));
        goto fail;
    }
    if (rename(tmp, dir)) {
        sw_err(ctx, SW_EIO, "%s: cannot rename into place (%s)", dir, strerror(errno));
        if (had) rename(old, dir);
        goto fail;
    }
    if (had) remove_tree(old);
    return SW_OK;
fail:
    remove_tree(tmp);
    return ctx->status;
}

sw_status sw_trainer_restore(sw_ctx *ctx, sw_trainer *tr, const char *dir) {
    char p[4300];
    snprintf(p, sizeof p, "%s/trainer.json", dir);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    if (!j) return sw_err(ctx, SW_EIO, "%s: %s", p, je.text);
    sw_status st = SW_OK;
    json_t *step = json_object_get(j, "step"), *ep = json_object_get(j, "epoch"), *ix = json_object_get(j, "index"),
           *os = json_object_get(j, "optimizer_step"), *dc = json_object_get(j, "dropout_calls");
    if (!json_is_integer(step) || !json_is_integer(ep) || !json_is_integer(ix) || !json_is_integer(os) ||
        !json_is_integer(dc)) {
        json_decref(j);
        return sw_err(ctx, SW_EFORMAT, "%s: step, optimizer_step, epoch, index and dropout_calls must be integers", p);
    }
    /* Load everything first; assign only when all of it is there. */
    sw_lora *saved;
    snprintf(p, sizeof p, "%s/adapter", dir);
    if ((st = sw_adapter_load(ctx, tr->m, p, tr->lora->name, &saved))) {
        json_decref(j);
        return st;
    }
    sw_st *sf = NULL;
    snprintf(p, sizeof p, "%s/optimizer.safetensors", dir);
    if ((st = sw_st_open(ctx, p, &sf))) goto done;
    const sw_optim *o = tr->opt;
    for (int64_t k = 0; k < o->n && !st; k++)
        for (int w = 0; w < 2 && !st; w++) {
            sw_tensor *t = w ? o->v[k] : o->m[k];
            if (!t) continue;
            char nm[112];
            snprintf(nm, sizeof nm, "%c.%s", w ? 'v' : 'm', o->names[k]);
            const sw_st_tensor *x = sw_st_find(sf, nm);
            if (!x || x->dtype != SW_F32 || x->nbytes != sw_tensor_nbytes(t))
                st = sw_err(ctx, SW_EFORMAT, "%s: %s is missing or has the wrong size", p, nm);
        }
    for (int64_t i = 0; i < tr->lora->n_layers && !st; i++)
        for (int t = 0; t < SW_LORA_NTARGETS && !st; t++)
            if ((tr->lora->pairs[i][t].A == NULL) != (saved->pairs[i][t].A == NULL) ||
                (saved->pairs[i][t].A && sw_tensor_nbytes(saved->pairs[i][t].A) != sw_tensor_nbytes(tr->lora->pairs[i][t].A)))
                st = sw_err(ctx, SW_EFORMAT, "%s/adapter: its layout differs from the trainer's adapter", dir);
    if (st) goto done;
    for (int64_t k = 0; k < o->n; k++)
        for (int w = 0; w < 2; w++) {
            sw_tensor *t = w ? o->v[k] : o->m[k];
            if (!t) continue;
            char nm[112];
            snprintf(nm, sizeof nm, "%c.%s", w ? 'v' : 'm', o->names[k]);
            memcpy(sw_tensor_data(t), sw_st_find(sf, nm)->data, sw_tensor_nbytes(t));
        }
    for (int64_t i = 0; i < tr->lora->n_layers; i++)
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            sw_lora_pair *d = &tr->lora->pairs[i][t], *s = &saved->pairs[i][t];
            if (!d->A) continue;
            memcpy(sw_tensor_data(d->A), sw_tensor_data(s->A), sw_tensor_nbytes(d->A));
            memcpy(sw_tensor_data(d->B), sw_tensor_data(s->B), sw_tensor_nbytes(d->B));
        }
    tr->step = json_integer_value(step);
    tr->opt->step = json_integer_value(os);
    tr->cursor.epoch = json_integer_value(ep);
    tr->cursor.index = json_integer_value(ix);
    tr->lora->dropout_calls = (uint64_t)json_integer_value(dc);
    /* the dropout masks are drawn from the adapter's seed, which PEFT's
     * files do not carry: without it a resumed run would draw other masks */
    json_t *aseed = json_object_get(j, "adapter_seed");
    if (json_is_integer(aseed)) tr->lora->seed = (uint64_t)json_integer_value(aseed);
    /* a model on the GPU trains from the restored adapter and moments */
    if (tr->m->gpu && !(st = sw_gpu_set_lora(ctx, tr->m->gpu, tr->lora))) st = sw_gpu_upload_optim(ctx, tr->m->gpu, tr->opt);
    if (!st && tr->m->gpu && tr->o.zero1) st = sw_dist_shard_optim(ctx, tr->m->gpu, tr->o.dist);
done:
    sw_st_close(sf);
    sw_lora_free(saved);
    json_decref(j);
    return st;
}
