// A Kubernetes object against the API's schema, without a cluster: what the API server
// would refuse (types, enums, required fields: the OpenAPI schemas packaged by
// kubernetes-models and its companions) and what it would drop or, under strict field
// validation, refuse (fields the API does not declare: walked through the same packages'
// type declarations).

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const modules = join(dirname(fileURLToPath(import.meta.url)), "node_modules");

// The module of an apiVersion's models, or undefined when none is installed.
export function modelModule(apiVersion) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "cert-manager.io") return `@kubernetes-models/cert-manager/cert-manager.io/${version}`;
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}`;
  if (group === "argoproj.io") return `@kubernetes-models/argo-cd/argoproj.io/${version}`;
  if (group.endsWith(".toolkit.fluxcd.io")) return `@kubernetes-models/flux-cd/${group}/${version}`;
  if (group === "" || group.endsWith(".k8s.io") || !group.includes(".")) {
    return group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  }
  return undefined;
}

// The fields each API type declares. An interface in the declarations is a list of
// `"field"?: Type;` entries, and a type names an imported interface, an Array<...> of one,
// a { [key: string]: ... } map, or a scalar.
const interfaces = new Map();
function readInterface(file) {
  if (interfaces.has(file)) return interfaces.get(file);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const [, names, from] of text.matchAll(/import \{([^}]*)\} from "([^"]+)";/g)) {
    const target = from.startsWith(".") ? join(dirname(file), from) : join(modules, from);
    for (const name of names.split(",").map((s) => s.trim()).filter(Boolean)) {
      imports.set(name, target.endsWith(".js") ? target.replace(/\.js$/, ".d.ts") : `${target}.d.ts`);
    }
  }
  // The class lists every field, those it inherits too; a type without a class is read
  // from its interface.
  const body = text.match(/export declare class \w+ extends Model<[^>]*> implements [^{]*\{\n([\s\S]*?)\n\}/) ??
               text.match(/export interface I\w+(?: extends [^{]*)? \{\n([\s\S]*?)\n\}/);
  const fields = new Map();
  if (body) {
    const flat = body[1].replace(/\/\*\*[\s\S]*?\*\//g, "")
      .replace(/\{\s*\[key: string\]:\s*([^;{}]+);\s*\}/g, "Record<$1>");
    for (const [, name, type] of flat.matchAll(/"([^"]+)"\??: ([^;]+);/g)) fields.set(name, type);
  }
  const iface = { fields, imports, typeMeta: /export interface I\w+ extends TypeMeta \{/.test(text) };
  interfaces.set(file, iface);
  return iface;
}

function unknownFields(value, file, path, out) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return;
  const iface = readInterface(file);
  if (iface.fields.size === 0) return;  // a free-form type (JSON, RawExtension)
  for (const [key, sub] of Object.entries(value)) {
    if (iface.typeMeta && (key === "apiVersion" || key === "kind")) continue;
    const type = iface.fields.get(key);
    if (type === undefined) { out.push(`${path}.${key}`); continue; }
    typed(sub, type, iface, `${path}.${key}`, out);
  }
}

function typed(value, type, iface, path, out) {
  type = type.trim();
  const array = type.match(/^Array<(.+)>$/);
  if (array) {
    if (Array.isArray(value)) value.forEach((item, i) => typed(item, array[1], iface, `${path}[${i}]`, out));
    return;
  }
  const map = type.match(/^Record<(.+)>$/);
  if (map) {
    if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) typed(v, map[1], iface, `${path}[${k}]`, out);
    return;
  }
  const file = iface.imports.get(type);
  if (file) unknownFields(value, file, path, out);
}

// The field names a model type declares, e.g. fieldsOf("kubernetes-models/apiextensions.k8s.io/v1/JSONSchemaProps").
export function fieldsOf(module) {
  return new Set(readInterface(join(modules, `${module}.d.ts`)).fields.keys());
}

// What is wrong with obj for its API: [] when nothing.
export async function schemaProblems(obj) {
  const module = typeof obj?.apiVersion === "string" ? modelModule(obj.apiVersion) : undefined;
  let model;
  try {
    model = module && (await import(module))[obj.kind];
  } catch { /* reported below */ }
  if (!model) return [`no API schema for ${obj?.apiVersion} ${obj?.kind}`];
  const problems = [];
  try {
    new model(obj).validate();
  } catch (e) {
    problems.push(`refused by the ${obj.apiVersion} ${obj.kind} schema: ${e.message}`);
  }
  const unknown = [];
  unknownFields(obj, join(modules, `${module}/${obj.kind}.d.ts`), obj.kind, unknown);
  if (unknown.length) problems.push(`fields the API does not declare: ${unknown.join(", ")}`);
  return problems;
}
