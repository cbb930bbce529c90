package agent

import (
	"archive/zip"
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A stored object that is not what its name says never reaches the
// driver: an altered one fails the install naming it and the fix; a
// symlinked one is not held, so the install is refused until an upload
// replaces the link.
func TestInstallVerifiesObject(t *testing.T) {
	f := newCore(t)
	v1 := f.upload("v1")
	object := filepath.Join(f.agent.cfg.DataDir, "artifacts", "sha256", v1)

	// Altered in the store.
	if err := os.WriteFile(object, []byte("PK not the WAR"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := f.install(v1, "app.war")
	if err == nil || !strings.Contains(err.Error(), object+" holds content whose sha256 is ") || !strings.Contains(err.Error(), "remove it and upload the artifact again") {
		t.Errorf("install of an altered object = %v", err)
	}

	// A symlink to another file.
	other := filepath.Join(t.TempDir(), "other.war")
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	zw.Create("secret.txt")
	zw.Close()
	os.WriteFile(other, b.Bytes(), 0o644)
	os.Remove(object)
	if err := os.Symlink(other, object); err != nil {
		t.Fatal(err)
	}
	if _, err := f.install(v1, "app.war"); !isCode(err, "not_found") || !strings.Contains(err.Error(), "upload it first") {
		t.Errorf("install of a symlinked object = %v, want not_found: upload it first", err)
	}
	f.driver.mu.Lock()
	n := len(f.driver.installed)
	f.driver.mu.Unlock()
	if n != 0 {
		t.Fatalf("the driver was given %d releases, want none", n)
	}
	if st := f.status(); st["release"] != nil {
		t.Errorf("status after refused installs = %v, want no release", st)
	}

	// The upload replaces the link, not what it points at.
	f.upload("v1")
	if _, err := f.install(v1, "app.war"); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(f.driver.last().Artifact); !bytes.Contains(data, []byte("index.html")) {
		t.Error("the driver was not given the uploaded WAR")
	}
	if data, _ := os.ReadFile(other); !bytes.Equal(data, b.Bytes()) {
		t.Error("the upload changed the link's target")
	}
}

// status reports a current link that points outside the releases, or at
// a release that is gone, as a problem with its fix, not as no release.
func TestStatusBrokenLink(t *testing.T) {
	f := newCore(t)
	if _, err := f.install(f.upload("v1"), "app.war"); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(f.agent.cfg.DataDir, "instances", "A", "a1", "current")
	for _, target := range []string{"/etc", "releases/20260101T000000.000Z-0123abcd"} {
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		res := f.statusResult()
		p, _ := res.Output["problem"].(string)
		if !strings.HasPrefix(p, "current points at "+target) || !strings.HasSuffix(p, "remove it (rm "+link+") and install a release") ||
			!strings.Contains(res.Message, "PROBLEM: current points at "+target) {
			t.Errorf("status with current → %s = %q, problem %q", target, res.Message, p)
		}
	}
}

// The agent follows no symlink to what it cleans at start: a data dir
// whose artifacts/tmp (or instances/<service>) is a link is refused, and
// what the link points at is left as it was.
func TestStartRefusesSymlinkedDirs(t *testing.T) {
	for _, link := range []string{"artifacts/tmp", "artifacts", "instances/A", "instances/A/a1/releases"} {
		t.Run(link, func(t *testing.T) {
			f := newCore(t)
			cfg := f.agent.cfg
			f.agent.Close()
			victim := t.TempDir()
			keep := filepath.Join(victim, ".stage-keep")
			os.WriteFile(keep, []byte("keep me"), 0o644)
			p := filepath.Join(cfg.DataDir, link)
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, p); err != nil {
				t.Fatal(err)
			}
			_, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Builtin{"fake": f.driver}, "test")
			if err == nil || !strings.Contains(err.Error(), p+" is a symlink to "+victim) || !strings.Contains(err.Error(), "remove the link") {
				t.Errorf("New = %v, want it refused naming the link and the fix", err)
			}
			if _, err := os.Stat(keep); err != nil {
				t.Errorf("the link's target lost its file: %v", err)
			}
		})
	}
}

// A rollback verifies the release it returns to: one whose artifact was
// replaced by a link fails, names it, and the driver is given nothing.
func TestRollbackVerifiesRelease(t *testing.T) {
	f := newCore(t)
	r1, err := f.install(f.upload("v1"), "app.war")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.install(f.upload("v2"), "app.war"); err != nil {
		t.Fatal(err)
	}
	artifact := filepath.Join(f.agent.cfg.DataDir, "instances", "A", "a1", "releases", r1.Release, "app.war")
	os.Remove(artifact)
	if err := os.Symlink("/etc/passwd", artifact); err != nil {
		t.Fatal(err)
	}
	_, err = f.step("rollback", nil)
	if err == nil || !strings.Contains(err.Error(), artifact+" is a symlink to /etc/passwd, not a file") {
		t.Errorf("rollback to a release whose artifact is a link = %v", err)
	}
	if got := f.driver.last(); got.ID == r1.Release {
		t.Errorf("the driver was given %+v", got)
	}
}
