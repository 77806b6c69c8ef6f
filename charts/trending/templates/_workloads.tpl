{{/*
Deployment + Service of one of the project's HTTP services (python -m serving.<module>, port 8080,
/healthz, /readyz, /metrics). Call with a dict:
  root: $, component: name suffix, module: serving.<module>, replicas, resources,
  env: extra env (YAML string), automountToken: bool
*/}}
{{- define "trending.httpService" -}}
{{- $root := .root }}
{{- $name := include "trending.componentName" (list $root .component) }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "trending.labels" (list $root .component) | nindent 4 }}
spec:
  replicas: {{ .replicas }}
  selector:
    matchLabels:
      {{- include "trending.selectorLabels" (list $root .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "trending.labels" (list $root .component) | nindent 8 }}
      annotations:
        {{- include "trending.settingsChecksum" $root | nindent 8 }}
    spec:
      serviceAccountName: {{ $name }}
      automountServiceAccountToken: {{ .automountToken }}
      {{- include "trending.podSecurity" $root | nindent 6 }}
      containers:
        - name: {{ .component }}
          image: {{ include "trending.image" (list $root $root.Values.images.serving) }}
          imagePullPolicy: {{ $root.Values.images.pullPolicy }}
          args: ["python", "-m", {{ .module | quote }}]
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          {{- include "trending.env" $root | nindent 10 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
          {{- include "trending.httpProbes" $root | nindent 10 }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            {{- include "trending.tmpMount" $root | nindent 12 }}
      volumes:
        {{- include "trending.tmpVolume" $root | nindent 8 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "trending.labels" (list $root .component) | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "trending.selectorLabels" (list $root .component) | nindent 4 }}
  ports:
    - name: http
      port: 8080
      targetPort: http
      protocol: TCP
{{- end }}

{{/* A ServiceAccount of one component. Call with (list $ "component" automountToken). */}}
{{- define "trending.serviceAccount" -}}
{{- $root := index . 0 -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "trending.componentName" (list $root (index . 1)) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "trending.labels" (list $root (index . 1)) | nindent 4 }}
  {{- with $root.Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ index . 2 }}
{{- end }}
