package balancer

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/baepo/baepo/internal/tailbuf"
)

// Command reaches any other balancer through two allow-listed commands of
// agent.yaml, their placeholders filled in for the instance. Each must
// do its whole job before it exits, waiting included: exit 0 is success,
// any other exit a failure that carries the end of its output. A command
// still running at its timeout is killed, and that is a failure too.
type Command struct {
	DrainCmd, UndrainCmd Argv
}

// Argv is one command: its name in agent.yaml and what is run.
type Argv struct {
	Name string
	Args []string // the program, then its arguments
}

// Kind implements Balancer.
func (c *Command) Kind() string { return KindCommand }

// String implements Balancer: "commands lb-drain/lb-undrain".
func (c *Command) String() string { return "commands " + c.DrainCmd.Name + "/" + c.UndrainCmd.Name }

// Drain implements Balancer.
func (c *Command) Drain(ctx context.Context, timeout time.Duration) (Result, error) {
	return c.run(ctx, c.DrainCmd, "drain_timeout", timeout)
}

// Undrain implements Balancer.
func (c *Command) Undrain(ctx context.Context, timeout time.Duration) (Result, error) {
	return c.run(ctx, c.UndrainCmd, "undrain_timeout", timeout)
}

func (c *Command) run(ctx context.Context, a Argv, timeoutKey string, timeout time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.Args[0], a.Args[1:]...)
	out := tailbuf.Buffer{Max: 8 << 10}
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	text := out.String()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return Result{Message: "ran " + a.Name, Output: map[string]any{"balancer": KindCommand, "command": a.Name, "output": text}}, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return Result{}, fmt.Errorf("%s did not end within %s %s and was killed\n%s", a.Name, timeoutKey, timeout, text)
	case errors.As(err, &exit):
		return Result{}, fmt.Errorf("%s failed (%s): %s\n%s", a.Name, exit.ProcessState, lastLine(text), text)
	default:
		return Result{}, fmt.Errorf("%s: %w", a.Name, err)
	}
}

// lastLine is the last line of text that holds something: a failed
// command's reason, most often.
func lastLine(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return "no output"
}

var _ Balancer = (*Command)(nil)
