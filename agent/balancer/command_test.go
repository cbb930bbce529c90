package balancer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/balancer"
)

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "drained")
	c := &balancer.Command{
		DrainCmd:   balancer.Argv{Name: "lb-drain", Args: []string{"/usr/bin/touch", mark}},
		UndrainCmd: balancer.Argv{Name: "lb-undrain", Args: []string{"/bin/sh", "-c", "echo checking; echo web1 is not in the pool >&2; exit 3"}},
	}
	res, err := c.Drain(context.Background(), time.Minute)
	if err != nil || res.Message != "ran lb-drain" || res.Output["balancer"] != "command" {
		t.Fatalf("drain: %+v %v", res, err)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("the drain command did not run: %v", err)
	}
	_, err = c.Undrain(context.Background(), time.Minute)
	if err == nil || !strings.HasPrefix(err.Error(), "lb-undrain failed (exit status 3): web1 is not in the pool\nchecking\n") {
		t.Fatalf("undrain that exits 3: %v", err)
	}
	c.UndrainCmd.Args = []string{"/bin/sleep", "60"}
	_, err = c.Undrain(context.Background(), 100*time.Millisecond)
	if err == nil || !strings.HasPrefix(err.Error(), "lb-undrain did not end within undrain_timeout 100ms and was killed") {
		t.Fatalf("undrain that hangs: %v", err)
	}
}
