package history_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/history"
)

// FuzzJournalOpen opens a journal file of any content, as a crash, a full
// disk or a hand edit may leave it. Open never fails on content; after it
// no step is running and every run has ended; opening again finds the
// same history (recovery is done once); and the next step gets an ID
// above every ID in the file, which survives the next restart.
func FuzzJournalOpen(f *testing.F) {
	dir := f.TempDir()
	seedPath := filepath.Join(dir, "seed.jsonl")
	j, err := history.Open(seedPath)
	if err != nil {
		f.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	id1, _ := j.Begin(history.Entry{Time: t0, Service: "A", Instance: "a1", Step: "stop", Run: "r1", Build: history.Build{Tag: "jenkins-7"}, User: "kim"})
	j.Finish(id1, "ok", "stopped", "", time.Second)
	j.Begin(history.Entry{Time: t0.Add(time.Second), Service: "A", Instance: "a2", Step: "install", Run: "r1"})
	code := 1
	j.EndRun("r1", history.RunEnd{Outcome: "failed", ExitCode: &code, Message: "boom", Counts: map[string]int{"ok": 1}})
	j.Begin(history.Entry{Service: "A", Instance: "a1", Step: "start", Run: "r2"})
	j.Close()
	seed, err := os.ReadFile(seedPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add(append(append([]byte{}, seed...), `{"op":"begin","entry":{"id":9223372036854775807,"service":"A","instance":"a1","step":"stop","run":"r3"}}`+"\n"...))
	f.Add([]byte(`{"op":"finish","id":-5}` + "\n" + `{"op":"begin","entry":{"id":3,"run":"x"}}` + "\n" + `{"op":"begin","entry":{"id":3,"run":"y"}}`))
	f.Add([]byte(`{"op":"end","run":"nobody","end":{"outcome":"ok"}}` + "\nnot json\n\n{"))
	f.Add([]byte{})

	path := filepath.Join(dir, "history.jsonl")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o640); err != nil {
			t.Fatal(err)
		}
		j := open(t, path)
		first := snapshot(t, j)
		maxID := int64(0)
		for _, e := range first.Entries {
			if e.Result == history.ResultRunning {
				t.Fatalf("entry %d still running after Open", e.ID)
			}
			maxID = max(maxID, e.ID)
		}
		for _, r := range first.Runs {
			if r.End == nil {
				t.Fatalf("run %q has no end after Open", r.ID)
			}
		}
		j.Close()

		j = open(t, path)
		if again := snapshot(t, j); string(again.json) != string(first.json) {
			t.Fatalf("opened twice:\n%s\nthen\n%s", first.json, again.json)
		}
		id, err := j.Begin(history.Entry{Service: "A", Instance: "a1", Step: "stop", Run: "fuzz"})
		if err != nil {
			t.Fatal(err)
		}
		if id <= maxID {
			t.Fatalf("Begin gave ID %d, not above the file's highest %d", id, maxID)
		}
		if err := j.Finish(id, "ok", "", "", time.Second); err != nil {
			t.Fatal(err)
		}
		j.Close()

		j = open(t, path)
		defer j.Close()
		entries, _ := j.List(history.Filter{})
		found := false
		for _, e := range entries {
			if e.ID == id {
				found = found || e.Result == "ok" && e.Run == "fuzz"
			}
		}
		if !found {
			t.Fatalf("step %d not in the journal after a restart", id)
		}
	})
}

type state struct {
	Entries []history.Entry
	Runs    []history.Run
	json    []byte
}

func snapshot(t *testing.T, j *history.Journal) state {
	t.Helper()
	var s state
	var err error
	if s.Entries, err = j.List(history.Filter{}); err != nil {
		t.Fatal(err)
	}
	if s.Runs, err = j.Runs(history.Filter{}); err != nil {
		t.Fatal(err)
	}
	if s.json, err = json.Marshal(struct {
		Entries []history.Entry
		Runs    []history.Run
	}{s.Entries, s.Runs}); err != nil {
		t.Fatal(err)
	}
	return s
}

func open(t *testing.T, path string) *history.Journal {
	t.Helper()
	j, err := history.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}
