#!/usr/bin/env bash
# Checks charts/ipguard with the real Helm 3 binary (scripts/setup.sh puts it in .tools/):
#   - `helm lint --strict` is clean for each certificate mode and the optional parts
#     (MetalLB, monitoring, NetworkPolicy, ...);
#   - `helm template` renders each of them for Kubernetes 1.26 and 1.30, twice, to the same
#     bytes (GitOps tools must see no drift); what it renders is checked object by object by
#     tests/js/check_chart_objects.mjs;
#   - values.schema.json and the templates' `required`/`fail` refuse what they must, with
#     their message;
#   - the flags the Deployment passes are ones the binary accepts (with IPGUARD_BIN set);
#     webhook.maxConnections and webhook.maxHoldsPerRequester default to the binary's
#     defaults and are passed only when they differ (the default render stays the same);
#   - `helm template --include-crds` carries exactly the files of crds/, and the chart packs.
#
#   tests/chart/helm_chart.sh SOURCE_DIR WORK_DIR
#
# IPGUARD_HELM names another helm binary (default: SOURCE_DIR/.tools/helm).
set -euo pipefail
root=$1
work=$2
helm=${IPGUARD_HELM:-$root/.tools/helm}
chart="$root/charts/ipguard"
rm -rf "$work"
mkdir -p "$work"
if [ ! -x "$helm" ]; then
  echo "FAIL: no helm at $helm: run scripts/setup.sh, or set IPGUARD_HELM"
  exit 1
fi
echo "using $("$helm" version --short)"
export HELM_CACHE_HOME="$work/cache" HELM_CONFIG_HOME="$work/config" HELM_DATA_HOME="$work/data"

fail=0
# Every value set the chart must accept: name, then --set flags.
SETS=(
  "selfSigned|"
  "selfSigned-metallb|--set metallb.enabled=true"
  "certManager|--set certificates.mode=certManager"
  "certManager-issuer|--set certificates.mode=certManager --set certificates.certManager.issuerRef.name=ca --set certificates.certManager.issuerRef.kind=ClusterIssuer"
  "secret|--set certificates.mode=secret --set certificates.secretName=my-tls --set certificates.caBundle=Y2EK"
  "monitoring|--set serviceMonitor.enabled=true --set prometheusRule.enabled=true"
  "monitoring-ignore|--set prometheusRule.enabled=true --set webhook.ipguard.failurePolicy=Ignore --set webhook.services.enabled=false --set prometheusRule.runbookBaseURL=https://docs.example.com/ipguard/operations"
  "networkpolicy-open|--set networkPolicy.enabled=true"
  "networkpolicy|--set networkPolicy.enabled=true --set networkPolicy.webhookFrom={10.0.0.0/28,fd00:10::/64} --set-json networkPolicy.metricsFrom=[{\"namespaceSelector\":{\"matchLabels\":{\"kubernetes.io/metadata.name\":\"monitoring\"}}},{\"ipBlock\":{\"cidr\":\"10.1.0.0/16\"}}]"
  "one-replica|--set replicaCount=1 --set leaderElection.enabled=false"
  "no-service-webhook|--set webhook.services.enabled=false"
  "existing-sa|--set fullnameOverride=guard --set serviceAccount.create=false --set serviceAccount.name=sa"
  "client-ca|--set webhook.clientCA.configMap=ipguard-webhook-client-ca --set webhook.maxConnections=50 --set webhook.maxHoldsPerRequester=8"
  "client-ca-key|--set certificates.mode=certManager --set webhook.clientCA.configMap=apiserver-ca --set webhook.clientCA.key=client-ca-file"
  "limits-explicit-defaults|--set webhook.maxConnections=1000 --set webhook.maxHoldsPerRequester=256"
)

for entry in "${SETS[@]}"; do
  name=${entry%%|*}
  read -r -a flags <<< "${entry#*|}"
  if out=$("$helm" lint --strict "$chart" "${flags[@]}" 2>&1); then
    echo "ok   $name: helm lint --strict"
  else
    echo "FAIL $name: helm lint --strict:"; echo "$out"; fail=1
  fi
  for kube in 1.26.0 1.30.0; do
    for i in 1 2; do
      if ! "$helm" template ipguard "$chart" -n ipguard-system --kube-version "$kube" "${flags[@]}" \
          > "$work/$name-$kube.$i.yaml" 2> "$work/$name-$kube.$i.err"; then
        echo "FAIL $name ($kube): helm template failed:"; cat "$work/$name-$kube.$i.err"; fail=1
        continue 2
      fi
    done
    out="$work/$name-$kube.1.yaml"
    if ! cmp -s "$out" "$work/$name-$kube.2.yaml"; then
      echo "FAIL $name ($kube): two renders differ"; fail=1; continue
    fi
    echo "ok   $name ($kube): $(grep -c '^kind:' "$out") objects, same bytes twice"
  done
done

# What must be refused, and the message that must say why.
expect_refusal() {  # name, expected message, then --set flags
  local name=$1 message=$2
  shift 2
  if "$helm" template ipguard "$chart" -n ipguard-system "$@" > /dev/null 2> "$work/$name.err"; then
    echo "FAIL $name: rendered although it must be refused"; fail=1
  elif ! grep -qF -- "$message" "$work/$name.err"; then
    echo "FAIL $name: refused without \"$message\":"; cat "$work/$name.err"; fail=1
  else
    echo "ok   $name: refused ($message)"
  fi
}
expect_refusal secret-without-name "certificates.secretName is required when certificates.mode is secret" \
  --set certificates.mode=secret --set certificates.caBundle=Y2EK
expect_refusal secret-without-ca "certificates.caBundle is required when certificates.mode is secret" \
  --set certificates.mode=secret --set certificates.secretName=my-tls
expect_refusal unknown-mode "certificates.mode must be one of the following" --set certificates.mode=bogus
expect_refusal zero-replicas "replicaCount: Must be greater than or equal to 1" --set replicaCount=0
expect_refusal unknown-value "Additional property nosuchkey is not allowed" --set nosuchkey=1
expect_refusal two-leaderless "leaderElection.enabled=false needs replicaCount=1" --set leaderElection.enabled=false
expect_refusal webhook-from-not-cidr "networkPolicy.webhookFrom.0: Does not match pattern" \
  --set networkPolicy.enabled=true --set 'networkPolicy.webhookFrom={10.0.0.1}'
expect_refusal metrics-from-unknown-peer "Additional property selector is not allowed" \
  --set networkPolicy.enabled=true --set-json 'networkPolicy.metricsFrom=[{"selector":{}}]'
expect_refusal runbook-not-a-url "prometheusRule.runbookBaseURL: Does not match pattern" \
  --set prometheusRule.enabled=true --set prometheusRule.runbookBaseURL=docs/operations.md
expect_refusal client-ca-not-a-name "webhook.clientCA.configMap: Does not match pattern" \
  --set webhook.clientCA.configMap=Client_CA
expect_refusal client-ca-key-path "webhook.clientCA.key: Does not match pattern" \
  --set webhook.clientCA.configMap=client-ca --set webhook.clientCA.key=certs/ca.crt
expect_refusal zero-connections "webhook.maxConnections: Must be greater than or equal to 1" --set webhook.maxConnections=0
expect_refusal too-many-holds "webhook.maxHoldsPerRequester: Must be less than or equal to 1e+06" \
  --set webhook.maxHoldsPerRequester=1000001
expect_refusal holds-not-a-number "webhook.maxHoldsPerRequester: Invalid type" --set-string webhook.maxHoldsPerRequester=many

# webhook.maxConnections and webhook.maxHoldsPerRequester are passed only when they differ
# from the manager's defaults: values.yaml's defaults must be the binary's, and setting
# them to those values must change nothing.
for kube in 1.26.0 1.30.0; do
  if cmp -s "$work/selfSigned-$kube.1.yaml" "$work/limits-explicit-defaults-$kube.1.yaml"; then
    echo "ok   limits-explicit-defaults ($kube): the same bytes as the defaults (no flag passed)"
  else
    echo "FAIL limits-explicit-defaults ($kube): the default limits, set explicitly, change the render"; fail=1
  fi
done
if grep -qE -- '--(client-ca|max-connections|max-holds-per-requester)$' "$work/selfSigned-1.30.0.1.yaml"; then
  echo "FAIL selfSigned: the default Deployment passes --client-ca, --max-connections or --max-holds-per-requester"; fail=1
else
  echo "ok   selfSigned: the default Deployment passes no --client-ca and no limits (the manager's defaults)"
fi
if [ -n "${IPGUARD_BIN:-}" ]; then
  help=$("$IPGUARD_BIN" manager --help 2>&1 || true)
  for pair in maxConnections:--max-connections maxHoldsPerRequester:--max-holds-per-requester; do
    value=${pair%%:*} flag=${pair#*:}
    # The flag's line and its continuation lines, up to the next flag.
    binary_default=$(awk -v f="$flag" '$1 == f {on = 1; print; next} on && $1 ~ /^--/ {exit} on {print}' <<<"$help" |
                     grep -o '(default [0-9]*)' | grep -o '[0-9]*')
    chart_default=$(grep -E "^  $value: " "$chart/values.yaml" | awk '{print $2}')
    if [ -n "$binary_default" ] && [ "$binary_default" = "$chart_default" ] &&
       grep -qF "(int .) $binary_default }}" "$chart/templates/deployment.yaml"; then
      echo "ok   webhook.$value: default $chart_default, the manager's $flag default, not passed when equal"
    else
      echo "FAIL webhook.$value: values.yaml says ${chart_default:-nothing}, ipguard manager --help says $flag (default ${binary_default:-?}); the template must skip the binary's default"; fail=1
    fi
  done
fi

# The flags the Deployment passes must be ones the binary accepts: with a kubeconfig
# that does not exist, flag parsing passes and the manager stops at the kubeconfig.
if [ -n "${IPGUARD_BIN:-}" ]; then
  for name in selfSigned-metallb certManager secret one-replica client-ca; do
    mapfile -t args < <(python3 - "$work/$name-1.30.0.1.yaml" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
for i, line in enumerate(lines):
    if line.strip() == "args:":
        for item in lines[i + 1:]:
            stripped = item.lstrip()
            if not stripped.startswith("- "):
                break
            print(stripped[2:].strip().strip('"'))
        break
PY
)
    out=$("$IPGUARD_BIN" "${args[@]}" --kubeconfig "$work/no-such-kubeconfig" 2>&1 || true)
    if [ ${#args[@]} -gt 0 ] && echo "$out" | grep -q "no-such-kubeconfig"; then
      echo "ok   $name: the binary accepts the Deployment's ${#args[@]} arguments"
    else
      echo "FAIL $name: the binary refuses the Deployment's arguments (${args[*]}): $out"; fail=1
    fi
  done
fi

# --include-crds carries every file of crds/ as it is (helm adds only its "# Source" line).
"$helm" template ipguard "$chart" -n ipguard-system --include-crds > "$work/with-crds.yaml"
for crd in "$root"/crds/*.yaml; do
  if python3 - "$work/with-crds.yaml" "$crd" <<'PY'
import sys
rendered, crd = open(sys.argv[1]).read(), open(sys.argv[2]).read()
sys.exit(0 if crd.strip() in rendered else 1)
PY
  then
    echo "ok   --include-crds: $(basename "$crd")"
  else
    echo "FAIL --include-crds: $(basename "$crd") missing or changed"; fail=1
  fi
done

if "$helm" package "$chart" -d "$work" > "$work/package.out" 2>&1; then
  echo "ok   helm package: $(basename "$(ls "$work"/ipguard-*.tgz)")"
else
  echo "FAIL helm package:"; cat "$work/package.out"; fail=1
fi
exit $fail
