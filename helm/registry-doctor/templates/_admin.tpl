{{/* The settings file with the acknowledgements (docs/acknowledge.md), when there are any. */}}
{{- define "registry-doctor.configFile" -}}
{{- dict "acknowledge" .Values.acknowledge | toYaml -}}
{{- end }}

{{- define "registry-doctor.configArgs" -}}
{{- if .Values.acknowledge }}
- --config=/etc/registry-doctor/registry-doctor.yaml
{{- end }}
{{- end }}

{{- define "registry-doctor.configMount" -}}
{{- if .Values.acknowledge }}
- name: config
  mountPath: /etc/registry-doctor
  readOnly: true
{{- end }}
{{- end }}

{{- define "registry-doctor.configVolume" -}}
{{- if .Values.acknowledge }}
- name: config
  configMap:
    name: {{ include "registry-doctor.fullname" . }}-config
{{- end }}
{{- end }}
