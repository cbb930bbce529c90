package history

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func openJournal(t testing.TB, path string) *Journal {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func begin(t testing.TB, j *Journal, service, inst, step string, at time.Time) int64 {
	t.Helper()
	id, err := j.Begin(Entry{Time: at, Service: service, Instance: inst, Step: step,
		Build: Build{Tag: "jenkins-app-7", Job: "app", Number: "7"}, User: "kim"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// lines returns the journal file's lines, failing on any that is not JSON.
func lines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Errorf("journal line is not JSON: %q", sc.Text())
		}
		out = append(out, sc.Text())
	}
	return out
}

// reopenAndCount opens and closes the journal at path twice, and counts
// the lines of the file that hold s.
func reopenAndCount(t *testing.T, path, s string) int {
	t.Helper()
	for range 2 {
		j, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		j.Close()
	}
	n := 0
	for _, l := range lines(t, path) {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

func ids(entries []Entry) []int64 {
	var out []int64
	for _, e := range entries {
		out = append(out, e.ID)
	}
	return out
}

func TestBeginFinishList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "history.jsonl")
	j := openJournal(t, path)
	t0 := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)
	a := begin(t, j, "A", "a1", "install", t0)
	b := begin(t, j, "A", "a2", "install", t0.Add(time.Second))
	if a != 1 || b != 2 {
		t.Fatalf("ids = %d, %d; want 1, 2", a, b)
	}
	if err := j.Finish(a, "ok", "installed app.war", "20261124T200000.000Z-0123abcd", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := j.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{ID: 2, Time: t0.Add(time.Second), Service: "A", Instance: "a2", Step: "install", Result: ResultRunning,
			Build: Build{Tag: "jenkins-app-7", Job: "app", Number: "7"}, User: "kim"},
		{ID: 1, Time: t0, Service: "A", Instance: "a1", Step: "install", Result: "ok", Message: "installed app.war",
			Release: "20261124T200000.000Z-0123abcd", Duration: 3 * time.Second, Build: Build{Tag: "jenkins-app-7", Job: "app", Number: "7"}, User: "kim"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("List =\n%+v\nwant\n%+v", got, want)
	}
	if n := len(lines(t, path)); n != 3 {
		t.Errorf("file has %d lines, want 3 (2 begins, 1 finish)", n)
	}
}

func TestBeginSetsTime(t *testing.T) {
	j := openJournal(t, filepath.Join(t.TempDir(), "h.jsonl"))
	before := time.Now()
	id, err := j.Begin(Entry{Service: "A", Instance: "a1", Step: "stop", Result: "ok", Message: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := j.List(Filter{})
	if len(got) != 1 || got[0].ID != id || got[0].Time.Before(before.Add(-time.Second)) || got[0].Result != ResultRunning || got[0].Message != "" {
		t.Errorf("List = %+v; want one running entry stamped now", got)
	}
}

func TestFilter(t *testing.T) {
	j := openJournal(t, filepath.Join(t.TempDir(), "h.jsonl"))
	t0 := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)
	steps := []struct{ service, inst, step string }{
		{"A", "a1", "stop"}, {"A", "a1", "install"}, {"A", "a2", "stop"}, // 1..3
		{"B", "b1", "install"}, {"A", "a1", "start"}, {"A", "a2", "install"}, // 4..6
	}
	for i, s := range steps {
		begin(t, j, s.service, s.inst, s.step, t0.Add(time.Duration(i)*time.Minute))
	}
	tests := []struct {
		name string
		f    Filter
		want []int64
	}{
		{"all, newest first", Filter{}, []int64{6, 5, 4, 3, 2, 1}},
		{"service", Filter{Service: "A"}, []int64{6, 5, 3, 2, 1}},
		{"instance", Filter{Service: "A", Instance: "a1"}, []int64{5, 2, 1}},
		{"step", Filter{Step: "install"}, []int64{6, 4, 2}},
		{"since is inclusive", Filter{Since: t0.Add(3 * time.Minute)}, []int64{6, 5, 4}},
		{"limit", Filter{Limit: 2}, []int64{6, 5}},
		{"limit after filter", Filter{Service: "A", Step: "stop", Limit: 1}, []int64{3}},
		{"limit over count", Filter{Service: "B", Limit: 10}, []int64{4}},
		{"build tag", Filter{Build: "jenkins-app-7", Limit: 2}, []int64{6, 5}},
		{"build job#number", Filter{Build: "app#7", Service: "B"}, []int64{4}},
		{"other build", Filter{Build: "jenkins-app-8"}, nil},
		{"no match", Filter{Service: "C"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := j.List(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("List(%+v) = %v, want %v", tt.f, ids(got), tt.want)
			}
		})
	}
}

func TestReopenInterrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)
	done := begin(t, j, "A", "a1", "stop", t0)
	if err := j.Finish(done, "ok", "", "", time.Second); err != nil {
		t.Fatal(err)
	}
	running := begin(t, j, "A", "a1", "install", t0.Add(time.Minute))
	// The agent dies here: no Finish, no Close.

	j2 := openJournal(t, path)
	got, _ := j2.List(Filter{})
	if len(got) != 2 {
		t.Fatalf("List = %+v, want 2 entries", got)
	}
	if e := got[0]; e.ID != running || e.Result != ResultInterrupted || e.Message != "agent stopped while the step ran" || e.Step != "install" {
		t.Errorf("running step after restart = %+v; want interrupted", e)
	}
	if e := got[1]; e.ID != done || e.Result != "ok" {
		t.Errorf("finished step after restart = %+v; want ok", e)
	}
	next := begin(t, j2, "A", "a1", "start", t0.Add(2*time.Minute))
	if next != running+1 {
		t.Errorf("id after restart = %d, want %d", next, running+1)
	}
	j2.Close()
	j.Close()

	// Only one interrupted record, however often the journal is opened.
	// The start step begun in j2 is also interrupted by the reopen.
	if n := reopenAndCount(t, path, ResultInterrupted); n != 2 {
		t.Errorf("%d interrupted records, want 2 (install, then start)", n)
	}
}

func TestCrashDamage(t *testing.T) {
	begin1 := `{"op":"begin","entry":{"id":1,"time":"2026-11-24T20:00:00Z","service":"A","instance":"a1","step":"stop","result":"running","duration_ns":0,"build":{}}}`
	finish1 := `{"op":"finish","id":1,"time":"2026-11-24T20:00:01Z","result":"ok","duration_ns":1000}`
	begin9 := `{"op":"begin","entry":{"id":9,"time":"2026-11-24T20:01:00Z","service":"A","instance":"a1","step":"start","result":"running","duration_ns":0,"build":{}}}`
	tests := []struct {
		name       string
		content    string
		wantIDs    []int64 // newest first, after Open
		wantNextID int64
		garbage    bool // lines that are not records stay in the file
	}{
		{"empty file", "", nil, 1, false},
		{"torn last line", begin1 + "\n" + finish1 + "\n" + begin9[:40], []int64{1}, 2, false},
		{"torn last line, nothing before", begin9[:25], nil, 1, false},
		{"last line complete but no newline", begin1 + "\n" + finish1 + "\n" + begin9, []int64{9, 1}, 10, false},
		{"garbage mid-file", begin1 + "\n" + `{"op":"beg` + "\n" + finish1 + "\n" + "not json\n\n" + begin9 + "\n", []int64{9, 1}, 10, true},
		{"finish without begin", finish1 + "\n", nil, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "h.jsonl")
			if err := os.WriteFile(path, []byte(tt.content), 0o640); err != nil {
				t.Fatal(err)
			}
			j := openJournal(t, path)
			got, _ := j.List(Filter{})
			if !slices.Equal(ids(got), tt.wantIDs) {
				t.Errorf("after Open: ids %v, want %v", ids(got), tt.wantIDs)
			}
			id := begin(t, j, "A", "a1", "install", time.Time{})
			if id != tt.wantNextID {
				t.Errorf("next id = %d, want %d", id, tt.wantNextID)
			}
			if err := j.Finish(id, "ok", "", "", time.Second); err != nil {
				t.Fatal(err)
			}
			j.Close()

			// The new records are whole lines: a reopen reads them back.
			j2 := openJournal(t, path)
			got, _ = j2.List(Filter{Limit: 1})
			if len(got) != 1 || got[0].ID != id || got[0].Result != "ok" {
				t.Errorf("after reopen: newest = %+v, want entry %d ok", got, id)
			}
			if tt.garbage {
				return // left in place: Open skips it
			}
			lines(t, path) // every line is JSON: a torn fragment was cut off
		})
	}
}

func TestFinishErrors(t *testing.T) {
	j := openJournal(t, filepath.Join(t.TempDir(), "h.jsonl"))
	id := begin(t, j, "A", "a1", "stop", time.Time{})
	if err := j.Finish(id+1, "ok", "", "", 0); err == nil || !strings.Contains(err.Error(), "no such entry") {
		t.Errorf("Finish(unknown) = %v, want no such entry", err)
	}
	if err := j.Finish(id, "failed", "boom", "", 0); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(id, "ok", "", "", 0); err == nil || !strings.Contains(err.Error(), "already finished as failed") {
		t.Errorf("second Finish = %v, want already finished", err)
	}
}

func TestClosed(t *testing.T) {
	j := openJournal(t, filepath.Join(t.TempDir(), "h.jsonl"))
	id := begin(t, j, "A", "a1", "stop", time.Time{})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := j.Begin(Entry{Service: "A"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Begin after Close = %v, want ErrClosed", err)
	}
	if err := j.Finish(id, "ok", "", "", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Finish after Close = %v, want ErrClosed", err)
	}
	if got, err := j.List(Filter{}); err != nil || len(got) != 1 {
		t.Errorf("List after Close = %v, %v; want the entry from memory", got, err)
	}
}

func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	j := openJournal(t, path)
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id, err := j.Begin(Entry{Service: "A", Instance: fmt.Sprintf("a%d", w), Step: "restart"})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := j.List(Filter{Instance: fmt.Sprintf("a%d", w), Limit: 5}); err != nil {
					t.Error(err)
				}
				if err := j.Finish(id, "ok", fmt.Sprint(i), "", time.Millisecond); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got, _ := j.List(Filter{})
	if len(got) != workers*each {
		t.Fatalf("%d entries, want %d", len(got), workers*each)
	}
	for i, e := range got {
		if want := int64(workers*each - i); e.ID != want || e.Result != "ok" {
			t.Fatalf("entry %d = id %d result %s; want id %d ok", i, e.ID, e.Result, want)
		}
	}
	if n := len(lines(t, path)); n != 2*workers*each {
		t.Errorf("file has %d lines, want %d", n, 2*workers*each)
	}
}

func BenchmarkBegin(b *testing.B) {
	j := openJournal(b, filepath.Join(b.TempDir(), "h.jsonl"))
	e := Entry{Service: "A", Instance: "a1", Step: "install", Build: Build{Tag: "jenkins-app-42"}, User: "kim"}
	for b.Loop() {
		if _, err := j.Begin(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFinish(b *testing.B) {
	j := openJournal(b, filepath.Join(b.TempDir(), "h.jsonl"))
	e := Entry{Service: "A", Instance: "a1", Step: "install"}
	ids := make([]int64, b.N)
	for i := range ids {
		id, err := j.Begin(e)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := j.Finish(ids[i], "ok", "installed app.war as release 20261124T201500.123Z-0123abcd", "20261124T201500.123Z-0123abcd", time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkList(b *testing.B) {
	j := openJournal(b, filepath.Join(b.TempDir(), "h.jsonl"))
	for i := range 10000 {
		if _, err := j.Begin(Entry{Service: "A", Instance: fmt.Sprintf("a%d", i%10), Step: "install"}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if got, _ := j.List(Filter{Instance: "a3", Limit: 50}); len(got) != 50 {
			b.Fatal(len(got))
		}
	}
}

// A write that failed part way (disk full) leaves a fragment; the next
// record starts on a line of its own and both it and the fragment's
// neighbours read back.
func TestAppendAfterPartialWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	j := openJournal(t, path)
	first := begin(t, j, "A", "a1", "stop", time.Time{})
	if _, err := j.f.WriteString(`{"op":"finish","id":1,"res`); err != nil {
		t.Fatal(err)
	}
	j.torn = true // what write records when Write fails
	if err := j.Finish(first, "ok", "", "", time.Second); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j2 := openJournal(t, path)
	got, _ := j2.List(Filter{})
	if len(got) != 1 || got[0].Result != "ok" {
		t.Errorf("after reopen: %+v, want entry %d ok", got, first)
	}
}

// step journals a finished step of run, on service/inst, for build.
func step(t testing.TB, j *Journal, run, service, inst, name string, at time.Time, build Build) int64 {
	t.Helper()
	id, err := j.Begin(Entry{Time: at, Service: service, Instance: inst, Step: name, Build: build, User: "kim", Run: run})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(id, "ok", "", "", time.Second); err != nil {
		t.Fatal(err)
	}
	return id
}

func runIDs(runs []Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

func exitCode(n int) *int { return &n }

func TestRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	j := openJournal(t, path)
	t0 := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)
	b7 := Build{Tag: "jenkins-app-7", URL: "https://ci/job/app/7/", Job: "app", Number: "7"}
	b8 := Build{Tag: "jenkins-app-8", URL: "https://ci/job/app/8/", Job: "app", Number: "8"}
	step(t, j, "r7", "A", "a1", "stop", t0, b7)
	step(t, j, "r7", "A", "a1", "install", t0.Add(time.Second), b7)
	step(t, j, "r7", "A", "a2", "stop", t0.Add(2*time.Second), b7)
	begin(t, j, "A", "a1", "stop", t0.Add(3*time.Second)) // no run: a raw API call
	step(t, j, "r8", "B", "b1", "restart", t0.Add(time.Hour), b8)

	end := RunEnd{Started: t0.Add(-10 * time.Second), Duration: time.Minute, Template: "deploy", Outcome: "succeeded", ExitCode: exitCode(0),
		Artifacts: []Artifact{{SHA256: strings.Repeat("ab", 32), Name: "app.war"}}, Counts: map[string]int{"ok": 2}}
	got, err := j.EndRun("r7", end)
	if err != nil {
		t.Fatal(err)
	}
	if got.End == nil || got.End.Time.IsZero() || got.End.Outcome != "succeeded" || *got.End.ExitCode != 0 || !got.Start().Equal(end.Started) {
		t.Errorf("EndRun = %+v; want the end stamped now, and the client's start", got)
	}

	runs, err := j.Runs(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(runIDs(runs), []string{"r8", "r7"}) {
		t.Fatalf("Runs = %v, want r8, r7", runIDs(runs))
	}
	r7, r8 := runs[1], runs[0]
	if !r7.Started.Equal(t0) || r7.Build != b7 || r7.User != "kim" || r7.Steps != 3 || !slices.Equal(r7.Instances, []string{"A/a1", "A/a2"}) {
		t.Errorf("r7 = %+v; want its first step's time and build, 3 steps on A/a1 and A/a2", r7)
	}
	if e := r7.End; e == nil || e.Template != "deploy" || e.Artifacts[0].Name != "app.war" || e.Counts["ok"] != 2 || e.Duration != time.Minute {
		t.Errorf("r7's end = %+v", r7.End)
	}
	if r8.End != nil || !r8.Start().Equal(t0.Add(time.Hour)) || !slices.Equal(r8.Instances, []string{"B/b1"}) {
		t.Errorf("r8 = %+v; want it running since its first step", r8)
	}

	for _, tt := range []struct {
		name string
		f    Filter
		want []string
	}{
		{"service", Filter{Service: "A"}, []string{"r7"}},
		{"instance", Filter{Instance: "a2"}, []string{"r7"}},
		{"step", Filter{Step: "restart"}, []string{"r8"}},
		{"service and instance of one step", Filter{Service: "B", Instance: "a1"}, nil},
		{"build tag", Filter{Build: "jenkins-app-7"}, []string{"r7"}},
		{"build job#number", Filter{Build: "app#8"}, []string{"r8"}},
		{"since the client's start", Filter{Since: t0.Add(-10 * time.Second)}, []string{"r8", "r7"}},
		{"since after it", Filter{Since: t0.Add(-9 * time.Second)}, []string{"r8"}},
		{"limit", Filter{Limit: 1}, []string{"r8"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := j.Runs(tt.f)
			if !slices.Equal(runIDs(got), tt.want) {
				t.Errorf("Runs(%+v) = %v, want %v", tt.f, runIDs(got), tt.want)
			}
		})
	}

	// Steps name their run, on disk too: a reopened journal has the same runs.
	entries, _ := j.List(Filter{Step: "install"})
	if len(entries) != 1 || entries[0].Run != "r7" {
		t.Errorf("install entry = %+v, want run r7", entries)
	}
	j.Close()
	j2 := openJournal(t, path)
	again, _ := j2.Runs(Filter{})
	if len(again) != 2 || again[1].End == nil || again[1].End.Outcome != "succeeded" || again[1].Steps != 3 {
		t.Errorf("after reopen: %+v", again)
	}
}

func TestEndRunErrors(t *testing.T) {
	j := openJournal(t, filepath.Join(t.TempDir(), "h.jsonl"))
	begin(t, j, "A", "a1", "stop", time.Time{})
	if _, err := j.EndRun("r1", RunEnd{Outcome: "succeeded"}); !errors.Is(err, ErrNoRun) {
		t.Errorf("EndRun of a run with no step here = %v, want ErrNoRun", err)
	}
	step(t, j, "r1", "A", "a1", "stop", time.Time{}, Build{})
	j.Close()
	if _, err := j.EndRun("r1", RunEnd{Outcome: "succeeded"}); !errors.Is(err, ErrClosed) {
		t.Errorf("EndRun after Close = %v, want ErrClosed", err)
	}
}

// A run whose end never came — the agent died, or its client did — is
// ended as unknown when the journal is opened again, once; its client may
// still say how it ended, and a step it sends after the restart opens it
// again.
func TestReopenEndsRunsUnknown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)
	step(t, j, "ended", "A", "a1", "stop", t0, Build{})
	if _, err := j.EndRun("ended", RunEnd{Outcome: "failed-rolled-back", ExitCode: exitCode(1)}); err != nil {
		t.Fatal(err)
	}
	step(t, j, "open", "A", "a1", "stop", t0.Add(time.Minute), Build{})
	j.Begin(Entry{Service: "A", Instance: "a1", Step: "start", Run: "open"}) // the agent dies here

	j2 := openJournal(t, path)
	runs, _ := j2.Runs(Filter{})
	if len(runs) != 2 || runs[0].ID != "open" || runs[1].ID != "ended" {
		t.Fatalf("Runs = %+v", runs)
	}
	if e := runs[0].End; e == nil || e.Outcome != OutcomeUnknown || e.ExitCode != nil || e.Message != "agent stopped before the run's client said how it ended" {
		t.Errorf("the open run after a restart: %+v, want unknown without exit code", e)
	}
	if e := runs[1].End; e == nil || e.Outcome != "failed-rolled-back" || *e.ExitCode != 1 {
		t.Errorf("the ended run after a restart: %+v, want its own end", e)
	}
	j2.Close()
	j.Close()
	if n := reopenAndCount(t, path, `"outcome":"unknown"`); n != 1 {
		t.Errorf("%d unknown end records, want 1", n)
	}

	// The client goes on after the restart: its next step opens the run
	// again, and its end replaces unknown.
	j4 := openJournal(t, path)
	step(t, j4, "open", "A", "a1", "start", t0.Add(2*time.Minute), Build{})
	if runs, _ := j4.Runs(Filter{Limit: 1}); runs[0].End != nil || runs[0].Steps != 3 {
		t.Errorf("after a new step: %+v, want running with 3 steps", runs[0])
	}
	if _, err := j4.EndRun("open", RunEnd{Outcome: "succeeded", ExitCode: exitCode(0)}); err != nil {
		t.Fatal(err)
	}
	j4.Close()
	j5 := openJournal(t, path)
	if runs, _ := j5.Runs(Filter{Limit: 1}); runs[0].End == nil || runs[0].End.Outcome != "succeeded" {
		t.Errorf("after the end and a reopen: %+v, want succeeded", runs[0].End)
	}
}

// A journal written before runs existed — steps without a run, no end
// records — loads as it is: its steps list, it has no runs, and new steps
// and runs append to it.
func TestOldJournal(t *testing.T) {
	old := `{"op":"begin","entry":{"id":1,"time":"2026-11-24T20:00:00Z","service":"A","instance":"a1","step":"install","result":"running","duration_ns":0,"build":{"tag":"jenkins-app-6"},"user":"kim"}}
{"op":"finish","id":1,"time":"2026-11-24T20:00:03Z","result":"ok","message":"installed app.war","release":"20261124T200000.000Z-0123abcd","duration_ns":3000000000}
{"op":"begin","entry":{"id":2,"time":"2026-11-24T20:00:04Z","service":"A","instance":"a1","step":"start","result":"running","duration_ns":0,"build":{"tag":"jenkins-app-6"}}}
`
	path := filepath.Join(t.TempDir(), "h.jsonl")
	if err := os.WriteFile(path, []byte(old), 0o640); err != nil {
		t.Fatal(err)
	}
	j := openJournal(t, path)
	entries, _ := j.List(Filter{Build: "jenkins-app-6"})
	if !slices.Equal(ids(entries), []int64{2, 1}) || entries[1].Result != "ok" || entries[1].Release != "20261124T200000.000Z-0123abcd" || entries[0].Result != ResultInterrupted || entries[0].Run != "" {
		t.Fatalf("old entries = %+v", entries)
	}
	if runs, _ := j.Runs(Filter{}); len(runs) != 0 {
		t.Errorf("runs of an old journal = %+v, want none", runs)
	}
	if id := step(t, j, "r1", "A", "a1", "stop", time.Time{}, Build{}); id != 3 {
		t.Errorf("next id = %d, want 3", id)
	}
	if runs, _ := j.Runs(Filter{}); len(runs) != 1 || runs[0].Steps != 1 {
		t.Errorf("runs after a new step = %+v, want r1 with its one step", runs)
	}
}
