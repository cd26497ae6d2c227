{{/*
saga-service.name is the Kubernetes name of the service: <service>-service. It fails the render
for anything but the three SAGA services so a typo never reaches a cluster.
*/}}
{{- define "saga-service.name" -}}
{{- $svc := .Values.service | toString -}}
{{- if not (has $svc (list "order" "payment" "product")) -}}
{{- fail (printf "values: service must be one of order, payment, product (got %q)" $svc) -}}
{{- end -}}
{{- printf "%s-service" $svc -}}
{{- end -}}

{{/*
saga-service.canaryWeight validates the canary block and returns the weight (0 when the canary
is off). A running canary needs a tag and an integer weight between 0 and 100.
*/}}
{{- define "saga-service.canaryWeight" -}}
{{- $c := .Values.canary -}}
{{- if not (kindIs "bool" $c.enabled) -}}
{{- fail "values: canary.enabled must be true or false" -}}
{{- end -}}
{{- $w := $c.weight -}}
{{- if not (or (kindIs "float64" $w) (kindIs "int" $w) (kindIs "int64" $w)) -}}
{{- fail (printf "values: canary.weight must be an integer 0-100 (got %v)" $w) -}}
{{- end -}}
{{- if or (lt (float64 $w) 0.0) (gt (float64 $w) 100.0) (ne (float64 (int $w)) (float64 $w)) -}}
{{- fail (printf "values: canary.weight must be an integer 0-100 (got %v)" $w) -}}
{{- end -}}
{{- if $c.enabled -}}
{{- if not $c.image.tag -}}
{{- fail "values: canary.enabled is true but canary.image.tag is empty" -}}
{{- end -}}
{{- int $w -}}
{{- else -}}
0
{{- end -}}
{{- end -}}

{{/*
saga-service.tracks lists the tracks to run: v1 always, v2 while the canary is enabled, as a
JSON object track -> image tag.
*/}}
{{- define "saga-service.tracks" -}}
{{- if not .Values.image.repository -}}
{{- fail "values: image.repository is required" -}}
{{- end -}}
{{- if not .Values.image.tag -}}
{{- fail "values: image.tag is required" -}}
{{- end -}}
{{- $tracks := dict "v1" (.Values.image.tag | toString) -}}
{{- if .Values.canary.enabled -}}
{{- $_ := set $tracks "v2" (.Values.canary.image.tag | toString) -}}
{{- end -}}
{{- toJson $tracks -}}
{{- end -}}

{{/* saga-service.labels are the common labels of every object. */}}
{{- define "saga-service.labels" -}}
app: {{ include "saga-service.name" . }}
app.kubernetes.io/name: {{ include "saga-service.name" . }}
app.kubernetes.io/part-of: come2us
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* saga-service.secretName is the Secret injected with envFrom. */}}
{{- define "saga-service.secretName" -}}
{{- default (printf "%s-secrets" (include "saga-service.name" .)) .Values.secretRef.name -}}
{{- end -}}

{{/*
saga-service.route is one weighted HTTP route: v1 gets 100-weight, v2 (only while the canary
runs) gets weight. Without a canary there is no v2 destination at all.
*/}}
{{- define "saga-service.route" -}}
route:
  - destination:
      host: {{ .name }}
      subset: v1
      port:
        number: {{ int .port }}
    weight: {{ sub 100 .weight }}
  {{- if .canary }}
  - destination:
      host: {{ .name }}
      subset: v2
      port:
        number: {{ int .port }}
    weight: {{ .weight }}
  {{- end }}
timeout: 10s
retries:
  attempts: 2
  perTryTimeout: 3s
  retryOn: connect-failure,refused-stream,unavailable
{{- end -}}
