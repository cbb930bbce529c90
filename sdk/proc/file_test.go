package proc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
