{{/*
Names, labels and the few decisions several templates share. Everything here is a pure
function of the values, the release and the cluster version: the chart renders the same
manifests every time (no random data, no lookup, no generated certificates).
*/}}

{{- define "ipguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: the release name, with the chart name appended unless the release name
already contains it. Kept to 40 characters so that "-webhook-cert" and friends fit.
*/}}
{{- define "ipguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ipguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ipguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ipguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ipguard.labels" -}}
helm.sh/chart: {{ include "ipguard.chart" . }}
{{ include "ipguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ipguard
{{- end }}

{{- define "ipguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ipguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ipguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The Service in front of the webhook (port 443) and /metrics. */}}
{{- define "ipguard.serviceName" -}}
{{- printf "%s-webhook" (include "ipguard.fullname" .) }}
{{- end }}

{{- define "ipguard.leaseName" -}}
{{- printf "%s-%s" (include "ipguard.fullname" .) (include "ipguard.component" .) }}
{{- end }}

{{/* manager or agent: the command the pods run, and their component label. */}}
{{- define "ipguard.component" -}}
{{- if eq .Values.mode "agent" }}agent{{ else }}manager{{ end }}
{{- end }}

{{/*
Whether <fullname>-resources is rendered: always for a manager (the ipguard.io kinds); for
an agent only with metallb.enabled (its MetalLB pools).
*/}}
{{- define "ipguard.resourcesWebhook" -}}
{{- if or (ne .Values.mode "agent") .Values.metallb.enabled }}true{{ end }}
{{- end }}

{{/* Where an agent reads the management cluster's kubeconfig. */}}
{{- define "ipguard.planKubeconfigDir" -}}
/etc/ipguard/plan
{{- end }}

{{/* The Secret with tls.crt and tls.key (and, in selfSigned mode, the CA). */}}
{{- define "ipguard.certSecretName" -}}
{{- if eq .Values.certificates.mode "secret" }}
{{- required "certificates.secretName is required when certificates.mode is secret" .Values.certificates.secretName }}
{{- else }}
{{- default (printf "%s-webhook-cert" (include "ipguard.fullname" .)) .Values.certificates.secretName }}
{{- end }}
{{- end }}

{{/* The certificate Resource of cert-manager mode, named in cert-manager.io/inject-ca-from. */}}
{{- define "ipguard.certificateName" -}}
{{- printf "%s-webhook" (include "ipguard.fullname" .) }}
{{- end }}

{{- define "ipguard.issuerName" -}}
{{- printf "%s-selfsigned" (include "ipguard.fullname" .) }}
{{- end }}

{{/* The two ValidatingWebhookConfigurations (cluster-scoped, so named after the release). */}}
{{- define "ipguard.webhookConfigName.resources" -}}
{{- printf "%s-resources" (include "ipguard.fullname" .) }}
{{- end }}

{{- define "ipguard.webhookConfigName.services" -}}
{{- printf "%s-services" (include "ipguard.fullname" .) }}
{{- end }}

{{/*
The names of the two webhooks inside those configurations. The API server labels its
admission metrics with them (name="..."), which the PrometheusRule reads.
*/}}
{{- define "ipguard.webhookName.resources" -}}
resources.ipguard.io
{{- end }}

{{- define "ipguard.webhookName.claims" -}}
claims.ipguard.io
{{- end }}

{{- define "ipguard.webhookName.services" -}}
services.ipguard.io
{{- end }}

{{/* Where the manager reads tls.crt and tls.key (the manager's default, set explicitly). */}}
{{- define "ipguard.certDir" -}}
/tmp/k8s-webhook-server/serving-certs
{{- end }}

{{/*
Where the CA bundle of webhook.clientCA is mounted (a ConfigMap volume, read-only), and
the file passed as --client-ca.
*/}}
{{- define "ipguard.clientCADir" -}}
/etc/ipguard/client-ca
{{- end }}

{{- define "ipguard.clientCAFile" -}}
{{- printf "%s/ca.crt" (include "ipguard.clientCADir" .) }}
{{- end }}

{{/* DNS names the API server may use to reach the webhook Service, one per line. */}}
{{- define "ipguard.dnsNames" -}}
{{- $svc := include "ipguard.serviceName" . }}
{{- $ns := .Release.Namespace }}
{{ $svc }}
{{ $svc }}.{{ $ns }}
{{ $svc }}.{{ $ns }}.svc
{{ $svc }}.{{ $ns }}.svc.{{ .Values.clusterDomain }}
{{- end }}

{{/* "true" when the webhooks carry matchConditions (GA in 1.30, beta and on in 1.28). */}}
{{- define "ipguard.useMatchConditions" -}}
{{- $mc := .Values.webhook.matchConditions }}
{{- if kindIs "bool" $mc }}
{{- ternary "true" "" $mc }}
{{- else if semverCompare ">=1.28-0" .Capabilities.KubeVersion.Version }}
{{- "true" }}
{{- end }}
{{- end }}

{{/* The namespaceSelector of both webhooks. */}}
{{- define "ipguard.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        - kube-system
        {{- if ne .Release.Namespace "kube-system" }}
        - {{ .Release.Namespace }}
        {{- end }}
        {{- range .Values.webhook.excludeNamespaces }}
        {{- if and (ne . "kube-system") (ne . $.Release.Namespace) }}
        - {{ . }}
        {{- end }}
        {{- end }}
{{- end }}

{{/* clientConfig and CA handling of both webhooks. */}}
{{- define "ipguard.clientConfig" -}}
clientConfig:
  service:
    name: {{ include "ipguard.serviceName" . }}
    namespace: {{ .Release.Namespace }}
    path: /validate
    port: 443
  {{- if eq .Values.certificates.mode "secret" }}
  caBundle: {{ required "certificates.caBundle is required when certificates.mode is secret" .Values.certificates.caBundle }}
  {{- end }}
{{- end }}

{{/* Annotations of both webhook configurations. */}}
{{- define "ipguard.webhookAnnotations" -}}
{{- if eq .Values.certificates.mode "certManager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "ipguard.certificateName" . }}
{{- end }}
{{- end }}

{{/* Refuses combinations that cannot work, with a message that says what to change. */}}
{{- define "ipguard.validate" -}}
{{- if eq .Values.mode "agent" }}
{{- if not .Values.agent.clusterName }}
{{- fail "mode=agent needs agent.clusterName: this workload cluster's name in the ledger" }}
{{- end }}
{{- if not .Values.agent.planKubeconfig.secretName }}
{{- fail "mode=agent needs agent.planKubeconfig.secretName: a Secret with a kubeconfig of the management cluster (docs/install.md)" }}
{{- end }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "leaderElection.enabled=false needs replicaCount=1: two managers without a leader would both write status and events" }}
{{- end }}
{{- if and .Values.certificates.caBundle (ne .Values.certificates.mode "secret") }}
{{- fail "certificates.caBundle is used only when certificates.mode is secret" }}
{{- end }}
{{- if and .Values.certificates.certManager.issuerRef (not .Values.certificates.certManager.issuerRef.name) }}
{{- fail "certificates.certManager.issuerRef needs a name" }}
{{- end }}
{{- end }}
