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
{{- $src := include "musubi.rulesSource" . }}
{{- if eq $src "gitSync" }}{{ trimSuffix "/" (printf "/etc/musubi/rules-git/current/%s" .Values.rules.gitSync.path) }}
{{- else if eq $src "oci" }}{{ trimSuffix "/" (printf "/etc/musubi/rules-oci/current/%s" .Values.rules.oci.path) }}
{{- else if eq $src "configMap" }}/etc/musubi/rules{{ else }}/detections{{ end }}
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

{{/* The source of the rules: exactly one of image, configMap, gitSync and
oci; two set at once is refused. */}}
{{- define "musubi.rulesSource" -}}
{{- $r := .Values.rules -}}
{{- $on := list -}}
{{- if or $r.existingConfigMap $r.files }}{{ $on = append $on "rules.existingConfigMap/rules.files" }}{{ end -}}
{{- if $r.gitSync.enabled }}{{ $on = append $on "rules.gitSync" }}{{ end -}}
{{- if $r.oci.enabled }}{{ $on = append $on "rules.oci" }}{{ end -}}
{{- if gt (len $on) 1 }}{{ fail (printf "%s are exclusive: choose one source of rules" (join " and " $on)) }}{{ end -}}
{{- if $r.gitSync.enabled }}gitSync{{ else if $r.oci.enabled }}oci{{ else if or $r.existingConfigMap $r.files }}configMap{{ else }}image{{ end -}}
{{- end }}

{{/* oras's container (init: pull once, fail without rules; sidecar: resolve
the reference every period and pull a new digest). Each digest is unpacked
into its own folder and the current symlink switched to it, so Musubi never
reads a half-pulled artifact; the previous folder is kept for a reload that
is still reading it, older ones are removed. */}}
{{- define "musubi.rulesOCI" -}}
{{- $o := .root.Values.rules.oci -}}
- name: {{ if .init }}rules-oci-init{{ else }}rules-oci{{ end }}
  image: {{ $o.image }}
  command: ["/bin/sh", "-c"]
  args:
    - |
      {{- include "musubi.rulesOCIScript" . | nindent 6 }}
  env:
    - name: HOME
      value: /tmp
    - name: RULES_OCI_REFERENCE
      value: {{ required "rules.oci.reference is required when rules.oci.enabled" $o.reference | quote }}
    - name: RULES_OCI_ROOT
      value: /etc/musubi/rules-oci
    - name: RULES_OCI_FLAGS
      value: {{ trim (cat (ternary "--plain-http" "" $o.plainHTTP) (ternary "--registry-config /etc/musubi/rules-oci-auth/.dockerconfigjson" "" (ne $o.pullSecret ""))) | quote }}
    - name: RULES_OCI_PERIOD
      value: {{ $o.period | quote }}
    {{- if .init }}
    - name: RULES_OCI_ONCE
      value: "1"
    {{- end }}
  resources:
    {{- toYaml $o.resources | nindent 4 }}
  securityContext:
    {{- toYaml .root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: rules-oci
      mountPath: /etc/musubi/rules-oci
    - name: tmp
      mountPath: /tmp
    {{- if $o.pullSecret }}
    - name: rules-oci-auth
      mountPath: /etc/musubi/rules-oci-auth
      readOnly: true
    {{- end }}
{{- end }}

{{/* The shell script of the oras containers (POSIX sh: the oras image is
Alpine's busybox). */}}
{{- define "musubi.rulesOCIScript" -}}
root=$RULES_OCI_ROOT
# The repository without tag or digest, to pull exactly the digest resolved
# (a registry port is in the first segment, a tag only in the last).
name=${RULES_OCI_REFERENCE%%@*}
case ${name##*/} in *:*) name=${name%:*} ;; esac
sync_once() {
  desc=$(oras manifest fetch --descriptor $RULES_OCI_FLAGS "$RULES_OCI_REFERENCE") || return 1
  digest=$(printf '%s' "$desc" | sed -n 's/.*"digest": *"sha256:\([0-9a-f]\{64\}\)".*/\1/p')
  if [ -z "$digest" ]; then echo "rules: no sha256 digest in $desc" >&2; return 1; fi
  previous=$(readlink "$root/current" 2>/dev/null || true)
  if [ "$previous" = "$digest" ]; then return 0; fi
  rm -rf "$root/.pull" && mkdir -p "$root/.pull" || return 1
  oras pull $RULES_OCI_FLAGS -o "$root/.pull" "$name@sha256:$digest" || return 1
  rm -rf "${root:?}/$digest" && mv "$root/.pull" "$root/$digest" || return 1
  ln -sfn "$digest" "$root/current" || return 1
  for d in "$root"/*; do
    b=${d##*/}
    [ "$b" = current ] || [ "$b" = "$digest" ] || [ "$b" = "$previous" ] || rm -rf "$d"
  done
  echo "rules: $RULES_OCI_REFERENCE is sha256:$digest"
}
if [ "${RULES_OCI_ONCE:-}" = 1 ]; then
  sync_once
  exit
fi
while :; do
  sync_once || echo "rules: pulling $RULES_OCI_REFERENCE failed; the current rules stay" >&2
  sleep "$RULES_OCI_PERIOD"
done
{{- end }}
