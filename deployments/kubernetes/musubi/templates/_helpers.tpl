{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "musubi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "musubi.fullname" -}}
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

{{- define "musubi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "musubi.labels" -}}
helm.sh/chart: {{ include "musubi.chart" . }}
{{ include "musubi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "musubi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "musubi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "musubi.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "musubi.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of the migration Job: one that exists before
install (the release's own is created after the pre-install hooks). Empty
means the namespace's default. */}}
{{- define "musubi.migrateServiceAccountName" -}}
{{- if .Values.migrations.serviceAccountName }}
{{- .Values.migrations.serviceAccountName }}
{{- else if not .Values.serviceAccount.create }}
{{- default "" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "musubi.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The directory Musubi reads its rules from. */}}
{{- define "musubi.rulesDir" -}}
{{- if .Values.rules.gitSync.enabled }}{{ trimSuffix "/" (printf "/etc/musubi/rules-git/current/%s" .Values.rules.gitSync.path) }}
{{- else if or .Values.rules.existingConfigMap .Values.rules.files }}/etc/musubi/rules{{ else }}/detections{{ end }}
{{- end }}

{{- define "musubi.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "musubi.fullname" .)) .Values.rules.existingConfigMap }}
{{- end }}

{{/* Musubi's configuration file: the user's config with the keys the chart owns. */}}
{{- define "musubi.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $api := default dict (get $cfg "api") }}
{{- $_ := set $api "listen" (printf "0.0.0.0:%d" (int .Values.service.port)) }}
{{- $_ := set $cfg "api" $api }}
{{- $rules := default dict (get $cfg "rules") }}
{{- $_ := set $rules "dir" (include "musubi.rulesDir" .) }}
{{- $_ := set $rules "reload_interval" .Values.rules.reloadInterval }}
{{- $_ := set $cfg "rules" $rules }}
{{- $ch := default dict (get $cfg "clickhouse") }}
{{- $_ := set $ch "migrate_on_start" (not .Values.migrations.job) }}
{{- $_ := set $cfg "clickhouse" $ch }}
{{- toYaml $cfg }}
{{- end }}

{{/* Environment shared by the engine and the migration Job. */}}
{{- define "musubi.envFrom" -}}
{{- if .Values.secret.existingSecret }}
- secretRef:
    name: {{ .Values.secret.existingSecret }}
{{- end }}
{{- if .Values.secret.env }}
- secretRef:
    name: {{ include "musubi.fullname" . }}-env
{{- end }}
{{- end }}

{{/* git-sync's container (init: clone once; sidecar: keep pulling). */}}
{{- define "musubi.gitSync" -}}
{{- $g := .root.Values.rules.gitSync -}}
- name: {{ if .init }}git-sync-init{{ else }}git-sync{{ end }}
  image: {{ $g.image }}
  args:
    - --repo={{ required "rules.gitSync.repo is required when rules.gitSync.enabled" $g.repo }}
    - --ref={{ $g.ref }}
    - --root=/etc/musubi/rules-git
    - --link=current
    - --period={{ $g.period }}
    {{- if .init }}
    - --one-time
    {{- end }}
  env:
    - name: HOME
      value: /tmp
  {{- with $g.existingSecret }}
  envFrom:
    - secretRef:
        name: {{ . }}
  {{- end }}
  resources:
    {{- toYaml $g.resources | nindent 4 }}
  securityContext:
    {{- toYaml .root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: rules-git
      mountPath: /etc/musubi/rules-git
    - name: tmp
      mountPath: /tmp
{{- end }}
