-- wrk script of the load benchmark (bench/load/run.sh, bench/README.md "Load benchmark").
--
--   wrk -t1 -c32 -d10s --latency -s bench/load/alerts.lua URL -- MODE N
--
-- MODE webhook: POST /webhook/alertmanager, Alertmanager webhook v4 bodies (one alert group of N
--               alerts per request, as Alertmanager's webhook notifier sends them), for
--               alertrouterd.
-- MODE alerts:  POST /api/v2/alerts, the same alerts as a JSON array of N postable alerts (as
--               Prometheus sends them), for Alertmanager's own ingest.
--
-- Both modes send the same sequence of alerts. Out of every 20 requests:
--   18 repeat one of REPEAT_GROUPS fixed groups, round robin (Alertmanager's group resends and
--      HA peers: the common case; the first pass over them opens their incidents). Each pass is
--      the next rule evaluation: annotations that template {{ $value }} alternate between two
--      renderings, as a resend after a new evaluation carries the new value;
--    1 is a new group (alerts not seen before: an outage starting);
--    1 resolves the new group opened RESOLVE_LAG new groups earlier (an outage ending); until
--      there is one, a repeat is sent instead.
-- New groups come from a pool of NEW_POOL groups with their own fingerprints; each pass over the
-- pool moves their startsAt one second later, so a group fires anew after its resolve (a new
-- occurrence of the same alert, as Alertmanager reports one).
-- Every alert of every group has its own fingerprint (rule, instance); its `project` label
-- cycles through team-owned projects, user projects and none (team infrastructure). The route
-- groups by alertname and rack, and every group has a rack of its own, so each group has its own
-- groupKey, as Alertmanager sends it.
--
-- Labels and annotations come from a handful of the real WMCS alert rules
-- (../shared/data/wmcs-alert-rules.yaml, copied verbatim below) plus what Prometheus and
-- Alertmanager add to every alert. Every request is built in init(), before wrk's clock starts;
-- per request, a new or resolved group only has its startsAt filled in, so wrk stays cheap.
--
-- With a third argument, init() writes the prepared requests to that file for bench/load/loadgen
-- (the open-loop, fixed-rate client) and exits, without sending anything (wrk still connects
-- once to check the address):
--
--   wrk -t1 -c1 -d1s -s bench/load/alerts.lua URL -- MODE N FILE
--
-- FILE: one header line
--   alertrouter-loadgen-requests 2 t0=T repeats=400 new_pool=500 resolve_lag=4 alerts=N
-- then the repeat requests, one blob each (REPEAT_GROUPS of the first evaluation, then the same
-- groups' of the second; round robin over them is round robin over the groups), then for each of the NEW_POOL new
-- groups its firing and then its resolved request as a piece count line ("P\n") and P blobs:
-- the request split at every STARTS_AT. A blob is its length in bytes, "\n", the bytes. Requests
-- are whole raw HTTP requests (wrk.format). loadgen replays them in the order request() below
-- sends them (its `traffic` class mirrors request() and new_group_request(): keep both in sync).
--
-- init() and done() print one line each for run.sh:
--   LOADBENCH_INIT cpu_s=C0
--   LOADBENCH requests=R duration_us=D p50_us=X p99_us=Y errors=E cpu_s=C
-- where errors counts connect/read/write errors, timeouts and non-2xx/3xx responses, and C - C0
-- is wrk's CPU time (all threads, user + system) during the run.

local bit = require("bit")

local REPEAT_GROUPS = 200
local RESOLVE_LAG = 4
local NEW_POOL = 500              -- distinct new groups; reused with a later startsAt
local NEW_INSTANCE_BASE = 100000  -- instance numbers of new groups, clear of the repeat set

-- The rules (verbatim from the corpus: alert, static labels, annotations, expr_summary without
-- its " [for ...]" suffix). `section` is a series label of the wiki replica rule.
local rules = {
  {
    alert = "CephClusterInError",
    labels = {severity = "page", team = "wmcs", service = "ceph,cloudvps"},
    annotations = {
      summary = "#page Ceph cluster in {{ $externalLabels.site }} is in error status",
      description = "{{ $externalLabels.site }} Ceph cluster is unable to serve traffic, all VMs could be unusable.",
      runbook = "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/CephClusterInError",
      dashboard = "https://grafana.wikimedia.org/d/P1tFnn3Mk/wmcs-ceph-eqiad-health?orgId=1&search=open&tag=ceph&tag=health&tag=WMCS",
    },
    expr = 'ceph_health_status{job="ceph_eqiad"} == 2',
  },
  {
    alert = "CloudVirtDown",
    labels = {severity = "page", team = "wmcs"},
    annotations = {
      summary = "nova-compute on node {{ $labels.instance }} is down. #page",
      description = "The cloudvirt node {{ $labels.instance }} reports nova-compute down. This is a major outage that requires you to either restore the server or evacuate manual...",
      runbook = "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/CloudVirtDown",
      dashboard = "https://grafana.wikimedia.org/d/000000377/host-overview?orgId=1&var-server={{ $labels.instance }}",
    },
    expr = 'openstack_nova_agent_state{adminState="enabled"} == 0',
  },
  {
    alert = "CephSlowOps",
    labels = {severity = "critical", team = "wmcs", service = "ceph,cloudvps"},
    annotations = {
      summary = "Ceph cluster in {{ $externalLabels.site }} has slow ops",
      description = "Ceph cluster in {{ $externalLabels.site }} has {{ $value }} slow ops, which might be blocking some writes",
      runbook = "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/CephSlowOps",
      dashboard = "https://grafana.wikimedia.org/d/P1tFnn3Mk/wmcs-ceph-eqiad-health?orgId=1&search=open&tag=ceph&tag=health&tag=WMCS",
    },
    expr = 'ceph_healthcheck_slow_ops{job="ceph_eqiad"} > 0',
  },
  {
    alert = "NodeDown",
    labels = {severity = "warning", team = "wmcs"},
    annotations = {
      summary = 'Node {{ $labels.instance | reReplaceAll "^([^:]+).*" "${1}" }} is down.',
      description = 'The node {{ $labels.instance | reReplaceAll "^([^:]+).*" "${1}" }} has been down for more than 5 minutes.',
      runbook = "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/NodeDown",
      dashboard = 'https://grafana.wikimedia.org/d/000000377/host-overview?orgId=1&var-server={{ $labels.instance | reReplaceAll "^([^:]+).*" "${1}" }}',
    },
    expr = 'up{job="node", cluster="wmcs", instance!~"cloudvirt(-wdqs|local)?1.*"} == 0',
  },
  {
    alert = "NovaComputeUnavailable",
    labels = {team = "wmcs", severity = "page", service = "cloudvps"},
    annotations = {
      summary = "#page nova-compute agent is unavailable",
      description = "The Nova agent nova-compute is reported unavailable by Openstack: {{ $value | humanizePercentage }}",
      runbook = "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/NovaComputeUnavailable",
      dashboard = "https://grafana.wikimedia.org/d/000000579/wmcs-openstack-eqiad-summary",
    },
    expr = 'sum (openstack_nova_agent_state{service="nova-compute",adminState="enabled"}) / count (openstack_nova_agent_state{service="nova-compute",adminState="enabled"}) < 0.9',
  },
  {
    alert = "HAProxyWikiReplicaSectionUnavailable",
    labels = {team = "wmcs", severity = "critical", service = "wikireplicas"},
    series = {section = "s1"},
    annotations = {
      summary = "Wiki replica section {{ $labels.section }} has no available servers on {{ $labels.instance }}",
      description = "Wiki replica section {{ $labels.section }} has no available servers on {{ $labels.instance }}",
      runbook = "https://wikitech.wikimedia.org/wiki/HAProxy",
      dashboard = "TODO",
    },
    expr = 'sum( label_replace( haproxy_backend_active_servers{job="cloudlb-haproxy",proxy=~"wikireplica-db-(web|analytics)-[sx]\\d"}, "section", "$2", "proxy", "wikireplica-db-(web|analytics)-([sx]\\d)" ) ) by (instance, section...',
  },
  {
    alert = "GaleraDown",
    labels = {team = "wmcs", severity = "warning", service = "cloudvps"},
    annotations = {
      summary = "Galera/MariaDB down on {{ $labels.instance }}",
      description = "Galera/MariaDB node {{ $labels.instance }} is not reachable by the Prometheus exporter",
      runbook = "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/GaleraDown",
      dashboard = "https://grafana.wikimedia.org/d/galera-cluster-summary/wmcs-openstack-eqiad-galera-cluster-summary",
    },
    expr = 'mysql_up{job="mysql-galera"} == 0',
  },
  {
    alert = "NetworkOutSaturated",
    labels = {severity = "warning", team = "wmcs", service = "network"},
    annotations = {
      summary = "Outgoing network saturation detected on {{ $labels.instance }}.",
      description = "Outgoing network saturation detected on {{ $labels.instance }}.",
      runbook = "https://wikitech.wikimedia.org/wiki/Portal:Data_Services/Admin/Shared_storage#Dumps",
      dashboard = "https://grafana.wikimedia.org/d/000000568/wmcs-dumps-general-view",
    },
    expr = 'sum by (instance) (irate(node_network_transmit_bytes_total{device!="lo", instance=~"clouddumps.*"}[5m])) >= 937500000',
  },
  {
    alert = "MaintainDBUsersDown",
    labels = {team = "wmcs", severity = "warning", service = "openstack,cloudvps,maintaindbusers,toolforge,paws"},
    annotations = {
      summary = "Maintain-dbusers is down",
      description = "Maintain-dbusers can't be reached by prometheus",
      runbook = "https://wikitech.wikimedia.org/wiki/Portal:Toolforge/Admin/Runbooks/MaintainDBUsersDown",
      dashboard = "https://grafana.wikimedia.org/d/ae240a06-c13e-49f3-b12c-58432c551e85/wmcs-maintain-dbusers",
    },
    expr = '(up{job="maintain_dbusers_eqiad"} or on() vector(-1)) < 1',
  },
  {
    alert = "ObjectStorageSizeQuotaFull",
    labels = {team = "wmcs", severity = "warning", service = "openstack,cloudvps,radosgw", project = "{{ $labels.user }}"},
    annotations = {
      summary = "Object storage quota by 'size' is {{ $value | humanizePercentage }} full for project {{ $labels.user }}",
      description = "The project {{ $labels.user }} has used almost it's 'size' quota.",
      runbook = "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/ObjectStorageSizeQuotaFull",
      dashboard = "https://grafana.wikimedia.org/d/7120b794-4638-49f5-bccd-9716efc60f24/wmcs-object-storage-quotas",
    },
    expr = '(sum by(user) (ceph_rgw_quota_size_kb_used) / sum by(user) (ceph_rgw_quota_size_kb_total{cluster="wmcs", user=~"(tools.*|admin|quarry|metricsinfra|paws|tofu|cloudinfra)"})) > 0.8',
  },
}

-- The `project` label by instance number: 2 in 10 alerts carry none (team infrastructure,
-- owned through `team="wmcs"`), 5 name team-owned projects, 3 user projects (deployment-prep
-- has contacts in the example configuration; wikidumpparse and video have none).
local projects = {"", "tools", "toolsbeta", "deployment-prep", "admin", "paws", "",
                  "quarry", "wikidumpparse", "video"}

-- The host family and exporter job an alert fires on, from the rule's `service`.
local function host_family(rule)
  local service = rule.labels.service or ""
  if service:find("ceph", 1, true) then return "cloudcephosd", "ceph_eqiad" end
  if service:find("openstack", 1, true) then return "cloudcontrol", "openstack" end
  if service:find("network", 1, true) then return "cloudgw", "node" end
  if service:find("wikireplicas", 1, true) then return "cloudlb", "cloudlb-haproxy" end
  return "cloudvirt", "node"
end

-- Prometheus template placeholders rendered as a firing alert shows them at `evaluation` (0 or 1:
-- {{ $value }} differs between the two).
local function render(text, labels, evaluation)
  return (text:gsub("{{(.-)}}", function(expr)
    if expr:find("$externalLabels.site", 1, true) then return "eqiad" end
    if expr:find("$value", 1, true) then
      if expr:find("Percentage", 1, true) then
        return evaluation == 0 and "91.27%" or "91.31%"
      end
      return evaluation == 0 and "3" or "4"
    end
    local name = expr:match("%$labels%.([%w_]+)")
    if name then
      local value = labels[name == "user" and "project" or name] or "unknown"
      if expr:find("stripPort", 1, true) or expr:find("reReplaceAll", 1, true) then
        value = value:match("^([^:]+)") or value
      end
      return value
    end
    return "unknown"
  end))
end

-- JSON string contents as Go's encoding/json writes them (it escapes <, > and &).
local json_escapes = {['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t",
                      ["&"] = "\\u0026", ["<"] = "\\u003c", [">"] = "\\u003e"}
local function json_string(s)
  return '"' .. s:gsub('[%c"\\&<>]', function(c)
    return json_escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- A JSON object of string values, keys sorted (Go marshals maps sorted).
local function json_map(m)
  local keys = {}
  for k in pairs(m) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = json_string(k) .. ":" .. json_string(m[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- Go's url.QueryEscape, as Prometheus builds generatorURL.
local function query_escape(s)
  return (s:gsub("[^%w%-_%.~ ]", function(c) return string.format("%%%02X", c:byte()) end)
           :gsub(" ", "+"))
end

-- Alertmanager's label-set fingerprint (model.LabelSet.Fingerprint): FNV-1a 64 over the sorted
-- names and values, each followed by the separator byte 0xff; 16 hex digits. The 64-bit state
-- is kept as two 32-bit halves in doubles (exact below 2^53): the prime is 2^40 + 435, so
-- h * prime = h * 435 + (h << 40).
local TWO32 = 4294967296
local function fingerprint(labels)
  local keys = {}
  for k in pairs(labels) do keys[#keys + 1] = k end
  table.sort(keys)
  local hi, lo = 0xcbf29ce4, 0x84222325  -- the offset basis 0xcbf29ce484222325
  local function add_byte(b)
    local x = bit.bxor(lo, b) % TWO32
    local m = x * 435
    lo = m % TWO32
    hi = (hi * 435 + math.floor(m / TWO32) + (x % 16777216) * 256) % TWO32
  end
  for _, k in ipairs(keys) do
    for _, s in ipairs({k, labels[k]}) do
      for i = 1, #s do add_byte(s:byte(i)) end
      add_byte(255)
    end
  end
  return string.format("%08x%08x", hi, lo)
end

local function rfc3339(t) return os.date("!%Y-%m-%dT%H:%M:%S", t) .. ".123456789Z" end
-- Stands for a startsAt filled in per request; as long as rfc3339(), so Content-Length holds.
local STARTS_AT = string.rep("#", #rfc3339(0))

local mode, alerts_per_body, t0, path
local repeat_requests = {}                 -- 2 * REPEAT_GROUPS whole requests (2 evaluations)
local new_firing, new_resolved = {}, {}    -- NEW_POOL requests, each split at STARTS_AT
local new_groups, requests_sent, repeats_sent = 0, 0, 0

-- The labels and annotations of alert number `k` of `rule`, in `rack`, at `evaluation`.
local function alert_of(rule, k, rack, evaluation)
  local host, job = host_family(rule)
  local labels = {alertname = rule.alert, team = "wmcs", instance = host .. (1001 + k) .. ":9100",
                  job = job, cluster = "wmcs", site = "eqiad", prometheus = "cloud",
                  source = "prometheus", rack = rack}
  for name, value in pairs(rule.labels) do labels[name] = value end
  for name, value in pairs(rule.series or {}) do labels[name] = value end
  local project = projects[k % #projects + 1]
  -- A rule with a templated project (`{{ $labels.user }}`) always names one.
  if project == "" and rule.labels.project then project = "wikidumpparse" end
  labels.project = project ~= "" and project or nil
  local annotations = {}
  for name, text in pairs(rule.annotations) do annotations[name] = render(text, labels, evaluation) end
  return labels, annotations
end

-- The labels both maps share with equal values (commonLabels, commonAnnotations).
local function intersect(a, b)
  if a == nil then
    local copy = {}
    for k, v in pairs(b) do copy[k] = v end
    return copy
  end
  for k, v in pairs(a) do if b[k] ~= v then a[k] = nil end end
  return a
end

-- The firing and the resolved request of group `g` at `evaluation`: rule g mod #rules, instances
-- first .. first + N - 1 in a rack of their own, starting at `starts_at` (a time string, or
-- STARTS_AT), in MODE's format.
local function group_requests(g, first, starts_at, evaluation)
  local rule = rules[g % #rules + 1]
  local rack = "r" .. math.floor(first / alerts_per_body)
  local generator_url = json_string("http://prometheus.example:9090/graph?g0.expr=" ..
                                    query_escape(rule.expr) .. "&g0.tab=1")
  local requests = {}
  local alerts = {firing = {}, resolved = {}}
  local common_labels, common_annotations
  for i = 0, alerts_per_body - 1 do
    local labels, annotations = alert_of(rule, first + i, rack, evaluation)
    common_labels = intersect(common_labels, labels)
    common_annotations = intersect(common_annotations, annotations)
    local labels_json, annotations_json = json_map(labels), json_map(annotations)
    local fp = fingerprint(labels)
    for _, status in ipairs({"firing", "resolved"}) do
      local resolved = status == "resolved"
      local a
      if mode == "webhook" then
        a = {'{"status":"', status, '","labels":', labels_json, ',"annotations":',
             annotations_json, ',"startsAt":"', starts_at, '","endsAt":"',
             resolved and rfc3339(t0 - 1) or "0001-01-01T00:00:00Z", '","generatorURL":',
             generator_url, ',"fingerprint":"', fp, '"}'}
      else
        -- Prometheus sends firing alerts valid until a few evaluation intervals from now,
        -- resolved ones with the time they stopped firing.
        a = {'{"labels":', labels_json, ',"annotations":', annotations_json, ',"startsAt":"',
             starts_at, '","endsAt":"', rfc3339(resolved and t0 - 1 or t0 + 3600),
             '","generatorURL":', generator_url, "}"}
      end
      table.insert(alerts[status], table.concat(a))
    end
  end
  for _, status in ipairs({"firing", "resolved"}) do
    local body
    if mode == "webhook" then
      -- Field order as Alertmanager's webhook notifier marshals them; group_by: [alertname,
      -- rack] under a route matching team="wmcs".
      body = table.concat({
        '{"receiver":"alertrouter","status":"', status, '","alerts":[',
        table.concat(alerts[status], ","), '],"groupLabels":',
        json_map({alertname = rule.alert, rack = rack}),
        ',"commonLabels":', json_map(common_labels), ',"commonAnnotations":',
        json_map(common_annotations), ',"externalURL":"http://alertmanager.example:9093"',
        ',"version":"4","groupKey":',
        json_string('{}/{team="wmcs"}:{alertname="' .. rule.alert .. '", rack="' .. rack .. '"}'),
        ',"truncatedAlerts":0}'})
    else
      body = "[" .. table.concat(alerts[status], ",") .. "]"
    end
    requests[status] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
  end
  return requests.firing, requests.resolved
end

-- `s` split at every STARTS_AT, for table.concat(pieces, time).
local function split_at_starts_at(s)
  local pieces, from = {}, 1
  while true do
    local at = s:find(STARTS_AT, from, true)
    if not at then break end
    pieces[#pieces + 1] = s:sub(from, at - 1)
    from = at + #STARTS_AT
  end
  pieces[#pieces + 1] = s:sub(from)
  return pieces
end

-- Writes the prepared requests to `file` in the format described at the top, for loadgen.
local function dump(file)
  local out = assert(io.open(file, "wb"))
  local function blob(s) out:write(#s, "\n", s) end
  out:write(string.format("alertrouter-loadgen-requests 2 t0=%d repeats=%d new_pool=%d " ..
                          "resolve_lag=%d alerts=%d\n",
                          t0, #repeat_requests, NEW_POOL, RESOLVE_LAG, alerts_per_body))
  for _, r in ipairs(repeat_requests) do blob(r) end
  for p = 1, NEW_POOL do
    for _, pieces in ipairs({new_firing[p], new_resolved[p]}) do
      out:write(#pieces, "\n")
      for _, piece in ipairs(pieces) do blob(piece) end
    end
  end
  assert(out:close())
end

function init(args)
  mode = args[1]
  alerts_per_body = tonumber(args[2])
  if (mode ~= "webhook" and mode ~= "alerts") or alerts_per_body == nil or alerts_per_body < 1 then
    error("usage: wrk ... -s alerts.lua URL -- webhook|alerts ALERTS_PER_BODY [DUMP_FILE]")
  end
  path = mode == "webhook" and "/webhook/alertmanager" or "/api/v2/alerts"
  t0 = os.time()
  for evaluation = 0, 1 do
    for g = 0, REPEAT_GROUPS - 1 do
      repeat_requests[evaluation * REPEAT_GROUPS + g + 1] =
          group_requests(g, g * alerts_per_body, rfc3339(t0 - 600), evaluation)
    end
  end
  for p = 0, NEW_POOL - 1 do
    local firing, resolved =
        group_requests(p, NEW_INSTANCE_BASE + p * alerts_per_body, STARTS_AT, 0)
    new_firing[p + 1] = split_at_starts_at(firing)
    new_resolved[p + 1] = split_at_starts_at(resolved)
  end
  if args[3] then
    dump(args[3])
    os.exit(0)
  end
  -- wrk's CPU time so far (os.clock() is the whole process's), for run.sh to subtract.
  io.write(string.format("LOADBENCH_INIT cpu_s=%.3f\n", os.clock()))
end

-- New group `g` (firing or resolved): pool entry g mod NEW_POOL, whose startsAt moves one second
-- later on every pass over the pool, so each pass opens new incidents again (Alertmanager keeps
-- startsAt while an alert fires; a later one after a resolve is a new occurrence).
local function new_group_request(g, resolved)
  local pieces = (resolved and new_resolved or new_firing)[g % NEW_POOL + 1]
  return table.concat(pieces, rfc3339(t0 - 3000 + math.floor(g / NEW_POOL)))
end

-- loadgen's `traffic` class (bench/load/loadgen.cpp) replays the same sequence: keep in sync.
function request()
  requests_sent = requests_sent + 1
  local slot = requests_sent % 20
  if slot == 0 then
    new_groups = new_groups + 1
    return new_group_request(new_groups - 1, false)
  end
  if slot == 10 then
    -- Resolve slot b (request 20b + 10) takes new group b - RESOLVE_LAG: groups 0..b-1 are
    -- open by then, so each new group is resolved once, RESOLVE_LAG new groups after it opened.
    local g = math.floor(requests_sent / 20) - RESOLVE_LAG
    if g >= 0 then return new_group_request(g, true) end
  end
  repeats_sent = repeats_sent + 1
  return repeat_requests[repeats_sent % #repeat_requests + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
      "LOADBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d cpu_s=%.3f\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      e.connect + e.read + e.write + e.timeout + e.status, os.clock()))
end
