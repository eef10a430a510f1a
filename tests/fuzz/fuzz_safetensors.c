// fuzz_safetensors.c - a safetensors file of arbitrary bytes: open it, read every tensor of a sane
// size as F32 and I32, look up metadata; then try it as a model checkpoint with a fixed tiny config.
#include "fuzz_common.h"

static bert_model *tiny;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path(data, size, ".bin");
    bert_st st;
    if (bert_st_open(&st, path) == BERT_OK) {
        for (int i = 0; i < st.count; i++) {
            const bert_st_tensor *t = &st.tensors[i];
            if (t->numel > (1u << 20)) continue;
            float *f = (float *)malloc((t->numel + 1) * sizeof(float));
            int32_t *k = (int32_t *)malloc((t->numel + 1) * sizeof(int32_t));
            bert_st_read_f32(&st, t->name, f, t->shape, t->ndim);
            bert_st_read_i32(&st, t->name, k, t->shape, t->ndim);
            free(f); free(k);
        }
        (void)bert_st_meta(&st, "config");
        bert_st_close(&st);
    }
    if (!tiny) {
        bert_config c = bert_config_default();
        c.vocab_size = 8; c.hidden_size = 4; c.num_hidden_layers = 1; c.num_attention_heads = 1;
        c.intermediate_size = 4; c.max_position_embeddings = 4;
        tiny = bert_model_create(&c, 1);
    }
    (void)bert_model_load_weights(tiny, path);
    return 0;
}
