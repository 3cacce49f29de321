/* load_adapter.c — LoRA adapters as PEFT saves them: a directory with
 * adapter_config.json and adapter_model.safetensors, tensors named
 *   base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight  (r, in)
 *   base_model.model.model.layers.N.mlp.down_proj.lora_B.weight     (out, r)
 * Saving writes each file under a temporary name and renames it, so a
 * crash leaves either the old file or the new one, never half of one.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "../kernels/ops.h"
#include "safetensors.h"

static void peft_name(char *buf, size_t n, int64_t layer, int t, char ab) {
    const char *block = t <= SW_LORA_O ? "self_attn" : "mlp";
    snprintf(buf, n, "base_model.model.model.layers.%lld.%s.%s.lora_%c.weight", (long long)layer, block,
             sw_lora_target_names[t], ab);
}

static sw_status mkdirs(sw_ctx *ctx, const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) && errno != EEXIST) return sw_err(ctx, SW_EIO, "%s: cannot create (%s)", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) && errno != EEXIST) return sw_err(ctx, SW_EIO, "%s: cannot create (%s)", p, strerror(errno));
    return SW_OK;
}

sw_status sw_adapter_save(sw_ctx *ctx, const sw_lora *l, const char *dir, const char *base_model) {
    if (mkdirs(ctx, dir)) return ctx->status;
    size_t n = 0, cap = (size_t)(l->n_layers * SW_LORA_NTARGETS * 2);
    sw_st_entry *e = calloc(cap ? cap : 1, sizeof *e);
    char (*names)[128] = calloc(cap ? cap : 1, 128);
    if (!e || !names) {
        free(e);
        free(names);
        return sw_err(ctx, SW_ENOMEM, "host out of memory");
    }
    bool layer_used[4096] = {false};
    bool all_layers = true;
    for (int64_t i = 0; i < l->n_layers; i++) {
        bool any = false;
        for (int t = 0; t < SW_LORA_NTARGETS; t++) {
            const sw_lora_pair *p = &l->pairs[i][t];
            if (!p->A) continue;
            any = true;
            peft_name(names[n], 128, i, t, 'A');
            e[n].name = names[n];
            e[n].tensor = p->A;
            n++;
            peft_name(names[n], 128, i, t, 'B');
            e[n].name = names[n];
            e[n].tensor = p->B;
            n++;
        }
        if (i < 4096) layer_used[i] = any;
        all_layers &= any;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    const char *meta[] = {"format", "pt"};
    sw_status st = sw_st_write(ctx, path, n, e, 1, meta);
    free(e);
    free(names);
    if (st) return st;

    json_t *cfg = json_object(), *targets = json_array();
    for (int t = 0; t < SW_LORA_NTARGETS; t++)
        if (l->targets & (1u << t)) json_array_append_new(targets, json_string(sw_lora_target_names[t]));
    json_object_set_new(cfg, "peft_type", json_string("LORA"));
    json_object_set_new(cfg, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(cfg, "base_model_name_or_path", base_model ? json_string(base_model) : json_null());
    json_object_set_new(cfg, "r", json_integer(l->r));
    json_object_set_new(cfg, "lora_alpha", json_real(l->alpha));
    json_object_set_new(cfg, "lora_dropout", json_real(l->dropout));
    json_object_set_new(cfg, "use_rslora", json_boolean(l->rslora));
    json_object_set_new(cfg, "target_modules", targets);
    if (all_layers) {
        json_object_set_new(cfg, "layers_to_transform", json_null());
    } else {
        json_t *ls = json_array();
        for (int64_t i = 0; i < l->n_layers && i < 4096; i++)
            if (layer_used[i]) json_array_append_new(ls, json_integer(i));
        json_object_set_new(cfg, "layers_to_transform", ls);
    }
    json_object_set_new(cfg, "bias", json_string("none"));
    json_object_set_new(cfg, "fan_in_fan_out", json_false());
    json_object_set_new(cfg, "inference_mode", json_true());
    json_object_set_new(cfg, "init_lora_weights", json_true());
    json_object_set_new(cfg, "use_dora", json_false());
    json_object_set_new(cfg, "modules_to_save", json_null());
    json_object_set_new(cfg, "rank_pattern", json_object());
    json_object_set_new(cfg, "alpha_pattern", json_object());
    json_object_set_new(cfg, "revision", json_null());
    char tmp[4300];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int rc = json_dump_file(cfg, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(cfg);
    if (rc || rename(tmp, path)) {
        unlink(tmp);
        return sw_err(ctx, SW_EIO, "%s: cannot write (%s)", path, strerror(errno));
    }
    return SW_OK;
}

sw_status sw_adapter_load(sw_ctx *ctx, const sw_model *m, const char *dir, const char *name, sw_lora **out) {
    *out = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t je;
    json_t *cfg = json_load_file(path, 0, &je);
    if (!cfg) return sw_err(ctx, SW_EIO, "%s: %s (line %d)", path, je.text, je.line);
    sw_status st = SW_OK;
    sw_lora_opts o = {0};
    bool layers[4096];
    json_t *v;
    const char *pt = json_string_value(json_object_get(cfg, "peft_type"));
    if (pt && strcmp(pt, "LORA")) {
        st = sw_err(ctx, SW_EUNSUPPORTED, "%s: peft_type %s is not LORA", path, pt);
        goto done;
    }
    if (!json_is_integer(v = json_object_get(cfg, "r")) || json_integer_value(v) <= 0) {
        st = sw_err(ctx, SW_EFORMAT, "%s: r must be a positive integer", path);
        goto done;
    }
    o.r = (int)json_integer_value(v);
    v = json_object_get(cfg, "lora_alpha");
    o.alpha = json_is_number(v) ? json_number_value(v) : 8.0;
    v = json_object_get(cfg, "lora_dropout");
    o.dropout = json_is_number(v) ? json_number_value(v) : 0.0;
    o.rslora = json_is_true(json_object_get(cfg, "use_rslora"));
    if (json_is_true(json_object_get(cfg, "use_dora"))) {
        st = sw_err(ctx, SW_EUNSUPPORTED, "%s: DoRA adapters are not supported", path);
        goto done;
    }
    v = json_object_get(cfg, "target_modules");
    size_t i;
    json_t *x;
    if (json_is_string(v)) {
        st = sw_err(ctx, SW_EUNSUPPORTED, "%s: target_modules as a regular expression is not supported", path);
        goto done;
    }
    json_array_foreach(v, i, x) {
        const char *tn = json_string_value(x);
        int t = 0;
        while (t < SW_LORA_NTARGETS && (!tn || strcmp(tn, sw_lora_target_names[t]))) t++;
        if (t == SW_LORA_NTARGETS) {
            st = sw_err(ctx, SW_EUNSUPPORTED, "%s: target module '%s' is not a projection stepwise adapts", path,
                        tn ? tn : "?");
            goto done;
        }
        o.targets |= 1u << t;
    }
    v = json_object_get(cfg, "layers_to_transform");
    if (json_is_array(v) || json_is_integer(v)) {
        for (int64_t k = 0; k < m->cfg.n_layers && k < 4096; k++) layers[k] = false;
        if (json_is_integer(v)) {
            int64_t k = json_integer_value(v);
            if (k >= 0 && k < m->cfg.n_layers) layers[k] = true;
        }
        json_array_foreach(v, i, x) {
            int64_t k = json_integer_value(x);
            if (k < 0 || k >= m->cfg.n_layers) {
                st = sw_err(ctx, SW_EFORMAT, "%s: layers_to_transform names layer %lld of %lld", path, (long long)k,
                            (long long)m->cfg.n_layers);
                goto done;
            }
            layers[k] = true;
        }
        o.layers = layers;
    }
    o.init = SW_LORA_INIT_ZERO_A;
    o.name = name;
    sw_lora *l;
    if ((st = sw_lora_new(ctx, m, &o, &l))) goto done;
    sw_st *sf;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if ((st = sw_st_open(ctx, path, &sf))) {
        sw_lora_free(l);
        goto done;
    }
    for (int64_t li = 0; li < l->n_layers && !st; li++)
        for (int t = 0; t < SW_LORA_NTARGETS && !st; t++) {
            sw_lora_pair *p = &l->pairs[li][t];
            if (!p->A) continue;
            for (int k = 0; k < 2 && !st; k++) {
                char nm[128];
                peft_name(nm, sizeof nm, li, t, k ? 'B' : 'A');
                const sw_st_tensor *tt = sw_st_find(sf, nm);
                sw_tensor *dst = k ? p->B : p->A;
                if (!tt) {
                    st = sw_err(ctx, SW_EFORMAT, "%s: tensor %s is missing", path, nm);
                } else if (tt->ndim != 2 || tt->shape[0] != dst->shape[0] || tt->shape[1] != dst->shape[1]) {
                    st = sw_err(ctx, SW_EFORMAT, "%s: %s has shape (%lld, %lld), expected (%lld, %lld)", path, nm,
                                (long long)tt->shape[0], (long long)(tt->ndim > 1 ? tt->shape[1] : 0),
                                (long long)dst->shape[0], (long long)dst->shape[1]);
                } else if (tt->dtype != SW_F32 && tt->dtype != SW_F16 && tt->dtype != SW_BF16) {
                    st = sw_err(ctx, SW_EFORMAT, "%s: %s is %s, not a float type", path, nm, tt->dtype_name);
                } else {
                    sw_dequant_cpu(sw_tensor_data(dst), tt->data, tt->dtype, sw_tensor_numel(dst));
                }
            }
        }
    sw_st_close(sf);
    if (st) sw_lora_free(l);
    else *out = l;
done:
    json_decref(cfg);
    return st;
}
