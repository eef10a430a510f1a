# tests/cross_losses.sh - sourced by test_cross.sh and test_windows.sh: same_losses A B succeeds when two
# cross_ckpt "losses L1 L2 L3" lines (another platform's and this host's) agree to 1e-6 relative
same_losses() {
    awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); m = split(b, y, " "); if (n != m || n != 4) exit 1;
        for (i = 2; i <= n; i++) { d = x[i] - y[i]; if (d < 0) d = -d; if (d > 1e-6 * (x[i] < 0 ? -x[i] : x[i])) exit 1 } }'
}
