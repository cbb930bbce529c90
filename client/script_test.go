package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/client"
	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/enginetest"
)

// TestMain lets the test binary act as the baepo command in scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"baepo": func() {
			ctx, stop := client.WithSignals(context.Background(), os.Stderr, os.Exit)
			if path := os.Getenv("BAEPO_TEST_PIDFILE"); path != "" {
				if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
					panic(err)
				}
			}
			app := &client.App{
				Getenv:    os.Getenv,
				Stdout:    os.Stdout,
				Stderr:    os.Stderr,
				Version:   "v0.0.0-test",
				NewTarget: fleetTarget,
			}
			code := app.Run(ctx, os.Args[1:])
			stop()
			os.Exit(code)
		},
	})
}

// fleetTarget stands in for the agents: an in-process fleet read from the
// fixture that $BAEPO_TEST_FLEET names.
func fleetTarget(*client.Inventory, func(string) string, *slog.Logger) (engine.Target, error) {
	path := os.Getenv("BAEPO_TEST_FLEET")
	if path == "" {
		return nil, errors.New("test: set BAEPO_TEST_FLEET to a fleet fixture (env BAEPO_TEST_FLEET=fleet.yaml)")
	}
	f, err := enginetest.LoadFleet(path)
	return scriptFleet{f}, err
}

// scriptFleet is a script's fleet, whose agents answer baepo history from
// the JSON file $BAEPO_TEST_HISTORY names: server → the path and query of
// GET /v1/history, as api.HistoryPath writes it → the agent's answer. A
// query the file does not hold fails the command, so a script shows what
// its flags ask the agents; how agents filter is tested in agent/.
type scriptFleet struct{ *enginetest.Fleet }

// Do writes the process's pid to $BAEPO_TEST_STEP_PIDFILE, when set, as
// the first step starts, so that a script's `signal` lands in a step
// however long the run took to start; then the fleet runs the step.
func (f scriptFleet) Do(ctx context.Context, inst engine.Instance, st engine.Step) (engine.StepResult, error) {
	if path := os.Getenv("BAEPO_TEST_STEP_PIDFILE"); path != "" {
		if _, err := os.Stat(path); err != nil {
			if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
				return engine.StepResult{}, fmt.Errorf("test: %w", err)
			}
		}
	}
	return f.Fleet.Do(ctx, inst, st)
}

func (f scriptFleet) History(_ context.Context, server string, q api.HistoryQuery) (api.History, error) {
	if slices.Contains(f.Unreachable, server) {
		return api.History{}, fmt.Errorf("%w: %s: connection refused", engine.ErrUnreachable, server)
	}
	path := os.Getenv("BAEPO_TEST_HISTORY")
	data, err := os.ReadFile(path)
	if err != nil {
		return api.History{}, fmt.Errorf("test: set BAEPO_TEST_HISTORY to the agents' answers: %w", err)
	}
	var answers map[string]map[string]api.History
	if err := json.Unmarshal(data, &answers); err != nil {
		return api.History{}, fmt.Errorf("test: %s: %w", path, err)
	}
	h, ok := answers[server][api.HistoryPath(q)]
	if !ok {
		return api.History{}, fmt.Errorf("test: %s holds no answer of %s to GET %s", path, server, api.HistoryPath(q))
	}
	return h, nil
}

// TestScripts runs the CLI scripts of testdata/script. Besides testscript's
// commands they have `exits CODE command [args...]`, which runs a command
// and checks its exact exit code, `sleep DURATION`, and `signal SIGNAL
// PIDFILE`, which sends SIGINT or SIGTERM to the baepo that wrote PIDFILE
// (env BAEPO_TEST_PIDFILE=PIDFILE, or BAEPO_TEST_STEP_PIDFILE=PIDFILE to
// have it written when the first step starts): testscript's kill sends no
// SIGTERM.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":  cmdExits,
			"sleep":  cmdSleep,
			"signal": cmdSignal,
		},
	})
}

func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %q is not an exit code", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// cmdSleep is `sleep DURATION`, to give a background command time to start.
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		ts.Fatalf("sleep: %v", err)
	}
	time.Sleep(d)
}

// cmdSignal is `signal INT|TERM PIDFILE`: it waits up to 10 seconds for
// PIDFILE and sends the signal to the process it names.
func cmdSignal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: signal INT|TERM PIDFILE")
	}
	sig, ok := map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM}[args[0]]
	if !ok {
		ts.Fatalf("signal: %q is not INT or TERM", args[0])
	}
	path := ts.MkAbs(args[1])
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(string(data)); err == nil && perr == nil {
			ts.Check(syscall.Kill(pid, sig))
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("signal: no pid in %s after 10s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
