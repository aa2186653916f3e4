{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "pai-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pai-operator.fullname" -}}
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

{{/* Cluster-scoped objects are shared by all releases: qualify them with the release namespace. */}}
{{- define "pai-operator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "pai-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pai-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pai-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pai-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pai-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pai-model-operator
{{- end }}

{{- define "pai-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pai-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pai-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The verbs pai-operator uses on its own objects; shared by the ClusterRole and the per-namespace Roles. */}}
{{- define "pai-operator.objectRules" -}}
# Both registries' ModelVersions, always (the TrueFoundry CRD always ships; truefoundry.host only
# turns its controller on). kopf lists then watches ModelVersions.
- apiGroups: ["pai.mlops.dev", "truefoundry.mlops.dev"]
  resources: ["modelversions"]
  verbs: ["list", "watch"]
# Finalizer and pai.mlops.dev/* annotations (kopf progress, diff-base) are merge patches.
- apiGroups: ["pai.mlops.dev", "truefoundry.mlops.dev"]
  resources: ["modelversions"]
  verbs: ["patch"]
# Conditions, atProvider and observedGeneration go through the status subresource.
- apiGroups: ["pai.mlops.dev", "truefoundry.mlops.dev"]
  resources: ["modelversions/status"]
  verbs: ["patch"]
# kopf posts core/v1 Events next to the objects.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* The leader-election Lease: one per release, so shards (releases) never share a leader. */}}
{{- define "pai-operator.leaseName" -}}
{{- default (include "pai-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
Uninstall never deletes remote data: the operator reads its own two CRDs by name (is the CRD of an
object being deleted itself being deleted?). Nothing else on CRDs: no list, no watch.
*/}}
{{- define "pai-operator.crdRule" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  resourceNames: ["modelversions.pai.mlops.dev", "modelversions.truefoundry.mlops.dev"]
  verbs: ["get"]
{{- end }}
