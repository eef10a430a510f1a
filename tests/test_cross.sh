#!/bin/sh
# test_cross.sh - bert.h on other machines (issue 26), under qemu-user: the library's test programs
# built by the Debian cross compilers (static, -O2 -std=c11, no -march: the plain-C kernels) for
#   aarch64-linux-gnu  (64-bit ARM, little-endian; the NEON sgemm microkernel, and plain C too)
#   s390x-linux-gnu    (64-bit, BIG-endian; float math in double, FLT_EVAL_METHOD 1)
#   i686-linux-gnu     (32-bit size_t and pointers; x87 float math, FLT_EVAL_METHOD 2)
# run on the committed little-endian fixtures (PyTorch parity, kernels, autograd, NEZHA, safetensors,
# JSON, tokenizer); then tests/cross_ckpt.c's 3 training steps on each: the same losses as this host's
# (1e-6 relative), and a checkpoint + optimizer state written on each host read on this one (and this
# host's read there) with the same value bits. Speed under qemu means nothing and is not measured.
# Installs what it lacks with apt-get when it can (root); a target without its compiler or qemu is
# skipped with a line saying so. Ends with "N passed, N failed" (each test program counts as one).
# CROSS_TARGETS overrides the list (e.g. "s390x-linux-gnu").
B=${BUILD:-build}/cross
mkdir -p "$B" || exit 1
pass=0; fail=0; skip=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "  ok   $2"; else fail=$((fail + 1)); echo "  FAIL $2"; fi; }
. tests/cross_losses.sh   # same_losses
TARGETS=${CROSS_TARGETS:-"aarch64-linux-gnu s390x-linux-gnu i686-linux-gnu"}
TESTS="test_kernels test_autograd test_bert test_nezha test_safetensors test_io test_tokenizer"

qemu_of() { case $1 in aarch64*) echo qemu-aarch64 ;; s390x*) echo qemu-s390x ;; i686*) echo qemu-i386 ;; esac; }
pkgs_of() {
    case $1 in
        aarch64*) echo gcc-aarch64-linux-gnu libc6-dev-arm64-cross ;;
        s390x*) echo gcc-s390x-linux-gnu libc6-dev-s390x-cross ;;
        i686*) echo gcc-i686-linux-gnu libc6-dev-i386-cross ;;
    esac
}
need=""
for t in $TARGETS; do command -v "$t-gcc" >/dev/null 2>&1 || need="$need $(pkgs_of "$t")"; done
command -v qemu-s390x >/dev/null 2>&1 || need="$need qemu-user"
if [ -n "$need" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$need"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need; } > "$B/apt.log" 2>&1 || echo "  (apt-get failed: see $B/apt.log)"
fi

HOST="$B/cross_ckpt.host"
cc -O2 -std=c11 tests/cross_ckpt.c -o "$HOST" -lm || { echo "cannot build tests/cross_ckpt.c for this host"; exit 1; }
rm -rf "$B/ckpt.host" && mkdir -p "$B/ckpt.host"
"$HOST" write "$B/ckpt.host" > "$B/ckpt.host.out" || { echo "cross_ckpt failed on this host"; exit 1; }
host_losses=$(grep '^losses' "$B/ckpt.host.out")

for t in $TARGETS; do
    q=$(qemu_of "$t")
    if ! command -v "$t-gcc" >/dev/null 2>&1 || ! command -v "$q" >/dev/null 2>&1; then
        echo "SKIP $t: no $t-gcc or $q (apt-get install $(pkgs_of "$t") qemu-user)"; skip=$((skip + 1)); continue
    fi
    echo "== $t ($($t-gcc -dumpversion), $q)"
    for x in $TESTS; do
        bin="$B/$x.$t"
        if ! "$t-gcc" -O2 -std=c11 -static "tests/$x.c" -o "$bin" -lm > "$bin.build" 2>&1; then
            check 1 "$t: $x builds ($(head -c 300 "$bin.build"))"; continue
        fi
        "$q" "$bin" > "$bin.out" 2>&1; rc=$?
        summary=$(tail -1 "$bin.out")
        [ $rc = 0 ] && echo "$summary" | grep -q ' 0 failed$'
        check $? "$t: $x: $summary"
        [ $rc = 0 ] || grep -E '^  FAIL|^FAIL' "$bin.out" | head -5
    done
    if [ "$t" = aarch64-linux-gnu ]; then   # its default is the NEON microkernel: the plain-C one too
        bin="$B/test_kernels_c.$t"
        if "$t-gcc" -O2 -std=c11 -static -DBERT_NO_SIMD tests/test_kernels.c -o "$bin" -lm > "$bin.build" 2>&1; then
            "$q" "$bin" > "$bin.out" 2>&1; rc=$?
            [ $rc = 0 ] && tail -1 "$bin.out" | grep -q ' 0 failed$'
            check $? "$t: test_kernels with -DBERT_NO_SIMD (plain C): $(tail -1 "$bin.out")"
        else
            check 1 "$t: test_kernels -DBERT_NO_SIMD builds"
        fi
        grep -q 'microkernel under test: neon' "$B/test_kernels.$t.out"
        check $? "$t: the default build ran the NEON sgemm microkernel ($(grep -m1 'microkernel under test' "$B/test_kernels.$t.out"))"
    fi
    bin="$B/cross_ckpt.$t"
    rm -rf "$B/ckpt.$t" && mkdir -p "$B/ckpt.$t"
    if "$t-gcc" -O2 -std=c11 -static tests/cross_ckpt.c -o "$bin" -lm > "$bin.build" 2>&1 && "$q" "$bin" write "$B/ckpt.$t" > "$B/ckpt.$t.out" 2>&1; then
        losses=$(grep '^losses' "$B/ckpt.$t.out")
        same_losses "$host_losses" "$losses"
        check $? "$t: 3 training steps give this host's losses (1e-6 relative): $losses | host $host_losses"
        theirs=$(grep '^hash' "$B/ckpt.$t.out"); read_here=$("$HOST" read "$B/ckpt.$t" 2>&1)
        [ -n "$theirs" ] && [ "$theirs" = "$read_here" ]
        check $? "$t: its checkpoint and optimizer state read here carry its values bit for bit ($theirs | read here: $read_here)"
        ours=$(grep '^hash' "$B/ckpt.host.out"); read_there=$("$q" "$bin" read "$B/ckpt.host" 2>&1)
        [ "$ours" = "$read_there" ]
        check $? "$t: this host's checkpoint read there, bit for bit ($ours | read there: $read_there)"
    else
        check 1 "$t: cross_ckpt builds and runs ($(head -c 300 "$bin.build" "$B/ckpt.$t.out" 2>/dev/null))"
    fi
done
[ $skip -gt 0 ] && echo "($skip target(s) skipped)"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
