package artifact

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Open follows no symlink to what it cleans: a store whose tmp (or
// sha256, or the store dir itself) is a link is refused, with the fix,
// and what the link points at is left as it was.
func TestOpenRefusesSymlinks(t *testing.T) {
	for _, link := range []string{"artifacts", "artifacts/tmp", "artifacts/sha256"} {
		t.Run(link, func(t *testing.T) {
			data := t.TempDir()
			victim := t.TempDir()
			keep := filepath.Join(victim, "precious.txt")
			if err := os.WriteFile(keep, []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(data, "artifacts"), 0o755)
			p := filepath.Join(data, link)
			os.Remove(p)
			if err := os.Symlink(victim, p); err != nil {
				t.Fatal(err)
			}
			_, err := Open(filepath.Join(data, "artifacts"))
			if err == nil || !strings.Contains(err.Error(), p+" is a symlink to "+victim) || !strings.Contains(err.Error(), "remove the link") {
				t.Errorf("Open = %v, want it refused naming the link and the fix", err)
			}
			if got, err := os.ReadFile(keep); err != nil || string(got) != "keep me" {
				t.Errorf("the link's target lost its file: %q, %v", got, err)
			}
		})
	}
}

// Verify passes an object that is what its name says, and refuses one
// that is a symlink, is not a regular file, or holds other content,
// naming the object and the fix. A symlinked object is not held, so an
// upload replaces the link (and not what it points at).
func TestVerify(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	war, digest := makeZip(t, 1000)
	if _, err := s.Put(ctx, digest, bytes.NewReader(war), 0); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Verify(ctx, digest); err != nil || p != s.object(digest) {
		t.Fatalf("Verify of a good object = %q, %v", p, err)
	}

	other := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(other, []byte("root:x:0:0"), 0o644)
	tests := []struct {
		name  string
		plant func(p string) error
		want  string
	}{
		{"symlink", func(p string) error { return os.Symlink(other, p) }, "is a symlink to " + other + ", not a file"},
		{"symlink to a copy of itself", func(p string) error {
			cp := filepath.Join(t.TempDir(), "copy.war")
			os.WriteFile(cp, war, 0o644)
			return os.Symlink(cp, p)
		}, "is a symlink to"},
		{"altered", func(p string) error { return os.WriteFile(p, append(war[:len(war):len(war)], 'x'), 0o644) }, "holds content whose sha256 is "},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.object(digest)
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if err := tt.plant(p); err != nil {
				t.Fatal(err)
			}
			_, err := s.Verify(ctx, digest)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p+" "+tt.want) || !strings.Contains(err.Error(), "remove it and upload the artifact again") {
				t.Errorf("Verify = %v, want ErrCorrupt: %s %s…", err, p, tt.want)
			}
		})
	}

	// A symlinked object is not held; Put replaces the link.
	p := s.object(digest)
	os.RemoveAll(p)
	os.Symlink(other, p)
	if _, ok, err := s.Has(digest); ok || err != nil {
		t.Errorf("Has of a symlinked object = %v, %v; want not held", ok, err)
	}
	if _, err := s.Put(ctx, digest, bytes.NewReader(war), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, digest); err != nil {
		t.Errorf("Verify after the upload: %v", err)
	}
	if got, _ := os.ReadFile(other); string(got) != "root:x:0:0" {
		t.Errorf("the link's target = %q", got)
	}
	if _, err := s.Verify(ctx, strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Verify of a missing object = %v, want ErrNotFound", err)
	}
}
