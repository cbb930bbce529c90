package api

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The routes of the API, as httprouter patterns. The agent routes them; the
// path builders below fill them in, so the two cannot drift apart.
const (
	RouteHealthz  = "/healthz" // GET, no token
	RouteMetrics  = "/metrics" // GET, Prometheus text
	RouteAgent    = "/v1/agent"
	RouteServices = "/v1/services"
	RouteInstance = "/v1/services/:service/instances/:instance"
	RouteStep     = "/v1/services/:service/instances/:instance/steps/:step"
	RouteLease    = "/v1/services/:service/lease/:run"
	RouteRun      = "/v1/runs/:run"                // PUT: how the run ended
	RouteArtifact = "/v1/artifacts/sha256/:digest" // HEAD, PUT
	RouteHistory  = "/v1/history"
)

// InstancePath is the path of GET [RouteInstance].
func InstancePath(service, instance string) string {
	return fill(RouteInstance, service, instance)
}

// StepPath is the path of POST [RouteStep].
func StepPath(service, instance, step string) string {
	return fill(RouteStep, service, instance, step)
}

// LeasePath is the path of DELETE [RouteLease].
func LeasePath(service, run string) string { return fill(RouteLease, service, run) }

// RunPath is the path of PUT [RouteRun].
func RunPath(run string) string { return fill(RouteRun, run) }

// ArtifactPath is the path of HEAD and PUT [RouteArtifact].
func ArtifactPath(digest string) string { return fill(RouteArtifact, digest) }

// HistoryPath is the path and query of GET [RouteHistory].
func HistoryPath(q HistoryQuery) string {
	v := url.Values{}
	for k, s := range map[string]string{"service": q.Service, "instance": q.Instance, "step": q.Step, "build": q.Build} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if len(v) == 0 {
		return RouteHistory
	}
	return RouteHistory + "?" + v.Encode()
}

// ParseHistoryQuery reads the query of GET [RouteHistory], as
// [HistoryPath] writes it; a malformed value is a [CodeBadRequest] error.
func ParseHistoryQuery(v url.Values) (HistoryQuery, error) {
	q := HistoryQuery{Service: v.Get("service"), Instance: v.Get("instance"), Step: v.Get("step"), Build: v.Get("build")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, Errorf(CodeBadRequest, "limit: %q is not a count", s)
		}
		q.Limit = n
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return q, Errorf(CodeBadRequest, "since: %q is not an RFC 3339 time", s)
		}
		q.Since = t
	}
	return q, nil
}

// fill replaces the :params of route, in order, with the escaped values.
// A value of "." or ".." is escaped too (%2E), so that no proxy or client
// library resolves it into another path: the agent reads it back as the
// name it is, and refuses it.
func fill(route string, values ...string) string {
	segs := strings.Split(route, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") && len(values) > 0 {
			segs[i], values = escapeSegment(values[0]), values[1:]
		}
	}
	return strings.Join(segs, "/")
}

func escapeSegment(v string) string {
	if v == "." || v == ".." {
		return strings.ReplaceAll(v, ".", "%2E")
	}
	return url.PathEscape(v)
}
