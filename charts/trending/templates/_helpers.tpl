{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "trending.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name prefix of every object. */}}
{{- define "trending.fullname" -}}
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

{{/* name-version, for the helm.sh/chart label. */}}
{{- define "trending.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of one component's objects: <fullname>-<component>. Call with (list $ "component"). */}}
{{- define "trending.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "trending.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of one component. Call with (list $ "component"). */}}
{{- define "trending.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "trending.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Kubernetes recommended labels of one component. Call with (list $ "component"). */}}
{{- define "trending.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "trending.chart" $root }}
{{ include "trending.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: trending-now
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Image reference from {repository, tag, digest}; the digest pins it. Call with (list $ .Values.images.serving). */}}
{{- define "trending.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 }}
{{- $tag := default $root.Chart.AppVersion $image.tag }}
{{- if $image.digest }}
{{- printf "%s:%s@%s" $image.repository $tag $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository $tag }}
{{- end }}
{{- end }}

{{/* Pod-level fields every workload shares. */}}
{{- define "trending.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.images.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */}}
{{- define "trending.s3SecretName" -}}
{{- if .Values.s3.existingSecret }}{{ .Values.s3.existingSecret }}
{{- else if .Values.credentials.generate }}{{ include "trending.componentName" (list . "s3") }}
{{- else }}{{ fail "s3.existingSecret is required: create a Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (kubectl create secret generic trending-s3 --from-literal=AWS_ACCESS_KEY_ID=… --from-literal=AWS_SECRET_ACCESS_KEY=…) and set s3.existingSecret, or set credentials.generate=true on a dev cluster" }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding REDIS_PASSWORD. */}}
{{- define "trending.redisSecretName" -}}
{{- if .Values.featureStore.redis.existingSecret }}{{ .Values.featureStore.redis.existingSecret }}
{{- else if .Values.credentials.generate }}{{ include "trending.componentName" (list . "redis") }}
{{- else }}{{ fail "featureStore.redis.existingSecret is required: create a Secret with key REDIS_PASSWORD and set featureStore.redis.existingSecret, or set credentials.generate=true on a dev cluster" }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding TRENDING_TRIGGER_TOKEN. */}}
{{- define "trending.triggerSecretName" -}}
{{- if .Values.retrainTrigger.existingSecret }}{{ .Values.retrainTrigger.existingSecret }}
{{- else if .Values.credentials.generate }}{{ include "trending.componentName" (list . "retrain-trigger") }}
{{- else }}{{ fail "retrainTrigger.existingSecret is required: create a Secret with key TRENDING_TRIGGER_TOKEN (a long random string) and set retrainTrigger.existingSecret, or set credentials.generate=true on a dev cluster" }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding TRENDING_DRIFT_TOKEN (drift events' bearer token). */}}
{{- define "trending.driftSecretName" -}}
{{- if .Values.driftDetector.existingSecret }}{{ .Values.driftDetector.existingSecret }}
{{- else if .Values.credentials.generate }}{{ include "trending.componentName" (list . "drift-token") }}
{{- else }}{{ fail "driftDetector.existingSecret is required: create a Secret with key TRENDING_DRIFT_TOKEN (a long random string; the drift detector accepts request events only with it) and set driftDetector.existingSecret, or set credentials.generate=true on a dev cluster" }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding TRENDING_BUNDLE_PUBLIC_KEY (the key bundle signatures are checked with). */}}
{{- define "trending.bundleKeySecretName" -}}
{{- if .Values.bundleSigning.existingSecret }}{{ .Values.bundleSigning.existingSecret }}
{{- else if .Values.credentials.generate }}{{ include "trending.componentName" (list . "bundle-public-key") }}
{{- else }}{{ fail "bundleSigning.existingSecret is required: create a Secret with key TRENDING_BUNDLE_PUBLIC_KEY (the ed25519 public key whose private half the pipeline signs bundles with; docs/kubernetes.md, 'Secrets') and set bundleSigning.existingSecret, or set credentials.generate=true on a dev cluster" }}
{{- end }}
{{- end }}

{{/* Env of a process that loads bundles: the public key their manifests must be signed with. Indented to follow trending.env. */}}
{{- define "trending.bundleKeyEnv" -}}
- name: TRENDING_BUNDLE_PUBLIC_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "trending.bundleKeySecretName" . }}
      key: TRENDING_BUNDLE_PUBLIC_KEY
{{- end }}

{{/* True when the predictors send request events to the drift detector (their payload logger). */}}
{{- define "trending.payloadLog" -}}
{{- if and .Values.inferenceService.payloadLog.enabled .Values.driftDetector.enabled }}true{{ end }}
{{- end }}

{{/* Name of the Secret holding TRENDING_FEEDBACK_TOKEN; empty: the drift detector's /feedback is off. */}}
{{- define "trending.feedbackSecretName" -}}
{{- if .Values.driftDetector.feedback.existingSecret }}{{ .Values.driftDetector.feedback.existingSecret }}
{{- else if .Values.credentials.generate }}{{ include "trending.componentName" (list . "drift-feedback") }}
{{- end }}
{{- end }}

{{/* S3 endpoint: explicit, else the in-chart MinIO, else empty (AWS default). */}}
{{- define "trending.s3Endpoint" -}}
{{- if .Values.s3.endpoint }}{{ .Values.s3.endpoint }}
{{- else if .Values.minio.enabled }}{{ printf "http://%s.%s.svc.cluster.local:9000" (include "trending.componentName" (list . "minio")) .Release.Namespace }}
{{- end }}
{{- end }}

{{/* Redis host: the in-chart Redis or featureStore.redis.host. */}}
{{- define "trending.redisHost" -}}
{{- if .Values.featureStore.redis.enabled }}{{ printf "%s.%s.svc.cluster.local" (include "trending.componentName" (list . "redis")) .Release.Namespace }}
{{- else if .Values.featureStore.redis.host }}{{ .Values.featureStore.redis.host }}
{{- else }}{{ fail "featureStore.redis.host is required when featureStore.redis.enabled is false: point it at an existing Redis, or set featureStore.redis.enabled=true" }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap with the platform settings every process reads. */}}
{{- define "trending.settingsName" -}}
{{- include "trending.componentName" (list . "settings") }}
{{- end }}

{{/* True when a Feast client (feature server or transformer) is rendered. */}}
{{- define "trending.feastClients" -}}
{{- if or .Values.featureStore.enabled (and .Values.inferenceService.enabled .Values.inferenceService.transformer.enabled) }}true{{ end }}
{{- end }}

{{/* Settings of every project process (TRENDING_*, S3 endpoint, Feast ${VARS}); no secret here. */}}
{{- define "trending.settings" -}}
TRENDING_PROFILE: cluster
TRENDING_MODEL_NAME: {{ .Values.platform.modelName | quote }}
TRENDING_REGISTRY_URI: {{ printf "s3://%s/%s" .Values.s3.bucket .Values.platform.registryPrefix | quote }}
TRENDING_DATA_URI: {{ printf "s3://%s/%s" .Values.s3.bucket .Values.platform.dataPrefix | quote }}
TRENDING_KFP_HOST: {{ .Values.platform.kfpHost | quote }}
TRENDING_COMPONENT_IMAGE: {{ include "trending.image" (list . .Values.images.component) | quote }}
{{- /* Pipeline parameters every run gets (compiled defaults, trigger runs, the schedule). */}}
TRENDING_PIPELINE_PARAMS: {{ dict "drift_backend" .Values.driftDetector.backend | toJson | quote }}
AWS_DEFAULT_REGION: {{ .Values.s3.region | quote }}
{{- with include "trending.s3Endpoint" . }}
AWS_ENDPOINT_URL: {{ . | quote }}
FEAST_S3_ENDPOINT_URL: {{ . | quote }}
{{- end }}
HOME: /tmp
{{- if include "trending.feastClients" . }}
TRENDING_FEATURE_REPO: /app/feature_repo
FEAST_REGISTRY_BUCKET: {{ .Values.s3.bucket | quote }}
REDIS_HOST: {{ include "trending.redisHost" . | quote }}
REDIS_PORT: {{ .Values.featureStore.redis.port | quote }}
{{- end }}
{{- end }}

{{/* Pod annotation that restarts pods when the settings change. */}}
{{- define "trending.settingsChecksum" -}}
checksum/settings: {{ include "trending.settings" . | sha256sum }}
{{- end }}

{{/* Container environment: the settings ConfigMap, then the S3 credentials from their Secret. */}}
{{- define "trending.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "trending.settingsName" . }}
env:
  - name: AWS_ACCESS_KEY_ID
    valueFrom:
      secretKeyRef:
        name: {{ include "trending.s3SecretName" . }}
        key: AWS_ACCESS_KEY_ID
  - name: AWS_SECRET_ACCESS_KEY
    valueFrom:
      secretKeyRef:
        name: {{ include "trending.s3SecretName" . }}
        key: AWS_SECRET_ACCESS_KEY
{{- end }}

{{/* Extra env of the Feast clients: the Redis password. Indented to follow trending.env. */}}
{{- define "trending.feastEnv" -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "trending.redisSecretName" . }}
      key: REDIS_PASSWORD
{{- end }}

{{/* Writable scratch space under a read-only root filesystem. */}}
{{- define "trending.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- end }}

{{- define "trending.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* HTTP probes on /healthz (liveness) and /readyz (readiness) of the project's services. */}}
{{- define "trending.httpProbes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 20
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 10
  failureThreshold: 3
{{- end }}

{{/* KServe's health endpoints, used by the predictor and the transformer. */}}
{{- define "trending.kserveProbes" -}}
livenessProbe:
  httpGet:
    path: /v2/health/live
    port: 8080
  periodSeconds: 20
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /v2/health/ready
    port: 8080
  periodSeconds: 10
  failureThreshold: 3
{{- end }}

{{/* True ("true") when the Prometheus Operator objects are rendered. */}}
{{- define "trending.prometheusOperator" -}}
{{- $mode := .Values.monitoring.prometheusOperator }}
{{- if or (eq $mode "enabled") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) }}true{{ end }}
{{- end }}

{{/* Fail early on combinations the schema cannot express. */}}
{{- define "trending.validate" -}}
{{- if and .Values.inferenceService.enabled .Values.inferenceService.payloadLog.enabled (not .Values.driftDetector.enabled) }}
{{- fail "inferenceService.payloadLog.enabled sends request events to the drift detector: set driftDetector.enabled=true or inferenceService.payloadLog.enabled=false" }}
{{- end }}
{{- if and .Values.inferenceService.canary.enabled (eq (int .Values.inferenceService.canary.version) (int .Values.inferenceService.predictor.version)) }}
{{- fail (printf "inferenceService.canary.version and inferenceService.predictor.version are both %v: the canary must serve another registry version" .Values.inferenceService.canary.version) }}
{{- end }}
{{- if and .Values.minio.enabled .Values.s3.endpoint }}
{{- fail "minio.enabled and s3.endpoint are both set: use the in-chart MinIO (leave s3.endpoint empty) or an existing S3 (minio.enabled=false)" }}
{{- end }}
{{- end }}
