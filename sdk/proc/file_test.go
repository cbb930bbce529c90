package proc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baepo/baepo/sdk"
)

func TestLogTail(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 150 {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString("\n")
	}
	b.WriteString("partial")
	full := filepath.Join(dir, "app.log")
	os.WriteFile(full, []byte(b.String()), 0o644)
	tests := []struct {
		name  string
		path  string
		lines int
		count int
		want  string
	}{
		{"default", full, 0, DefaultLogLines, "partial\n"},
		{"some", full, 3, 3, "partial\n"},
		{"more than the file", full, 500, 151, "partial\n"},
		{"missing", filepath.Join(dir, "none.log"), 5, 1, "does not exist yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LogTail(tt.path, tt.lines)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(got, "\n"); n != tt.count || !strings.Contains(got, tt.want) || !strings.HasSuffix(got, "\n") {
				t.Fatalf("%d lines %q", n, got)
			}
		})
	}
}

func TestCopyTemp(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "app.war")
	os.WriteFile(src, []byte("PK artifact"), 0o600)
	dst := t.TempDir()
	p, err := CopyTemp(context.Background(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "PK artifact" || !strings.HasPrefix(filepath.Base(p), ".baepo-") {
		t.Fatalf("%s: %q", p, data)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		src  string
	}{
		{"missing", context.Background(), filepath.Join(dir, "none")},
		{"directory", context.Background(), dir},
		{"cancelled", ctx, src},
	} {
		t.Run(tt.name, func(t *testing.T) {
			empty := t.TempDir()
			if _, err := CopyTemp(tt.ctx, tt.src, empty); err == nil {
				t.Fatal("no error")
			}
			if left, _ := os.ReadDir(empty); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}

func TestInstall(t *testing.T) {
	src := t.TempDir()
	artifact := filepath.Join(src, "app.war")
	os.WriteFile(artifact, []byte("v2"), 0o600)
	rel := sdk.Release{ID: "r2", Artifact: artifact, Name: "app.war"}
	refuse := errors.New("not a WAR")
	for _, tt := range []struct {
		name    string
		rel     sdk.Release
		ready   func(tmp string) error
		want    string // dst afterwards
		wantErr error  // nil: none
	}{
		{name: "installs", rel: rel, want: "v2"},
		{name: "ready sees the copy", rel: rel, want: "v2", ready: func(tmp string) error {
			if data, _ := os.ReadFile(tmp); string(data) != "v2" {
				return fmt.Errorf("ready saw %q", data)
			}
			return nil
		}},
		{name: "ready refuses", rel: rel, want: "v1", ready: func(string) error { return refuse }, wantErr: refuse},
		{name: "missing artifact", rel: sdk.Release{ID: "r3", Artifact: filepath.Join(src, "none.war")}, want: "v1", wantErr: fs.ErrNotExist},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "ROOT.war")
			os.WriteFile(dst, []byte("v1"), 0o644)
			var progress []string
			ctx := sdk.WithProgress(context.Background(), func(msg string) { progress = append(progress, msg) })
			res, err := Install(ctx, tt.rel, dst, tt.ready)
			if tt.wantErr == nil && (err != nil || res.Message != "installed release r2 (app.war) as "+dst) {
				t.Errorf("Install = %+v, %v", res, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Install = %v, want %v", err, tt.wantErr)
			}
			if data, _ := os.ReadFile(dst); string(data) != tt.want {
				t.Errorf("dst holds %q, want %q", data, tt.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("dir holds %v, want only ROOT.war", entries)
			}
			if len(progress) != 1 || !strings.HasPrefix(progress[0], "copying ") {
				t.Errorf("progress %q", progress)
			}
		})
	}
}

func TestWithLogTail(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	base := errors.New("pid 7 exited")
	if err := WithLogTail(base, log); err != base {
		t.Errorf("without a log: %v", err)
	}
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	os.WriteFile(log, []byte(b.String()), 0o644)
	err := WithLogTail(base, log)
	if want := "pid 7 exited; last lines of " + log + ":\nline 10\n"; !errors.Is(err, base) || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "\nline 29") {
		t.Errorf("with a log: %v", err)
	}
}

func TestAbsDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tt := range []struct{ path, want, wantErr string }{
		{dir + "/./", dir, ""},
		{"relative/dir", "", "relative/dir: not an absolute path"},
		{filepath.Join(dir, "none"), "", filepath.Join(dir, "none") + ": directory does not exist"},
		{file, "", file + ": not a directory"},
	} {
		got, err := AbsDir(tt.path)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
			t.Errorf("AbsDir(%q) = %q, %v; want %q, %q", tt.path, got, err, tt.want, tt.wantErr)
		}
	}
	if _, err := StateDir(sdk.Instance{}); err == nil {
		t.Error("StateDir of an instance without one: no error")
	}
	if got, err := StateDir(sdk.Instance{StateDir: "state/A/a1"}); err != nil || !filepath.IsAbs(got) {
		t.Errorf("StateDir of a relative one = %q, %v", got, err)
	}
}
