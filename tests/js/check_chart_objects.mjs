#!/usr/bin/env node
// Renders charts/ipguard with the real helm and checks what it renders as the API server
// would, and against what issue #5 asks of the chart. Without a cluster this is the closest
// to `helm install`: an object the API server would refuse, or a field it would drop, fails
// here.
//
//   node tests/js/check_chart_objects.mjs SOURCE_DIR
//
// IPGUARD_HELM names the helm binary (default SOURCE_DIR/.tools/helm, from scripts/setup.sh).
//
// For every value set below, for Kubernetes 1.26 and 1.30, with --include-crds:
//   1. Every object validates against the Kubernetes API's OpenAPI schema (kubernetes-models;
//      cert-manager's and prometheus-operator's for their kinds): types, enums, required.
//   2. No object has a field its API does not declare (the API server drops those, or
//      refuses them under strict field validation): walked through the models' type
//      declarations.
//   3. Every namespaced object is in the release namespace; every object has the chart's
//      identity labels.
// Then, on the renders, what the chart promises: two replicas with leader election, probes,
// requests, the restricted security context; --client-ca from a read-only ConfigMap volume
// only with webhook.clientCA, and the webhook's limits only when set; least-privilege RBAC; the two webhook
// configurations (policies, exclusions, sideEffects, versions, and matchConditions, whose
// CEL is run on sample Services); the PodDisruptionBudget; each certificate mode; the
// NetworkPolicy (off by default; the webhook port only from webhookFrom, metrics and probes
// only from metricsFrom, nothing else); the ServiceMonitor, and a PrometheusRule whose
// metrics the manager exports (or, named explicitly, the API server), with an alert for
// every replica gone (absent()), one per webhook the API server cannot call, and a
// runbook_url per alert that is a URL ending in an anchor of docs/operations.md.
// Exit 0 when every check passes, 1 otherwise.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { run as runCel } from "@bufbuild/cel";
import { parseAllDocuments } from "yaml";
import { sameJson as eq, toCel } from "./cel_values.mjs";
import { schemaProblems } from "./kube_schema.mjs";
import { check, finish } from "./report.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = process.argv[2] ?? join(here, "../..");
const helm = process.env.IPGUARD_HELM ?? join(root, ".tools/helm");
const chart = join(root, "charts/ipguard");
const NS = "ipguard-system";

if (!existsSync(helm)) {
  console.log(`FAIL no helm at ${helm}: run scripts/setup.sh, or set IPGUARD_HELM`);
  process.exit(1);
}

function render(flags, kube, crds = "--include-crds") {
  const out = execFileSync(helm, ["template", "ipguard", chart, "-n", NS, "--kube-version", kube, crds, ...flags],
                           { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HELM_CACHE_HOME: "/tmp/ipguard-helm-cache" } });
  return parseAllDocuments(out).map((d) => d.toJS()).filter((d) => d != null);
}

// ---------------------------------------------------------------------------------------
// 1 and 2: the API schemas (kube_schema.mjs).
// ---------------------------------------------------------------------------------------

async function validateObject(obj, where) {
  const id = `${where}: ${obj.kind} ${obj.metadata?.name}`;
  const problems = await schemaProblems(obj);
  check(problems.length === 0, id, problems.join("; "));
}

// ---------------------------------------------------------------------------------------
// The renders.
// ---------------------------------------------------------------------------------------

const METRICS_FROM = [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
                      { ipBlock: { cidr: "10.1.0.0/16" } }];
const SETS = {
  selfSigned: [],
  metallb: ["--set", "metallb.enabled=true"],
  certManager: ["--set", "certificates.mode=certManager"],
  certManagerIssuer: ["--set", "certificates.mode=certManager", "--set", "certificates.certManager.issuerRef.name=ca",
                      "--set", "certificates.certManager.issuerRef.kind=ClusterIssuer"],
  secret: ["--set", "certificates.mode=secret", "--set", "certificates.secretName=my-tls", "--set", "certificates.caBundle=Y2EK"],
  monitoring: ["--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true"],
  // Both webhooks' failure policies the other way round, and a runbook URL of one's own.
  monitoringFlipped: ["--set", "prometheusRule.enabled=true", "--set", "webhook.ipguard.failurePolicy=Ignore",
                      "--set", "webhook.services.failurePolicy=Fail",
                      "--set", "prometheusRule.runbookBaseURL=https://docs.example.com/ipguard/operations.html"],
  networkPolicyOpen: ["--set", "networkPolicy.enabled=true"],
  networkPolicy: ["--set", "networkPolicy.enabled=true", "--set", "networkPolicy.webhookFrom={10.0.0.0/28,fd00:10::/64}",
                  "--set-json", `networkPolicy.metricsFrom=${JSON.stringify(METRICS_FROM)}`],
  oneReplica: ["--set", "replicaCount=1", "--set", "leaderElection.enabled=false"],
  // Only the API server's client certificate is accepted, and the webhook's limits.
  clientCA: ["--set", "webhook.clientCA.configMap=ipguard-webhook-client-ca", "--set", "webhook.maxConnections=50",
             "--set", "webhook.maxHoldsPerRequester=8"],
  clientCAKey: ["--set", "certificates.mode=certManager", "--set", "webhook.clientCA.configMap=apiserver-ca",
                "--set", "webhook.clientCA.key=client-ca-file"],
};
const CLUSTER_SCOPED = new Set(["ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration", "CustomResourceDefinition"]);
const renders = {};
for (const [name, flags] of Object.entries(SETS)) {
  for (const kube of ["1.26.0", "1.30.0"]) {
    const docs = render(flags, kube);
    renders[`${name}@${kube}`] = docs;
    for (const obj of docs) {
      const where = `${name}@${kube}`;
      await validateObject(obj, where);
      const id = `${where}: ${obj.kind} ${obj.metadata?.name}`;
      check(typeof obj.metadata?.name === "string" && obj.metadata.name !== "", id, "no metadata.name");
      if (obj.kind === "CustomResourceDefinition") continue;  // crds/ carry no release labels
      if (CLUSTER_SCOPED.has(obj.kind)) check(obj.metadata.namespace === undefined, id, "a cluster-scoped object with a namespace");
      else check(obj.metadata.namespace === NS, id, `namespace ${obj.metadata.namespace}, not the release namespace ${NS}`);
      const labels = obj.metadata.labels ?? {};
      check(labels["app.kubernetes.io/name"] === "ipguard" && labels["app.kubernetes.io/instance"] === "ipguard" &&
            labels["app.kubernetes.io/managed-by"] === "Helm", id, "without the chart's identity labels");
    }
  }
}

const find = (docs, kind, name) => docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
const one = (docs, kind, name) => {
  const found = find(docs, kind, name);
  check(found.length === 1, `${kind}${name ? " " + name : ""}`, `${found.length} rendered, want 1`);
  return found[0] ?? {};
};

// ---------------------------------------------------------------------------------------
// The Deployment.
// ---------------------------------------------------------------------------------------

const base = renders["selfSigned@1.30.0"];
const deploy = one(base, "Deployment");
const pod = deploy.spec?.template?.spec ?? {};
const manager = (pod.containers ?? [])[0] ?? {};
const args = manager.args ?? [];
check(deploy.spec?.replicas === 2, "Deployment: 2 replicas", `replicas ${deploy.spec?.replicas}`);
check(args.includes("--leader-elect=true"), "Deployment: leader election on", args.join(" "));
check(manager.readinessProbe?.httpGet?.path === "/readyz" && manager.livenessProbe?.httpGet?.path === "/healthz",
      "Deployment: readiness /readyz and liveness /healthz probes");
check(manager.resources?.requests?.cpu && manager.resources?.requests?.memory, "Deployment: cpu and memory requests");
check(pod.securityContext?.runAsNonRoot === true && pod.securityContext?.seccompProfile?.type === "RuntimeDefault",
      "Deployment: pod runs as non-root with the RuntimeDefault seccomp profile");
const sc = manager.securityContext ?? {};
check(sc.runAsNonRoot === true && sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false &&
      sc.privileged === false && eq(sc.capabilities?.drop, ["ALL"]) && !sc.capabilities?.add &&
      sc.seccompProfile?.type === "RuntimeDefault",
      "Deployment: restricted container security context", JSON.stringify(sc));
const mounted = new Set((manager.volumeMounts ?? []).map((m) => m.mountPath));
check(mounted.has("/tmp"), "Deployment: /tmp is writable (an emptyDir) under the read-only root filesystem");
check(eq(deploy.spec?.selector?.matchLabels, { "app.kubernetes.io/name": "ipguard", "app.kubernetes.io/instance": "ipguard" }) &&
      Object.entries(deploy.spec.selector.matchLabels).every(([k, v]) => deploy.spec.template.metadata.labels[k] === v),
      "Deployment: the selector matches the pod labels");
const one1 = renders["oneReplica@1.30.0"];
const oneArgs = one(one1, "Deployment").spec?.template?.spec?.containers?.[0]?.args ?? [];
check(oneArgs.includes("--leader-elect=false"), "one replica: leader election off", oneArgs.join(" "));
check(find(one1, "PodDisruptionBudget").length === 0, "one replica: no PodDisruptionBudget (it would block every drain)");

// ---------------------------------------------------------------------------------------
// Service, PodDisruptionBudget.
// ---------------------------------------------------------------------------------------

const svc = one(base, "Service");
const podLabels = deploy.spec?.template?.metadata?.labels ?? {};
// A selector that picks the manager pods: not empty (an empty one picks every pod, or, on a
// Service, none), and every label of it on the pods.
const selects = (selector) =>
  Object.keys(selector ?? {}).length > 0 && Object.entries(selector).every(([k, v]) => podLabels[k] === v);
check(selects(svc.spec?.selector), "Service: selects the manager pods");
const webhookPort = (svc.spec?.ports ?? []).find((p) => p.name === "webhook");
check(webhookPort?.port === 443 && webhookPort?.targetPort === "webhook" &&
      (manager.ports ?? []).some((p) => p.name === "webhook"), "Service: port 443 to the container's webhook port");
const pdb = one(base, "PodDisruptionBudget");
check(pdb.spec?.minAvailable === 1 && selects(pdb.spec?.selector?.matchLabels), "PodDisruptionBudget: minAvailable 1 of the manager pods");

// ---------------------------------------------------------------------------------------
// RBAC: least privilege.
// ---------------------------------------------------------------------------------------

const vwcNames = find(base, "ValidatingWebhookConfiguration").map((v) => v.metadata.name).sort();
// The agent's role in the management cluster: exactly what API.md gives it, bound to nobody.
{
  const agent = one(base, "ClusterRole", "ipguard-agent");
  const grants = new Set((agent?.rules ?? []).flatMap((r) =>
    r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))));
  const want = [
    ...["logicalnetworks", "workloadclusters", "loadbalancerpools", "ipreservations"].flatMap((r) => ["get", "list", "watch"].map((v) => `ipguard.io/${r}:${v}`)),
    ...["create", "get", "list", "watch", "delete"].map((v) => `ipguard.io/ipclaims:${v}`),
    ...["create", "update", "delete"].map((v) => `ipguard.io/loadbalancerpools:${v}`),
  ];
  check(want.every((g) => grants.has(g)) && grants.size === want.length,
        "ClusterRole ipguard-agent: read the plan, keep IPClaims, mirror LoadBalancerPools, nothing else", [...grants].join(" "));
  check(!find(base, "ClusterRoleBinding").some((b) => b.roleRef?.name === "ipguard-agent"), "ClusterRole ipguard-agent is bound to nobody");
}
for (const [setName, docs] of Object.entries(renders)) {
  for (const role of find(docs, "ClusterRole")) {
    for (const rule of role.rules ?? []) {
      check(!(rule.resources ?? []).some((r) => r === "secrets" || r === "*") && !(rule.verbs ?? []).includes("*"),
            `${setName}: ClusterRole ${role.metadata.name} grants no Secrets and no wildcard`, JSON.stringify(rule));
      if ((rule.resources ?? []).includes("validatingwebhookconfigurations")) {
        const names = (rule.resourceNames ?? []).slice().sort();
        const own = find(docs, "ValidatingWebhookConfiguration").map((v) => v.metadata.name).sort();
        check(names.length > 0 && names.every((n) => own.includes(n)),
              `${setName}: webhook configurations only by name`, JSON.stringify(rule));
      }
    }
  }
  for (const role of find(docs, "Role")) {
    for (const rule of role.rules ?? []) {
      check(!(rule.verbs ?? []).includes("*"), `${setName}: Role ${role.metadata.name} grants no wildcard verb`, JSON.stringify(rule));
      const resources = rule.resources ?? [];
      if (!resources.includes("secrets") && !resources.includes("*")) continue;
      const reads = (rule.verbs ?? []).filter((v) => v !== "create");
      check(reads.length === 0 || (rule.resourceNames ?? []).length > 0,
            `${setName}: Role ${role.metadata.name} reads Secrets only by name`, JSON.stringify(rule));
    }
  }
  const sa = find(docs, "Deployment")[0]?.spec?.template?.spec?.serviceAccountName;
  for (const binding of [...find(docs, "ClusterRoleBinding"), ...find(docs, "RoleBinding")]) {
    check(binding.subjects?.length === 1 && binding.subjects[0].kind === "ServiceAccount" && binding.subjects[0].name === sa &&
          binding.subjects[0].namespace === NS, `${setName}: ${binding.kind} ${binding.metadata.name} binds only the manager's ServiceAccount`);
    check(find(docs, binding.roleRef.kind, binding.roleRef.name).length === 1,
          `${setName}: ${binding.kind} ${binding.metadata.name} refers to a rendered ${binding.roleRef.kind}`);
  }
}
check(eq(vwcNames, ["ipguard-resources", "ipguard-services"]), "two webhook configurations", vwcNames.join(", "));

// ---------------------------------------------------------------------------------------
// The webhook configurations.
// ---------------------------------------------------------------------------------------

for (const kube of ["1.26.0", "1.30.0"]) {
  const docs = renders[`selfSigned@${kube}`];
  const resourceHooks = one(docs, "ValidatingWebhookConfiguration", "ipguard-resources").webhooks ?? [];
  const resources = resourceHooks[0] ?? {};
  const services = one(docs, "ValidatingWebhookConfiguration", "ipguard-services").webhooks?.[0] ?? {};
  const kinds = new Set(resourceHooks.flatMap((h) => (h.rules ?? []).flatMap((r) => r.apiGroups.includes("ipguard.io") ? r.resources : [])));
  check(["logicalnetworks", "workloadclusters", "loadbalancerpools", "ipreservations", "ipclaims"].every((k) => kinds.has(k)),
        `${kube}: the resources webhooks cover ipguard's five kinds`, [...kinds].join(", "));
  // The claims the manager writes while an admission waits on them: from 1.28 the API server
  // skips the call (a match condition on the manager's ServiceAccount); before, the manager
  // admits its own at once.
  const claimHook = resourceHooks.find((h) => (h.rules ?? []).some((r) => r.resources.includes("ipclaims"))) ?? {};
  const self = `system:serviceaccount:${NS}:ipguard`;
  const skipsSelf = (claimHook.matchConditions ?? []).some((c) => c.expression.includes(`request.userInfo.username != '${self}'`));
  check(kube === "1.26.0" ? claimHook === resources && !claimHook.matchConditions : claimHook.name === "claims.ipguard.io" && skipsSelf,
        `${kube}: IPClaims written by ipguard ${kube === "1.26.0" ? "reach the resources webhook" : "skip the webhook (matchConditions)"}`,
        JSON.stringify(claimHook));
  check(claimHook.failurePolicy === "Fail", `${kube}: IPClaims fail closed`, claimHook.failurePolicy);
  check(resources.failurePolicy === "Fail", `${kube}: ipguard's kinds fail closed`, resources.failurePolicy);
  check(services.failurePolicy === "Ignore", `${kube}: Services fail open`, services.failurePolicy);
  check((services.rules ?? []).some((r) => eq(r.apiGroups, [""]) && r.resources.includes("services")), `${kube}: the Services webhook covers Services`);
  for (const [name, hook] of [["resources", resources], ["services", services]]) {
    check(hook.sideEffects === "None" && eq(hook.admissionReviewVersions, ["v1"]),
          `${kube}: ${name} webhook: sideEffects None, admissionReviewVersions [v1]`);
    const excluded = (hook.namespaceSelector?.matchExpressions ?? [])
      .filter((e) => e.key === "kubernetes.io/metadata.name" && e.operator === "NotIn").flatMap((e) => e.values);
    check(excluded.includes("kube-system") && excluded.includes(NS), `${kube}: ${name} webhook excludes kube-system and ${NS}`,
          JSON.stringify(hook.namespaceSelector));
    check(hook.clientConfig?.service?.name === svc.metadata?.name && hook.clientConfig?.service?.namespace === NS &&
          hook.clientConfig?.service?.port === 443, `${kube}: ${name} webhook calls the chart's Service`);
    check(hook.clientConfig?.caBundle === undefined, `${kube}: ${name} webhook: no caBundle in selfSigned mode (the manager writes it)`);
  }
  check(resources.matchConditions === undefined, `${kube}: no matchConditions on ipguard's kinds (every write is judged)`);
  if (kube === "1.26.0") {
    check(services.matchConditions === undefined, "1.26: no matchConditions (the field does not exist before 1.27)");
  } else {
    const conditions = services.matchConditions ?? [];
    check(conditions.length === 1, "1.30: one matchCondition on Services");
    // The API server runs it with `object` bound to the Service under review.
    const admits = (service) => conditions.every((c) => runCel(c.expression, { object: toCel(service) }) === true);
    check(admits({ spec: { type: "LoadBalancer", ports: [{ port: 80 }] } }), "1.30: the matchCondition sends LoadBalancer Services");
    check(!admits({ spec: { type: "ClusterIP" } }), "1.30: the matchCondition skips ClusterIP Services");
    check(!admits({ spec: { type: "NodePort" } }), "1.30: the matchCondition skips NodePort Services");
    check(!admits({ spec: {} }), "1.30: the matchCondition skips a Service without a type (ClusterIP by default)");
  }
}


// ---------------------------------------------------------------------------------------
// Certificate modes.
// ---------------------------------------------------------------------------------------

{
  const docs = renders["certManager@1.30.0"];
  const cert = one(docs, "Certificate");
  const dns = cert.spec?.dnsNames ?? [];
  check(dns.includes(`${svc.metadata.name}.${NS}.svc`), "certManager: the Certificate names the Service's DNS name", dns.join(", "));
  const issuer = cert.spec?.issuerRef ?? {};
  check(find(docs, issuer.kind ?? "Issuer", issuer.name).length === 1, "certManager: without an issuerRef the chart renders the Issuer it names");
  for (const v of find(docs, "ValidatingWebhookConfiguration")) {
    check(v.metadata.annotations?.["cert-manager.io/inject-ca-from"] === `${NS}/${cert.metadata.name}`,
          `certManager: ${v.metadata.name} takes its CA from the Certificate`);
  }
  const volumes = one(docs, "Deployment").spec?.template?.spec?.volumes ?? [];
  check(volumes.some((v) => v.secret?.secretName === cert.spec?.secretName), "certManager: the pods mount the Certificate's Secret");
  const dargs = one(docs, "Deployment").spec?.template?.spec?.containers?.[0]?.args ?? [];
  check(!dargs.includes("--self-signed"), "certManager: the manager does not make its own certificates");

  const withIssuer = renders["certManagerIssuer@1.30.0"];
  check(one(withIssuer, "Certificate").spec?.issuerRef?.kind === "ClusterIssuer" && find(withIssuer, "Issuer").length === 0,
        "certManager with an issuerRef: uses it and renders no Issuer");
}
{
  const docs = renders["secret@1.30.0"];
  for (const v of find(docs, "ValidatingWebhookConfiguration")) {
    check(v.webhooks.every((w) => w.clientConfig?.caBundle === "Y2EK"), `secret: ${v.metadata.name} carries the given caBundle`);
  }
  const volumes = one(docs, "Deployment").spec?.template?.spec?.volumes ?? [];
  check(volumes.some((v) => v.secret?.secretName === "my-tls"), "secret: the pods mount the given Secret");
  check(find(docs, "Certificate").length === 0 && find(docs, "Secret").length === 0, "secret: the chart renders no certificate and no Secret");
}
for (const [setName, docs] of Object.entries(renders)) {
  check(find(docs, "Secret").length === 0, `${setName}: no Secret in the templates (GitOps tools would see a new one each render)`);
}
{
  const args = one(renders["selfSigned@1.30.0"], "Deployment").spec?.template?.spec?.containers?.[0]?.args ?? [];
  const configs = args.flatMap((a, i) => (a === "--webhook-config" ? [args[i + 1]] : [])).sort();
  check(args.includes("--self-signed") && eq(configs, vwcNames), "selfSigned: the manager patches exactly the chart's two configurations",
        configs.join(", "));
}

// ---------------------------------------------------------------------------------------
// Client certificates (webhook.clientCA) and the webhook's limits.
// ---------------------------------------------------------------------------------------

const flagValue = (args, flag) => { const i = args.indexOf(flag); return i >= 0 ? args[i + 1] : undefined; };
for (const [setName, docs] of Object.entries(renders)) {
  const spec = find(docs, "Deployment")[0]?.spec?.template?.spec ?? {};
  const c = (spec.containers ?? [])[0] ?? {};
  const dargs = c.args ?? [];
  const flags = SETS[setName.split("@")[0]];
  const configMap = flags.find((f) => f.startsWith("webhook.clientCA.configMap="))?.split("=")[1];
  const key = flags.find((f) => f.startsWith("webhook.clientCA.key="))?.split("=")[1] ?? "ca.crt";
  const file = flagValue(dargs, "--client-ca");
  const caVolumes = (spec.volumes ?? []).filter((v) => v.configMap);
  if (!configMap) {
    check(file === undefined && caVolumes.length === 0, `${setName}: no --client-ca and no ConfigMap volume without webhook.clientCA`,
          JSON.stringify({ file, caVolumes }));
  } else {
    // The file passed is the ConfigMap's key, mounted read-only: the kubelet, not the
    // manager, reads the ConfigMap (no RBAC for it), and keeps the file up to date.
    const mount = (c.volumeMounts ?? []).find((m) => file?.startsWith(m.mountPath + "/"));
    const volume = (spec.volumes ?? []).find((v) => v.name === mount?.name);
    const item = (volume?.configMap?.items ?? []).find((i) => `${mount.mountPath}/${i.path}` === file);
    check(typeof file === "string" && file.startsWith("/"), `${setName}: the manager runs with --client-ca <file>`, dargs.join(" "));
    check(mount?.readOnly === true && mount.subPath === undefined,
          `${setName}: --client-ca's file is on a read-only mount, not a subPath (a subPath never sees a change)`, JSON.stringify(mount));
    check(volume?.configMap?.name === configMap && item?.key === key && volume.configMap.optional !== true,
          `${setName}: that mount is key ${key} of ConfigMap ${configMap} (required: no pod starts without it)`, JSON.stringify(volume));
    check(!(c.volumeMounts ?? []).some((m) => m !== mount && (m.mountPath === mount?.mountPath || m.mountPath.startsWith(mount?.mountPath + "/"))),
          `${setName}: nothing else is mounted over the client CA`);
    const grants = [...find(docs, "ClusterRole"), ...find(docs, "Role")].flatMap((r) => r.rules ?? [])
      .filter((r) => (r.resources ?? []).includes("configmaps"));
    check(grants.length === 0, `${setName}: the manager gets no access to ConfigMaps for it`, JSON.stringify(grants));
  }
  const limit = (name) => flags.find((f) => f.startsWith(`webhook.${name}=`))?.split("=")[1];
  check(flagValue(dargs, "--max-connections") === limit("maxConnections") &&
        flagValue(dargs, "--max-holds-per-requester") === limit("maxHoldsPerRequester"),
        `${setName}: --max-connections and --max-holds-per-requester only when set to other than the manager's defaults`,
        dargs.join(" "));
}

// ---------------------------------------------------------------------------------------
// NetworkPolicy.
// ---------------------------------------------------------------------------------------

{
  const containerPort = (name) => (manager.ports ?? []).find((p) => p.name === name)?.containerPort;
  const webhookTarget = containerPort(webhookPort?.targetPort) ?? webhookPort?.targetPort;
  for (const [setName, cidrs, peers] of [["networkPolicy", ["10.0.0.0/28", "fd00:10::/64"], METRICS_FROM],
                                         ["networkPolicyOpen", [], []]]) {
    for (const kube of ["1.26.0", "1.30.0"]) {
      const where = `${setName}@${kube}`;
      const np = one(renders[where], "NetworkPolicy");
      const rules = np.spec?.ingress ?? [];
      check(selects(np.spec?.podSelector?.matchLabels) && Object.keys(np.spec.podSelector).length === 1,
            `${where}: NetworkPolicy selects the manager pods`);
      check(eq(np.spec?.policyTypes, ["Ingress"]) && np.spec?.egress === undefined,
            `${where}: NetworkPolicy restricts ingress only (the manager must reach the API server)`);
      // A rule without ports opens every port; a port must be one the container serves.
      check(rules.every((r) => (r.ports ?? []).length > 0), `${where}: every ingress rule names its ports`);
      const served = new Set(["webhook", "metrics", "probes"].map(containerPort));
      check(rules.every((r) => r.ports.every((p) => served.has(p.port) && p.protocol === "TCP")),
            `${where}: the rules open only the container's webhook, metrics and probe ports`, JSON.stringify(rules));
      const opening = (port) => rules.filter((r) => r.ports.some((p) => p.port === port));
      const hook = opening(webhookTarget);
      check(hook.length === 1, `${where}: one rule opens the port the Service's port 443 leads to (${webhookTarget})`);
      if (cidrs.length) {
        check(eq(hook[0]?.from, cidrs.map((cidr) => ({ ipBlock: { cidr } }))),
              `${where}: the webhook port only from networkPolicy.webhookFrom`, JSON.stringify(hook[0]?.from));
      } else {
        check(hook[0] !== undefined && hook[0].from === undefined,
              `${where}: with webhookFrom empty the webhook port is open to any address (the API server's is unknown)`);
      }
      for (const port of ["metrics", "probes"].map(containerPort)) {
        const open = opening(port);
        if (peers.length) {
          check(open.length === 1 && eq(open[0].from, peers), `${where}: port ${port} only from networkPolicy.metricsFrom`,
                JSON.stringify(open));
        } else {
          check(open.length === 0, `${where}: with metricsFrom empty port ${port} is closed (the kubelet's probes come from the node)`);
        }
      }
    }
  }
  for (const [setName, docs] of Object.entries(renders)) {
    check(find(docs, "NetworkPolicy").length === (setName.startsWith("networkPolicy") ? 1 : 0),
          `${setName}: a NetworkPolicy only with networkPolicy.enabled`);
  }
}

// ---------------------------------------------------------------------------------------
// ServiceMonitor and PrometheusRule.
// ---------------------------------------------------------------------------------------

// The metric names a PromQL expression reads: identifiers that are not functions,
// aggregations, keywords, label names or values, or durations.
function promMetrics(expr) {
  const bare = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, " ").replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/(?<![\w:])[0-9]+(?:ms|s|m|h|d|w|y)\b/g, " ").replace(/(?<![\w:])[0-9.]+(?:e[+-]?[0-9]+)?/gi, " ");
  const keywords = new Set(["and", "or", "unless", "bool", "offset", "inf", "nan"]);
  return [...bare.matchAll(/(?<![\w:])[A-Za-z_:][A-Za-z0-9_:]*(?![\w:]|\s*\()/g)].map((m) => m[0])
    .filter((t) => !keywords.has(t.toLowerCase()));
}
// Every selector of METRIC in expr, as {label: value} (equality matchers only).
function selectors(expr, metric) {
  return [...expr.matchAll(new RegExp(`\\b${metric}\\{([^}]*)\\}`, "g"))]
    .map((m) => Object.fromEntries([...m[1].matchAll(/(\w+)\s*=\s*"([^"]*)"/g)].map((l) => [l[1], l[2]])));
}

// The metrics of the API server that the alerts may read, as kube-apiserver 1.26 names and
// labels them (tests/e2e/chart.sh makes the API server count both and checks the series):
// calls to a webhook that failed, refused (Fail) or let through (Ignore). They are the API
// server's, not the manager's, so they are listed here instead of found in its source.
const APISERVER_METRICS = {
  apiserver_admission_webhook_rejection_count: "Fail",
  apiserver_admission_webhook_fail_open_count: "Ignore",
};

// docs/operations.md's anchors, as GitHub and most renderers make them from headings.
const opsHeadings = new Map();
for (const line of readFileSync(join(root, "docs/operations.md"), "utf8").split("\n")) {
  const h = line.match(/^#{1,6}\s+(.*?)\s*$/);
  if (h) opsHeadings.set(h[1].toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-"), h[1]);
}
const defaultRunbook = parseAllDocuments(readFileSync(join(chart, "values.yaml"), "utf8"))[0].toJS().prometheusRule.runbookBaseURL;

const exported = new Set();
for (const dir of ["cmd", "kube", "webhook", "controller"]) {
  for (const f of readdirSync(join(root, dir)).filter((n) => n.endsWith(".cc"))) {
    for (const [, m] of readFileSync(join(root, dir, f), "utf8").matchAll(/Describe\(\s*"([a-z_]+)"/g)) exported.add(m);
  }
}

{
  const docs = renders["monitoring@1.30.0"];
  const sm = one(docs, "ServiceMonitor");
  const svcLabels = one(docs, "Service").metadata?.labels ?? {};
  const smSelector = sm.spec?.selector?.matchLabels ?? {};
  check(Object.keys(smSelector).length > 0 && Object.entries(smSelector).every(([k, v]) => svcLabels[k] === v),
        "ServiceMonitor: selects the chart's Service");
  check((sm.spec?.endpoints ?? []).every((e) => (svc.spec?.ports ?? []).some((p) => p.name === e.port)),
        "ServiceMonitor: scrapes a port the Service has");
}
for (const [setName, runbookBase] of [["monitoring", defaultRunbook],
                                      ["monitoringFlipped", "https://docs.example.com/ipguard/operations.html"]]) {
  for (const kube of ["1.26.0", "1.30.0"]) {
    const where = `${setName}@${kube}`;
    const docs = renders[where];
    const alerts = (one(docs, "PrometheusRule").spec?.groups ?? []).flatMap((g) => g.rules ?? []);
    const names = alerts.map((a) => a.alert);
    for (const want of ["IPGuardPoolNearlyFull", "IPGuardConflicts", "IPGuardWebhookErrors", "IPGuardNoLeader",
                        "IPGuardInformersNotSynced", "IPGuardWebhookUnreachable", "IPGuardServiceWebhookUnreachable"]) {
      check(names.includes(want), `${where}: PrometheusRule: alert ${want}`, names.join(", "));
    }
    // Every metric an alert reads is one the manager describes, or one of the API server's
    // listed above.
    for (const a of alerts) {
      const metrics = promMetrics(a.expr);
      check(metrics.length > 0, `${where}: ${a.alert} reads a metric`, a.expr);
      for (const m of metrics) {
        check(exported.has(m) || m in APISERVER_METRICS, `${where}: ${a.alert}: ${m} is exported by the manager or is the API server's`,
              [...exported].join(", "));
      }
      // A runbook per alert: an absolute URL whose anchor is the alert's heading in docs/operations.md.
      const url = a.annotations?.runbook_url ?? "";
      const [page, anchor] = url.split("#");
      check(/^https?:\/\//.test(url) && page === runbookBase && opsHeadings.get(anchor) === a.alert,
            `${where}: ${a.alert}: runbook_url is ${runbookBase}#<its heading in docs/operations.md>`, url);
    }
    // Every replica gone is an alert too: max() of no series is no series, so absent().
    const noLeader = alerts.find((a) => a.alert === "IPGuardNoLeader")?.expr ?? "";
    const leaderSelectors = new Set([...noLeader.matchAll(/ipguard_leader(\{[^}]*\})?/g)].map((m) => m[1] ?? ""));
    check(/absent\(\s*ipguard_leader/.test(noLeader) && leaderSelectors.size === 1,
          `${where}: IPGuardNoLeader fires when no replica is scraped (absent() of the same series)`, noLeader);
    // One alert per webhook the API server cannot call, reading the metric its failurePolicy
    // moves, filtered on that webhook's name.
    for (const vwc of find(docs, "ValidatingWebhookConfiguration")) {
      for (const hook of vwc.webhooks ?? []) {
        const metric = Object.keys(APISERVER_METRICS).find((m) => APISERVER_METRICS[m] === hook.failurePolicy);
        const covering = alerts.filter((a) => selectors(a.expr, metric).some((l) => l.name === hook.name &&
          l.type === "validating" && (hook.failurePolicy === "Ignore" || l.error_type === "calling_webhook_error")));
        check(covering.length === 1, `${where}: one alert when the API server cannot call ${hook.name} (failurePolicy ${hook.failurePolicy}: ${metric})`,
              alerts.map((a) => a.expr).join(" | "));
      }
    }
    for (const a of alerts) {
      for (const m of Object.keys(APISERVER_METRICS)) {
        const webhookNames = find(docs, "ValidatingWebhookConfiguration").flatMap((v) => (v.webhooks ?? []).map((w) => w.name));
        for (const l of selectors(a.expr, m)) {
          check(webhookNames.includes(l.name), `${where}: ${a.alert}: ${m} is filtered on one of the chart's webhooks`, JSON.stringify(l));
        }
      }
    }
  }
}
for (const [setName, docs] of Object.entries(renders)) {
  const flags = SETS[setName.split("@")[0]].join(" ");
  check(find(docs, "ServiceMonitor").length === (flags.includes("serviceMonitor.enabled=true") ? 1 : 0) &&
        find(docs, "PrometheusRule").length === (flags.includes("prometheusRule.enabled=true") ? 1 : 0),
        `${setName}: ServiceMonitor and PrometheusRule only when enabled`);
  check(find(docs, "CustomResourceDefinition").length === 5, `${setName}: --include-crds gives the five CRDs`);
}

// ---------------------------------------------------------------------------------------
// mode: agent, installed with --skip-crds in a workload cluster.
// ---------------------------------------------------------------------------------------

const AGENT = ["--set", "mode=agent", "--set", "agent.clusterName=edge-1", "--set", "agent.planKubeconfig.secretName=plan"];
const AGENT_SETS = {
  agent: AGENT,
  agentFull: [...AGENT, "--set", "agent.clusterRef=team-a/prod", "--set", "agent.planKubeconfig.key=config",
              "--set", "metallb.enabled=true", "--set", "prometheusRule.enabled=true", "--set", "serviceMonitor.enabled=true"],
};
for (const [name, flags] of Object.entries(AGENT_SETS)) {
  for (const kube of ["1.26.0", "1.30.0"]) {
    const where = `${name}@${kube}`;
    const docs = render(flags, kube, "--skip-crds");
    const full = name === "agentFull";
    for (const obj of docs) {
      await validateObject(obj, where);
      const id = `${where}: ${obj.kind} ${obj.metadata?.name}`;
      if (CLUSTER_SCOPED.has(obj.kind)) check(obj.metadata.namespace === undefined, id, "a cluster-scoped object with a namespace");
      else check(obj.metadata.namespace === NS, id, `namespace ${obj.metadata.namespace}`);
    }
    check(find(docs, "CustomResourceDefinition").length === 0, `${where}: no CRD`);
    const dep = one(docs, "Deployment");
    const podSpec = dep?.spec?.template?.spec ?? {};
    const c = (podSpec.containers ?? [])[0] ?? {};
    const args = c.args ?? [];
    check(args[0] === "agent", `${where}: the pods run ipguard agent`, args.join(" "));
    check(flagValue(args, "--cluster-name") === "edge-1", `${where}: --cluster-name from agent.clusterName`);
    check(full ? flagValue(args, "--cluster-ref") === "team-a/prod" : !args.includes("--cluster-ref"),
          `${where}: --cluster-ref only from agent.clusterRef`, args.join(" "));
    check(flagValue(args, "--lease-name") === "ipguard-agent", `${where}: the agent's own Lease`);
    // The management cluster's kubeconfig: the Secret's key, mounted read-only where --plan-kubeconfig points.
    const planPath = flagValue(args, "--plan-kubeconfig") ?? "";
    const vol = (podSpec.volumes ?? []).find((v) => v.secret?.secretName === "plan");
    const mount = (c.volumeMounts ?? []).find((m) => m.name === vol?.name);
    const item = (vol?.secret?.items ?? [])[0] ?? {};
    check(vol && mount?.readOnly === true && item.key === (full ? "config" : "kubeconfig") &&
          planPath === `${mount.mountPath}/${item.path}`,
          `${where}: --plan-kubeconfig is the Secret's key, mounted read-only`, JSON.stringify({ planPath, vol, mount }));
    // In its own cluster the agent reads Services (and MetalLB pools) and writes events: nothing of ipguard.io.
    const rules = find(docs, "ClusterRole").flatMap((r) => r.rules ?? []);
    check(!rules.some((r) => (r.apiGroups ?? []).includes("ipguard.io")), `${where}: no ipguard.io rule in the workload cluster`);
    check(find(docs, "ClusterRole").map((r) => r.metadata.name).join() === "ipguard-agent",
          `${where}: one ClusterRole, the agent's`, find(docs, "ClusterRole").map((r) => r.metadata.name).join());
    const grants = (group, resource, verb) => rules.some((r) => (r.apiGroups ?? []).includes(group) &&
      (r.resources ?? []).includes(resource) && (r.verbs ?? []).includes(verb));
    check(["get", "list", "watch"].every((v) => grants("", "services", v)) && grants("events.k8s.io", "events", "create"),
          `${where}: Services read, events written`);
    check(["list", "watch"].every((v) => grants("metallb.io", "ipaddresspools", v)) === full,
          `${where}: MetalLB pools read only with metallb.enabled`);
    // Webhooks: Services, and MetalLB pools with metallb.enabled; nothing of ipguard.io, no claims webhook.
    const hooks = find(docs, "ValidatingWebhookConfiguration").flatMap((v) => v.webhooks ?? []);
    const resources = hooks.flatMap((h) => (h.rules ?? []).flatMap((r) => r.resources ?? [])).sort();
    check(JSON.stringify(resources) === JSON.stringify(full ? ["ipaddresspools", "services"] : ["services"]),
          `${where}: the agent's webhooks judge Services${full ? " and MetalLB pools" : ""} only`, resources.join());
    const configs = find(docs, "ValidatingWebhookConfiguration").map((v) => v.metadata.name).sort();
    const patched = args.flatMap((a, i) => (args[i - 1] === "--webhook-config" ? [a] : [])).sort();
    check(JSON.stringify(configs) === JSON.stringify(patched), `${where}: --webhook-config names each rendered configuration`,
          `${configs} vs ${patched}`);
    if (full) {
      const alerts = (one(docs, "PrometheusRule").spec?.groups ?? []).flatMap((g) => g.rules ?? []);
      const plan = alerts.find((a) => a.alert === "IPGuardPlanUnreachable");
      check(plan && promMetrics(plan.expr).every((m) => exported.has(m)) &&
            opsHeadings.get((plan.annotations?.runbook_url ?? "").split("#")[1]) === "IPGuardPlanUnreachable",
            `${where}: IPGuardPlanUnreachable reads an exported metric and has its runbook`, JSON.stringify(plan));
      check(!alerts.some((a) => a.alert === "IPGuardClaimWebhookUnreachable"), `${where}: no claims webhook, no alert for it`);
    }
  }
}
for (const [missing, flags] of [["agent.clusterName", ["--set", "mode=agent", "--set", "agent.planKubeconfig.secretName=plan"]],
                                ["agent.planKubeconfig.secretName", ["--set", "mode=agent", "--set", "agent.clusterName=edge-1"]],
                                ["a DNS-1123 label", ["--set", "mode=agent", "--set", "agent.clusterName=Edge_1", "--set", "agent.planKubeconfig.secretName=p"]]]) {
  let refused = "";
  try { render(flags, "1.30.0"); } catch (e) { refused = String(e.stderr ?? e); }
  check(refused !== "" && (missing.startsWith("a ") || refused.includes(missing)), `mode=agent without ${missing} is refused at install`, refused);
}
check(!find(renders["selfSigned@1.30.0"], "Deployment")[0]?.spec?.template?.spec?.containers?.[0]?.args?.includes("--plan-kubeconfig"),
      "manager mode: no agent flags");

console.log(`chart objects: ${Object.keys(renders).length} renders, ${Object.values(renders).flat().length} objects`);
finish();
