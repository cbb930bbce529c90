package api

import (
	"net/url"
	"testing"
	"time"
)

func TestPaths(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{StepPath("A", "a1", "stop"), "/v1/services/A/instances/a1/steps/stop"},
		{StepPath("A b", "a/1", "x"), "/v1/services/A%20b/instances/a%2F1/steps/x"},
		{InstancePath("A", "a1"), "/v1/services/A/instances/a1"},
		{LeasePath("A", "r1"), "/v1/services/A/lease/r1"},
		{RunPath("0123abcd"), "/v1/runs/0123abcd"},
		{ArtifactPath("abc"), "/v1/artifacts/sha256/abc"},
		{HistoryPath(HistoryQuery{}), "/v1/history"},
		{HistoryPath(HistoryQuery{Service: "A", Limit: 3}), "/v1/history?limit=3&service=A"},
		{HistoryPath(HistoryQuery{Build: "app/main#7"}), "/v1/history?build=app%2Fmain%237"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

func TestHistoryQueryRoundTrip(t *testing.T) {
	q := HistoryQuery{Service: "A", Instance: "a1", Step: "install", Build: "app/main#7", Since: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Limit: 7}
	u, err := url.Parse(HistoryPath(q))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseHistoryQuery(u.Query())
	if err != nil || got != q {
		t.Fatalf("ParseHistoryQuery(HistoryPath(q)) = %+v, %v; want %+v", got, err, q)
	}
	for _, bad := range []string{"limit=-1", "limit=x", "since=yesterday"} {
		v, _ := url.ParseQuery(bad)
		if _, err := ParseHistoryQuery(v); err == nil {
			t.Errorf("%s: no error", bad)
		} else if e, ok := err.(*Error); !ok || e.Code != CodeBadRequest {
			t.Errorf("%s: %v, want a bad_request *Error", bad, err)
		}
	}
}
