{{/*
Shards must not overlap: two releases watching one namespace would both reconcile its objects
(each has its own Lease). At install/upgrade, every other Deployment carrying the
pai.mlops.dev/watch-namespaces annotation (this chart's and deploy/'s) is compared with this
release; `*` is all namespaces. `lookup` is empty in `helm template`, so this guards real installs.
*/}}
{{- define "pai-operator.watchAnnotation" -}}
{{- if .Values.watchNamespaces }}{{ join "," .Values.watchNamespaces }}{{ else }}*{{ end }}
{{- end }}

{{- define "pai-operator.refuseOverlappingShards" -}}
{{- $mine := .Values.watchNamespaces }}
{{- $all := lookup "apps/v1" "Deployment" "" "" }}
{{- range $other := (get $all "items" | default list) }}
{{- $annotations := $other.metadata.annotations | default dict }}
{{- $labels := $other.metadata.labels | default dict }}
{{- $self := and (eq $other.metadata.namespace $.Release.Namespace) (eq (get $labels "app.kubernetes.io/instance") $.Release.Name) }}
{{- if and (hasKey $annotations "pai.mlops.dev/watch-namespaces") (not $self) }}
{{- $theirs := get $annotations "pai.mlops.dev/watch-namespaces" }}
{{- $shared := list }}
{{- if or (eq $theirs "*") (empty $mine) }}
{{- $shared = list (ternary "all namespaces" (join "," $mine) (empty $mine)) }}
{{- else }}
{{- range $ns := splitList "," $theirs }}
{{- if has $ns $mine }}{{ $shared = append $shared $ns }}{{ end }}
{{- end }}
{{- end }}
{{- if $shared }}
{{- fail (printf "watchNamespaces overlap with the pai-operator Deployment %s/%s (watching %s) in: %s. Two releases would both reconcile those ModelVersions; give each release disjoint watchNamespaces (each has its own Lease), or uninstall the other one." $other.metadata.namespace $other.metadata.name $theirs (join ", " $shared)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
