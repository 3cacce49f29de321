/* adapter.h — reading and writing LoRA adapters in PEFT's directory format
 * (adapter_config.json + adapter_model.safetensors), which PEFT's
 * PeftModel.from_pretrained loads. */
#ifndef SW_ADAPTER_H
#define SW_ADAPTER_H

#include "lora.h"
#include "model.h"

/* base_model is written as base_model_name_or_path (may be NULL). */
sw_status sw_adapter_save(sw_ctx *ctx, const sw_lora *l, const char *dir, const char *base_model);
/* A new adapter for m with the directory's configuration and weights. */
sw_status sw_adapter_load(sw_ctx *ctx, const sw_model *m, const char *dir, const char *name, sw_lora **out);

#endif
