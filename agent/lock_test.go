package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// One agent per data dir: a second New on it fails with the holder's pid
// and writes nothing; after Close the next one gets it. A lock file
// planted as a symlink is refused, and what it points at is left as it is.
func TestDataDirLock(t *testing.T) {
	f := newCore(t)
	cfg := f.agent.cfg
	journal := filepath.Join(cfg.DataDir, "history.jsonl")
	if _, err := f.step("stop", nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(journal)

	_, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Builtin{"fake": f.driver}, "test")
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) || inUse.PID != os.Getpid() || inUse.Dir != cfg.DataDir {
		t.Fatalf("second New = %v, want data dir in use by pid %d", err, os.Getpid())
	}
	if msg := err.Error(); !strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(msg, cfg.DataDir) || strings.Contains(msg, "\n") {
		t.Errorf("message %q: want one line naming the pid and the data dir", msg)
	}
	if after, _ := os.ReadFile(journal); string(after) != string(before) {
		t.Errorf("the second New changed the journal:\n%s\nwas:\n%s", after, before)
	}

	if err := f.agent.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Builtin{"fake": f.driver}, "test")
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	b.Close()

	// A symlinked lock file.
	target := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(target, []byte("keep me"), 0o644)
	lock := filepath.Join(cfg.DataDir, lockName)
	os.Remove(lock)
	if err := os.Symlink(target, lock); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Builtin{"fake": f.driver}, "test"); err == nil || !strings.Contains(err.Error(), "is a symlink: remove it") {
		t.Errorf("New with a symlinked lock file = %v", err)
	}
	if data, _ := os.ReadFile(target); string(data) != "keep me" {
		t.Errorf("the symlink's target holds %q", data)
	}
}
