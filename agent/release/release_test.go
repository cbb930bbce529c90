package release

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fixture is an instance directory plus artifacts to stage, by label.
type fixture struct {
	t    *testing.T
	dir  string
	r    *Releases
	ids  map[string]string // label → release id
	labs map[string]string // release id → label
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "instances", "A", "a1"), ids: map[string]string{}, labs: map[string]string{}}
	f.reopen()
	return f
}

// get reads one release back from disk.
func (f *fixture) get(id string) (Release, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	return f.r.load(id)
}

func (f *fixture) reopen() {
	f.t.Helper()
	r, err := Open(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	f.r = r
}

// artifact writes a file whose content is label and returns its path and
// digest.
func (f *fixture) artifact(label string) (string, string) {
	f.t.Helper()
	p := filepath.Join(f.t.TempDir(), label+".war")
	if err := os.WriteFile(p, []byte("war "+label), 0o644); err != nil {
		f.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("war " + label))
	return p, hex.EncodeToString(sum[:])
}

// install stages label and makes it current.
func (f *fixture) install(label string) {
	f.t.Helper()
	if err := f.r.Activate(f.stage(label).ID); err != nil {
		f.t.Fatalf("activate %s: %v", label, err)
	}
}

func (f *fixture) stage(label string) Release {
	f.t.Helper()
	p, digest := f.artifact(label)
	rel, err := f.r.Stage(p, Meta{SHA256: digest, Name: label + ".war"})
	if err != nil {
		f.t.Fatalf("stage %s: %v", label, err)
	}
	f.ids[label], f.labs[rel.ID] = rel.ID, label
	return rel
}

// id returns the id of label; "" stays "".
func (f *fixture) id(label string) string {
	if label == "" {
		return ""
	}
	id, ok := f.ids[label]
	if !ok {
		f.t.Fatalf("no release labelled %s", label)
	}
	return id
}

// pair returns the labels of current and previous ("" = none).
func (f *fixture) pair() (cur, prev string) {
	f.t.Helper()
	c, ok, err := f.r.Current()
	if err != nil {
		f.t.Fatal(err)
	}
	if ok {
		cur = f.labs[c.ID]
	}
	p, ok, err := f.r.Previous()
	if err != nil {
		f.t.Fatal(err)
	}
	if ok {
		prev = f.labs[p.ID]
	}
	return cur, prev
}

func TestStage(t *testing.T) {
	f := newFixture(t)
	p, digest := f.artifact("v1")
	meta := Meta{
		SHA256: digest, Name: "app.war", Time: time.Date(2026, 11, 24, 20, 15, 0, 0, time.UTC),
		Build: Build{Tag: "jenkins-app-42", Number: "42"}, User: "kim",
	}
	rel, err := f.r.Stage(p, meta)
	if err != nil {
		t.Fatal(err)
	}
	if !idRE.MatchString(rel.ID) || !strings.HasSuffix(rel.ID, "-"+digest[:8]) {
		t.Errorf("id %q: want <time>-%s", rel.ID, digest[:8])
	}
	if want := filepath.Join(f.dir, "releases", rel.ID); rel.Dir != want {
		t.Errorf("Dir = %q, want %q", rel.Dir, want)
	}
	if want := filepath.Join(rel.Dir, "app.war"); rel.Artifact != want {
		t.Errorf("Artifact = %q, want %q", rel.Artifact, want)
	}
	src, _ := os.Stat(p)
	dst, err := os.Stat(rel.Artifact)
	if err != nil || !os.SameFile(src, dst) {
		t.Errorf("artifact is not a hard link of the source (err %v)", err)
	}
	got, err := f.get(rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Meta.Time.Equal(meta.Time) || got.Meta.Build != meta.Build || got.Meta.User != "kim" || got.Meta.Name != "app.war" || got.Artifact != rel.Artifact {
		t.Errorf("Get = %+v, want the staged %+v", got, rel)
	}
	var onDisk map[string]any
	data, _ := os.ReadFile(filepath.Join(rel.Dir, "meta.json"))
	if err := json.Unmarshal(data, &onDisk); err != nil || onDisk["sha256"] != digest || onDisk["file"] != "app.war" {
		t.Errorf("meta.json = %s (err %v)", data, err)
	}
	if _, ok, _ := f.r.Current(); ok {
		t.Error("Stage made the release current; only Activate should")
	}
}

func TestStageName(t *testing.T) {
	tests := []struct{ name, file string }{
		{"app.war", "app.war"},
		{"", "artifact"},
		{"..", "artifact"},
		{".", "artifact"},
		{"/", "artifact"},
		{"../../etc/passwd", "passwd"},
		{"target/app-1.2.war", "app-1.2.war"},
		{`C:\build\target\app.war`, "app.war"},
		{"meta.json", "artifact"},
		{".hidden.war", "hidden.war"},
		{"a\nb.war", "a_b.war"},
		{strings.Repeat("x", 300) + ".war", "artifact.war"},
	}
	f := newFixture(t)
	p, digest := f.artifact("any")
	for _, tt := range tests {
		rel, err := f.r.Stage(p, Meta{SHA256: digest, Name: tt.name})
		if err != nil {
			t.Errorf("Stage(name %q): %v", tt.name, err)
			continue
		}
		if got := filepath.Base(rel.Artifact); got != tt.file || filepath.Dir(rel.Artifact) != rel.Dir {
			t.Errorf("Stage(name %q): artifact %q, want %q in the release dir", tt.name, rel.Artifact, tt.file)
		}
		if _, err := os.Stat(rel.Artifact); err != nil {
			t.Error(err)
		}
		if again, err := f.get(rel.ID); err != nil || again.Artifact != rel.Artifact || again.Meta.Name != tt.name {
			t.Errorf("Get(%s) = %+v, %v; want artifact %q and the original name", rel.ID, again, err, rel.Artifact)
		}
	}
}

func TestStageCopiesWhenLinkFails(t *testing.T) {
	linkFile = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
	t.Cleanup(func() { linkFile = os.Link })
	f := newFixture(t)
	p, digest := f.artifact("v1")
	rel, err := f.r.Stage(p, Meta{SHA256: digest, Name: "app.war"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(rel.Artifact)
	if err != nil || string(data) != "war v1" {
		t.Fatalf("copied artifact = %q, %v", data, err)
	}
	src, _ := os.Stat(p)
	dst, _ := os.Stat(rel.Artifact)
	if os.SameFile(src, dst) {
		t.Error("artifact is a link of the source; want a copy")
	}
}

func TestStageFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name string
		path string
		meta Meta
	}{
		{"missing artifact", "/nonexistent/app.war", Meta{SHA256: strings.Repeat("a", 64), Name: "app.war"}},
		{"bad digest", "/nonexistent/app.war", Meta{SHA256: "abc", Name: "app.war"}},
		{"artifact is a directory", "/", Meta{SHA256: strings.Repeat("a", 64), Name: "app.war"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if _, err := f.r.Stage(tt.path, tt.meta); err == nil {
				t.Fatal("Stage succeeded")
			}
			entries, _ := os.ReadDir(filepath.Join(f.dir, "releases"))
			for _, e := range entries {
				t.Errorf("left behind: releases/%s", e.Name())
			}
		})
	}
}

func TestIDsSortInStagingOrder(t *testing.T) {
	f := newFixture(t)
	var staged []string
	for i := range 20 { // many within one millisecond, digests in random order
		staged = append(staged, f.stage(fmt.Sprintf("r%02d", i)).ID)
	}
	f.reopen()
	staged = append(staged, f.stage("after-reopen").ID)
	all, err := f.r.List()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, rel := range all {
		listed = append(listed, rel.ID)
	}
	if !slices.Equal(listed, staged) {
		t.Errorf("List = %v\nwant staging order %v", listed, staged)
	}
}

func TestStageConcurrent(t *testing.T) {
	f := newFixture(t)
	p, digest := f.artifact("same")
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Go(func() {
			rel, err := f.r.Stage(p, Meta{SHA256: digest, Name: "app.war"})
			if err != nil {
				t.Error(err)
			}
			ids[i] = rel.ID
		})
	}
	wg.Wait()
	slices.Sort(ids)
	if len(slices.Compact(ids)) != 16 {
		t.Errorf("ids are not unique: %v", ids)
	}
}

// op is one step of a chain: install (stage + activate), stage, activate,
// rollback, set "cur,prev".
type op struct {
	do, arg           string
	wantCur, wantPrev string
	wantErr           error
}

func TestChains(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
	}{
		{"first install has no previous", []op{
			{do: "install", arg: "A", wantCur: "A"},
			{do: "rollback", wantCur: "A", wantErr: ErrNoPrevious},
		}},
		{"roll back the whole chain", []op{
			{do: "install", arg: "A", wantCur: "A"},
			{do: "install", arg: "B", wantCur: "B", wantPrev: "A"},
			{do: "install", arg: "C", wantCur: "C", wantPrev: "B"},
			{do: "rollback", wantCur: "B", wantPrev: "A"},
			{do: "rollback", wantCur: "A"},
			{do: "rollback", wantCur: "A", wantErr: ErrNoPrevious},
		}},
		{"install after a rollback", []op{
			{do: "install", arg: "A", wantCur: "A"},
			{do: "install", arg: "B", wantCur: "B", wantPrev: "A"},
			{do: "rollback", wantCur: "A"},
			{do: "install", arg: "C", wantCur: "C", wantPrev: "A"},
			{do: "rollback", wantCur: "A"},
		}},
		{"activate an older release", []op{
			{do: "install", arg: "A", wantCur: "A"},
			{do: "install", arg: "B", wantCur: "B", wantPrev: "A"},
			{do: "install", arg: "C", wantCur: "C", wantPrev: "B"},
			{do: "activate", arg: "A", wantCur: "A", wantPrev: "C"},
			{do: "rollback", wantCur: "C", wantPrev: "B"},
		}},
		{"activate the current release again", []op{
			{do: "install", arg: "A", wantCur: "A"},
			{do: "install", arg: "B", wantCur: "B", wantPrev: "A"},
			{do: "activate", arg: "B", wantCur: "B", wantPrev: "A"},
		}},
		{"staging changes no link", []op{
			{do: "install", arg: "A", wantCur: "A"},
			{do: "stage", arg: "B", wantCur: "A"},
			{do: "activate", arg: "B", wantCur: "B", wantPrev: "A"},
		}},
		{"set undoes an activate", []op{
			{do: "install", arg: "A", wantCur: "A"},
			{do: "install", arg: "B", wantCur: "B", wantPrev: "A"},
			{do: "install", arg: "C", wantCur: "C", wantPrev: "B"},
			{do: "set", arg: "B,A", wantCur: "B", wantPrev: "A"},
			{do: "set", arg: "B,", wantCur: "B"},
			{do: "set", arg: ",", wantCur: ""},
			{do: "set", arg: "C,A", wantCur: "C", wantPrev: "A"},
		}},
		{"set undoes a rollback", []op{
			{do: "install", arg: "A", wantCur: "A"},
			{do: "install", arg: "B", wantCur: "B", wantPrev: "A"},
			{do: "rollback", wantCur: "A"},
			{do: "set", arg: "B,A", wantCur: "B", wantPrev: "A"},
		}},
		{"unknown ids change nothing", []op{
			{do: "install", arg: "A", wantCur: "A"},
			{do: "install", arg: "B", wantCur: "B", wantPrev: "A"},
			{do: "activate", arg: "20261124T201500.123Z-deadbeef", wantCur: "B", wantPrev: "A", wantErr: ErrNotFound},
			{do: "activate", arg: "../../etc", wantCur: "B", wantPrev: "A", wantErr: ErrNotFound},
			{do: "set", arg: "A,20261124T201500.123Z-deadbeef", wantCur: "B", wantPrev: "A", wantErr: ErrNotFound},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			for i, o := range tt.ops {
				var err error
				switch o.do {
				case "install":
					err = f.r.Activate(f.stage(o.arg).ID)
				case "stage":
					f.stage(o.arg)
				case "activate":
					id := o.arg
					if x, ok := f.ids[o.arg]; ok {
						id = x
					}
					err = f.r.Activate(id)
				case "rollback":
					var rel Release
					rel, err = f.r.Rollback()
					if err == nil && f.labs[rel.ID] != o.wantCur {
						t.Errorf("op %d: Rollback returned %s, want %s", i, f.labs[rel.ID], o.wantCur)
					}
				case "set":
					cur, prev, _ := strings.Cut(o.arg, ",")
					cid, pid := cur, prev
					if x, ok := f.ids[cur]; ok {
						cid = x
					}
					if x, ok := f.ids[prev]; ok {
						pid = x
					}
					err = f.r.Set(cid, pid)
				}
				if !errors.Is(err, o.wantErr) {
					t.Fatalf("op %d (%s %s): err = %v, want %v", i, o.do, o.arg, err, o.wantErr)
				}
				if cur, prev := f.pair(); cur != o.wantCur || prev != o.wantPrev {
					t.Fatalf("op %d (%s %s): current, previous = %q, %q; want %q, %q", i, o.do, o.arg, cur, prev, o.wantCur, o.wantPrev)
				}
				// Links survive a restart of the agent.
				f.reopen()
				if cur, prev := f.pair(); cur != o.wantCur || prev != o.wantPrev {
					t.Fatalf("op %d (%s %s) after reopen: current, previous = %q, %q; want %q, %q", i, o.do, o.arg, cur, prev, o.wantCur, o.wantPrev)
				}
			}
		})
	}
}

func TestLinksAreRelativeSymlinks(t *testing.T) {
	f := newFixture(t)
	f.install("A")
	f.install("B")
	for name, label := range map[string]string{"current": "B", "previous": "A"} {
		target, err := os.Readlink(filepath.Join(f.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if want := "releases/" + f.id(label); target != want {
			t.Errorf("%s -> %q, want %q", name, target, want)
		}
		// The link works for anyone reading the directory, e.g. after the
		// data dir moved.
		if _, err := os.Stat(filepath.Join(f.dir, name, "meta.json")); err != nil {
			t.Errorf("%s does not resolve: %v", name, err)
		}
	}
	entries, _ := os.ReadDir(f.dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"current", "previous", "releases"}; !slices.Equal(names, want) {
		t.Errorf("instance dir holds %v, want %v (no temp links)", names, want)
	}
}

func TestPrune(t *testing.T) {
	tests := []struct {
		name      string
		n         int    // releases R1..Rn, installed in order
		cur, prev string // then set to these
		keep      int
		want      []string // removed
	}{
		{name: "keeps the newest", n: 5, cur: "R5", prev: "R4", keep: 3, want: []string{"R1", "R2"}},
		{name: "keep is at least 2", n: 5, cur: "R5", prev: "R4", keep: 0, want: []string{"R1", "R2", "R3"}},
		{name: "keep 1 means 2", n: 3, cur: "R3", prev: "R2", keep: 1, want: []string{"R1"}},
		{name: "never previous", n: 5, cur: "R5", prev: "R1", keep: 2, want: []string{"R2", "R3", "R4"}},
		{name: "never current after rollbacks", n: 5, cur: "R1", prev: "R2", keep: 2, want: []string{"R3", "R4", "R5"}},
		{name: "current and previous oldest, keep 3", n: 5, cur: "R2", prev: "R1", keep: 3, want: []string{"R3", "R4"}},
		{name: "nothing beyond keep", n: 3, cur: "R3", prev: "R2", keep: 5, want: nil},
		{name: "no links", n: 4, keep: 2, want: []string{"R1", "R2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			for i := 1; i <= tt.n; i++ {
				f.stage(fmt.Sprintf("R%d", i))
			}
			if err := f.r.Set(f.id(tt.cur), f.id(tt.prev)); err != nil {
				t.Fatal(err)
			}
			removed, err := f.r.Prune(tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, id := range removed {
				got = append(got, f.labs[id])
				if _, err := os.Stat(filepath.Join(f.dir, "releases", id)); !os.IsNotExist(err) {
					t.Errorf("pruned %s still on disk (%v)", id, err)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Prune(%d) removed %v, want %v", tt.keep, got, tt.want)
			}
			if cur, prev := f.pair(); cur != tt.cur || prev != tt.prev {
				t.Errorf("after prune: current, previous = %q, %q; want %q, %q", cur, prev, tt.cur, tt.prev)
			}
			all, err := f.r.List()
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.n - len(tt.want); len(all) != want {
				t.Errorf("%d releases left, want %d", len(all), want)
			}
			entries, _ := os.ReadDir(filepath.Join(f.dir, "releases"))
			if len(entries) != len(all) {
				t.Errorf("releases/ holds %d entries for %d releases (trash left?)", len(entries), len(all))
			}
		})
	}
}

func TestOpenCleansCrashLeftovers(t *testing.T) {
	f := newFixture(t)
	f.install("A")
	f.install("B")
	rels := filepath.Join(f.dir, "releases")
	// A crash while switching a link: the temp symlink points at a release
	// that never became current.
	stray := f.stage("C")
	if err := os.Symlink("releases/"+stray.ID, filepath.Join(f.dir, ".link-current-123")); err != nil {
		t.Fatal(err)
	}
	// A crash while staging: a hidden dir with part of an artifact.
	if err := os.MkdirAll(filepath.Join(rels, ".stage-998877"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rels, ".stage-998877", "app.war"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A crash while pruning: a release renamed to trash, half deleted.
	if err := os.MkdirAll(filepath.Join(rels, ".trash-20260101T000000.000Z-abcdef01"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Not ours: left alone and never taken for a release.
	if err := os.Mkdir(filepath.Join(rels, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}

	f.reopen()
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("Open left %s", e.Name())
		}
	}
	entries, _ = os.ReadDir(rels)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{f.id("A"), f.id("B"), f.id("C"), "lost+found"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("releases/ = %v, want %v", names, want)
	}
	if cur, prev := f.pair(); cur != "B" || prev != "A" {
		t.Errorf("current, previous = %q, %q; want B, A", cur, prev)
	}
	all, err := f.r.List()
	if err != nil || len(all) != 3 {
		t.Errorf("List = %d releases, %v; want 3", len(all), err)
	}
	if _, err := f.r.Prune(2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rels, "lost+found")); err != nil {
		t.Errorf("Prune touched a directory that is not a release: %v", err)
	}
}

func TestEmpty(t *testing.T) {
	f := newFixture(t)
	if _, ok, err := f.r.Current(); ok || err != nil {
		t.Errorf("Current = %v, %v; want none", ok, err)
	}
	if _, ok, err := f.r.Previous(); ok || err != nil {
		t.Errorf("Previous = %v, %v; want none", ok, err)
	}
	if all, err := f.r.List(); len(all) != 0 || err != nil {
		t.Errorf("List = %v, %v; want none", all, err)
	}
	if _, err := f.r.Rollback(); !errors.Is(err, ErrNoPrevious) || !strings.Contains(err.Error(), "no previous release to roll back to") {
		t.Errorf("Rollback = %v, want ErrNoPrevious", err)
	}
	if removed, err := f.r.Prune(2); len(removed) != 0 || err != nil {
		t.Errorf("Prune = %v, %v", removed, err)
	}
}

func TestForeignLinkIsAnError(t *testing.T) {
	f := newFixture(t)
	if err := os.Symlink("/etc", filepath.Join(f.dir, "current")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.r.Current(); err == nil || !strings.Contains(err.Error(), `"/etc"`) {
		t.Errorf("Current = %v, want an error naming the target", err)
	}
	if _, err := f.r.Prune(2); err == nil {
		t.Error("Prune went ahead without knowing the current release")
	}
}
