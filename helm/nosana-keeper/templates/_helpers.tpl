{{/*
The chart name, overridable with nameOverride.
*/}}
{{- define "nosana-keeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of every resource: <release>-<chart>, or the release name when it already
contains the chart name. Truncated to 63 characters (the DNS label limit).
*/}}
{{- define "nosana-keeper.fullname" -}}
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
chart label value: name-version.
*/}}
{{- define "nosana-keeper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "nosana-keeper.labels" -}}
helm.sh/chart: {{ include "nosana-keeper.chart" . }}
{{ include "nosana-keeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nosana-keeper
{{- end }}

{{/*
Selector labels: stable across upgrades.
*/}}
{{- define "nosana-keeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nosana-keeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount name.
*/}}
{{- define "nosana-keeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nosana-keeper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest, or repository:tag (tag defaults to appVersion).
*/}}
{{- define "nosana-keeper.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Where the config file is mounted, and its path.
*/}}
{{- define "nosana-keeper.configDir" -}}
/etc/nosana-keeper
{{- end }}
{{- define "nosana-keeper.configPath" -}}
{{ include "nosana-keeper.configDir" . }}/keeper.yaml
{{- end }}

{{/*
Path of the mounted keypair file (KEEPER_KEYPAIR).
*/}}
{{- define "nosana-keeper.keypairPath" -}}
{{ trimSuffix "/" .Values.keypair.mountPath }}/{{ .Values.keypair.key }}
{{- end }}

{{/*
True (non-empty) when the keeper must not send: asked to, or no keypair to send with.
*/}}
{{- define "nosana-keeper.dryRun" -}}
{{- if or .Values.dryRun (not .Values.keypair.existingSecret) }}true{{- end }}
{{- end }}

{{/*
The keeper's YAML config: values.config, with the node keypair path set when one is mounted.
*/}}
{{- define "nosana-keeper.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if .Values.nodeKeypair.existingSecret }}
{{- $nodePath := printf "%s/%s" (trimSuffix "/" .Values.nodeKeypair.mountPath) .Values.nodeKeypair.key }}
{{- $_ := set $config.claim "node_keypair" $nodePath }}
{{- end }}
{{- if .Values.leaderElection.enabled }}
{{- $_ := set $config.leader_election "enabled" true }}
{{- if eq $config.leader_election.lease_name "nosana-keeper" }}
{{- $_ := set $config.leader_election "lease_name" (include "nosana-keeper.fullname" .) }}
{{- end }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
The metrics port the container listens on.
*/}}
{{- define "nosana-keeper.metricsPort" -}}
{{- .Values.config.metrics.port | int }}
{{- end }}

{{/*
The Deployment strategy: as set, else RollingUpdate with leader election (a standby is up
before the old leader stops) and Recreate without it (two senders never overlap).
*/}}
{{- define "nosana-keeper.strategy" -}}
{{- $strategy := .Values.strategy }}
{{- if not $strategy }}
{{- if .Values.leaderElection.enabled }}
{{- $strategy = dict "type" "RollingUpdate" "rollingUpdate" (dict "maxSurge" 1 "maxUnavailable" 0) }}
{{- else }}
{{- $strategy = dict "type" "Recreate" }}
{{- end }}
{{- end }}
{{- toYaml $strategy }}
{{- end }}

{{/*
Refuse what would let two keepers send at once: several replicas, or overlapping ones
during a rollout, without leader election (a dry run sends nothing, so it may).
*/}}
{{- define "nosana-keeper.validate" -}}
{{- if and (not .Values.leaderElection.enabled) (not (include "nosana-keeper.dryRun" .)) }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: two keepers would both send (set replicaCount=1, or enable leader election)" }}
{{- end }}
{{- if eq (include "nosana-keeper.strategy" . | fromYaml).type "RollingUpdate" }}
{{- fail "strategy RollingUpdate needs leaderElection.enabled=true: old and new keepers would both send during a rollout (use Recreate, or enable leader election)" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The PodDisruptionBudget API: policy/v1 from Kubernetes 1.21, policy/v1beta1 before.
*/}}
{{- define "nosana-keeper.pdbApiVersion" -}}
{{- if or (.Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget") (semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version) }}policy/v1{{ else }}policy/v1beta1{{ end }}
{{- end }}
