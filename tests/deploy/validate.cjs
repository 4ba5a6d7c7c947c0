// SPDX-License-Identifier: MIT
// Offline checks of deploy/kubernetes for tests/e2e/test_kubernetes_manifests.sh.
//
//   node validate.cjs render DIR            the objects a kustomization yields, as JSON
//   node validate.cjs validate FILE.json    each object against the Kubernetes OpenAPI schemas
//   node validate.cjs yaml FILE.yaml        a plain manifest file, as JSON
//
// Schemas: the npm package kubernetes-models (its validators are the Kubernetes OpenAPI
// definitions compiled with ajv), found through NODE_PATH. The Kubernetes schemas accept
// unknown fields; `kubectl apply` refuses them (strict field validation), so this is strict
// too: every field of an object must be one the validator looked at. A field the schema does
// not know is never read by the compiled validator, so a Proxy records what it reads.
//
// "render" understands the subset of kustomize the repository uses: resources (files and
// directories with a kustomization.yaml), patches with a target and a JSON 6902 patch file
// (add / replace / remove), images (newName, newTag) and namespace. Anything else is an error,
// so a kustomization that grows beyond it fails the test instead of being half read.
'use strict';

const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

function die(msg) {
  process.stderr.write(`validate.cjs: ${msg}\n`);
  process.exit(2);
}

function readYamlDocs(file) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'), { prettyErrors: true });
  const out = [];
  for (const d of docs) {
    if (d.errors.length > 0) die(`${file}: ${d.errors[0].message.split('\n')[0]}`);
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

// ---- kustomize subset ----------------------------------------------------------------------

function pointerParts(p) {
  if (p === '' || p[0] !== '/') die(`JSON pointer '${p}' must start with /`);
  return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function applyJson6902(obj, ops, where) {
  for (const op of ops) {
    const parts = pointerParts(op.path);
    const last = parts.pop();
    let parent = obj;
    for (const k of parts) {
      if (parent === null || typeof parent !== 'object' || !(k in parent)) die(`${where}: ${op.path}: no '${k}'`);
      parent = parent[k];
    }
    if (op.op === 'add') {
      if (Array.isArray(parent)) {
        if (last === '-') parent.push(op.value);
        else parent.splice(Number(last), 0, op.value);
      } else {
        parent[last] = op.value;
      }
    } else if (op.op === 'replace') {
      if (!(last in parent)) die(`${where}: replace ${op.path}: nothing there`);
      parent[last] = op.value;
    } else if (op.op === 'remove') {
      if (!(last in parent)) die(`${where}: remove ${op.path}: nothing there`);
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else {
      die(`${where}: op '${op.op}' is not supported here (add, replace, remove)`);
    }
  }
}

function matches(obj, target) {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  return (target.group === undefined || target.group === group) &&
    (target.version === undefined || target.version === version) &&
    (target.kind === undefined || target.kind === obj.kind) &&
    (target.name === undefined || target.name === (obj.metadata || {}).name);
}

const kKnownKustomizeKeys = new Set(['apiVersion', 'kind', 'resources', 'patches', 'images', 'namespace']);

function render(dir) {
  const kfile = path.join(dir, 'kustomization.yaml');
  if (!fs.existsSync(kfile)) die(`${dir}: no kustomization.yaml`);
  const [k] = readYamlDocs(kfile);
  for (const key of Object.keys(k)) {
    if (!kKnownKustomizeKeys.has(key)) die(`${kfile}: '${key}' is beyond the kustomize subset this test reads`);
  }
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization') {
    die(`${kfile}: apiVersion/kind must be kustomize.config.k8s.io/v1beta1 Kustomization`);
  }
  let objs = [];
  for (const r of k.resources || []) {
    const p = path.join(dir, r);
    if (!fs.existsSync(p)) die(`${kfile}: resource '${r}' does not exist`);
    if (fs.statSync(p).isDirectory()) objs = objs.concat(render(p));
    else objs = objs.concat(readYamlDocs(p));
  }
  for (const pt of k.patches || []) {
    if (!pt.path || !pt.target) die(`${kfile}: a patch needs path and target here`);
    const ops = readYamlDocs(path.join(dir, pt.path))[0];
    if (!Array.isArray(ops)) die(`${kfile}: ${pt.path} is not a JSON 6902 patch (a list of operations)`);
    const hit = objs.filter((o) => matches(o, pt.target));
    if (hit.length === 0) die(`${kfile}: patch ${pt.path} matches no resource`);
    for (const o of hit) applyJson6902(o, ops, pt.path);
  }
  for (const img of k.images || []) {
    for (const o of objs) {
      const spec = ((o.spec || {}).template || {}).spec;
      if (!spec) continue;
      for (const c of [].concat(spec.initContainers || [], spec.containers || [])) {
        const [name, tag] = c.image.split(':');
        if (name !== img.name) continue;
        c.image = `${img.newName || name}:${img.newTag || tag}`;
      }
    }
  }
  if (k.namespace) {
    for (const o of objs) if (o.kind !== 'Namespace') (o.metadata = o.metadata || {}).namespace = k.namespace;
  }
  return objs;
}

// ---- schema validation ---------------------------------------------------------------------

const modelsRoot = path.dirname(require.resolve('kubernetes-models'));

function validatorFor(apiVersion, kind) {
  let model;
  try {
    model = require(`kubernetes-models/${apiVersion}/${kind}`);
  } catch (e) {
    return null;
  }
  const schema = Object.keys(model).find((n) => n.startsWith('IoK8s'));
  if (!schema) return null;
  return require(path.join(modelsRoot, '_schemas', `${schema}.js`)).validate;
}

function escapeKey(k) {
  return String(k).replace(/~/g, '~0').replace(/\//g, '~1');
}

// A view of `value` that records the JSON pointer of every own property read through it.
function tracked(value, ptr, seen) {
  if (value === null || typeof value !== 'object') return value;
  return new Proxy(value, {
    get(t, k, r) {
      const v = Reflect.get(t, k, r);
      if (typeof k !== 'string' || !Object.prototype.hasOwnProperty.call(t, k)) return v;
      const p = `${ptr}/${escapeKey(k)}`;
      seen.add(p);
      return tracked(v, p, seen);
    },
  });
}

function unknownFields(value, ptr, seen, out) {
  if (value === null || typeof value !== 'object') return;
  for (const k of Object.keys(value)) {
    if (Array.isArray(value) && k === 'length') continue;
    const p = `${ptr}/${escapeKey(k)}`;
    if (!seen.has(p)) out.push(p);
    else unknownFields(value[k], p, seen, out);
  }
}

function validate(objs) {
  let failed = 0;
  for (const o of objs) {
    const id = `${o.kind}/${(o.metadata || {}).name}`;
    const v = typeof o.apiVersion === 'string' && typeof o.kind === 'string' ? validatorFor(o.apiVersion, o.kind) : null;
    if (!v) {
      console.log(`FAIL ${id}: no schema for apiVersion ${o.apiVersion} kind ${o.kind}`);
      failed++;
      continue;
    }
    const seen = new Set();
    const good = v(tracked(o, '', seen));
    const problems = [];
    for (const e of good ? [] : v.errors || []) {
      const extra = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : '';
      problems.push(`${e.instancePath || '/'}: ${e.keyword}${extra}`);
    }
    const unknown = [];
    unknownFields(o, '', seen, unknown);
    for (const p of unknown) problems.push(`${p}: unknown field`);
    if (problems.length === 0) {
      console.log(`ok   ${id} (${o.apiVersion})`);
    } else {
      failed++;
      console.log(`FAIL ${id}: ${problems.slice(0, 5).join('; ')}`);
    }
  }
  return failed;
}

const [cmd, arg] = process.argv.slice(2);
if (cmd === 'render') {
  process.stdout.write(JSON.stringify(render(arg), null, 1) + '\n');
} else if (cmd === 'yaml') {
  process.stdout.write(JSON.stringify(readYamlDocs(arg), null, 1) + '\n');
} else if (cmd === 'validate') {
  const objs = JSON.parse(fs.readFileSync(arg, 'utf8'));
  process.exit(validate(objs) === 0 ? 0 : 1);
} else {
  die('usage: node validate.cjs render DIR | yaml FILE | validate FILE.json');
}
