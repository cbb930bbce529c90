package release

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecover interrupts installs and rollbacks at each instant a crash
// can fall between Begin and End, reopens the releases as a restarted
// agent does, and checks what Recover decides: whatever the links said
// when the agent died, the same pair, and the release the driver must put
// back.
func TestRecover(t *testing.T) {
	tests := []struct {
		name     string
		setup    []string // labels installed before, in order
		rollback bool     // the step is a rollback, else an install of "N"
		removed  string   // a release deleted by hand before the restart
		// want: current and previous after Recover; the release to put
		// back is current.
		wantCur, wantPrev string
	}{
		{name: "first install completes", wantCur: "N"},
		{name: "second install goes back", setup: []string{"A"}, wantCur: "A"},
		{name: "install goes back to both links", setup: []string{"A", "B"}, wantCur: "B", wantPrev: "A"},
		{name: "rollback goes back", setup: []string{"A", "B"}, rollback: true, wantCur: "B", wantPrev: "A"},
		{name: "install completes when the old release is gone", setup: []string{"A", "B"}, removed: "B", wantCur: "N"},
	}
	for _, tt := range tests {
		// switched: whether the crash fell before or after the links moved.
		for _, switched := range []bool{false, true} {
			name := tt.name + map[bool]string{false: " (crash before the switch)", true: " (crash after the switch)"}[switched]
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				for _, l := range tt.setup {
					f.install(l)
				}
				var in Intent
				var err error
				if tt.rollback {
					in, _, err = f.r.PlanRollback("rollback")
				} else {
					in, err = f.r.PlanInstall("install", f.stage("N").ID)
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := f.r.Begin(in); err != nil {
					t.Fatal(err)
				}
				if switched {
					if err := f.r.Set(in.Current, in.Previous); err != nil {
						t.Fatal(err)
					}
				}
				if tt.removed != "" {
					if err := os.RemoveAll(filepath.Join(f.dir, "releases", f.id(tt.removed))); err != nil {
						t.Fatal(err)
					}
				}

				f.reopen() // the agent starts again
				got, ok, err := f.r.Pending()
				if err != nil || !ok || got != in {
					t.Fatalf("Pending = %+v, %v, %v; want %+v", got, ok, err, in)
				}
				rel, err := f.r.Recover(got)
				if err != nil {
					t.Fatal(err)
				}
				if f.labs[rel.ID] != tt.wantCur {
					t.Errorf("Recover puts back %s, want %s", f.labs[rel.ID], tt.wantCur)
				}
				if cur, prev := f.pair(); cur != tt.wantCur || prev != tt.wantPrev {
					t.Errorf("after Recover current, previous = %q, %q; want %q, %q", cur, prev, tt.wantCur, tt.wantPrev)
				}
				// Recover keeps the intent until the release is in place: a
				// crash now recovers the same way.
				f.reopen()
				again, err := f.r.Recover(got)
				if err != nil || again.ID != rel.ID {
					t.Errorf("second Recover = %s, %v; want %s", again.ID, err, rel.ID)
				}
				if err := f.r.End(); err != nil {
					t.Fatal(err)
				}
				if _, ok, err := f.r.Pending(); ok || err != nil {
					t.Errorf("Pending after End = %v, %v; want none", ok, err)
				}
			})
		}
	}
}

func TestPlan(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.r.PlanRollback("rollback"); !errors.Is(err, ErrNoPrevious) {
		t.Errorf("PlanRollback with no previous: %v, want ErrNoPrevious", err)
	}
	f.install("A")
	f.install("B")
	f.install("C")
	in, err := f.r.PlanInstall("install", f.stage("D").ID)
	if err != nil {
		t.Fatal(err)
	}
	want := Intent{Step: "install", Current: f.id("D"), Previous: f.id("C"), FromCurrent: f.id("C"), FromPrevious: f.id("B"), Time: in.Time}
	if in != want {
		t.Errorf("PlanInstall = %+v, want %+v", in, want)
	}
	// Installing the current release again keeps previous.
	if in, err = f.r.PlanInstall("install", f.id("C")); err != nil || in.Previous != f.id("B") {
		t.Errorf("PlanInstall of current = %+v, %v; want previous B", in, err)
	}
	in, rel, err := f.r.PlanRollback("rollback")
	if err != nil {
		t.Fatal(err)
	}
	want = Intent{Step: "rollback", Current: f.id("B"), Previous: f.id("A"), FromCurrent: f.id("C"), FromPrevious: f.id("B"), Time: in.Time}
	if in != want || rel.ID != f.id("B") {
		t.Errorf("PlanRollback = %+v, %s; want %+v", in, rel.ID, want)
	}
	// Planning changes nothing.
	if cur, prev := f.pair(); cur != "C" || prev != "B" {
		t.Errorf("after planning current, previous = %q, %q; want C, B", cur, prev)
	}
	if _, ok, _ := f.r.Pending(); ok {
		t.Error("planning wrote an intent")
	}
}

func TestUndo(t *testing.T) {
	f := newFixture(t)
	f.install("A")
	f.install("B")
	in, err := f.r.PlanInstall("install", f.stage("C").ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.r.Begin(in); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Set(in.Current, in.Previous); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Undo(in); err != nil {
		t.Fatal(err)
	}
	if cur, prev := f.pair(); cur != "B" || prev != "A" {
		t.Errorf("after Undo current, previous = %q, %q; want B, A", cur, prev)
	}
	if _, ok, err := f.r.Pending(); ok || err != nil {
		t.Errorf("Pending after Undo = %v, %v; want none", ok, err)
	}
}

// TestBeginCrash: an agent killed while it wrote the intent leaves a temp
// file, which Open removes; no intent, and nothing else changed.
func TestBeginCrash(t *testing.T) {
	f := newFixture(t)
	f.install("A")
	half := filepath.Join(f.dir, ".baepo-4711.tmp")
	if err := os.WriteFile(half, []byte(`{"step":"inst`), 0o644); err != nil {
		t.Fatal(err)
	}
	f.reopen()
	if _, err := os.Lstat(half); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open left the half-written intent: %v", err)
	}
	if _, ok, err := f.r.Pending(); ok || err != nil {
		t.Errorf("Pending = %v, %v; want none", ok, err)
	}
	if cur, _ := f.pair(); cur != "A" {
		t.Errorf("current = %q, want A", cur)
	}
}

// TestPruneKeepsIntent: while a switch is pending, Prune keeps every
// release recovery may go back to.
func TestPruneKeepsIntent(t *testing.T) {
	f := newFixture(t)
	for _, l := range []string{"A", "B", "C"} {
		f.install(l)
	}
	in, err := f.r.PlanInstall("install", f.stage("D").ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.r.Begin(in); err != nil {
		t.Fatal(err)
	}
	if err := f.r.Set(in.Current, in.Previous); err != nil {
		t.Fatal(err)
	}
	removed, err := f.r.Prune(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != f.id("A") {
		t.Errorf("Prune removed %v, want only A (%s): B is the intent's previous", removed, f.id("A"))
	}
}

// An intent that does not parse says which file to remove.
func TestPendingUnreadable(t *testing.T) {
	f := newFixture(t)
	p := filepath.Join(f.dir, intentFile)
	if err := os.WriteFile(p, []byte(`{"step":"inst`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.r.Pending()
	if err == nil || !strings.Contains(err.Error(), "remove "+p+" and install a release") {
		t.Fatalf("Pending of a torn intent = %v", err)
	}
}
