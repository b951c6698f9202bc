{{/*
Names. One ThoughtGate per cluster: the operator renders every namespace's config, and its Lease
(thoughtgate-operator) and the sidecar Role (thoughtgate-sidecar) have fixed names in the code.
The release name "thoughtgate" gives the names the operator uses by default (Service
thoughtgate-webhook, Secret thoughtgate-webhook-tls, MutatingWebhookConfiguration thoughtgate);
any other name works too: the Deployment passes every name to the operator as a flag.
*/}}
{{- define "thoughtgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "thoughtgate.operatorName" -}}
{{- printf "%s-operator" (include "thoughtgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "thoughtgate.tokenReaderName" -}}
{{- printf "%s-slack-token-reader" (include "thoughtgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "thoughtgate.serviceAccountName" -}}
{{- default (include "thoughtgate.operatorName" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "thoughtgate.webhookServiceName" -}}
{{- printf "%s-webhook" (include "thoughtgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "thoughtgate.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "thoughtgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* cert-manager mode (webhook.certManager.enabled): the serving Certificate, and the CA chain rendered when no issuerRef is given. */}}
{{- define "thoughtgate.webhookCertificateName" -}}
{{- printf "%s-webhook" (include "thoughtgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "thoughtgate.webhookCaName" -}}
{{- printf "%s-webhook-ca" (include "thoughtgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "thoughtgate.selfSignedIssuerName" -}}
{{- printf "%s-selfsigned" (include "thoughtgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Where the operator reads cert-manager's Secret (--webhook-cert-dir). */}}
{{- define "thoughtgate.webhookCertDir" -}}/etc/thoughtgate/webhook-tls{{- end -}}

{{- define "thoughtgate.webhookConfigName" -}}
{{- include "thoughtgate.fullname" . -}}
{{- end -}}

{{- define "thoughtgate.metricsServiceName" -}}
{{- printf "%s-metrics" (include "thoughtgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Lease name is fixed in operator/manager.ts (no flag); the namespaced Role names it. */}}
{{- define "thoughtgate.leaseName" -}}thoughtgate-operator{{- end -}}

{{/* Image references: repository@digest when a digest is given, else repository:tag. */}}
{{- define "thoughtgate.imageRef" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}
{{- end -}}

{{/* The operator (Dockerfile.operator). */}}
{{- define "thoughtgate.image" -}}
{{- $v := .Values.image -}}
{{- include "thoughtgate.imageRef" (dict "repository" $v.repository "tag" (default .Chart.AppVersion $v.tag) "digest" $v.digest) -}}
{{- end -}}

{{/* The injected sidecar (Dockerfile.sidecar): same release as the operator unless pinned. */}}
{{- define "thoughtgate.sidecarImage" -}}
{{- $v := .Values.sidecar.image -}}
{{- include "thoughtgate.imageRef" (dict "repository" $v.repository "tag" (default (default .Chart.AppVersion .Values.image.tag) $v.tag) "digest" $v.digest) -}}
{{- end -}}

{{/* Labels on every object the chart renders (Helm's conventions). */}}
{{- define "thoughtgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "thoughtgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: thoughtgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
What the Deployment, Services, PDB and anti-affinity select on. app.kubernetes.io/name=thoughtgate
is also one of the two labels the webhook never injects (webhook/config.ts objectSelector,
webhook/mutate.ts OPERATOR_POD_LABELS).
*/}}
{{- define "thoughtgate.selectorLabels" -}}
app.kubernetes.io/name: thoughtgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/*
The operator's POD labels. app.kubernetes.io/managed-by=thoughtgate-operator (not "Helm") is the
label the webhook excludes: the objectSelector of the MutatingWebhookConfiguration (the apiserver
never calls the webhook for such pods, so they start while the webhook is down) and the operator's
own pod selector in mutatePod. Applied last: podLabels cannot override it.
*/}}
{{- define "thoughtgate.podLabels" -}}
{{- $required := include "thoughtgate.selectorLabels" . | fromYaml -}}
{{- $_ := set $required "app.kubernetes.io/managed-by" "thoughtgate-operator" -}}
{{- $_ := set $required "app.kubernetes.io/version" .Chart.AppVersion -}}
{{- toYaml (merge $required (deepCopy .Values.podLabels)) -}}
{{- end -}}

{{/* metadata.labels of every object: the chart's labels, then commonLabels (which cannot override them). */}}
{{- define "thoughtgate.metaLabels" -}}
{{- $chart := include "thoughtgate.labels" . | fromYaml -}}
{{- toYaml (merge $chart (deepCopy .Values.commonLabels)) -}}
{{- end -}}

{{/* A resource map ({cpu: 50m, memory: 96Mi}) as the operator's --sidecar-requests/--sidecar-limits list. */}}
{{- define "thoughtgate.resourceList" -}}
{{- $parts := list -}}
{{- range $k, $v := . -}}{{- $parts = append $parts (printf "%s=%v" $k $v) -}}{{- end -}}
{{- join "," $parts -}}
{{- end -}}
