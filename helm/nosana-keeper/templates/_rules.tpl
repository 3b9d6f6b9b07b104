{{/*
The keeper's Prometheus alert rules, as a rule file's `groups:`. Rendered into the
PrometheusRule, and with default values into monitoring/prometheus/nosana-keeper.rules.yaml
(a test keeps the two equal). Thresholds come from .Values.prometheusRule.
*/}}
{{- define "nosana-keeper.rules" -}}
{{- $r := .Values.prometheusRule }}
{{- $by := "namespace, job, instance" }}
{{- $jitter := float64 .Values.config.schedule.jitter_seconds }}
{{- $missed := float64 $r.taskStalled.missedPasses }}
{{- $tasks := list }}
{{- range $task, $group := dict "expired_runs" .Values.config.quit "stopped_jobs" .Values.config.claim "finished_jobs" .Values.config.clean }}
{{- if $group.enabled }}
{{- $seconds := addf (mulf $missed (float64 $group.interval_seconds)) $jitter | ceil }}
{{- $tasks = append $tasks (dict "task" $task "seconds" (printf "%.0f" $seconds)) }}
{{- end }}
{{- end -}}
groups:
  - name: nosana-keeper
    rules:
      - alert: NosanaKeeperDown
        expr: up{ {{- $r.targetSelector -}} } == 0
        for: {{ $r.keeperDown.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.keeperDown.severity) | nindent 8 }}
        annotations:
          summary: nosana-keeper target is down
          description: {{ `Prometheus cannot scrape {{ $labels.instance }} ({{ $labels.namespace }}): the keeper is not running or not serving /metrics.` | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeeperdown" . }}
          {{- end }}
      - alert: NosanaKeeperAbsent
        expr: absent(up{ {{- $r.targetSelector -}} } == 1)
        for: {{ $r.keeperDown.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.keeperDown.severity) | nindent 8 }}
        annotations:
          summary: no nosana-keeper target is up
          description: {{ printf "No scrape target matching {%s} is up: no keeper runs, or Prometheus does not scrape it." $r.targetSelector | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeeperabsent" . }}
          {{- end }}
      {{- if $tasks }}
      - alert: NosanaKeeperTaskStalled
        expr: |-
          {{- range $i, $t := $tasks }}
          {{ if $i }}or {{ end }}time() - (nosana_keeper_last_success_timestamp_seconds{task="{{ $t.task }}"} > 0) > {{ $t.seconds }}
          {{- end }}
        {{- include "nosana-keeper.alertLabels" (list . $r.taskStalled.severity) | nindent 8 }}
        annotations:
          summary: a keeper task has no successful pass
          description: {{ printf "Task {{ $labels.task }} on {{ $labels.instance }} has had no successful pass for {{ $value | humanizeDuration }} (more than %.0f of its intervals)." $missed | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeepertaskstalled" . }}
          {{- end }}
      - alert: NosanaKeeperTaskFailing
        expr: |-
          {{- range $i, $t := $tasks }}
          {{ if $i }}or {{ end }}sum by ({{ $by }}, task) (increase(nosana_keeper_pass_errors_total{task="{{ $t.task }}"}[{{ $t.seconds }}s])) >= {{ printf "%.0f" $missed }}
          {{- end }}
        {{- include "nosana-keeper.alertLabels" (list . $r.taskStalled.severity) | nindent 8 }}
        annotations:
          summary: a keeper task's passes keep failing
          description: {{ printf "Task {{ $labels.task }} on {{ $labels.instance }} ended {{ $value | printf \"%%.0f\" }} passes in an error within %.0f of its intervals." $missed | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeepertaskfailing" . }}
          {{- end }}
      {{- end }}
      - alert: NosanaKeeperActionsFailing
        expr: |-
          sum by ({{ $by }}, action) (rate(nosana_keeper_actions_failed_total[{{ $r.failureRatio.window }}]))
          /
          (
            sum by ({{ $by }}, action) (rate(nosana_keeper_actions_failed_total[{{ $r.failureRatio.window }}]))
            +
            (
              sum by ({{ $by }}, action) (rate(nosana_keeper_actions_confirmed_total[{{ $r.failureRatio.window }}]))
              or
              sum by ({{ $by }}, action) (rate(nosana_keeper_actions_failed_total[{{ $r.failureRatio.window }}])) * 0
            )
          )
          > {{ $r.failureRatio.threshold }}
        for: {{ $r.failureRatio.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.failureRatio.severity) | nindent 8 }}
        annotations:
          summary: keeper actions are failing
          description: {{ printf "{{ $value | humanizePercentage }} of {{ $labels.action }} actions on {{ $labels.instance }} failed over %s (threshold %v)." $r.failureRatio.window $r.failureRatio.threshold | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeeperactionsfailing" . }}
          {{- end }}
      - alert: NosanaKeeperBalanceLow
        expr: |-
          nosana_keeper_balance_lamports < {{ printf "%.0f" (float64 $r.balanceLow.thresholdLamports) }}
          unless nosana_keeper_dry_run == 1
        for: {{ $r.balanceLow.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.balanceLow.severity) | nindent 8 }}
        annotations:
          summary: keeper fee-payer balance is low
          description: {{ printf "The keeper on {{ $labels.instance }} holds {{ $value | humanize }} lamports, below %.0f. Top it up before it reaches config.fees.balance_floor_lamports and stops sending." (float64 $r.balanceLow.thresholdLamports) | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeeperbalancelow" . }}
          {{- end }}
      - alert: NosanaKeeperSendingPaused
        expr: max by ({{ $by }}, cause) (nosana_keeper_sending_paused) == 1
        for: {{ $r.sendingPaused.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.sendingPaused.severity) | nindent 8 }}
        annotations:
          summary: keeper stopped sending transactions
          description: {{ `The keeper on {{ $labels.instance }} has paused sending ({{ $labels.cause }}).` | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeepersendingpaused" . }}
          {{- end }}
      - alert: NosanaKeeperChainClockAhead
        expr: max by ({{ $by }}) (nosana_keeper_time_based_actions_paused{cause="clock_ahead"}) == 1
        for: {{ $r.chainClockAhead.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.chainClockAhead.severity) | nindent 8 }}
        annotations:
          summary: the RPC's chain time runs ahead of real time
          description: {{ `The keeper on {{ $labels.instance }} sees chain time ahead of its own clock by more than config.chain.max_clock_lead_seconds: quitAdmin for timed-out runs and clean of expired jobs are paused.` | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeeperchainclockahead" . }}
          {{- end }}
      - alert: NosanaKeeperLiveFeedDown
        expr: |-
          max by ({{ $by }}) (nosana_keeper_live_feed_connected) == 0
          and
          max by ({{ $by }}) (nosana_keeper_live_mode) == 1
        for: {{ $r.liveFeedDown.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.liveFeedDown.severity) | nindent 8 }}
        annotations:
          summary: the keeper's live feed is down, it polls
          description: {{ `The keeper on {{ $labels.instance }} cannot follow the RPC node's websocket: it polls at the task intervals (more getProgramAccounts, actions later than due).` | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeeperlivefeeddown" . }}
          {{- end }}
      - alert: NosanaKeeperRpcEndpointDown
        expr: min by ({{ $by }}, role, endpoint) (nosana_keeper_rpc_endpoint_up) == 0
        for: {{ $r.rpcEndpointDown.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.rpcEndpointDown.severity) | nindent 8 }}
        annotations:
          summary: a configured RPC endpoint keeps failing
          description: {{ `RPC endpoint {{ $labels.role }} {{ $labels.endpoint }} of the keeper on {{ $labels.instance }} keeps failing (a verify endpoint down withholds every admin action).` | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeeperrpcendpointdown" . }}
          {{- end }}
      - alert: NosanaKeeperRpcErrors
        expr: |-
          sum by ({{ $by }}) (rate(nosana_keeper_rpc_requests_total{outcome!="ok"}[{{ $r.rpcErrors.window }}]))
          /
          sum by ({{ $by }}) (rate(nosana_keeper_rpc_requests_total[{{ $r.rpcErrors.window }}]))
          > {{ $r.rpcErrors.threshold }}
        for: {{ $r.rpcErrors.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.rpcErrors.severity) | nindent 8 }}
        annotations:
          summary: keeper RPC requests are failing
          description: {{ printf "{{ $value | humanizePercentage }} of RPC requests from {{ $labels.instance }} failed over %s (threshold %v)." $r.rpcErrors.window $r.rpcErrors.threshold | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeeperrpcerrors" . }}
          {{- end }}
      - alert: NosanaKeeperBacklogGrowing
        expr: |-
          deriv(nosana_keeper_accounts_waiting[{{ $r.backlogGrowing.window }}]) > 0
          and
          min_over_time(nosana_keeper_accounts_waiting[{{ $r.backlogGrowing.window }}]) > {{ $r.backlogGrowing.minAccounts }}
        for: {{ $r.backlogGrowing.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.backlogGrowing.severity) | nindent 8 }}
        annotations:
          summary: keeper backlog keeps growing
          description: {{ printf "Accounts waiting for task {{ $labels.task }} on {{ $labels.instance }} grew for %s and stayed above %v: the keeper falls behind." $r.backlogGrowing.for $r.backlogGrowing.minAccounts | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeeperbackloggrowing" . }}
          {{- end }}
      - alert: NosanaKeeperNoLeader
        expr: sum by (namespace, job) (nosana_keeper_leader) == 0
        for: {{ $r.noLeader.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.noLeader.severity) | nindent 8 }}
        annotations:
          summary: no nosana-keeper leads, nothing is sent
          description: {{ `The keepers of {{ $labels.job }} ({{ $labels.namespace }}) are all standby: none holds the Lease, so nothing is sent. Is the Kubernetes API reachable, and may the ServiceAccount update the Lease?` | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeepernoleader" . }}
          {{- end }}
      - alert: NosanaKeeperManyLeaders
        expr: sum by (namespace, job) (nosana_keeper_leader) > 1
        for: {{ $r.manyLeaders.for }}
        {{- include "nosana-keeper.alertLabels" (list . $r.manyLeaders.severity) | nindent 8 }}
        annotations:
          summary: more than one nosana-keeper leads
          description: {{ `{{ $value }} keepers of {{ $labels.job }} ({{ $labels.namespace }}) say they lead: they may send the same actions. Are several releases sharing one job label, or is leader election off with several replicas?` | quote }}
          {{- with $r.runbookUrl }}
          runbook_url: {{ printf "%s#nosanakeepermanyleaders" . }}
          {{- end }}
{{- end }}

{{/*
An alert's labels: severity and prometheusRule.alertLabels. Argument: (list $ severity).
*/}}
{{- define "nosana-keeper.alertLabels" -}}
{{- $root := index . 0 -}}
labels:
  severity: {{ index . 1 }}
  {{- with $root.Values.prometheusRule.alertLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
