{{/* opsctl-agent.labels are every object's labels. */}}
{{- define "opsctl-agent.labels" -}}
app: opsctl-agent
app.kubernetes.io/name: opsctl-agent
app.kubernetes.io/part-of: come2us
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* opsctl-agent.policy is the redrive policy's text. */}}
{{- define "opsctl-agent.policy" -}}
{{- if .Values.redrivePolicy -}}
{{- .Values.redrivePolicy -}}
{{- else -}}
{{- .Files.Get "redrive-policy.yaml" -}}
{{- end -}}
{{- end -}}

{{/* opsctl-agent.config is the opsctl configuration file: one context, "cluster". */}}
{{- define "opsctl-agent.config" -}}
{{- if not .Values.context.kafka.brokers -}}
{{- fail "values: context.kafka.brokers is required" -}}
{{- end -}}
current-context: cluster
contexts:
  cluster:
    {{- toYaml .Values.context | nindent 4 }}
{{- end -}}
