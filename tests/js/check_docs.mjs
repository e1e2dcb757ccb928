#!/usr/bin/env node
// The YAML a reader copies out of the documentation must work as written:
//   1. Every ```yaml block of README.md, docs/, charts/ipguard/README.md, examples/README.md
//      and tests/e2e/README.md parses.
//   2. Every Kubernetes object in them (Argo CD Applications, Flux sources, HelmReleases and
//      Kustomizations, the argocd-cm ConfigMap) validates against its API's schema, with no
//      undeclared field (kube_schema.mjs).
//   2b. The API server's own configuration files in them (an AdmissionConfiguration, the
//      kubeconfig it names: no API schema exists for those) have only the fields
//      kube-apiserver reads, with the kinds and versions it takes; and a webhook
//      kubeconfig gives the chart's webhooks a client certificate by the API server's rule
//      for picking a kubeconfig user (k8s.io/apiserver/pkg/util/webhook, ported below),
//      as does each entry name of docs/install.md's table of that rule, in its order.
//   3. Every set of chart values in them (a block of values, an Application's
//      helm.valuesObject, a HelmRelease's values) is accepted by the chart: real helm
//      renders charts/ipguard with it (values.schema.json and the templates' checks).
//   4. The Argo CD health check in docs/gitops.md, run with Lua 5.1 (Argo CD's gopher-lua
//      speaks 5.1) as Argo CD runs it (the object in the global `obj`), gives Progressing,
//      Healthy or Degraded, with its message, for the statuses the controller writes; and
//      it is the same script for the four kinds.
//      The Flux healthCheckExprs there, run with a CEL evaluator, give InProgress, Current
//      or Failed for the same statuses, as the Argo CD check does.
//   5. Every jq command of the documentation that reads a report (docs/ci.md: the recipes
//      and the CI jobs), run with the real jq on real `ipguard check -o json` reports
//      (examples/broken, and an unreadable file), succeeds and prints no null.
//
//   node tests/js/check_docs.mjs SOURCE_DIR      (IPGUARD_BIN: the ipguard binary, for 5;
//                                                 IPGUARD_HELM: helm, default .tools/helm)
// Exit 0 when every check passes, 1 otherwise.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run as runCel } from "@bufbuild/cel";
import { parseAllDocuments } from "yaml";
import { sameJson, toCel } from "./cel_values.mjs";
import { schemaProblems } from "./kube_schema.mjs";
import { check, finish } from "./report.mjs";

const root = process.argv[2];
const helm = process.env.IPGUARD_HELM ?? join(root, ".tools/helm");
const ipguard = process.env.IPGUARD_BIN;
const work = mkdtempSync(join(tmpdir(), "ipguard-docs-"));

const files = ["README.md", "charts/ipguard/README.md", "examples/README.md", "tests/e2e/README.md",
  ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];

// Every fenced block: { file, line, lang, text }.
const fenced = [];
for (const file of files) {
  const lines = readFileSync(join(root, file), "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^(\s*)```(\w*)\s*$/);
    if (!open) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end])) end++;
    fenced.push({ file, line: start + 1, lang: open[2],
                  text: lines.slice(start, end).map((l) => l.slice(open[1].length)).join("\n") });
    i = end;
  }
}
const blocks = fenced.filter((b) => b.lang === "yaml" || b.lang === "yml");

// Every jq command that reads a report of `ipguard check -o json`, in any block.
const jqFilters = [];
for (const block of fenced) {
  for (const [, flags, filter] of block.text.matchAll(/\bjq((?: -[a-z]+)*) '((?:[^'\\]|\\.)*)' (?:ipguard-)?report\.json/g)) {
    jqFilters.push({ where: `${block.file}:${block.line}`, flags: flags.trim().split(/\s+/).filter(Boolean), filter });
  }
}

// ---------------------------------------------------------------------------------------
// The API server's own configuration files (2b).
// ---------------------------------------------------------------------------------------

// Shapes: "string", "any", ["array", shape], or { field: shape, ... } (a required field
// is named with a trailing "!").
function shapeProblems(value, shape, path, out) {
  if (shape === "any") return out;
  if (shape === "string") {
    if (typeof value !== "string") out.push(`${path}: not a string`);
    return out;
  }
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) out.push(`${path}: not a list`);
    else value.forEach((v, i) => shapeProblems(v, shape[1], `${path}[${i}]`, out));
    return out;
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return out.push(`${path}: not a mapping`), out;
  const fields = Object.fromEntries(Object.entries(shape).map(([k, v]) => [k.replace(/!$/, ""), v]));
  for (const k of Object.keys(shape).filter((k) => k.endsWith("!"))) {
    if (!(k.slice(0, -1) in value)) out.push(`${path}.${k.slice(0, -1)}: missing`);
  }
  for (const [k, v] of Object.entries(value)) {
    if (!(k in fields)) out.push(`${path}.${k}: not a field the API server reads`);
    else shapeProblems(v, fields[k], `${path}.${k}`, out);
  }
  return out;
}
// k8s.io/apiserver/pkg/apis/apiserver/v1 AdmissionConfiguration, and the configuration of
// the two webhook plugins (webhookadmission/v1: kind WebhookAdmissionConfiguration, or
// WebhookAdmission, the name it is also registered under).
const WEBHOOK_PLUGINS = new Set(["ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"]);
const ADMISSION_CONFIGURATION = { "apiVersion!": "string", "kind!": "string",
  plugins: ["array", { "name!": "string", path: "string", configuration: "any" }] };
const WEBHOOK_ADMISSION = { "apiVersion!": "string", "kind!": "string", "kubeConfigFile!": "string" };
// k8s.io/client-go/tools/clientcmd/api/v1 Config.
const KUBECONFIG = { apiVersion: "string", kind: "string", preferences: "any", extensions: "any", "current-context": "string",
  clusters: ["array", { "name!": "string", "cluster!": { "server!": "string", "tls-server-name": "string",
    "insecure-skip-tls-verify": "any", "certificate-authority": "string", "certificate-authority-data": "string",
    "proxy-url": "string", "disable-compression": "any", extensions: "any" } }],
  users: ["array", { "name!": "string", "user!": { "client-certificate": "string", "client-certificate-data": "string",
    "client-key": "string", "client-key-data": "string", token: "string", tokenFile: "string", as: "string",
    "as-uid": "string", "as-groups": "any", "as-user-extra": "any", username: "string", password: "string",
    "auth-provider": "any", exec: "any", extensions: "any" } }],
  contexts: ["array", { "name!": "string", "context!": { "cluster!": "string", user: "string", namespace: "string", extensions: "any" } }],
};
function configFileProblems(doc) {
  const id = `${doc.apiVersion} ${doc.kind}`;
  if (id === "apiserver.config.k8s.io/v1 AdmissionConfiguration") {
    const problems = shapeProblems(doc, ADMISSION_CONFIGURATION, "AdmissionConfiguration", []);
    for (const p of doc.plugins ?? []) {
      if (!WEBHOOK_PLUGINS.has(p.name)) continue;
      const c = p.configuration ?? {};
      shapeProblems(c, WEBHOOK_ADMISSION, `plugin ${p.name}`, problems);
      if (c.apiVersion !== "apiserver.config.k8s.io/v1" || !["WebhookAdmissionConfiguration", "WebhookAdmission"].includes(c.kind)) {
        problems.push(`plugin ${p.name}: ${c.apiVersion} ${c.kind} is not apiserver.config.k8s.io/v1 WebhookAdmissionConfiguration`);
      }
      if (!String(c.kubeConfigFile).startsWith("/")) problems.push(`plugin ${p.name}: kubeConfigFile is not an absolute path`);
    }
    return problems;
  }
  if (id === "v1 Config") {
    const problems = shapeProblems(doc, KUBECONFIG, "kubeconfig", []);
    for (const u of doc.users ?? []) {
      const user = u.user ?? {};
      const cert = user["client-certificate"] ?? user["client-certificate-data"];
      const key = user["client-key"] ?? user["client-key-data"];
      if ((cert === undefined) !== (key === undefined)) problems.push(`kubeconfig user ${u.name}: a client certificate needs its key and the other way round`);
    }
    return problems;
  }
  return undefined;
}
// The user the API server takes from a webhook kubeconfig for TARGET, "<host>:<port>"
// (for a Service: "<service>.<namespace>.svc:<port>"), as
// k8s.io/apiserver/pkg/util/webhook defaultAuthenticationInfoResolver.clientConfig picks
// it: the exact name, then "*." + each shorter suffix; for port 443 both again without
// the port; then "*"; then the current context's user. undefined: none (anonymous).
function webhookUser(kubeconfig, target) {
  const users = new Map((kubeconfig.users ?? []).map((u) => [u.name, u]));
  const lookup = (name) => {
    if (users.has(name)) return users.get(name);
    const steps = name.split(".");
    for (let i = 1; i < steps.length; i++) {
      const star = "*." + steps.slice(i).join(".");
      if (users.has(star)) return users.get(star);
    }
    return undefined;
  };
  let found = lookup(target);
  const [, host, port] = target.match(/^(.*):(\d+)$/) ?? [];
  if (!found && port === "443") found = lookup(host);
  if (!found) found = users.get("*");
  if (!found && kubeconfig["current-context"]) {
    const ctx = (kubeconfig.contexts ?? []).find((c) => c.name === kubeconfig["current-context"]);
    if (ctx?.context?.user) found = users.get(ctx.context.user);
  }
  return found;
}
const webhookKubeconfigs = [];

const valueKeys = new Set(Object.keys(JSON.parse(readFileSync(join(root, "charts/ipguard/values.schema.json"), "utf8")).properties));
const valueSets = [];
const configMaps = [];
const fluxChecks = [];
let objects = 0;

for (const block of blocks) {
  const where = `${block.file}:${block.line}`;
  const docs = parseAllDocuments(block.text);
  const errors = docs.flatMap((d) => d.errors);
  if (!check(errors.length === 0, `${where}: the YAML block parses`, errors[0]?.message)) continue;
  for (const doc of docs.map((d) => d.toJS()).filter((d) => d != null)) {
    if (typeof doc.apiVersion === "string" && typeof doc.kind === "string") {
      objects++;
      const configProblems = configFileProblems(doc);
      if (configProblems !== undefined) {
        check(configProblems.length === 0, `${where}: ${doc.kind} (a kube-apiserver configuration file)`, configProblems.join("; "));
        if (doc.kind === "Config" && (doc.users ?? []).length > 0) webhookKubeconfigs.push({ where, doc });
        continue;
      }
      if (doc.apiVersion.startsWith("ipguard.io/")) {
        // ipguard's own kinds: judged by ipguard itself, alone, as a reader would apply it.
        if (!ipguard) {
          check(false, `${where}: ${doc.kind} ${doc.metadata?.name}: IPGUARD_BIN is not set`);
          continue;
        }
        const file = join(work, "doc-object.yaml");
        writeFileSync(file, block.text);
        const r = spawnSync(ipguard, ["check", "-q", file], { encoding: "utf8" });
        check(r.status === 0, `${where}: ${doc.kind} ${doc.metadata?.name} passes ipguard check`, `exit ${r.status}: ${r.stdout}${r.stderr}`);
        continue;
      }
      const problems = await schemaProblems(doc);
      check(problems.length === 0, `${where}: ${doc.kind} ${doc.metadata?.name}`, problems.join("; "));
      if (doc.kind === "Application" && doc.spec?.source?.path === "charts/ipguard") {
        valueSets.push({ where: `${where} (Application ${doc.metadata.name} helm.valuesObject)`, values: doc.spec.source.helm?.valuesObject ?? {} });
      }
      if (doc.kind === "HelmRelease" && doc.spec?.chart?.spec?.chart === "./charts/ipguard") {
        valueSets.push({ where: `${where} (HelmRelease ${doc.metadata.name} values)`, values: doc.spec.values ?? {} });
      }
      if (doc.kind === "ConfigMap" && doc.metadata?.name === "argocd-cm") configMaps.push({ where, doc });
      if (doc.kind === "Kustomization") {
        for (const e of doc.spec?.healthCheckExprs ?? []) if (e.apiVersion?.startsWith("ipguard.io/")) fluxChecks.push({ where, ...e });
      }
      continue;
    }
    const keys = doc && typeof doc === "object" && !Array.isArray(doc) ? Object.keys(doc) : [];
    const asValues = keys.filter((k) => valueKeys.has(k));
    if (asValues.length > 0) {
      check(asValues.length === keys.length, `${where}: chart values`, `not values of the chart: ${keys.filter((k) => !valueKeys.has(k)).join(", ")}`);
      valueSets.push({ where, values: doc });
    }
  }
}
check(objects > 0 && valueSets.length > 0, "the documentation has Kubernetes objects and chart values to check",
      `${objects} objects, ${valueSets.length} value sets`);

// 3. The chart takes each set of values.
for (const { where, values } of valueSets) {
  const file = join(work, "values.json");
  writeFileSync(file, JSON.stringify(values));
  const r = spawnSync(helm, ["template", "ipguard", join(root, "charts/ipguard"), "-n", "ipguard-system", "-f", file], { encoding: "utf8" });
  check(r.status === 0, `${where}: the chart accepts these values`, (r.stderr || r.error?.message || "").trim());
}

// 2b. The webhook kubeconfigs against the chart's webhooks, and the table of the rule.
{
  const r = spawnSync(helm, ["template", "ipguard", join(root, "charts/ipguard"), "-n", "ipguard-system"], { encoding: "utf8" });
  const hooks = parseAllDocuments(r.stdout ?? "").map((d) => d.toJS()).filter((d) => d?.kind === "ValidatingWebhookConfiguration")
    .flatMap((v) => v.webhooks ?? []);
  const targets = [...new Set(hooks.map((h) => h.clientConfig?.service).filter(Boolean)
    .map((s) => `${s.name}.${s.namespace}.svc:${s.port ?? 443}`))];
  check(r.status === 0 && targets.length === 1, "the chart's webhooks call one Service", `${r.stderr} ${targets.join(", ")}`);
  const target = targets[0] ?? "";
  check(webhookKubeconfigs.length > 0, "the documentation has a webhook kubeconfig for the API server");
  for (const { where, doc } of webhookKubeconfigs) {
    const user = webhookUser(doc, target)?.user ?? {};
    check((user["client-certificate"] ?? user["client-certificate-data"]) !== undefined,
          `${where}: the API server presents a client certificate to ${target} (the chart's webhooks)`,
          `the entry it picks: ${JSON.stringify(webhookUser(doc, target))}`);
  }
  // docs/install.md's table of the rule: each entry name, alone, is picked for the chart's
  // Service; of two, the one in the earlier row.
  const lines = readFileSync(join(root, "docs/install.md"), "utf8").split("\n");
  const start = lines.findIndex((l) => /^\| entry name \|/.test(l));
  const names = [];
  for (let i = start + 2; start >= 0 && i < lines.length && lines[i].startsWith("|"); i++) {
    names.push(...[...lines[i].split("|")[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]));
  }
  check(names.length >= 5, "docs/install.md: the table of the entry names the API server tries", names.join(", "));
  const only = (...ns) => ({ users: ns.map((name) => ({ name, user: { token: name } })) });
  for (const [i, name] of names.entries()) {
    check(webhookUser(only(name), target)?.name === name, `docs/install.md: an entry named ${name} is picked for ${target}`);
    for (const later of names.slice(i + 1)) {
      check(webhookUser(only(later, name), target)?.name === name, `docs/install.md: ${name} is picked before ${later}`);
    }
  }
  check(webhookUser(only("ipguard-webhook.other.svc", "*.svc:8443"), target) === undefined,
        "the rule picks no entry of another host or port");
}

// 4. The Argo CD health check.
const KINDS = ["LogicalNetwork", "WorkloadCluster", "LoadBalancerPool", "IPReservation"];
check(configMaps.length === 1, "docs: one argocd-cm ConfigMap", `${configMaps.length}`);
const healthScripts = KINDS.map((k) => configMaps[0]?.doc.data?.[`resource.customizations.health.ipguard.io_${k}`]);
check(healthScripts.every((s) => typeof s === "string" && s === healthScripts[0]), "argocd-cm: one health check for the four kinds");

const lua = (value) => {
  if (value === null || value === undefined) return "nil";
  if (Array.isArray(value)) return `{${value.map(lua).join(", ")}}`;
  if (typeof value === "object") return `{${Object.entries(value).map(([k, v]) => `[${JSON.stringify(k)}] = ${lua(v)}`).join(", ")}}`;
  return typeof value === "string" ? JSON.stringify(value) : String(value);
};
const cond = (type, status, reason, message) =>
  ({ type, status, reason, message, lastTransitionTime: "2026-11-27T10:00:00Z", observedGeneration: 2 });
const wlc = (status, generation = 2) =>
  ({ apiVersion: "ipguard.io/v1alpha1", kind: "WorkloadCluster", metadata: { name: "prod", namespace: "team-a", generation }, ...(status ? { status } : {}) });
const conditions = (ready, conflicting, capacity) => ({ observedGeneration: 2, requiredAddresses: 7, conditions: [ready, conflicting, capacity] });
const noConflict = cond("Conflicting", "False", "NoConflict", "");
const fits = cond("CapacityExceeded", "False", "WithinCapacity", "");
const CASES = [
  ["no status yet", wlc(null), "Progressing", "Waiting for the ipguard controller"],
  ["status without conditions", wlc({ observedGeneration: 1 }), "Progressing", "Waiting for the ipguard controller"],
  ["the controller has not seen the latest generation",
    wlc({ ...conditions(cond("Ready", "True", "Valid", ""), noConflict, fits), observedGeneration: 1 }, 2),
    "Progressing", "The ipguard controller has not seen the latest change yet"],
  ["Ready=True", wlc(conditions(cond("Ready", "True", "Valid", ""), noConflict, fits)), "Healthy", ""],
  ["Ready=False, CapacityExceeded",
    wlc(conditions(cond("Ready", "False", "CapacityExceeded", "needs 207 addresses, 100 free in lnet-prod"), noConflict,
                   cond("CapacityExceeded", "True", "PoolTooSmall", "needs 207 addresses, 100 free in lnet-prod"))),
    "Degraded", "CapacityExceeded: needs 207 addresses, 100 free in lnet-prod"],
  ["Ready=False, InvalidSpec", wlc(conditions(cond("Ready", "False", "InvalidSpec", "spec.controlPlaneIP 10.10.0.300 is not an IP address"), noConflict, fits)),
    "Degraded", "InvalidSpec: spec.controlPlaneIP 10.10.0.300 is not an IP address"],
  ["Ready=False with Conflicting=True names the collision",
    wlc(conditions(cond("Ready", "False", "IPConflict", "collides with older objects; see the Conflicting condition"),
                   cond("Conflicting", "True", "IPConflict", "controlPlaneIP 10.10.0.21 of WorkloadCluster team-a/prod equals controlPlaneIP 10.10.0.21 of WorkloadCluster team-b/payments"), fits)),
    "Degraded", "IPConflict: controlPlaneIP 10.10.0.21 of WorkloadCluster team-a/prod equals controlPlaneIP 10.10.0.21 of WorkloadCluster team-b/payments"],
  ["Ready=Unknown", wlc(conditions(cond("Ready", "Unknown", "Pending", "waiting for the index"), noConflict, fits)), "Progressing", "waiting for the index"],
];
if (typeof healthScripts[0] === "string") {
  for (const [name, obj, status, message] of CASES) {
    const file = join(work, "health.lua");
    writeFileSync(file, `obj = ${lua(obj)}\nlocal check = assert(loadstring(${JSON.stringify(healthScripts[0])}))\n` +
                        `local hs = check()\nio.write(tostring(hs.status), "\\t", tostring(hs.message))\n`);
    const r = spawnSync("lua5.1", [file], { encoding: "utf8" });
    check(r.status === 0 && r.stdout === `${status}\t${message}`, `Argo CD health check: ${name}`,
          r.status === 0 ? `gave ${JSON.stringify(r.stdout)}, want ${JSON.stringify(`${status}\t${message}`)}` : (r.stderr || r.error?.message));
  }
}

// The Flux health check expressions, on the same statuses. As Flux's Kustomization API
// describes them: the object's top-level fields are the variables; inProgress, failed and
// current are tried in that order and the first that is true decides; when none is, or an
// expression cannot be evaluated (it reads status before there is one), the object is in
// progress and Flux waits.
const FLUX = { Progressing: "InProgress", Healthy: "Current", Degraded: "Failed" };
check(sameJson(fluxChecks.map((c) => c.kind).sort(), [...KINDS].sort()), "Flux healthCheckExprs: one entry for each of the four kinds",
      fluxChecks.map((c) => c.kind).join(", "));
const exprs = (c) => JSON.stringify([c.inProgress, c.failed, c.current]);
check(fluxChecks.every((c) => exprs(c) === exprs(fluxChecks[0])), "Flux healthCheckExprs: the same expressions for the four kinds");
function fluxStatus(c, obj) {
  for (const [expr, status] of [[c.inProgress, "InProgress"], [c.failed, "Failed"], [c.current, "Current"]]) {
    if (!expr) continue;
    let result;
    try {
      result = runCel(expr, Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, toCel(v)])));
    } catch (e) {
      if (/parse|syntax/i.test(e.message)) throw e;
      return "InProgress";
    }
    if (result === true) return status;
  }
  return "InProgress";
}
if (fluxChecks.length) {
  for (const [name, obj, argo] of CASES) {
    let got;
    try {
      got = fluxStatus(fluxChecks[0], obj);
    } catch (e) {
      got = `error: ${e.message}`;
    }
    check(got === FLUX[argo], `Flux healthCheckExprs: ${name}`, `gave ${got}, want ${FLUX[argo]}`);
  }
}

// 5. The jq filters of docs/ci.md on real reports.
check(jqFilters.length > 0, "the documentation has jq filters to run");
if (!ipguard) {
  check(false, "IPGUARD_BIN is not set: the jq filters of docs/ci.md need a real report");
} else {
  const reports = [];
  const broken = spawnSync(ipguard, ["check", "-o", "json", "--platform", "azurelocal", "--capacity-policy", "Enforce", join(root, "examples/broken")], { encoding: "utf8" });
  check(broken.status === 1, "ipguard check -o json examples/broken exits 1", `exit ${broken.status}: ${broken.stderr}`);
  reports.push(["examples/broken", broken.stdout]);
  const bad = join(work, "bad.yaml");
  writeFileSync(bad, "apiVersion: ipguard.io/v1alpha1\nkind: LogicalNetwork\nmetadata: {name: [\n");
  const unreadable = spawnSync(ipguard, ["check", "-o", "json", bad], { encoding: "utf8" });
  check(unreadable.status === 2, "ipguard check -o json on unreadable YAML exits 2", `exit ${unreadable.status}`);
  reports.push(["an unreadable file", unreadable.stdout]);
  for (const { where, flags, filter } of jqFilters) {
    let printed = false;
    for (const [name, report] of reports) {
      const r = spawnSync("jq", [...flags, filter], { input: report, encoding: "utf8" });
      // With -e, exit 1 means the filter's last output was false or null: an answer, not an error.
      const answered = r.status === 0 || (flags.includes("-e") && r.status === 1);
      check(answered, `${where}: jq ${flags.join(" ")} '${filter}' on the report of ${name}`, `exit ${r.status}: ${r.stderr.trim()}`);
      check(!/\bnull\b/.test(r.stdout), `${where}: jq '${filter}' prints no null on the report of ${name}`, r.stdout.trim());
      printed ||= r.stdout.trim().length > 0;
    }
    check(printed, `${where}: jq '${filter}' prints something on one of the reports`);
  }
}

rmSync(work, { recursive: true, force: true });
console.log(`docs: ${blocks.length} YAML blocks, ${objects} objects, ${valueSets.length} value sets, ${jqFilters.length} jq filters`);
finish();
