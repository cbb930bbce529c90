package release

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Problems says what is wrong with a link that status would otherwise show
// as "no release": one that points outside releases/, at a release that is
// gone or is itself a link, or that is no link at all; a sound link, or
// none, is no problem.
func TestProblems(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name    string
		breakIt func(f *fixture) // breaks what install("v1"), install("v2") left
		want    string           // "" for no problem
	}{
		{"sound", func(*fixture) {}, ""},
		{"no links", func(f *fixture) {
			os.Remove(filepath.Join(f.dir, "current"))
			os.Remove(filepath.Join(f.dir, "previous"))
		}, ""},
		{"absolute", func(f *fixture) { relink(f, "current", "/etc") }, "current points at /etc, outside releases/; remove it (rm DIR/current) and install a release"},
		{"dot-dot", func(f *fixture) { relink(f, "current", "releases/../../x") }, "current points at releases/../../x, outside releases/"},
		{"missing release", func(f *fixture) { os.RemoveAll(filepath.Join(f.dir, "releases", f.id("v2"))) }, "current points at releases/" + "V2, which does not exist; remove it"},
		{"release is a link", func(f *fixture) {
			p := filepath.Join(f.dir, "releases", f.id("v2"))
			os.RemoveAll(p)
			os.Symlink(outside, p)
		}, "current points at releases/V2, a symlink to " + outside + ", outside releases/"},
		{"artifact is a link", func(f *fixture) {
			rel, _ := f.get(f.id("v2"))
			os.Remove(rel.Artifact)
			os.Symlink("/etc/passwd", rel.Artifact)
		}, "current release V2 has no artifact file of its own"},
		{"not a link", func(f *fixture) {
			os.Remove(filepath.Join(f.dir, "current"))
			os.Mkdir(filepath.Join(f.dir, "current"), 0o755)
		}, "current is no symlink but a directory"},
		{"previous gone", func(f *fixture) { os.RemoveAll(filepath.Join(f.dir, "releases", f.id("v1"))) }, "previous points at releases/V1, which does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.install("v1")
			f.install("v2")
			tt.breakIt(f)
			got := strings.Join(f.r.Problems(), "\n")
			want := strings.NewReplacer("DIR", f.dir, "V1", f.id("v1"), "V2", f.id("v2")).Replace(tt.want)
			if (want == "") != (got == "") || !strings.Contains(got, want) {
				t.Errorf("Problems = %q, want %q", got, want)
			}
		})
	}
}

func relink(f *fixture, name, target string) {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

// Open deletes crash leftovers in the instance dir and releases/, and so
// refuses either when it is a link; what the link points at is left alone.
func TestOpenRefusesSymlinks(t *testing.T) {
	for _, link := range []string{"a1", "a1/releases"} {
		t.Run(link, func(t *testing.T) {
			root := t.TempDir()
			victim := t.TempDir()
			keep := filepath.Join(victim, ".stage-precious")
			os.WriteFile(keep, []byte("keep me"), 0o644)
			os.MkdirAll(filepath.Join(root, "a1"), 0o755)
			p := filepath.Join(root, link)
			os.Remove(p)
			if err := os.Symlink(victim, p); err != nil {
				t.Fatal(err)
			}
			_, err := Open(filepath.Join(root, "a1"))
			if err == nil || !strings.Contains(err.Error(), p+" is a symlink to "+victim) {
				t.Errorf("Open = %v, want it refused naming the link", err)
			}
			if _, err := os.Stat(keep); err != nil {
				t.Errorf("the link's target lost its file: %v", err)
			}
		})
	}
}

// A release holds a file of its own: staging a symlink is refused.
func TestStageRefusesSymlink(t *testing.T) {
	f := newFixture(t)
	p, digest := f.artifact("v1")
	link := filepath.Join(t.TempDir(), "link.war")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Stage(link, Meta{SHA256: digest, Name: "app.war"}); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("Stage of a symlink = %v", err)
	}
	if all, _ := f.r.List(); len(all) != 0 {
		t.Errorf("releases after a refused stage: %v", all)
	}
}

// Verify passes a release whose artifact is its own file with its digest,
// and refuses one whose artifact is a link or was altered, with the fix.
func TestVerifyRelease(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		alter func(rel Release) error
		want  string
	}{
		{"sound", func(Release) error { return nil }, ""},
		{"symlink", func(rel Release) error {
			os.Remove(rel.Artifact)
			return os.Symlink("/etc/passwd", rel.Artifact)
		}, "is a symlink to /etc/passwd, not a file; remove the release (rm -r "},
		{"altered", func(rel Release) error {
			os.Remove(rel.Artifact) // a hard link: do not write through to the staged source
			return os.WriteFile(rel.Artifact, []byte("war v2"), 0o644)
		}, "holds content whose sha256 is "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rel := f.stage("v1")
			if err := tt.alter(rel); err != nil {
				t.Fatal(err)
			}
			err := rel.Verify(ctx)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), rel.Artifact+" "+tt.want)) {
				t.Errorf("Verify = %v, want %q", err, tt.want)
			}
		})
	}
}
