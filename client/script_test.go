package client_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/baepo/baepo/client"
	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/enginetest"
)

// TestMain lets the test binary act as the baepo command in scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"baepo": func() {
			ctx, stop := client.WithSignals(context.Background(), os.Stderr, os.Exit)
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
	return enginetest.LoadFleet(path)
}

// TestScripts runs the CLI scripts of testdata/script. Besides testscript's
// commands they have `exits CODE command [args...]`, which runs a command
// and checks its exact exit code.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": cmdExits,
			"sleep": cmdSleep,
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
