{{/*
Header of a NetworkPolicy (apiVersion … spec:) and, when a component is given, its podSelector.
Call with (list $ "policy-name" "component-or-empty"); the caller writes the rest of the spec.
*/}}
{{- define "trending.networkPolicy" -}}
{{- $root := index . 0 -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "trending.componentName" (list $root (index . 1)) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "trending.labels" (list $root "network-policy") | nindent 4 }}
spec:
{{- if index . 2 }}
  podSelector:
    matchLabels:
      {{- include "trending.selectorLabels" (list $root (index . 2)) | nindent 6 }}
{{- end }}
{{- end }}

{{/* A peer: the pods of one component of the release. Call with (list $ "component"). */}}
{{- define "trending.peer" -}}
- podSelector:
    matchLabels:
      {{- include "trending.selectorLabels" . | nindent 6 }}
{{- end }}

{{/* Peers: every pod of the named namespaces. Call with a list of namespace names. */}}
{{- define "trending.namespacePeer" -}}
{{- range . }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ . }}
{{- end }}
{{- end }}

{{/* Ports of the KServe containers: model server HTTP/gRPC, Knative queue-proxy. */}}
{{- define "trending.inferencePorts" -}}
- {port: 8080, protocol: TCP}
- {port: 8081, protocol: TCP}
{{- if eq .Values.inferenceService.deploymentMode "Knative" }}
- {port: 8012, protocol: TCP}
- {port: 9091, protocol: TCP}
{{- end }}
{{- end }}

{{/* Egress to the object store: the in-chart MinIO, or the external S3 over HTTPS. */}}
{{- define "trending.s3Egress" -}}
{{- if .Values.minio.enabled }}
- to:
    {{- include "trending.peer" (list . "minio") | nindent 4 }}
  ports:
    - {port: 9000, protocol: TCP}
{{- else }}
- to:
    {{- range .Values.networkPolicy.externalEgressCidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - {port: 443, protocol: TCP}
{{- end }}
{{- end }}

{{/* Egress to the feature server and the Redis online store. */}}
{{- define "trending.featureEgress" -}}
{{- if .Values.featureStore.enabled }}
- to:
    {{- include "trending.peer" (list . "feature-server") | nindent 4 }}
  ports:
    - {port: {{ .Values.featureStore.port }}, protocol: TCP}
{{- end }}
- to:
    {{- if .Values.featureStore.redis.enabled }}
    {{- include "trending.peer" (list . "redis") | nindent 4 }}
    {{- else }}
    {{- range .Values.networkPolicy.externalEgressCidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- end }}
  ports:
    - {port: {{ .Values.featureStore.redis.port }}, protocol: TCP}
{{- end }}

{{/* Egress to the KFP API server. */}}
{{- define "trending.kfpEgress" -}}
- to:
    {{- include "trending.namespacePeer" (list .Values.platform.kfpNamespace) | nindent 4 }}
  ports:
    - {port: 8888, protocol: TCP}
{{- end }}
