"""The one name table shared by every converter.

bert.h's names are HF `BertForPreTraining`'s (the BERT_PARAMS_* table in bert.h, same order).
Each row below gives, for one bert.h tensor, its Google TF variable and its MindSpore model-zoo
parameter, and whether the TF array is a `tf.layers.dense` kernel stored [in, out] (transposed to
bert.h's (out, in)). MindSpore's nn.Dense already stores (out, in), and TF's
cls/seq_relationship/output_weights is already [2, H] (used with transpose_b=True).

Sources: ../shared/reference/{tf,hf,mindspore}_bert_names.md (google-research/bert modeling.py,
transformers' load_tf_weights_in_bert, mindspore models official/nlp/Bert ms2tf_config.py).

NEZHA (relative positions; bert.h's config "use_relative_position"): no absolute position table, and
in MindSpore's flavour one learned (2K+1, head size) table per layer: BertAttention's
RelaPosEmbeddingsGenerator `_generate_relative_positions_embeddings.embeddings_table`
(mindspore-ai/models official/nlp/Bert/src/bert_model.py). Huawei's NEZHA-TensorFlow uses Google's
names and a fixed sinusoid table that is no variable, so that row has no TF name. rows() and shapes()
take the flavour (None for BERT, "huawei", "mindspore") and list what such a model holds."""
import re

# (bert.h name relative to its scope, TF name, MindSpore name relative to BertModel/BertPreTraining,
#  TF kernel transposed)
EMBEDDINGS = [
    ("embeddings.word_embeddings.weight", "embeddings/word_embeddings",
     "bert_embedding_lookup.embedding_table", False),
    ("embeddings.position_embeddings.weight", "embeddings/position_embeddings",
     "bert_embedding_postprocessor.full_position_embedding.embedding_table", False),
    ("embeddings.token_type_embeddings.weight", "embeddings/token_type_embeddings",
     "bert_embedding_postprocessor.token_type_embedding.embedding_table", False),
    ("embeddings.LayerNorm.weight", "embeddings/LayerNorm/gamma", "bert_embedding_postprocessor.layernorm.gamma", False),
    ("embeddings.LayerNorm.bias", "embeddings/LayerNorm/beta", "bert_embedding_postprocessor.layernorm.beta", False),
]
# per layer: bert.encoder.layer.{i}.X / bert/encoder/layer_{i}/X / bert_encoder.layers.{i}.X
# (order = bert.h's flat-buffer order: q, k, v weights, then the three biases)
LAYER = [
    ("attention.self.query.weight", "attention/self/query/kernel", "attention.attention.query_layer.weight", True),
    ("attention.self.key.weight", "attention/self/key/kernel", "attention.attention.key_layer.weight", True),
    ("attention.self.value.weight", "attention/self/value/kernel", "attention.attention.value_layer.weight", True),
    ("attention.self.query.bias", "attention/self/query/bias", "attention.attention.query_layer.bias", False),
    ("attention.self.key.bias", "attention/self/key/bias", "attention.attention.key_layer.bias", False),
    ("attention.self.value.bias", "attention/self/value/bias", "attention.attention.value_layer.bias", False),
    # NEZHA, MindSpore's flavour only (bert.h's rel_w row): no TF variable (Huawei's table is fixed)
    ("attention.self.relative_positions_embeddings.weight", None,
     "attention.attention._generate_relative_positions_embeddings.embeddings_table", False),
    ("attention.output.dense.weight", "attention/output/dense/kernel", "attention.output.dense.weight", True),
    ("attention.output.dense.bias", "attention/output/dense/bias", "attention.output.dense.bias", False),
    ("attention.output.LayerNorm.weight", "attention/output/LayerNorm/gamma", "attention.output.layernorm.gamma", False),
    ("attention.output.LayerNorm.bias", "attention/output/LayerNorm/beta", "attention.output.layernorm.beta", False),
    ("intermediate.dense.weight", "intermediate/dense/kernel", "intermediate.weight", True),
    ("intermediate.dense.bias", "intermediate/dense/bias", "intermediate.bias", False),
    ("output.dense.weight", "output/dense/kernel", "output.dense.weight", True),
    ("output.dense.bias", "output/dense/bias", "output.dense.bias", False),
    ("output.LayerNorm.weight", "output/LayerNorm/gamma", "output.layernorm.gamma", False),
    ("output.LayerNorm.bias", "output/LayerNorm/beta", "output.layernorm.beta", False),
]
# full names (bert.h, TF, MindSpore inside BertModel or BertPreTraining)
POOLER = [
    ("bert.pooler.dense.weight", "bert/pooler/dense/kernel", "dense.weight", True),
    ("bert.pooler.dense.bias", "bert/pooler/dense/bias", "dense.bias", False),
]
HEADS = [
    ("cls.predictions.transform.dense.weight", "cls/predictions/transform/dense/kernel", "cls1.dense.weight", True),
    ("cls.predictions.transform.dense.bias", "cls/predictions/transform/dense/bias", "cls1.dense.bias", False),
    ("cls.predictions.transform.LayerNorm.weight", "cls/predictions/transform/LayerNorm/gamma", "cls1.layernorm.gamma", False),
    ("cls.predictions.transform.LayerNorm.bias", "cls/predictions/transform/LayerNorm/beta", "cls1.layernorm.beta", False),
    ("cls.predictions.bias", "cls/predictions/output_bias", "cls1.output_bias", False),
    ("cls.seq_relationship.weight", "cls/seq_relationship/output_weights", "cls2.dense.weight", False),
    ("cls.seq_relationship.bias", "cls/seq_relationship/output_bias", "cls2.dense.bias", False),
]
# Fine-tuning heads: bert.h does not load them, the converters carry them under HF's names so
# the examples (or the user) can. TF: run_classifier.py / run_squad.py; MindSpore: BertCLS/BertNER
# `dense_1`, BertSquad `dense1`, the CRF's `transitions` (HF has no CRF: "crf.transitions").
FINETUNE = [
    ("classifier.weight", "output_weights", "dense_1.weight", False),
    ("classifier.bias", "output_bias", "dense_1.bias", False),
    ("qa_outputs.weight", "cls/squad/output_weights", "dense1.weight", False),
    ("qa_outputs.bias", "cls/squad/output_bias", "dense1.bias", False),
    ("crf.transitions", None, "transitions", False),
]
HEAD_NAMES = [r[0] for r in HEADS]
POSITION = "bert.embeddings.position_embeddings.weight"   # absent from a NEZHA model
RELATIVE = "attention.self.relative_positions_embeddings.weight"   # per layer, MindSpore's NEZHA only


def flavour(cfg):
    """None for a BERT config dict, else its relative_position_flavour ("huawei" unless it says otherwise)."""
    if not cfg.get("use_relative_position"):
        return None
    return cfg.get("relative_position_flavour", "huawei")


class Row:
    __slots__ = ("hf", "tf", "ms", "transpose", "layer")

    def __init__(self, hf, tf, ms, transpose, layer=-1):
        self.hf, self.tf, self.ms, self.transpose, self.layer = hf, tf, ms, transpose, layer


def _present(hf, rel):
    """Whether a row of the tables exists in a model of this flavour (bert.h's rows of size 0 do not)."""
    if hf == POSITION:
        return rel is None
    if hf.endswith(RELATIVE):
        return rel == "mindspore"
    return True


def saved_name(name, cfg):
    """The name bert.h itself gives a tensor of a model with this config (bert_model_save's, and the
    one bert_optim_load looks up as "m.<name>"): a NEZHA model's encoder is "nezha.*", transformers'
    NezhaModel prefix; BERT names are unchanged. (bert_model_load takes "bert.*" for either.)"""
    return "nezha." + name[len("bert."):] if flavour(cfg) and name.startswith("bert.") else name


def spellings(name):
    """The name and its other encoder prefix ("bert." <-> "nezha."), which bert.h loads as the same tensor."""
    for a, b in (("bert.", "nezha."), ("nezha.", "bert.")):
        if name.startswith(a):
            return name, b + name[len(a):]
    return (name,)


def rows(num_layers, rel=None):
    """Every bert.h tensor, in bert.h's flat-buffer order (BERT_PARAMS_EMB, _LAYER x L, _HEAD), of a
    BERT (rel None) or NEZHA model (rel "huawei": no position table; "mindspore": also the learned
    relative table of every layer). The names are bert.h's "bert." spelling in every flavour."""
    out = [Row("bert." + h, "bert/" + t, m, tr) for h, t, m, tr in EMBEDDINGS]
    for i in range(num_layers):
        out += [Row(f"bert.encoder.layer.{i}.{h}", t and f"bert/encoder/layer_{i}/{t}", f"bert_encoder.layers.{i}.{m}", tr, i)
                for h, t, m, tr in LAYER]
    out += [Row(*r) for r in POOLER + HEADS]
    return [r for r in out if _present(r.hf, rel)]


def shapes(cfg):
    """{bert.h name: shape} for a config dict, as bert.h's parameter table defines them (the flavour
    from the config: see flavour(); a learned relative table is (2K+1, hidden/heads))."""
    V, C, P = cfg["vocab_size"], cfg["hidden_size"], cfg["max_position_embeddings"]
    TV, F, L = cfg["type_vocab_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    rel = flavour(cfg)
    RK = 2 * cfg.get("max_relative_position", 64) + 1 if rel else 0
    emb = {"word_embeddings.weight": (V, C), "position_embeddings.weight": (P, C),
           "token_type_embeddings.weight": (TV, C)}
    layer = {"attention.self.query.weight": (C, C), "attention.self.key.weight": (C, C),
             "attention.self.value.weight": (C, C), RELATIVE: (RK, C // cfg["num_attention_heads"]),
             "attention.output.dense.weight": (C, C), "intermediate.dense.weight": (F, C),
             "intermediate.dense.bias": (F,), "output.dense.weight": (C, F)}
    head = {"cls.predictions.transform.dense.weight": (C, C), "cls.predictions.bias": (V,),
            "cls.seq_relationship.weight": (2, C), "cls.seq_relationship.bias": (2,), "bert.pooler.dense.weight": (C, C)}
    out = {}
    for r in rows(L, rel):
        if r.layer >= 0:
            s = layer.get(r.hf.split(".", 4)[4])
        elif r.hf.startswith("bert.embeddings."):
            s = emb.get(r.hf[len("bert.embeddings."):])
        else:
            s = head.get(r.hf)
        out[r.hf] = s or (C,)   # every other tensor: a LayerNorm weight/bias or bias of width C
    return out


# --- TF ----------------------------------------------------------------------------------------

_TF_LAYER = re.compile(r"^bert/encoder/layer_(\d+)/(.+)$")
TF_SLOTS = ("adam_m", "adam_v")   # AdamWeightDecayOptimizer's slots: X/adam_m, X/adam_v
TF_STEP = "global_step"


def tf_to_hf(tf_name):
    """bert.h name and transpose flag for a TF model variable, or None if it is not one."""
    m = _TF_LAYER.match(tf_name)
    if m:
        for h, t, _, tr in LAYER:
            if t is not None and m.group(2) == t:
                return f"bert.encoder.layer.{int(m.group(1))}.{h}", tr
        return None
    for h, t, _, tr in EMBEDDINGS:
        if tf_name == "bert/" + t:
            return "bert." + h, tr
    for h, t, _, tr in POOLER + HEADS + FINETUNE:
        if t is not None and tf_name == t:
            return h, tr
    return None


def tf_split_slot(tf_name):
    """('bert/x', 'adam_m') for 'bert/x/adam_m', else (tf_name, None)."""
    base, _, last = tf_name.rpartition("/")
    return (base, last) if base and last in TF_SLOTS else (tf_name, None)


def hf_to_tf(hf_name):
    """TF variable and transpose flag for a bert.h / HF name, or None."""
    m = re.match(r"^bert\.encoder\.layer\.(\d+)\.(.+)$", hf_name)
    if m:
        for h, t, _, tr in LAYER:
            if m.group(2) == h:
                return (f"bert/encoder/layer_{int(m.group(1))}/{t}", tr) if t else None
        return None
    for h, t, _, tr in EMBEDDINGS:
        if hf_name == "bert." + h:
            return "bert/" + t, tr
    for h, t, _, tr in POOLER + HEADS + FINETUNE:
        if hf_name == h and t is not None:
            return t, tr
    return None


# --- MindSpore ---------------------------------------------------------------------------------

MS_SLOT_PREFIXES = ("adam_m.", "adam_v.", "lamb_m.", "lamb_v.", "moments.")
# scalars of optimizers, loss scaling, accumulation and BertSquad's counters: training state only
MS_STATE_SCALARS = ("global_step", "learning_rate", "momentum", "loss_scale", "local_step", "accu_overflow",
                    "accu_loss", "total_num", "start_num", "end_num", "beta1_power", "beta2_power", "current_iterator_step",
                    "last_overflow_iterator_step", "epoch_num", "step_num")
_MS_LAYER = re.compile(r"^bert_encoder\.layers\.(\d+)\.(.+)$")


def ms_to_hf(ms_name):
    """bert.h name and transpose flag (always False: nn.Dense is (out, in)) for a MindSpore
    parameter, or None. The wrappers prefix `bert.` once or twice (BertNetworkWithLoss ->
    BertPreTraining -> BertModel; fine-tune cell -> BertModel), so leading `bert.`s are peeled off
    one by one until a name matches; the CRF sits under `loss.` (BertNER)."""
    name = ms_name
    while True:
        hit = _ms_match(name)
        if hit:
            return hit, False
        if not name.startswith("bert."):
            break
        name = name[len("bert."):]
    if ms_name.endswith(".transitions") or ms_name == "transitions":
        return "crf.transitions", False
    return None


def _ms_match(name):
    m = _MS_LAYER.match(name)
    if m:
        for h, _, ms, _ in LAYER:
            if m.group(2) == ms:
                return f"bert.encoder.layer.{int(m.group(1))}.{h}"
        return None
    for h, _, ms, _ in EMBEDDINGS:
        if name == ms:
            return "bert." + h
    for h, _, ms, _ in POOLER + HEADS + FINETUNE[:4]:
        if name == ms:
            return h
    return None


def ms_split_slot(ms_name):
    """('lamb_m', 'bert.bert....') for an optimizer slot, else (None, ms_name)."""
    for p in MS_SLOT_PREFIXES:
        if ms_name.startswith(p):
            return p[:-1], ms_name[len(p):]
    return None, ms_name


# --- HF / PyTorch ------------------------------------------------------------------------------

HF_DROPPED = ("bert.embeddings.position_ids", "cls.predictions.decoder.weight")   # buffer; tied to word_embeddings
_HF_BACKBONE = ("embeddings.", "encoder.", "pooler.")
# transformers' NezhaModel: a persistent buffer, the fixed table gathered to (P, P, head size)
_HF_NEZHA_BUFFER = re.compile(r"bert\.encoder\.layer\.\d+\.attention\.self\.relative_positions_encoding\.positions_encoding")


def hf_dropped(name):
    """True for a canonical key that is no weight: position_ids, the tied decoder, NEZHA's buffer."""
    return name in HF_DROPPED or _HF_NEZHA_BUFFER.fullmatch(name) is not None


def hf_canonical(name):
    """bert.h's spelling of an HF / PyTorch BERT key: `bert.` added to BertModel keys, NEZHA's
    `nezha.` (transformers' NezhaModel prefix, which bert.h also saves NEZHA models under) made
    `bert.`, old LayerNorm `gamma`/`beta` to `weight`/`bias`, `module.` (DataParallel) removed, and
    the MLM bias stored as `cls.predictions.decoder.bias` folded into `cls.predictions.bias`."""
    if name.startswith("module."):
        name = name[len("module."):]
    if name.startswith("nezha."):
        name = "bert." + name[len("nezha."):]
    if name.startswith(_HF_BACKBONE):
        name = "bert." + name
    name = re.sub(r"\.LayerNorm\.gamma$", ".LayerNorm.weight", name)
    name = re.sub(r"\.LayerNorm\.beta$", ".LayerNorm.bias", name)
    if name == "cls.predictions.decoder.bias":
        name = "cls.predictions.bias"
    return name


def known_hf(name, num_layers):
    """True for bert.h tensors and the carried fine-tuning heads. Decided from the name itself:
    no table of 16 x num_layers names is built or kept between files."""
    m = _HF_LAYER.fullmatch(name)
    if m:
        return int(m.group(1)) < num_layers and m.group(2) in _HF_LAYER_NAMES
    return name in _HF_STATIC


# the spelling rows() gives: decimal index without leading zeros, ASCII digits only, no trailing newline
_HF_LAYER = re.compile(r"bert\.encoder\.layer\.(0|[1-9][0-9]{0,8})\.(.+)", re.ASCII | re.DOTALL)
_HF_LAYER_NAMES = frozenset(h for h, _, _, _ in LAYER)
_HF_STATIC = frozenset(["bert." + h for h, _, _, _ in EMBEDDINGS] + [r[0] for r in POOLER + HEADS + FINETUNE])
