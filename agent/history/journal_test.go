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
		Build: Build{Tag: "jenkins-app-7", Number: "7"}, User: "kim"})
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
			Build: Build{Tag: "jenkins-app-7", Number: "7"}, User: "kim"},
		{ID: 1, Time: t0, Service: "A", Instance: "a1", Step: "install", Result: "ok", Message: "installed app.war",
			Release: "20261124T200000.000Z-0123abcd", Duration: 3 * time.Second, Build: Build{Tag: "jenkins-app-7", Number: "7"}, User: "kim"},
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
	for range 2 {
		j3, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		j3.Close()
	}
	n := 0
	for _, l := range lines(t, path) {
		if strings.Contains(l, ResultInterrupted) {
			n++
		}
	}
	// The start step begun in j2 is also interrupted by the reopen.
	if n != 2 {
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
