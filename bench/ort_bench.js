#!/usr/bin/env node
// bench/ort_bench.js - BERT inference in ONNX Runtime (npm onnxruntime-node, CPU), the third column
// of bench/run.sh next to bert.h and PyTorch.
//
//   node bench/ort_bench.js --ort DIR --model FILE.onnx [--ref FILE.ref.json] [--precision fp32|int8]
//        [--batch 1,8] [--seq 128] [--warmup 2] [--iters 10] [--max-time S] [--threads N] [--tol X]
//
// --ort      the node_modules folder that holds onnxruntime-node (or the package folder itself)
// --model    the ONNX file of bench/ort_export.py (fp32) or bench/ort_quantize.py (int8)
// --ref      torch's outputs for fixed inputs, written by ort_export.py (default: the model's name
//            with .ref.json, or for *_int8.onnx the fp32 model's); the session runs them first and
//            prints the max abs differences; over --tol (fp32 1e-4, int8 0.15) it exits 1.
// --precision  only a label for the JSON (fp32 or int8)
// --max-time S stop timing a batch once S seconds are spent and >= 5 runs are done (as bench_bert)
// --opt      graphOptimizationLevel (default 'all'; 'disabled', 'basic', 'extended' to compare)
//
// Session: intraOpNumThreads = --threads (default: CPUs), interOpNumThreads 1, executionMode
// 'sequential', graphOptimizationLevel 'all'. Inputs as bench_bert's and torch_bert.py's: random
// token ids, token types half 0 / half 1, attention mask all ones; int64 [B, T]. One timed call =
// one session.run fetching both outputs (sequence output and pooled output), as torch's forward.
// Prints human lines and one JSON line per batch (starting with '{'), the fields of bench_bert's.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');

const CONFIGS = { base: { hidden: 768, layers: 12, heads: 12, ffn: 3072 }, large: { hidden: 1024, layers: 24, heads: 16, ffn: 4096 } };
const VOCAB = 30522;

function usage(msg) {
    if (msg) console.error('ort_bench.js: ' + msg);
    console.error(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 21).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
    process.exit(msg ? 2 : 0);
}

function parseArgs(argv) {
    const o = { ort: null, model: null, ref: null, precision: 'fp32', batch: [1, 8], seq: 128, warmup: 2, iters: 10,
                maxTime: 0, threads: os.cpus().length, tol: null, opt: 'all' };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i], v = () => { if (i + 1 >= argv.length) usage('missing value for ' + a); return argv[++i]; };
        switch (a) {
            case '--ort': o.ort = v(); break;
            case '--model': o.model = v(); break;
            case '--ref': o.ref = v(); break;
            case '--precision': o.precision = v(); break;
            case '--batch': o.batch = v().split(',').map(Number); break;
            case '--seq': o.seq = Number(v()); break;
            case '--warmup': o.warmup = Number(v()); break;
            case '--iters': o.iters = Number(v()); break;
            case '--max-time': o.maxTime = Number(v()); break;
            case '--threads': o.threads = Number(v()); break;
            case '--tol': o.tol = Number(v()); break;
            case '--opt': o.opt = v(); break;
            case '-h': case '--help': usage(); break;
            default: usage('unknown option ' + a);
        }
    }
    if (!o.ort || !o.model) usage('--ort and --model are required');
    if (o.batch.some((b) => !(b >= 1)) || !(o.seq >= 2) || !(o.warmup >= 0) || !(o.iters >= 1) || !(o.threads >= 1)) usage('bad sizes');
    if (o.tol === null) o.tol = o.precision === 'fp32' ? 1e-4 : 0.15;
    if (!o.ref) {
        o.ref = o.model.replace(/(_int8)?\.onnx$/, '.ref.json');
    }
    return o;
}

function loadOrt(dir) {
    const cands = [path.resolve(dir), path.resolve(dir, 'onnxruntime-node'), path.resolve(dir, 'node_modules', 'onnxruntime-node')];
    for (const c of cands) {
        if (fs.existsSync(path.join(c, 'package.json')) && path.basename(c) === 'onnxruntime-node') {
            const ort = require(c);
            return { ort, version: JSON.parse(fs.readFileSync(path.join(c, 'package.json'), 'utf8')).version, dir: c };
        }
    }
    throw new Error('onnxruntime-node not found under ' + dir);
}

// the torch_bert.py flops(), as bench_bert.c's bert_flops (inference: encoder + pooler)
function flops(cfg, B, T) {
    const H = cfg.hidden, L = cfg.layers, F = cfg.ffn;
    const perLayer = 2 * (4 * H * H + 2 * H * F) * T + 2 * 2 * T * T * H;
    return (L * perLayer + 2 * H * H) * B;
}

function stats(ms) {   // min / median (mean of the middle two for even n) / max
    const s = ms.slice().sort((x, y) => x - y), n = s.length;
    return { n, min: s[0], max: s[n - 1], med: n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]) };
}

function int64Tensor(ort, rows, B, T) {   // rows: nested arrays [B][T] of numbers
    const d = new BigInt64Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) d[b * T + t] = BigInt(rows[b][t]);
    return new ort.Tensor('int64', d, [B, T]);
}

function maxAbsDiff(a, b) {
    if (a.length !== b.length) return Infinity;
    let m = 0;
    for (let i = 0; i < a.length; i++) { const d = Math.abs(a[i] - b[i]); if (!(d <= m)) m = d; }   // NaN -> NaN
    return m;
}

async function check(ort, session, ref, tol, label) {
    let worstPooled = 0, worstHidden = 0, maxRef = 0;
    for (const c of ref.cases) {
        const [B, T] = c.shape;
        const feeds = { input_ids: int64Tensor(ort, c.input_ids, B, T), token_type_ids: int64Tensor(ort, c.token_type_ids, B, T),
                        attention_mask: int64Tensor(ort, c.attention_mask, B, T) };
        const out = await session.run(feeds);
        const refPooled = c.pooler_output.flat();
        const dp = maxAbsDiff(out.pooler_output.data, refPooled);
        for (const v of refPooled) maxRef = Math.max(maxRef, Math.abs(v));
        let line = `ort check (${label}) B=${B} T=${T}${c.attention_mask.flat().includes(0) ? ' (with padding)' : ''}: pooled max abs diff ${dp.toExponential(2)}`;
        worstPooled = Math.max(worstPooled, dp);
        if (Number.isNaN(dp)) worstPooled = NaN;
        if (c.last_hidden_state) {
            const dh = maxAbsDiff(out.last_hidden_state.data, c.last_hidden_state);
            line += `, sequence output max abs diff ${dh.toExponential(2)}`;
            worstHidden = Math.max(worstHidden, dh);
            if (Number.isNaN(dh)) worstHidden = NaN;
        }
        console.log(line);
    }
    const worst = Math.max(worstPooled, worstHidden);
    const ok = worst <= tol;   // false for NaN
    console.log(`ort check (${label}) against torch ${ref.torch}: max abs diff pooled ${worstPooled.toExponential(2)} (|pooled| <= ${maxRef.toFixed(3)}), ` +
                `sequence output ${worstHidden.toExponential(2)}; tolerance ${tol}: ${ok ? 'OK' : 'FAILED'}`);
    return { ok, pooled: worstPooled, hidden: worstHidden };
}

function benchInputs(ort, B, T) {   // random ids (fixed LCG), types half 0 / half 1, mask all ones
    const ids = new BigInt64Array(B * T), tt = new BigInt64Array(B * T), mask = new BigInt64Array(B * T);
    let s = 12345 >>> 0;
    for (let i = 0; i < B * T; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        ids[i] = BigInt(s % VOCAB);
        tt[i] = (i % T) >= T / 2 ? 1n : 0n;
        mask[i] = 1n;
    }
    return { input_ids: new ort.Tensor('int64', ids, [B, T]), token_type_ids: new ort.Tensor('int64', tt, [B, T]),
             attention_mask: new ort.Tensor('int64', mask, [B, T]) };
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const t0 = performance.now();
    const { ort, version, dir } = loadOrt(o.ort);
    const ref = JSON.parse(fs.readFileSync(o.ref, 'utf8'));
    const cfg = CONFIGS[ref.config || 'base'];
    const opts = { intraOpNumThreads: o.threads, interOpNumThreads: 1, executionMode: 'sequential',
                   graphOptimizationLevel: o.opt, logSeverityLevel: 3 };
    const session = await ort.InferenceSession.create(o.model, opts);
    const setupS = (performance.now() - t0) / 1e3;
    console.log(`ort: onnxruntime-node ${version} (${dir}), model ${o.model} (${(fs.statSync(o.model).size / 1e6).toFixed(0)} MB, ${o.precision}), ` +
                `intraOpNumThreads ${o.threads}, interOpNumThreads 1, sequential, graphOptimizationLevel '${o.opt}', setup ${setupS.toFixed(1)} s`);
    const chk = await check(ort, session, ref, o.tol, o.precision);
    if (!chk.ok) {
        console.error(`ort_bench.js: FAILED: ORT ${o.precision} output differs from torch's by more than ${o.tol} (pooled ${chk.pooled}, sequence output ${chk.hidden})`);
        process.exit(1);
    }

    for (const B of o.batch) {
        const T = o.seq, workload = `infer_b${B}`;
        const feeds = benchInputs(ort, B, T);
        const times = [];
        let spent = 0, out = null;
        for (let i = 0; i < o.warmup || times.length < o.iters; i++) {
            if (i >= o.warmup && o.maxTime > 0 && spent >= o.maxTime && times.length >= 5) break;
            const a = performance.now();
            out = await session.run(feeds);
            const ms = performance.now() - a;
            if (i >= o.warmup) { times.push(ms); spent += ms / 1e3; }
        }
        const s = stats(times);
        const flop = flops(cfg, B, T), rssMb = process.resourceUsage().maxRSS / 1024;
        let chkSum = 0;
        for (const v of out.pooler_output.data) chkSum += Math.abs(v);
        const meanAbs = chkSum / out.pooler_output.data.length;
        const gf = flop / (s.med * 1e-3) / 1e9;
        console.log(`ort ${workload} ${o.precision}: ${o.warmup} warm-up + ${s.n} timed: min ${s.min.toFixed(1)} / med ${s.med.toFixed(1)} / max ${s.max.toFixed(1)} ms, ` +
                    `${(B / (s.med * 1e-3)).toFixed(2)} seq/s, ${(flop / 1e9).toFixed(1)} GFLOP/step, ${gf.toFixed(1)} GFLOP/s (med), ` +
                    `spread ${(s.max / s.min).toFixed(2)}, peak RSS ${rssMb.toFixed(0)} MB`);
        const r = (x, d) => Number(x.toFixed(d));
        console.log(JSON.stringify({
            workload, impl: 'ort', precision: o.precision, ort: version, threads: o.threads, inter_threads: 1,
            execution_mode: 'sequential', graph_opt: o.opt, n: s.n, ms_min: r(s.min, 3), ms_med: r(s.med, 3), ms_max: r(s.max, 3),
            gflop: r(flop / 1e9, 4), gflops: r(gf, 2), gflops_best: r(flop / (s.min * 1e-3) / 1e9, 2), spread: r(s.max / s.min, 3),
            rss_mb: r(rssMb, 1), mode: 'infer', batch: B, seq: T, seq_per_s: r(B / (s.med * 1e-3), 3), check: r(meanAbs, 6),
            check_max_abs_diff: Number(chk.pooled.toPrecision(3)), check_max_abs_diff_seq: Number(chk.hidden.toPrecision(3)), check_tol: o.tol, model: path.basename(o.model),
            setup_s: r(setupS, 2), flop_formula: 'standard (torch_bert.py flops())',
        }));
    }
}

main().catch((e) => { console.error('ort_bench.js: ' + (e && e.stack || e)); process.exit(1); });
