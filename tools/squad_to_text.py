#!/usr/bin/python3
"""squad_to_text.py SQUAD.json > OUT.txt - SQuAD contexts as pretraining text.

Writes each paragraph's context as one document (a blank line between documents), one sentence
per line, split after '.', '!' or '?' followed by a space and an upper-case letter or a digit
(a heuristic; pretraining only needs roughly sentence-sized lines). Standard library only.
"""
import json, re, sys

def sentences(text):
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])", text) if s.strip()]

def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    data = json.load(open(sys.argv[1], encoding="utf-8"))["data"]
    out = sys.stdout
    for article in data:
        for para in article["paragraphs"]:
            out.write("\n".join(sentences(para["context"])) + "\n\n")

if __name__ == "__main__":
    main()
