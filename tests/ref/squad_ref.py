#!/usr/bin/python3
"""Reference for bert.h's span head (bert_span_forward, examples/squad.c): HF BertForQuestionAnswering's
qa_outputs on top of bert_ref.forward's encoder, in float64 with torch autograd.

On the tiny config of tests/ref/tiny.safetensors (V 112, C 64, L 2, NH 4) with a random qa_outputs
(2, C) and bias, 3 windows of T = 16 (segments 0/1, one padded), gold start/end positions (one
pair at [CLS], 0), dropout 0.1 on the encoder with bert.h's counter RNG (seed 1234, step 0, the
encoder's sites; the head has no dropout, as HF and run_squad): logits (B,T,2) -> start/end, loss =
(CE(start) + CE(end)) / 2 over all T positions. Writes tests/ref/squad_ref.safetensors: the
inputs, qa_outputs.*, span_logits (B,2,T) (row 2b start, 2b+1 end), loss, every parameter's
gradient (grad.<name>; zeros for the pooler and pretraining heads), and eval.span_logits with
dropout off.
    /usr/bin/python3 tests/ref/squad_ref.py [--out tests/ref]
"""
import argparse, os, sys
import numpy as np
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref

B, T, SEED, PDROP = 3, 16, 1234, 0.1


def inputs():
    rs = np.random.RandomState(7)
    ids = rs.randint(5, bert_ref.V, size=(B, T))
    ids[:, 0] = 2                                    # a [CLS]-like id
    tt = np.zeros((B, T)); tt[:, 6:] = 1
    am = np.ones((B, T)); am[2, 11:] = 0; tt[2, 11:] = 0; ids[2, 11:] = 0
    start = np.array([7, 0, 9]); end = np.array([9, 0, 10])
    i32 = lambda a: np.asarray(a).astype(np.int32)
    return [("input_ids", i32(ids)), ("token_type_ids", i32(tt)), ("attention_mask", i32(am)),
            ("start_positions", i32(start)), ("end_positions", i32(end))]


def head(W, inp, cfg, names):
    fwd = {"input_ids": inp["input_ids"], "token_type_ids": inp["token_type_ids"],
           "attention_mask": inp["attention_mask"], "masked_lm_positions": torch.zeros(B, 1, dtype=torch.long),
           "masked_lm_ids": torch.zeros(B, 1, dtype=torch.long), "next_sentence_label": torch.zeros(B, dtype=torch.long)}
    o = bert_ref.forward(W, fwd, "gelu", cfg)
    x = o["layer.%d" % (bert_ref.L - 1)]
    logits = x @ W["qa_outputs.weight"].T + W["qa_outputs.bias"]           # (B,T,2)
    s, e = logits[..., 0], logits[..., 1]
    loss = (F.cross_entropy(s, inp["start_positions"].long()) + F.cross_entropy(e, inp["end_positions"].long())) / 2
    return logits.transpose(1, 2).contiguous(), loss                        # (B,2,T)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here)
    args = ap.parse_args()
    torch.set_num_threads(1)
    W32, _ = bert_ref.st_read(os.path.join(here, "tiny.safetensors"))
    W32 = dict(W32)
    rs = np.random.RandomState(11)
    W32["qa_outputs.weight"] = (0.02 * rs.standard_normal((2, bert_ref.C))).astype(np.float32)
    W32["qa_outputs.bias"] = (0.02 * rs.standard_normal(2)).astype(np.float32)
    names = [n for n, _ in bert_ref.param_table()] + ["qa_outputs.weight", "qa_outputs.bias"]
    inp_np = inputs()
    inp = {n: torch.from_numpy(a.astype(np.int64)) for n, a in inp_np}
    W = {n: torch.from_numpy(np.asarray(W32[n], dtype=np.float64)).requires_grad_(True) for n in names}
    logits, loss = head(W, inp, {"p": PDROP, "seed": SEED, "step": 0}, names)
    loss.backward()
    f32 = lambda t: t.detach().numpy().astype(np.float32)
    grads = [("grad." + n, f32(W[n].grad) if W[n].grad is not None else np.zeros(W[n].shape, np.float32)) for n in names]
    with torch.no_grad():
        eval_logits, eval_loss = head(W, inp, {"p": 0.0, "seed": SEED, "step": 0}, names)
    print("loss (dropout %.1f) %.10f | eval loss %.10f" % (PDROP, loss.item(), eval_loss.item()))
    tens = inp_np + [("qa_outputs.weight", W32["qa_outputs.weight"]), ("qa_outputs.bias", W32["qa_outputs.bias"]),
                     ("span_logits", f32(logits)), ("loss", f32(loss).reshape(1)), ("eval.span_logits", f32(eval_logits)),
                     ("eval.loss", f32(eval_loss).reshape(1))] + grads
    bert_ref.save(os.path.join(args.out, "squad_ref.safetensors"), tens,
                  {"weights": "tiny.safetensors", "dropout": str(PDROP), "seed": str(SEED), "step": "0", "hidden_act": "gelu"})


if __name__ == "__main__":
    main()
