package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/engine"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time // zero: a usage error
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"2026-12-01T08:00:00Z", time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
		{"2026-12-01T08:00:00+02:00", time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)},
		{"yesterday", time.Time{}},
		{"-1h", time.Time{}},
		{"0s", time.Time{}},
		{"xd", time.Time{}},
		{"2026-12-01", time.Time{}},
	} {
		got, err := parseSince(tt.in, now)
		var ue *engine.UsageError
		if tt.want.IsZero() {
			if err == nil || !strings.Contains(err.Error(), "give a duration back from now") || !errors.As(err, &ue) {
				t.Errorf("parseSince(%q) = %v, %v; want a usage error", tt.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// journals answers History with what each server's agent holds, and
// records the queries.
type journals struct {
	by      map[string]api.History
	mu      sync.Mutex
	queries []api.HistoryQuery
}

func (j *journals) History(_ context.Context, server string, q api.HistoryQuery) (api.History, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.queries = append(j.queries, q)
	h, ok := j.by[server]
	if !ok {
		return api.History{}, fmt.Errorf("%s: connection refused", server)
	}
	return h, nil
}

func code(n int) *int { return &n }

// A run over several servers is one record: its servers and instances
// from each, the client's end where it reached an agent, the earliest
// start; newest first, the newest q.Limit.
func TestFetchHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	deploy := func(started time.Time, inst string) api.Run {
		return api.Run{ID: "r1", Started: started, Ended: t0.Add(time.Minute), Duration: time.Minute, Template: "deploy", Outcome: "succeeded", ExitCode: code(0),
			Artifacts: []api.ArtifactRef{{SHA256: strings.Repeat("ab", 32), Name: "app.war"}}, Build: api.Build{Tag: "jenkins-app-7"}, Instances: []string{inst}, Steps: 4}
	}
	j := &journals{by: map[string]api.History{
		"web01": {Runs: []api.Run{
			{ID: "r3", Started: t0.Add(2 * time.Hour), Outcome: api.OutcomeUnknown, Instances: []string{"A/a1"}, Steps: 1},
			deploy(t0, "A/a1"),
		}, Entries: []api.HistoryEntry{{Time: t0.Add(time.Second), Step: "stop", Run: "r1"}}},
		"web02": {Runs: []api.Run{
			{ID: "r3", Started: t0.Add(3 * time.Hour), Outcome: api.OutcomeRunning, Instances: []string{"A/a1"}, Steps: 2},
			{ID: "r2", Started: t0.Add(time.Hour), Outcome: api.OutcomeRunning, Instances: []string{"B/b1"}, Steps: 1},
			deploy(t0, "A/a2"),
		}, Entries: []api.HistoryEntry{{Time: t0.Add(2 * time.Second), Step: "stop", Run: "r1"}}},
		"web03": {Entries: []api.HistoryEntry{{Time: t0, Step: "install"}}}, // older than run records
	}}
	var logs bytes.Buffer
	q := api.HistoryQuery{Build: "jenkins-app-7", Limit: 3}
	runs, steps, err := fetchHistory(context.Background(), j, []string{"web01", "web02", "web03"}, q, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.queries) != 3 || j.queries[0] != q {
		t.Errorf("queries = %+v, want %+v to each agent", j.queries, q)
	}
	var got []string
	for _, r := range runs {
		got = append(got, fmt.Sprintf("%s %s %v %v steps=%d %s", r.ID, r.Outcome, r.Servers, r.Instances, r.Steps, r.Started.Sub(t0)))
	}
	want := []string{
		"r3 running [web01 web02] [web01/A/a1 web02/A/a1] steps=3 2h0m0s",
		"r2 running [web02] [web02/B/b1] steps=1 1h0m0s",
		"r1 succeeded [web01 web02] [web01/A/a1 web02/A/a2] steps=8 0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r1 := runs[2]; *r1.ExitCode != 0 || r1.Artifacts[0].Name != "app.war" || r1.Build.Tag != "jenkins-app-7" {
		t.Errorf("r1 = %+v", r1)
	}
	if len(steps) != 3 || steps[0].Server != "web02" || steps[2].Server != "web03" {
		t.Errorf("steps = %+v, want web02's, web01's, web03's", steps)
	}
	if !strings.Contains(logs.String(), "the agent records no runs") || !strings.Contains(logs.String(), "server=web03") || strings.Count(logs.String(), "\n") != 1 {
		t.Errorf("log:\n%s", logs.String())
	}

	runs, _, _ = fetchHistory(context.Background(), j, []string{"web01", "web02"}, api.HistoryQuery{Limit: 1}, slog.New(slog.DiscardHandler))
	if len(runs) != 1 || runs[0].ID != "r3" {
		t.Errorf("limit 1: %+v", runs)
	}
	if _, _, err := fetchHistory(context.Background(), j, []string{"web01", "web09"}, q, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "web09: connection refused") {
		t.Errorf("an agent that cannot be reached: %v", err)
	}
}

func TestPrintTables(t *testing.T) {
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.Local)
	for _, tt := range []struct {
		name  string
		print func(w io.Writer)
		want  string
	}{
		{"no runs", func(w io.Writer) { printRuns(w, nil) }, "no runs\n"},
		{"no steps", func(w io.Writer) { printHistory(w, nil) }, "no history\n"},
		{"runs", func(w io.Writer) {
			printRuns(w, []RunRecord{
				{Servers: []string{"web01", "web02"}, Run: api.Run{Started: at, Duration: 62 * time.Second, Template: "deploy", Outcome: "failed-rolled-back", ExitCode: code(1),
					Artifacts: []api.ArtifactRef{{SHA256: "0123456789abcdef" + strings.Repeat("0", 48), Name: "app.war"}}, User: "jenkins",
					Build: api.Build{Tag: "jenkins-app-42", URL: "https://ci/job/app/42/"}}},
				{Servers: []string{"web01"}, Run: api.Run{Started: at, Outcome: api.OutcomeUnknown, Build: api.Build{Job: "app", Number: "7"}}},
			})
		}, `STARTED              DURATION  SERVERS      TEMPLATE  OUTCOME             EXIT  ARTIFACT                     USER     BUILD           URL
2025-03-01 10:00:00  1m2s      web01,web02  deploy    failed-rolled-back  1     app.war@sha256:0123456789ab  jenkins  jenkins-app-42  https://ci/job/app/42/
2025-03-01 10:00:00  -         web01        -         unknown             -     -                            -        app#7           -
`},
		{"steps", func(w io.Writer) {
			printHistory(w, []HistoryEntry{
				{Server: "web01", HistoryEntry: api.HistoryEntry{Time: at, Service: "A", Instance: "a1", Step: "install", Result: "ok", Duration: 1200 * time.Millisecond, Build: api.Build{Tag: "jenkins-app-42"}, Run: "0123abcd"}},
				{Server: "web01", HistoryEntry: api.HistoryEntry{Time: at, Service: "A", Instance: "a2", Step: "start", Result: "failed", Duration: 3 * time.Second, Build: api.Build{Job: "app", Number: "7"}}},
				{Server: "web02", HistoryEntry: api.HistoryEntry{Time: at, Service: "B", Instance: "b1", Step: "stop", Result: "ok"}},
			})
		}, `TIME                 SERVER  SERVICE  INSTANCE  STEP     RESULT  DURATION  BUILD           RUN
2025-03-01 10:00:00  web01   A        a1        install  ok      1.2s      jenkins-app-42  0123abcd
2025-03-01 10:00:00  web01   A        a2        start    failed  3s        app#7           -
2025-03-01 10:00:00  web02   B        b1        stop     ok      -         -               -
`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tt.print(&b)
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}
