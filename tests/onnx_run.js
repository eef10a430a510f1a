#!/usr/bin/env node
// onnx_run.js - helper for tests/test_onnx.sh (not a test by itself): runs an ONNX model in ONNX
// Runtime (npm onnxruntime-node, CPU) on the cases of a safetensors file and saves the outputs.
//
//   node tests/onnx_run.js ORT_DIR MODEL.onnx INPUTS.safetensors OUT.safetensors [--opt all|disabled]
//   node tests/onnx_run.js ORT_DIR --probe       (exit 0 when onnxruntime-node loads, printing its version)
//
// ORT_DIR: a node_modules folder holding onnxruntime-node (or the package folder itself).
// INPUTS: integer tensors "K.input_ids", "K.attention_mask", "K.token_type_ids" (B,T) for K = 0, 1, ...;
// each case is one session.run with int64 feeds. OUT gets every output as "K.NAME" (F32, the shape
// ORT returns) and the metadata "inputs" and "outputs": the session's names as JSON lists.
// One session for all cases, so the dynamic batch and sequence axes are exercised in one go.
// Errors: one line on stderr, exit 1.
'use strict';
const fs = require('fs');
const path = require('path');

function die(msg) { console.error('onnx_run.js: ' + msg); process.exit(1); }

function loadOrt(dir) {
    for (const c of [path.resolve(dir), path.resolve(dir, 'onnxruntime-node'), path.resolve(dir, 'node_modules', 'onnxruntime-node')]) {
        if (path.basename(c) === 'onnxruntime-node' && fs.existsSync(path.join(c, 'package.json'))) {
            return { ort: require(c), version: JSON.parse(fs.readFileSync(path.join(c, 'package.json'), 'utf8')).version };
        }
    }
    throw new Error('onnxruntime-node not found under ' + dir);
}

const DTYPES = { F32: [Float32Array, 4], I32: [Int32Array, 4], I64: [BigInt64Array, 8] };

function readSafetensors(file) {
    const buf = fs.readFileSync(file);
    if (buf.length < 8) throw new Error(file + ': too short for safetensors');
    const n = Number(buf.readBigUInt64LE(0));
    if (n > buf.length - 8) throw new Error(file + ': header length past the end');
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    const out = {};
    for (const [name, info] of Object.entries(header)) {
        if (name === '__metadata__') continue;
        const dt = DTYPES[info.dtype];
        if (!dt) throw new Error(`${file}: tensor ${name}: dtype ${info.dtype} not handled here`);
        const [b, e] = info.data_offsets, bytes = buf.subarray(8 + n + b, 8 + n + e);
        const copy = new Uint8Array(bytes);   // aligned copy
        out[name] = { dtype: info.dtype, shape: info.shape, data: new dt[0](copy.buffer, 0, (e - b) / dt[1]) };
    }
    return out;
}

function writeSafetensors(file, tensors, metadata) {
    const header = { __metadata__: metadata }, chunks = [];
    let off = 0;
    for (const [name, t] of tensors) {
        const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        header[name] = { dtype: 'F32', shape: t.dims, data_offsets: [off, off + bytes.length] };
        chunks.push(bytes);
        off += bytes.length;
    }
    let text = Buffer.from(JSON.stringify(header), 'utf8');
    text = Buffer.concat([text, Buffer.alloc((8 - text.length % 8) % 8, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(text.length));
    fs.writeFileSync(file, Buffer.concat([len, text, ...chunks]));
}

function int64(ort, t) {
    const d = new BigInt64Array(t.data.length);
    for (let i = 0; i < d.length; i++) d[i] = BigInt(t.data[i]);
    return new ort.Tensor('int64', d, t.shape);
}

async function main(argv) {
    if (argv.length === 2 && argv[1] === '--probe') {
        console.log(loadOrt(argv[0]).version);
        return;
    }
    if (argv.length !== 4 && !(argv.length === 6 && argv[4] === '--opt')) {
        die('usage: onnx_run.js ORT_DIR MODEL.onnx INPUTS.safetensors OUT.safetensors [--opt all|disabled] | ORT_DIR --probe');
    }
    const [dir, model, inputs, out] = argv;
    const { ort } = loadOrt(dir);
    const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: argv[5] || 'all',
                                                               intraOpNumThreads: 1, interOpNumThreads: 1 });
    const cases = readSafetensors(inputs), results = [];
    for (let k = 0; cases[`${k}.input_ids`]; k++) {
        const feeds = {};
        for (const n of ['input_ids', 'attention_mask', 'token_type_ids']) {
            if (!cases[`${k}.${n}`]) throw new Error(`${inputs}: no ${k}.${n}`);
            feeds[n] = int64(ort, cases[`${k}.${n}`]);
        }
        const o = await session.run(feeds);
        for (const name of session.outputNames) {
            if (o[name].type !== 'float32') throw new Error(`output ${name} is ${o[name].type}, expected float32`);
            results.push([`${k}.${name}`, o[name]]);
        }
    }
    writeSafetensors(out, results, { inputs: JSON.stringify(session.inputNames), outputs: JSON.stringify(session.outputNames) });
}

main(process.argv.slice(2)).catch((e) => die(String(e && e.message || e).split('\n')[0]));
