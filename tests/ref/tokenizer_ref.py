#!/usr/bin/python3
"""Reference for bert.h's tokenizer: google-research/bert's tokenization.py (master), written out
again with the standard library only (BasicTokenizer, then WordpieceTokenizer).

    /usr/bin/python3 tests/ref/tokenizer_ref.py VOCAB [--cased] [--basic] [--framed] [--hf] [INPUT]

Reads texts from INPUT (or stdin): one per line (split on b"\\n"), or with --framed as records
"<byte length>\\n<bytes>\\n" so that texts may hold newlines. Bytes are decoded as
bytes.decode("utf-8", "replace"): every invalid sequence becomes U+FFFD, which _clean_text then
drops. Prints one line per text: the token ids separated by spaces, or with --basic the words of
the basic tokenizer alone, joined by single spaces. --cased sets do_lower_case=False.
--hf follows Hugging Face transformers' BertTokenizer instead where the two differ (bert.h's
BERT_TOKENIZE_HF), as its tokenization_bert.py / tokenization_utils.py define it:
                      _is_control          max_input_chars_per_word
    tokenization.py   category Cc or Cf    200   (master: Cc/Cf since 2019-03-28, 200 since
    BertTokenizer     category C*          100    2018-11-23; the first release's C* and 100 stayed
                                                  in BertTokenizer)
so under --hf unassigned (Cn), private-use (Co) and surrogate (Cs) characters are dropped with the
control characters, and words of 101-200 characters become [UNK]. (\t \n \r are whitespace in both.)
And with do_lower_case, BertTokenizer.tokenize (PreTrainedTokenizer.tokenize) first lowercases the
text one character at a time (re.sub of "(.+?)" with .lower(), special tokens aside), so str.lower()'s
Final_Sigma never applies: a final capital sigma becomes U+03C3, not U+03C2.
The vocab is read as load_vocab does: one token per line (split on "\\n"), str.strip()ped, id =
line number - 1.
"""
import sys
import unicodedata


def load_vocab(path):
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()                          # the newline at the end of the last line
    vocab = {}
    for index, line in enumerate(lines):
        vocab[line.strip()] = index
    return vocab


def whitespace_tokenize(text):
    text = text.strip()
    return text.split() if text else []


def is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def is_control(ch, hf=False):
    if ch in ("\t", "\n", "\r"):
        return False
    cat = unicodedata.category(ch)
    return cat.startswith("C") if hf else cat in ("Cc", "Cf")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or
            0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or
            0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def clean_text(text, hf=False):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch, hf):
            continue
        out.append(" " if is_whitespace(ch) else ch)
    return "".join(out)


def tokenize_chinese_chars(text):
    out = []
    for ch in text:
        if is_chinese_char(ord(ch)):
            out.extend((" ", ch, " "))
        else:
            out.append(ch)
    return "".join(out)


def strip_accents(text):
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def split_on_punc(text):
    words, start_new = [], True
    for ch in text:
        if is_punctuation(ch):
            words.append([ch])
            start_new = True
        else:
            if start_new:
                words.append([])
            start_new = False
            words[-1].append(ch)
    return ["".join(w) for w in words]


def basic_tokenize(text, do_lower_case, hf=False):
    if hf and do_lower_case:   # PreTrainedTokenizer.tokenize's lowercasing, character by character
        text = "".join(ch.lower() for ch in text)
    text = tokenize_chinese_chars(clean_text(text, hf))
    split = []
    for token in whitespace_tokenize(text):
        if do_lower_case:
            token = strip_accents(token.lower())
        split.extend(split_on_punc(token))
    return whitespace_tokenize(" ".join(split))


MAX_CHARS, MAX_CHARS_HF = 200, 100   # max_input_chars_per_word: tokenization.py, BertTokenizer


def wordpiece(word, vocab, max_chars=MAX_CHARS):
    chars = list(word)
    if len(chars) > max_chars:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(chars):
        end, found = len(chars), None
        while start < end:
            sub = "".join(chars[start:end])
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def read_texts(data, framed):
    if not framed:
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return lines
    texts, i = [], 0
    while i < len(data):
        nl = data.index(b"\n", i)
        n = int(data[i:nl])
        texts.append(data[nl + 1:nl + 1 + n])
        assert data[nl + 1 + n:nl + 2 + n] == b"\n", "bad framing"
        i = nl + 2 + n
    return texts


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    if not 1 <= len(args) <= 2 or flags - {"--cased", "--basic", "--framed", "--hf"}:
        sys.exit(__doc__)
    vocab = load_vocab(args[0])
    data = open(args[1], "rb").read() if len(args) == 2 else sys.stdin.buffer.read()
    lower, hf = "--cased" not in flags, "--hf" in flags
    max_chars = MAX_CHARS_HF if hf else MAX_CHARS
    out = []
    for raw in read_texts(data, "--framed" in flags):
        words = basic_tokenize(raw.decode("utf-8", "replace"), lower, hf)
        if "--basic" in flags:
            out.append(" ".join(words))
        else:
            out.append(" ".join(str(vocab[p]) for w in words for p in wordpiece(w, vocab, max_chars)))
    sys.stdout.buffer.write(("\n".join(out) + ("\n" if out else "")).encode("utf-8", "surrogatepass"))


if __name__ == "__main__":
    main()
