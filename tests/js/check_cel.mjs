#!/usr/bin/env node
// Runs the CEL rules (x-kubernetes-validations) of crds/ the way the API server would,
// with a conformance-tested CEL evaluator (@bufbuild/cel), on every ipguard object of the
// rule fixtures and of examples/clean. Without a cluster this is the only place the rules
// are run; the e2e suite meets them again on a real API server.
//
//   node tests/js/check_cel.mjs SOURCE_DIR      (after `npm ci` in tests/js; setup.sh does it)
//
// Checks:
//   1. Every rule parses, and every field it reads (self.x, oldSelf.x) is declared in the
//      schema at that point, as the API server's type check would demand when the CRD is
//      applied. A transition rule (oldSelf) sits only where old and new values correlate:
//      not under a list unless it is x-kubernetes-list-type: map.
//   2. What ipguard admits, CEL admits too: no rule fails on an object a fixture expects
//      allowed, on an object a fixture keeps stored (`existing`, `oldObject`), or on an
//      object of examples/clean. Otherwise `kubectl apply` would refuse a plan that
//      `ipguard check` passes.
//   3. What CEL refuses, ipguard refuses too, for the same field: when a rule fails on a
//      fixture's object, the fixture expects a rejection that names the rule's field.
//   4. Every rule fails on some fixture and passes on another, so none is dead.
// As the API server does: defaults are applied first; a rule runs only where its value is
// present; a transition rule runs only on an update where the old value is present too.
// Exit 0 when every check passes, 1 otherwise.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parse as parseCel, run as runCel } from "@bufbuild/cel";
import { parseAllDocuments } from "yaml";
import { toCel } from "./cel_values.mjs";
import { check, finish } from "./report.mjs";

const root = process.argv[2] ?? join(new URL(".", import.meta.url).pathname, "../..");
const fail = (what) => check(false, what);
const ok = () => check(true);

function yamlFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(name)) out.push(p);
  }
  return out;
}

function readDocs(file) {
  return parseAllDocuments(readFileSync(file, "utf8"), { merge: true })
    .map((d) => { if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`); return d.toJS(); })
    .filter((d) => d != null);
}

// ---------------------------------------------------------------------------------------
// The CRDs: kind -> { schema, rules }. A rule's path is a list of property names, with
// "[]" for the items of a list and "{}" for the values of a map.
// ---------------------------------------------------------------------------------------

const crds = new Map();
for (const file of yamlFiles(join(root, "crds"))) {
  for (const crd of readDocs(file)) {
    const version = crd.spec.versions.find((v) => v.served && v.storage);
    const schema = version.schema.openAPIV3Schema;
    const rules = [];
    collectRules(schema, [], false, rules, `${crd.spec.names.kind}`);
    crds.set(`${crd.spec.group}/${crd.spec.names.kind}`, { schema, rules, kind: crd.spec.names.kind });
  }
}

function collectRules(schema, path, uncorrelated, rules, where) {
  for (const v of schema["x-kubernetes-validations"] ?? []) {
    const rule = { rule: v.rule, message: v.message ?? `failed rule: ${v.rule}`, path, where: `${where} ${pathText(path)}`,
                   transition: /\boldSelf\b/.test(v.rule), failed: 0, passed: 0 };
    try {
      parseCel(v.rule);
      ok();
    } catch (e) {
      fail(`${rule.where}: rule ${JSON.stringify(v.rule)} does not parse: ${e.message}`);
      continue;
    }
    for (const [, variable, field] of v.rule.matchAll(/\b(self|oldSelf)\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
      if (!schema.properties || !(field in schema.properties)) {
        fail(`${rule.where}: rule ${JSON.stringify(v.rule)} reads ${variable}.${field}, which the schema does not declare here`);
      } else ok();
    }
    if (rule.transition && uncorrelated) {
      fail(`${rule.where}: transition rule ${JSON.stringify(v.rule)} under a list that is not x-kubernetes-list-type: map`);
    }
    if (!v.message && !v.messageExpression) fail(`${rule.where}: rule ${JSON.stringify(v.rule)} has no message`);
    rules.push(rule);
  }
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    collectRules(sub, [...path, name], uncorrelated, rules, where);
  }
  if (schema.items) {
    const mapList = schema["x-kubernetes-list-type"] === "map";
    collectRules(schema.items, [...path, "[]"], uncorrelated || !mapList, rules, where);
  }
  if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
    collectRules(schema.additionalProperties, [...path, "{}"], uncorrelated, rules, where);
  }
}

function pathText(path) {
  return path.length ? path.join(".").replaceAll(".[]", "[*]").replaceAll(".{}", "[*]") : "(root)";
}

// Structural defaulting, as the API server does before validation.
function applyDefaults(value, schema) {
  if (Array.isArray(value)) {
    if (schema.items) value.forEach((item) => applyDefaults(item, schema.items));
  } else if (value && typeof value === "object") {
    for (const [name, sub] of Object.entries(schema.properties ?? {})) {
      if (!(name in value) && sub.default !== undefined) value[name] = structuredClone(sub.default);
      if (name in value) applyDefaults(value[name], sub);
    }
  }
  return value;
}


// Every value at `path` under value, with its schema and the value at the same place under
// old (for a transition rule; undefined where there is none).
function valuesAt(value, old, schema, path) {
  if (value === undefined || value === null) return [];
  if (path.length === 0) return [{ value, old, schema }];
  const [head, ...rest] = path;
  if (head === "[]") {
    if (!Array.isArray(value)) return [];
    return value.flatMap((item) => valuesAt(item, undefined, schema.items, rest));
  }
  if (head === "{}") {
    return Object.entries(value).flatMap(([k, v]) => valuesAt(v, old?.[k], schema.additionalProperties, rest));
  }
  return valuesAt(value[head], old?.[head], schema.properties[head], rest);
}

function schemaAt(schema, path) {
  for (const p of path) schema = p === "[]" ? schema.items : p === "{}" ? schema.additionalProperties : schema.properties[p];
  return schema;
}

// The messages of the rules that fail on obj (with old as its stored version, on an update).
function evaluate(crd, obj, old) {
  const fresh = applyDefaults(structuredClone(obj), crd.schema);
  const stored = old ? applyDefaults(structuredClone(old), crd.schema) : undefined;
  const failed = [];
  for (const rule of crd.rules) {
    const schema = schemaAt(crd.schema, rule.path);
    for (const at of valuesAt(fresh, stored, crd.schema, rule.path)) {
      if (rule.transition && at.old === undefined) continue;
      const vars = { self: toCel(at.value, schema ?? {}) };
      if (rule.transition) vars.oldSelf = toCel(at.old, schema ?? {});
      let result;
      try {
        result = runCel(rule.rule, vars);
      } catch (e) {
        fail(`${rule.where}: rule ${JSON.stringify(rule.rule)} raised an error: ${e.message}`);
        continue;
      }
      if (result === false) { rule.failed++; failed.push(rule); }
      else if (result === true) rule.passed++;
      else fail(`${rule.where}: rule ${JSON.stringify(rule.rule)} gave ${String(result)}, not a bool`);
    }
  }
  return failed;
}

const crdOf = (obj) => obj && typeof obj.apiVersion === "string" && crds.get(`${obj.apiVersion.split("/")[0]}/${obj.kind}`);
const nameOf = (obj) => `${obj.kind} ${obj.metadata?.namespace ? obj.metadata.namespace + "/" : ""}${obj.metadata?.name}`;

// ---------------------------------------------------------------------------------------
// The fixtures and examples.
// ---------------------------------------------------------------------------------------

let objects = 0;
const mustPass = (obj, where) => {
  const crd = crdOf(obj);
  if (!crd) return;
  objects++;
  for (const rule of evaluate(crd, obj)) {
    fail(`${where}: ${nameOf(obj)} is admitted by ipguard but CEL refuses it: ${rule.message} (${rule.where})`);
  }
  ok();
};

for (const file of yamlFiles(join(root, "tests/fixtures/rules"))) {
  const rel = relative(root, file);
  for (const doc of readDocs(file)) {
    for (const c of doc.cases ?? []) {
      const where = `${rel} ${c.name}`;
      for (const stored of c.existing ?? []) mustPass(stored, `${where} (existing)`);
      if (c.oldObject) mustPass(c.oldObject, `${where} (oldObject)`);
      if ((c.operation ?? "CREATE") === "DELETE" || !crdOf(c.object)) continue;
      const crd = crdOf(c.object);
      objects++;
      const refused = evaluate(crd, c.object, c.operation === "UPDATE" ? c.oldObject : undefined);
      if (refused.length === 0) { ok(); continue; }
      if (c.expect?.allowed !== false) {
        for (const rule of refused) fail(`${where}: ipguard admits it but CEL refuses it: ${rule.message} (${rule.where})`);
        continue;
      }
      const expected = [...(c.expect.violations ?? []), ...(c.expect.contains ?? [])];
      for (const rule of refused) {
        const field = rule.message.split(" ")[0];
        if (expected.some((e) => e.includes(field))) ok();
        else fail(`${where}: CEL refuses it for ${field} (${rule.message}); the fixture expects only ${JSON.stringify(expected)}`);
      }
    }
  }
}

for (const file of yamlFiles(join(root, "examples/clean"))) {
  for (const obj of readDocs(file)) mustPass(obj, relative(root, file));
}

let rules = 0;
for (const crd of crds.values()) {
  for (const rule of crd.rules) {
    rules++;
    if (rule.failed === 0) fail(`${rule.where}: rule ${JSON.stringify(rule.rule)} fails on no fixture (add a case it refuses)`);
    if (rule.passed === 0) fail(`${rule.where}: rule ${JSON.stringify(rule.rule)} passes on no fixture`);
    if (rule.failed && rule.passed) {
      ok();
      console.log(`ok   ${rule.where}: "${rule.message}" refused ${rule.failed}, passed ${rule.passed}`);
    }
  }
}
console.log(`cel: ${rules} rules in ${crds.size} CRDs, ${objects} objects`);
finish();
