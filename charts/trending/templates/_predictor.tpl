{{/*
Predictor spec (python -m serving.predictor) serving one pinned registry version (ADR 0009: never
an alias). Call with a dict: root: $, version: registry version, track: stable | canary.
*/}}
{{- define "trending.predictorSpec" -}}
{{- $root := .root }}
{{- $isvc := $root.Values.inferenceService }}
{{- $gpu := $isvc.predictor.accelerator }}
{{- $resources := deepCopy $isvc.predictor.resources }}
{{- if and $gpu.enabled (gt (int $gpu.count) 0) }}
{{- $limits := default dict $resources.limits }}
{{- $_ := set $limits $gpu.resourceName (toString (int $gpu.count)) }}
{{- $_ := set $resources "limits" $limits }}
{{- end }}
serviceAccountName: {{ include "trending.componentName" (list $root "predictor") }}
automountServiceAccountToken: false
minReplicas: {{ $isvc.predictor.minReplicas }}
maxReplicas: {{ $isvc.predictor.maxReplicas }}
labels:
  {{- include "trending.labels" (list $root "predictor") | nindent 2 }}
  trending.dev/track: {{ .track }}
annotations:
  {{- include "trending.settingsChecksum" $root | nindent 2 }}
{{- if $gpu.enabled }}
nodeSelector:
  {{- toYaml $gpu.nodeSelector | nindent 2 }}
tolerations:
  {{- toYaml $gpu.tolerations | nindent 2 }}
{{- end }}
{{ include "trending.podSecurity" $root }}
containers:
  - name: kserve-container
    image: {{ include "trending.image" (list $root $root.Values.images.serving) }}
    imagePullPolicy: {{ $root.Values.images.pullPolicy }}
    args:
      - python
      - -m
      - serving.predictor
      - --model_name
      - {{ $root.Values.platform.modelName | quote }}
      - --registry_uri
      - {{ printf "s3://%s/%s" $root.Values.s3.bucket $root.Values.platform.registryPrefix | quote }}
      - --ref
      - {{ .version | quote }}
      {{- if include "trending.payloadLog" $root }}
      # Request/response events to the drift detector, with the drift token (ADR 0013).
      - --payload_log_url
      - {{ printf "http://%s.%s.svc.cluster.local:8080/" (include "trending.componentName" (list $root "drift-detector")) $root.Release.Namespace | quote }}
      - --endpoint
      - {{ .track | quote }}
      {{- end }}
    ports:
      - name: http1
        containerPort: 8080
        protocol: TCP
      {{- if ne $isvc.deploymentMode "Knative" }}
      - name: grpc
        containerPort: 8081
        protocol: TCP
      {{- end }}
    {{- include "trending.env" $root | nindent 4 }}
      {{- include "trending.bundleKeyEnv" $root | nindent 6 }}
      {{- if include "trending.payloadLog" $root }}
      - name: TRENDING_PAYLOAD_LOG_TOKEN
        valueFrom:
          secretKeyRef:
            name: {{ include "trending.driftSecretName" $root }}
            key: TRENDING_DRIFT_TOKEN
      {{- end }}
    {{- include "trending.kserveProbes" $root | nindent 4 }}
    resources:
      {{- toYaml $resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.containerSecurityContext | nindent 6 }}
    volumeMounts:
      {{- include "trending.tmpMount" $root | nindent 6 }}
volumes:
  {{- include "trending.tmpVolume" $root | nindent 2 }}
{{- end }}
