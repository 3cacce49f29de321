/* train.h — one forward and backward pass for LoRA training (CPU, float32).
 *
 * A batch row holds one or several samples back to back ("packing"): each
 * sample attends only to itself (block-diagonal causal attention), its
 * positions restart at 0, and its last token predicts nothing. Labels are
 * given unshifted, as in HF: labels[t] is the token at t, or -100 where
 * that token is not trained; the logits at t are scored against labels[t+1]
 * when t+1 is in the same sample.
 *
 * The loss is the sum of cross-entropies over trained tokens; gradients of
 * loss_scale * loss are ADDED to the active adapter's gradient tensors, so
 * a caller accumulates micro-batches and chooses loss_scale = 1 / (trained
 * tokens of the whole step): 4 x 2 is then exactly the same step as 8 x 1.
 * The frozen base gets activation gradients only. Logits are never held
 * for the whole batch: the head and the loss run over chunks of trained rows.
 */
#ifndef SW_TRAIN_H
#define SW_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

typedef struct sw_seq_batch {
    const int32_t *ids;     /* T */
    const int32_t *labels;  /* T, -100 = not trained; NULL = every next token */
    const int32_t *pos;     /* T; NULL = 0.. within each sample */
    int64_t T;
    const int64_t *starts;  /* n_seqs + 1 offsets; NULL = one sample of T tokens */
    int n_seqs;
} sw_seq_batch;

typedef struct sw_train_opts {
    bool backward;          /* false: loss (and logits) only */
    bool checkpointing;     /* keep only each layer's input; recompute in backward */
    bool offload;           /* device engine, with checkpointing: keep those inputs in pinned host memory */
    float loss_scale;       /* gradients are of loss_scale * sum of cross-entropies */
    float *logits;          /* optional (T, V) output of every position (tests) */
    uint64_t dropout_call;  /* device engine: the LoRA dropout stream of this batch (the CPU path reads
                               the adapter's dropout_calls itself) */
    /* Device engine only: called after each layer's backward (layers L-1 down
     * to 0) once that layer's adapter gradients are final in this call, with
     * the layer's work queued on the device. Data-parallel training starts
     * reducing those gradients there (core/dist_engine.c). A call with a hook
     * runs without CUDA graphs. */
    sw_status (*layer_done)(void *arg, int64_t layer);
    void *layer_arg;
} sw_train_opts;

/* Checks a batch against cfg (sample bounds, ids and labels in the
 * vocabulary); *starts / *n_seqs get the samples (one[2] backs a batch given
 * as one sample), *maxlen the longest. Shared by the CPU and device paths. */
sw_status sw_seq_batch_check(sw_ctx *ctx, const sw_model_config *cfg, const sw_seq_batch *b, int64_t one[2],
                             const int64_t **starts, int *n_seqs, int64_t *maxlen);
/* Positions (restarting per sample unless given) and next-token targets
 * (-1 where nothing is trained) of each of the batch's T tokens. */
void      sw_seq_batch_targets(const sw_seq_batch *b, const int64_t *starts, int n_seqs, int32_t *pos, int32_t *tgt);

sw_status sw_train_batch(sw_ctx *ctx, sw_model *m, const sw_seq_batch *b, const sw_train_opts *o, double *loss_sum,
                         int64_t *n_trained);

#endif
