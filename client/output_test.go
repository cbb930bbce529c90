package client

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/engine"
)

// sampleReport is a failed deploy: a1 ok, a2 rolled back, b1 skipped.
func sampleReport() *engine.Report {
	step := func(phase, name, result, msg string, args map[string]any) engine.StepRecord {
		return engine.StepRecord{Name: name, Phase: phase, Args: args, Result: result, Message: msg, Duration: 1500 * time.Microsecond}
	}
	return &engine.Report{
		Template: "deploy", Servers: []string{"web01"}, Outcome: engine.OutcomeRolledBack, ExitCode: engine.ExitRolledBack,
		Started: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), Duration: 2 * time.Second,
		Instances: []engine.InstanceReport{
			{Instance: engine.Instance{Server: "web01", Service: "A", Name: "a1"}, Result: engine.ResultOK, Duration: time.Second, Steps: []engine.StepRecord{
				step("each", "stop", engine.ResultOK, "stopped", nil),
				step("each", "install", engine.ResultOK, "", map[string]any{"artifact": "app.war"}),
			}},
			{Instance: engine.Instance{Server: "web01", Service: "A", Name: "a2"}, Result: engine.ResultRolledBack, Error: "deploy.lua:9: start web01/A/a2: port in use\nsee log", Duration: time.Second, Steps: []engine.StepRecord{
				step("each", "start", engine.ResultFailed, "port in use\nsee log", nil),
				step("rollback", "restart", engine.ResultOK, "", nil),
			}},
			{Instance: engine.Instance{Server: "web02", Service: "B", Name: "b1"}, Result: engine.ResultSkipped},
		},
	}
}

func TestPrintSummary(t *testing.T) {
	var b bytes.Buffer
	printSummary(&b, sampleReport(), 1)
	want := `SERVER  INSTANCE  PHASE     STEP      RESULT       DURATION  MESSAGE
web01   A/a1      each      stop      ok           2ms       stopped
web01   A/a1      each      install   ok           2ms       -
web01   A/a2      each      start     failed       2ms       port in use
web01   A/a2      rollback  restart   ok           2ms       -
web01   A/a2      -         instance  rolled-back  1s        deploy.lua:9: start web01/A/a2: port in use
web02   B/b1      -         instance  skipped      -         not started

web01 A/a2 each start:
  see log

deploy failed-rolled-back: 1 ok, 0 failed, 1 rolled back, 1 skipped in 2s; exit 1
`
	if b.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPrintPlan(t *testing.T) {
	rep := sampleReport()
	rep.DryRun = true
	for i, batch := range []int{1, 1, 2} {
		rep.Instances[i].Batch = batch
	}
	var b bytes.Buffer
	printPlan(&b, rep, 1, nil)
	want := `batch 1 of 2:
web01 A/a1: stop, install(artifact=app.war)
web01 A/a2: start [failed]; rollback: restart [rolled-back: deploy.lua:9: start web01/A/a2: port in use]
batch 2 of 2:
web02 B/b1: (no steps) [skipped: not started]
dry run of deploy: 3 instances in 2 batches, nothing changed; exit 1
`
	if b.String() != want {
		t.Errorf("plan:\n%s\nwant:\n%s", b.String(), want)
	}
}

// A dry run's plan shows the batches and, per instance, what it runs now
// and what it would be given.
func TestPrintPlanBatches(t *testing.T) {
	url := engine.Artifact{URL: "https://nexus.example/app-2.war", SHA256: strings.Repeat("ab", 32)}
	file := engine.Artifact{Path: "target/app-2.war"}
	status := func(out map[string]any) engine.StepRecord {
		return engine.StepRecord{Name: "status", Phase: engine.PhasePlan, Result: engine.ResultOK, Output: out}
	}
	planned := func(name string, args map[string]any) engine.StepRecord {
		return engine.StepRecord{Name: name, Phase: "each", Args: args, Result: engine.ResultPlanned}
	}
	inst := func(name string, batch int, steps ...engine.StepRecord) engine.InstanceReport {
		return engine.InstanceReport{Instance: engine.Instance{Server: "web01", Service: "A", Name: name}, Batch: batch, Result: engine.ResultOK, Steps: steps}
	}
	rep := &engine.Report{
		Template: "deploy", DryRun: true,
		Planned: []engine.StepRecord{{Name: "http.post https://chat.example/hooks/x", Phase: "targets", Result: engine.ResultPlanned}},
		Instances: []engine.InstanceReport{
			inst("a1", 1, status(map[string]any{"running": true, "release": "20260101-1", "artifact": "app-1.war", "previous": "20251201-1", "health": "ok"}),
				planned("stop", nil), planned("install", map[string]any{"artifact": file})),
			inst("a2", 1, status(map[string]any{"running": false, "health": "unknown: not running"}),
				planned("install", map[string]any{"artifact": url})),
			inst("a3", 2, status(map[string]any{"running": true, "release": "20260101-1", "previous": "20251201-1"}),
				planned("rollback", nil)),
		},
	}
	digest := func(path string) (string, error) { return "cd" + strings.Repeat("0", 62), nil }
	var b bytes.Buffer
	printPlan(&b, rep, 0, digest)
	want := `targets: http.post https://chat.example/hooks/x
batch 1 of 2:
web01 A/a1: stop, install(artifact=target/app-2.war)
  current: release 20260101-1 (app-1.war), previous 20251201-1, running, health ok
  installs: app-2.war sha256:cd` + strings.Repeat("0", 62) + `
web01 A/a2: install(artifact=https://nexus.example/app-2.war#sha256=` + url.SHA256 + `)
  current: no release, not running, health unknown: not running
  installs: app-2.war sha256:` + url.SHA256 + `
batch 2 of 2:
web01 A/a3: rollback
  current: release 20260101-1, previous 20251201-1, running
  installs: release 20251201-1 (rollback)
dry run of deploy: 3 instances in 2 batches, nothing changed; exit 0
`
	if b.String() != want {
		t.Errorf("plan:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestFormatArgs(t *testing.T) {
	tests := []struct {
		args map[string]any
		want string
	}{
		{nil, ""},
		{map[string]any{"timeout": "1m30s", "artifact": "app.war"}, "(artifact=app.war, timeout=1m30s)"},
		{map[string]any{"n": 2.0, "pct": 12.5, "hosts": []any{"a", "b"}}, "(hosts=a,b, n=2, pct=12.5)"},
	}
	for _, tt := range tests {
		if got := formatArgs(tt.args); got != tt.want {
			t.Errorf("formatArgs(%v) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestJUnitReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := writeJUnitReport(path, sampleReport()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got junitSuite
	if err := xml.Unmarshal(data, &got); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if got.Name != "deploy" || got.Tests != 3 || got.Failures != 1 || got.Skipped != 1 || got.Time != "2.000" {
		t.Errorf("suite = %+v", got)
	}
	if len(got.Cases) != 3 {
		t.Fatalf("cases = %+v", got.Cases)
	}
	a2 := got.Cases[1]
	if a2.Classname != "web01.A" || a2.Name != "a2" || a2.Time != "1.000" {
		t.Errorf("a2 = %+v", a2)
	}
	if a2.Failure == nil || a2.Failure.Message != "deploy.lua:9: start web01/A/a2: port in use" || a2.Failure.Type != engine.ResultRolledBack {
		t.Fatalf("a2 failure = %+v", a2.Failure)
	}
	if a2.Failure.Body != "each start: failed (2ms) port in use\nrollback restart: ok (2ms)\n\neach start:\nsee log\n" {
		t.Errorf("a2 failure body = %q", a2.Failure.Body)
	}
	if got.Cases[2].Skipped == nil || got.Cases[0].Failure != nil || got.Cases[0].SystemOut == nil {
		t.Errorf("a1, b1 = %+v, %+v", got.Cases[0], got.Cases[2])
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".junit.xml.*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// healthReport is a deploy whose health check failed with the app
// server's log tail (30 lines, about 5 KB), and whose rollback's health
// check failed with another: the instance's error holds both, after its
// first line, as the engine writes it.
func healthReport() (rep *engine.Report, tails [2]string) {
	for i, name := range []string{"each", "rollback"} {
		lines := []string{"--- last 30 lines of the A/a1 log ---"}
		for n := range 30 {
			lines = append(lines, fmt.Sprintf("%s %02d SEVERE [main] org.apache.catalina.core.StandardContext.startInternal One or more listeners failed to start %s", name, n, strings.Repeat(".", 60)))
		}
		tails[i] = strings.Join(lines, "\n")
	}
	health := "health A/a1: http://127.0.0.1:8081/app/health did not answer 200 within 1m30s (last: HTTP 404)"
	step := func(phase, name, result, msg string) engine.StepRecord {
		return engine.StepRecord{Name: name, Phase: phase, Result: result, Message: msg, Duration: time.Second}
	}
	return &engine.Report{
		Template: "deploy", Servers: []string{"web01"}, Outcome: engine.OutcomeUnhealthy, ExitCode: engine.ExitUnhealthy,
		Instances: []engine.InstanceReport{{
			Instance: engine.Instance{Server: "web01", Service: "A", Name: "a1"}, Result: engine.ResultFailed, Duration: 3 * time.Minute,
			Error: "deploy.lua:15: health web01/A/a1: " + health + "; rollback failed: deploy.lua:28: health web01/A/a1: " + health + "\n" + tails[0] + "\n" + tails[1],
			Steps: []engine.StepRecord{
				step("each", "stop", engine.ResultOK, "stopped"),
				step("each", "install", engine.ResultOK, "installed"),
				step("each", "start", engine.ResultOK, "started"),
				step("each", "health", engine.ResultFailed, health+"\n"+tails[0]),
				step("rollback", "stop", engine.ResultOK, "stopped"),
				step("rollback", "rollback", engine.ResultOK, "back to r1"),
				step("rollback", "start", engine.ResultOK, "started"),
				step("rollback", "health", engine.ResultFailed, health+"\n"+tails[1]),
			},
		}},
	}, tails
}

// A failed health check's log tail is printed once, as a block of its own
// after the table, whose rows keep one line per step; JUnit has it in the
// failure's body, not in its message.
func TestFailureDetailsOnce(t *testing.T) {
	rep, tails := healthReport()
	var b bytes.Buffer
	printSummary(&b, rep, rep.ExitCode)
	out := b.String()
	table, _, _ := strings.Cut(out, "\n\n")
	if rows := strings.Split(table, "\n"); len(rows) != 1+8+1 {
		t.Errorf("table has %d rows, want a header, 8 steps and the instance:\n%s", len(rows), table)
	}
	for _, row := range strings.Split(table, "\n") {
		if len(row) > 400 {
			t.Errorf("row of %d bytes: %.200s…", len(row), row)
		}
	}
	for i, from := range []string{"each health", "rollback health"} {
		for _, line := range strings.Split(tails[i], "\n")[1:] {
			if n := strings.Count(out, line); n != 1 {
				t.Fatalf("%q printed %d times:\n%s", line, n, out)
			}
		}
		if !strings.Contains(out, "\n\nweb01 A/a1 "+from+":\n  --- last 30 lines of the A/a1 log ---\n  "+from[:strings.Index(from, " ")]+" 00 SEVERE") {
			t.Errorf("no block of its own for %s:\n%s", from, out)
		}
	}
	if !strings.HasSuffix(out, "SEVERE [main] org.apache.catalina.core.StandardContext.startInternal One or more listeners failed to start "+strings.Repeat(".", 60)+"\n\ndeploy failed-unhealthy: 0 ok, 1 failed, 0 rolled back, 0 skipped in -; exit 3\n") {
		t.Errorf("summary does not end with the last block and the outcome:\n%s", out)
	}

	a1 := junitReport(rep).Cases[0]
	if a1.Failure == nil || strings.Contains(a1.Failure.Message, "\n") || len(a1.Failure.Message) > 300 || !strings.HasSuffix(a1.Failure.Message, "(last: HTTP 404)") {
		t.Fatalf("failure message = %q", a1.Failure)
	}
	for i := range tails {
		if n := strings.Count(a1.Failure.Body, tails[i]); n != 1 {
			t.Errorf("failure body holds tail %d %d times:\n%s", i, n, a1.Failure.Body)
		}
	}
}

// The log keeps one line per event: an error of several lines shows its
// first, and says where the rest is.
func TestLogFirstLine(t *testing.T) {
	rep, _ := healthReport()
	var b bytes.Buffer
	newLogger(&b, func(string) string { return "" }).Error("health failed", "error", errors.New(rep.Instances[0].Steps[3].Message), "took", "1m30s")
	if got := b.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, `(last: HTTP 404) (+31 lines after the summary)" took=1m30s`) {
		t.Fatalf("log = %q", got)
	}
}
