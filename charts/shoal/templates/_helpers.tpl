{{/* Names and labels shared by every template. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "shoal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified name of the release's objects: fullnameOverride, else "<release>-<name>",
else just the release name when it already contains the chart name (e.g. release "shoal").
*/}}
{{- define "shoal.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of the release's cluster-scoped objects (ClusterRoles and their bindings): the full name plus
the release namespace, so one release per namespace (rbac.scope namespace) never collide;
58 characters leave room for the "-read" suffix.
*/}}
{{- define "shoal.clusterObjectName" -}}
{{- printf "%s-%s" (include "shoal.fullname" .) .Release.Namespace | trunc 58 | trimSuffix "-" }}
{{- end }}

{{/* chart label value: "<name>-<version>" with "+" (illegal in labels) replaced. */}}
{{- define "shoal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "shoal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shoal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Standard labels on every object of the release. */}}
{{- define "shoal.labels" -}}
{{ include "shoal.selectorLabels" . }}
{{ include "shoal.commonLabels" . }}
{{- end }}

{{/* Selector labels of the dashboard (dashboard.enabled): its own component. */}}
{{- define "shoal.dashboardSelectorLabels" -}}
app.kubernetes.io/name: {{ include "shoal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dashboard
{{- end }}

{{- define "shoal.dashboardLabels" -}}
{{ include "shoal.dashboardSelectorLabels" . }}
{{ include "shoal.commonLabels" . }}
{{- end }}

{{/* The labels every object carries besides its selector labels. */}}
{{- define "shoal.commonLabels" -}}
app.kubernetes.io/version: {{ include "shoal.version" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shoal
helm.sh/chart: {{ include "shoal.chart" . }}
{{- end }}

{{/* The image tag: image.tag, else the chart's appVersion. May be TAG@sha256:... or @sha256:... */}}
{{- define "shoal.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The version label: the tag without its digest (a label value cannot hold "@" or ":"). */}}
{{- define "shoal.version" -}}
{{- splitList "@" (include "shoal.imageTag" .) | first | default .Chart.AppVersion }}
{{- end }}

{{/* repository:tag, repository:tag@digest, or repository@digest for a digest-only tag. */}}
{{- define "shoal.image" -}}
{{- $tag := include "shoal.imageTag" . }}
{{- if hasPrefix "@" $tag }}
{{- printf "%s%s" .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "shoal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shoal.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The namespaces the operator watches when rbac.scope is "namespace": rbac.namespaces, else the
release namespace. Returned as a JSON list (templates can only return strings).
*/}}
{{- define "shoal.watchedNamespaces" -}}
{{- if .Values.rbac.namespaces }}
{{- .Values.rbac.namespaces | uniq | toJson }}
{{- else }}
{{- list .Release.Namespace | toJson }}
{{- end }}
{{- end }}

{{/*
The permissions the operator needs on namespaced objects; a ClusterRole (scope: cluster) or one
Role per watched namespace (scope: namespace) holds them. No wildcards: each verb is named.
*/}}
{{- define "shoal.namespacedRules" -}}
# Exactly the verbs the operator calls (tests/integration/shoal_operator/test_rbac.py compares
# them with the API server's audit log). The pools: kopf lists and watches them and patches its
# annotations (shoal.dev/...); the reconciler reads one before re-creating a Deployment.
- apiGroups: [shoal.dev]
  resources: [workerpools]
  verbs: [get, list, watch, patch]
# Their status, merge-patched by the scaling loop (never the spec).
- apiGroups: [shoal.dev]
  resources: [workerpools/status]
  verbs: [patch]
# Each pool's Deployment: read, watched, and server-side applied (an apply that creates needs
# create); deletion is left to the garbage collector (owner references).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# Each pool's PodDisruptionBudget: watched, applied, deleted when the pool no longer needs one.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
# Worker pods: listed before a scale-down, annotated with pod-deletion-cost (idle pods first).
- apiGroups: [""]
  resources: [pods]
  verbs: [list, patch]
# Events on pools (core/v1, posted by the operator and by kopf).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- with .Values.rbac.extraRules }}
# rbac.extraRules
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The leader-election Lease (in the release namespace): the operator's default name, so two
releases in one namespace share it and never both act. */}}
{{- define "shoal.leaseName" -}}
shoal-operator
{{- end }}
