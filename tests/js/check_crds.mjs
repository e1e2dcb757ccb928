#!/usr/bin/env node
// The CRDs of crds/ against what the API server demands before it stores a CRD
// (apiextensions-apiserver's CRD validation and structural-schema rules), so that
// `kubectl apply -f crds/` cannot be refused on a real cluster for a reason nobody ran here:
//   - names: metadata.name is <plural>.<group>; lower-case DNS labels for plural, singular,
//     short names and categories; kind and listKind upper camel case; a group with a dot;
//   - versions: unique names, at least one served, exactly one stored; a scope;
//   - structural schema: only JSONSchemaProps' fields on a node, a type on every node (unless int-or-string or preserve-unknown),
//     an object at the root, items on every array, never properties together with
//     additionalProperties, none of $ref, definitions, patternProperties, dependencies,
//     additionalItems, uniqueItems: true; metadata restricted to name and generateName;
//   - list and map types: x-kubernetes-list-type atomic, set or map on arrays only; a map
//     list's keys are scalar properties of its items that are required or defaulted; a set
//     holds scalars; list-map-keys only on map lists; x-kubernetes-map-type on objects only;
//   - defaults: none under metadata (each one valid for its schema: crd_schema_test);
//   - printer columns: a name, a type of integer, number, string, boolean or date, a format
//     that fits the type, a JSONPath that starts with "." and reaches a field the schema
//     declares (the API server only shows an empty column for a typo), priority >= 0;
//   - x-kubernetes-validations: a rule and a one-line message.
// The CEL rules themselves are run by check_cel.mjs.
//
//   node tests/js/check_crds.mjs SOURCE_DIR
// Exit 0 when every check passes, 1 otherwise.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { fieldsOf, schemaProblems } from "./kube_schema.mjs";
import { check, finish } from "./report.mjs";

const root = process.argv[2];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const CAMEL = /^[A-Z][A-Za-z0-9]*$/;
const SCALARS = new Set(["string", "integer", "number", "boolean"]);
// The keys a schema node may have: JSONSchemaProps' fields. The API server drops any other
// (a misspelt maxLength or x-kubernetes-validations would silently be lost).
const SCHEMA_FIELDS = fieldsOf("kubernetes-models/apiextensions.k8s.io/v1/JSONSchemaProps");
const FORBIDDEN = ["$ref", "$schema", "definitions", "patternProperties", "dependencies", "additionalItems", "id"];
const COLUMN_FORMATS = {
  integer: ["", "int32", "int64"], number: ["", "float", "double"], boolean: [""], date: [""],
  string: ["", "byte", "date", "date-time", "password", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "duration", "quantity"],
};

const files = readdirSync(join(root, "crds")).filter((f) => f.endsWith(".yaml")).sort();
check(files.length === 5, "crds/: five CRDs", files.join(", "));

for (const file of files) {
  const docs = parseAllDocuments(readFileSync(join(root, "crds", file), "utf8")).map((d) => d.toJS());
  check(docs.length === 1, `${file}: one document`);
  const crd = docs[0];
  const problems = await schemaProblems(crd);
  check(problems.length === 0, `${file}: a valid apiextensions.k8s.io/v1 CustomResourceDefinition`, problems.join("; "));
  const { group, names = {}, scope, versions = [] } = crd.spec ?? {};
  const where = `${file}`;

  check(crd.metadata?.name === `${names.plural}.${group}`, `${where}: metadata.name is <plural>.<group>`, crd.metadata?.name);
  check(typeof group === "string" && group.includes(".") && group.split(".").every((l) => DNS_LABEL.test(l)), `${where}: group ${group}`);
  for (const key of ["plural", "singular"]) check(DNS_LABEL.test(names[key] ?? ""), `${where}: names.${key} ${names[key]} is a lower-case DNS label`);
  for (const s of [...(names.shortNames ?? []), ...(names.categories ?? [])]) check(DNS_LABEL.test(s), `${where}: short name or category ${s} is a lower-case DNS label`);
  check(CAMEL.test(names.kind ?? ""), `${where}: names.kind ${names.kind}`);
  check(CAMEL.test(names.listKind ?? `${names.kind}List`) && (names.listKind ?? `${names.kind}List`) !== names.kind, `${where}: names.listKind`);
  check(scope === "Namespaced" || scope === "Cluster", `${where}: scope ${scope}`);
  check(new Set(versions.map((v) => v.name)).size === versions.length && versions.length > 0, `${where}: version names unique`);
  check(versions.some((v) => v.served), `${where}: a served version`);
  check(versions.filter((v) => v.storage).length === 1, `${where}: exactly one storage version`);

  for (const version of versions) {
    const at = `${where} ${version.name}`;
    const schema = version.schema?.openAPIV3Schema;
    if (!check(schema && schema.type === "object", `${at}: the root schema is an object`)) continue;
    walk(schema, "", at, { root: true });
    const columns = version.additionalPrinterColumns ?? [];
    check(new Set(columns.map((c) => c.name)).size === columns.length, `${at}: printer column names unique`);
    for (const c of columns) {
      const col = `${at}: printer column ${c.name}`;
      check(typeof c.name === "string" && c.name.length > 0, `${col}: a name`);
      check(c.type in COLUMN_FORMATS, `${col}: type ${c.type}`);
      check((COLUMN_FORMATS[c.type] ?? []).includes(c.format ?? ""), `${col}: format ${c.format} fits type ${c.type}`);
      check((c.priority ?? 0) >= 0, `${col}: priority >= 0`);
      check(typeof c.jsonPath === "string" && c.jsonPath.startsWith("."), `${col}: a JSONPath starting with "."`, c.jsonPath);
      const reached = resolve(schema, c.jsonPath ?? "");
      check(reached !== undefined, `${col}: ${c.jsonPath} reaches a field the schema declares`);
      if (reached && c.type !== "string" && c.type !== "date") {
        check(reached.type === c.type || (c.type === "number" && reached.type === "integer"),
              `${col}: the column's type ${c.type} is the field's type ${reached.type}`);
      }
    }
    if (version.subresources?.status !== undefined) {
      check(schema.properties?.status !== undefined, `${at}: the status subresource has a status in the schema`);
    }
  }
}

// A node of the schema, with its path, under the structural rules.
function walk(s, path, at, { root = false, inMetadata = false } = {}) {
  const here = `${at}: ${path || "(root)"}`;
  if (!check(s && typeof s === "object" && !Array.isArray(s), `${here}: a schema object`)) return;
  const unknown = Object.keys(s).filter((k) => !SCHEMA_FIELDS.has(k));
  check(SCHEMA_FIELDS.size > 30 && unknown.length === 0, `${here}: only JSONSchemaProps fields`, unknown.join(", "));
  for (const f of FORBIDDEN) check(!(f in s), `${here}: no ${f} in a structural schema`);
  check(s.uniqueItems !== true, `${here}: uniqueItems: true is refused`);
  const free = s["x-kubernetes-int-or-string"] === true || s["x-kubernetes-preserve-unknown-fields"] === true;
  check(free || (typeof s.type === "string" && s.type.length > 0), `${here}: a type`);
  if (s["x-kubernetes-int-or-string"] === true) check(s.type === undefined, `${here}: int-or-string has no type`);
  check(!(s.properties && s.additionalProperties !== undefined && s.additionalProperties !== false),
        `${here}: not both properties and additionalProperties`);
  if (s.type === "array") check(s.items && !Array.isArray(s.items), `${here}: an array has one items schema`);
  if (s.type !== "array") check(s.items === undefined, `${here}: items only on an array`);

  const listType = s["x-kubernetes-list-type"];
  if (listType !== undefined) {
    check(s.type === "array" && ["atomic", "set", "map"].includes(listType), `${here}: x-kubernetes-list-type ${listType} on an array`);
  }
  const keys = s["x-kubernetes-list-map-keys"];
  check(keys === undefined || listType === "map", `${here}: list-map-keys only on a map list`);
  if (listType === "map") {
    const items = s.items ?? {};
    check(items.type === "object" && Array.isArray(keys) && keys.length > 0, `${here}: a map list of objects with keys`);
    for (const key of keys ?? []) {
      const prop = items.properties?.[key];
      check(prop && SCALARS.has(prop.type), `${here}: map key ${key} is a scalar property of the items`);
      check((items.required ?? []).includes(key) || prop?.default !== undefined, `${here}: map key ${key} is required or has a default`);
    }
  }
  if (listType === "set") {
    const items = s.items ?? {};
    check(SCALARS.has(items.type) || items["x-kubernetes-map-type"] === "atomic", `${here}: a set holds scalars or atomic maps`);
  }
  const mapType = s["x-kubernetes-map-type"];
  if (mapType !== undefined) check(s.type === "object" && ["granular", "atomic"].includes(mapType), `${here}: x-kubernetes-map-type ${mapType} on an object`);

  // (That each default is valid for its schema is checked by crd_schema_test, with the
  // validator it checks objects with.)
  if (s.default !== undefined) check(!inMetadata, `${here}: no default under metadata`);
  for (const v of s["x-kubernetes-validations"] ?? []) {
    check(typeof v.rule === "string" && v.rule.length > 0, `${here}: a validation rule`);
    check(v.message === undefined || !/[\r\n]/.test(v.message), `${here}: the rule's message is one line`, v.message);
  }

  if (root && s.properties?.metadata) {
    const m = s.properties.metadata;
    const extra = Object.keys(m).filter((k) => !["type", "properties", "description"].includes(k));
    check(extra.length === 0 && Object.keys(m.properties ?? {}).every((k) => k === "name" || k === "generateName"),
          `${at}: metadata restricts only name and generateName`);
  }
  for (const [name, sub] of Object.entries(s.properties ?? {})) {
    walk(sub, path ? `${path}.${name}` : name, at, { inMetadata: inMetadata || (root && name === "metadata") });
  }
  if (s.items && !Array.isArray(s.items)) walk(s.items, `${path}[]`, at, { inMetadata });
  if (s.additionalProperties && typeof s.additionalProperties === "object") walk(s.additionalProperties, `${path}{}`, at, { inMetadata });
}

// The schema a printer column's JSONPath reaches, or undefined. It knows the paths printer
// columns use: .a.b, [n] or [*] on arrays, and [?(@.k=="v")] filters over an array's items;
// .metadata.* is the API's own (creationTimestamp, name, ...).
function resolve(schema, jsonPath) {
  if (/^\.metadata\.(creationTimestamp|name|namespace|generation|uid|labels|annotations)$/.test(jsonPath)) return { type: "string" };
  const steps = jsonPath.match(/\.[A-Za-z_][A-Za-z0-9_-]*|\[[^\]]*\]/g);
  if (!steps || steps.join("") !== jsonPath) return undefined;
  let s = schema;
  for (const step of steps) {
    if (!s) return undefined;
    if (step.startsWith(".")) {
      s = s.type === "object" ? s.properties?.[step.slice(1)] : undefined;
    } else if (s.type === "array") {
      const filter = step.match(/^\[\?\(@\.([A-Za-z_][A-Za-z0-9_]*)\s*==\s*["']([^"']*)["']\)\]$/);
      if (filter && !s.items?.properties?.[filter[1]]) return undefined;
      if (!filter && !/^\[(\d+|\*)\]$/.test(step)) return undefined;
      s = s.items;
    } else {
      return undefined;
    }
  }
  return s;
}

console.log(`crds: ${files.length} CRDs`);
finish();
