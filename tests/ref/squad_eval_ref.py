#!/usr/bin/python3
"""The official SQuAD v1.1 evaluation (evaluate-v1.1.py) written again, standard library only.

    /usr/bin/python3 tests/ref/squad_eval_ref.py DATA.json PREDICTIONS.json [--details OUT.jsonl]

prints {"exact_match": ..., "f1": ...} as the official script does. Answers are normalised by
lower-casing, dropping ASCII punctuation (string.punctuation), dropping the articles a/an/the
(the regex \\b(a|an|the)\\b) and collapsing whitespace (str.split); exact match and token F1 (bag
of words) are maxed over the gold answers of each question and averaged x100 over all questions,
an unanswered question counting 0 (with a message on stderr). --details also writes one line per
answered question: {"id", "exact_match", "f1"} (examples/squad.c's --eval_details, for tests).
"""
import collections, json, re, string, sys

PUNCT = set(string.punctuation)


def normalize_answer(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction, ground_truth):
    pred = normalize_answer(prediction).split()
    gold = normalize_answer(ground_truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred)
    recall = 1.0 * num_same / len(gold)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def best_over(metric, prediction, ground_truths):
    return max(metric(prediction, g) for g in ground_truths)


def evaluate(dataset, predictions, details=None):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    print("Unanswered question " + qa["id"] + " will receive score 0.", file=sys.stderr)
                    continue
                golds = [a["text"] for a in qa["answers"]]
                pred = predictions[qa["id"]]
                em = best_over(exact_match_score, pred, golds)
                f = best_over(f1_score, pred, golds)
                exact_match += em
                f1 += f
                if details is not None:
                    details.append({"id": qa["id"], "exact_match": int(em), "f1": float(f)})
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


def main():
    args = sys.argv[1:]
    out = None
    if "--details" in args:
        i = args.index("--details")
        out = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    with open(args[0], encoding="utf-8") as f:
        data = json.load(f)
    if data.get("version") != "1.1":
        print("Evaluation expects v-1.1, but got dataset with v-" + str(data.get("version")), file=sys.stderr)
    with open(args[1], encoding="utf-8") as f:
        predictions = json.load(f)
    details = [] if out else None
    print(json.dumps(evaluate(data["data"], predictions, details)))
    if out:
        with open(out, "w") as f:
            for d in details:
                f.write(json.dumps(d) + "\n")


if __name__ == "__main__":
    main()
