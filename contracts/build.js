#!/usr/bin/env node
// Compiles contracts/src/*.sol with the pinned npm solc (solc-js: the compiler is inside the
// package, nothing is downloaded) and writes one artifact per contract to
// portal/chain/artifacts/<Name>.json. The artifacts are committed so that Python code and tests
// need neither Node nor a compiler.
//
//   node contracts/build.js           write the artifacts
//   node contracts/build.js --check   compile in memory; exit 1 naming every artifact that
//                                     differs from (or is missing in) the committed tree
//
// Output is deterministic: same sources + same lockfile => byte-identical files, which is what
// makes --check meaningful.

'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const CONTRACTS_DIR = __dirname;
const SRC_DIR = path.join(CONTRACTS_DIR, 'src');
const NODE_MODULES = path.join(CONTRACTS_DIR, 'node_modules');
const ARTIFACTS_DIR = path.join(CONTRACTS_DIR, '..', 'portal', 'chain', 'artifacts');

// Prague, not the compiler's default (osaka): the in-process test chain (py-evm) stops at
// Prague and would hit an invalid opcode on osaka-only instructions; anvil runs Prague too.
const EVM_VERSION = 'prague';

// The optimizer settings below, chosen by measurement (bench/disburse_gas.py, allocate with
// batches of 500 new beneficiaries, gas per beneficiary all-in / deployed Entitlements size):
//   legacy pipeline, runs 200     24,439 gas   3,669 bytes
//   legacy pipeline, runs 10,000  24,403 gas   4,995 bytes
//   via-IR,          runs 200     24,216 gas   3,066 bytes   <- chosen
//   via-IR,          runs 10,000  24,198 gas   4,027 bytes
// The allocate loop is dominated by one fresh storage slot and one event per item (floor about
// 23,850), so what is left to win is the loop's own bookkeeping; the IR pipeline trims about
// 220 gas of it per item and gives the smallest code. Higher runs save another ~20 gas per item
// for a third more bytecode: not worth it. viaIR is recorded inside "optimizer" in the artifacts
// because it is part of how the code was optimized (it is not a solc optimizer sub-setting).
const OPTIMIZER = { enabled: true, runs: 200 };
const VIA_IR = true;

function loadSolc() {
  try {
    return require(path.join(NODE_MODULES, 'solc'));
  } catch (err) {
    process.stderr.write(
      'build.js: cannot load solc from contracts/node_modules (run contracts/ensure_deps.sh): ' +
        err.message + '\n',
    );
    process.exit(2);
  }
}

// Import callback: only package imports are expected (e.g. @openzeppelin/contracts/...); they
// are resolved inside contracts/node_modules and nowhere else, so the pinned lockfile decides
// exactly which library source is compiled.
function findImports(importPath) {
  const file = path.resolve(NODE_MODULES, importPath);
  if (!file.startsWith(NODE_MODULES + path.sep)) {
    return { error: 'import outside contracts/node_modules: ' + importPath };
  }
  if (!fs.existsSync(file)) return { error: 'not found in contracts/node_modules: ' + importPath };
  return { contents: fs.readFileSync(file, 'utf8') };
}

function sha256(text) {
  return crypto.createHash('sha256').update(text).digest('hex');
}

// Recursively sorts object keys so that the serialized artifact does not depend on the order in
// which solc happened to build its objects. Arrays (ABI entries, inputs) keep their order.
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

function compile(solc) {
  const files = fs
    .readdirSync(SRC_DIR)
    .filter((name) => name.endsWith('.sol'))
    .sort();
  if (files.length === 0) throw new Error('no .sol files in ' + SRC_DIR);

  // Source keys are repository-relative ("src/Name.sol"), never absolute paths: they end up in
  // the metadata hash appended to the bytecode, which must not depend on the checkout location.
  const sources = {};
  for (const name of files) {
    sources['src/' + name] = { content: fs.readFileSync(path.join(SRC_DIR, name), 'utf8') };
  }
  const settings = {
    evmVersion: EVM_VERSION,
    optimizer: OPTIMIZER,
    viaIR: VIA_IR,
    outputSelection: {
      // metadata is requested only to learn which sources each contract was built from (for
      // sourceHash); it is not written to the artifacts.
      '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'metadata'] },
    },
  };
  const input = { language: 'Solidity', sources, settings };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  const problems = output.errors || [];
  for (const p of problems) {
    if (p.severity !== 'error') process.stderr.write(p.formattedMessage || p.message);
  }
  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) {
    for (const e of errors) process.stderr.write(e.formattedMessage || e.message);
    throw new Error(errors.length + ' compiler error(s)');
  }

  // Every source the compiler saw, our files and the imported library files, by key.
  const seen = {};
  for (const key of Object.keys(sources)) seen[key] = sources[key].content;

  const artifacts = {};
  for (const key of Object.keys(sources)) {
    for (const [name, contract] of Object.entries(output.contracts[key] || {})) {
      // Interfaces and abstract contracts have no bytecode: nothing to deploy, no artifact.
      if (!contract.evm.bytecode.object) continue;
      if (artifacts[name]) throw new Error('two contracts named ' + name);
      artifacts[name] = {
        contractName: name,
        abi: contract.abi,
        bytecode: '0x' + contract.evm.bytecode.object,
        deployedBytecode: '0x' + contract.evm.deployedBytecode.object,
        compiler: solc.version(),
        evmVersion: EVM_VERSION,
        optimizer: { ...OPTIMIZER, viaIR: VIA_IR },
        sourceHash: sourceHash(JSON.parse(contract.metadata), seen, settings),
      };
    }
  }
  return artifacts;
}

// sha256 over every source file this contract was built from (its own file and each import,
// taken from the compiler's metadata so nothing is missed), plus the settings: it changes
// exactly when something that shapes this contract's bytecode changes.
function sourceHash(metadata, seen, settings) {
  const lines = [];
  for (const key of Object.keys(metadata.sources).sort()) {
    const content = key in seen ? seen[key] : findImports(key).contents;
    if (content === undefined) throw new Error('cannot read source ' + key);
    lines.push(key + ' ' + sha256(content));
  }
  lines.push('settings ' + JSON.stringify(sortKeys({ ...settings, outputSelection: undefined })));
  return sha256(lines.join('\n'));
}

function serialize(artifact) {
  return JSON.stringify(sortKeys(artifact), null, 2) + '\n';
}

function main(argv) {
  const check = argv.includes('--check');
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write('usage: node contracts/build.js [--check]\n');
    return 2;
  }
  const artifacts = compile(loadSolc());
  const names = Object.keys(artifacts).sort();

  if (check) {
    const differing = [];
    for (const name of names) {
      const file = path.join(ARTIFACTS_DIR, name + '.json');
      const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
      if (current === null) differing.push(name + '.json (missing)');
      else if (current !== serialize(artifacts[name])) differing.push(name + '.json (differs)');
    }
    // An artifact whose contract no longer exists would still be loadable by the portal.
    if (fs.existsSync(ARTIFACTS_DIR)) {
      for (const file of fs.readdirSync(ARTIFACTS_DIR).sort()) {
        if (file.endsWith('.json') && !(file.slice(0, -5) in artifacts)) {
          differing.push(file + ' (no such contract in contracts/src)');
        }
      }
    }
    if (differing.length > 0) {
      process.stderr.write(
        'artifacts out of date (run: node contracts/build.js):\n' +
          differing.map((d) => '  portal/chain/artifacts/' + d + '\n').join(''),
      );
      return 1;
    }
    process.stdout.write('artifacts up to date: ' + names.join(', ') + '\n');
    return 0;
  }

  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  for (const name of names) {
    fs.writeFileSync(path.join(ARTIFACTS_DIR, name + '.json'), serialize(artifacts[name]));
  }
  process.stdout.write('wrote portal/chain/artifacts/{' + names.join(',') + '}.json\n');
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write('build.js: ' + err.message + '\n');
  process.exitCode = 1;
}
