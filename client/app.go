package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baepo/baepo/engine"
)

// App is the baepo command with its environment injected, so that tests run
// it in process or as a script command.
type App struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	Version        string
	// NewTarget connects the engine to the servers of an inventory: the
	// agent HTTP client in production, an in-process fleet in tests.
	NewTarget func(inv *Inventory, getenv func(string) string, logger *slog.Logger) (engine.Target, error)
}

// cli is the state of one [App.Run] call.
type cli struct {
	app    *App
	logger *slog.Logger
	// started is set once a command's own code runs; an error before that
	// comes from cobra's parsing of the command line: a usage error.
	started bool
	// code is the exit code a command that returned no error asks for.
	code int
	// reported is set once a run's summary and reports carry code: a
	// signal that comes later does not change it.
	reported bool
}

// Run runs the command line args (without the program name) and returns the
// process exit code. Errors are printed to Stderr as "baepo: message" lines.
// A ctx cancelled with cause [ErrInterrupted] or [ErrTerminated] makes the
// code 130 or 143, unless a run ended before the signal came: the code its
// summary and reports carry stands.
func (a *App) Run(ctx context.Context, args []string) int {
	if a.Getenv == nil {
		a.Getenv = os.Getenv
	}
	if a.Stdout == nil {
		a.Stdout = io.Discard
	}
	if a.Stderr == nil {
		a.Stderr = io.Discard
	}
	c := &cli{app: a, logger: newLogger(a.Stderr, a.Getenv)}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		c.printError(err)
		return c.exitCode(ctx, err)
	}
	if code, ok := signalExit(ctx); ok && !c.reported {
		return code
	}
	return c.code
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "baepo",
		Short: "Deploy Java web applications to fleets of app servers",
		Long: `baepo runs flow templates (Lua) on the instances of the servers in an
inventory, through the baepo-agent on each server.

Exit codes: 0 every target succeeded; 1 the flow failed and every failed
instance was rolled back; 2 nothing changed: usage or configuration error,
a step the agent refused, or a flow that failed before changing anything;
3 an instance is not healthy, someone must look (the flow changed
something and did not roll it back, or baepo status found one); 4 an agent
could not be reached, or was busy, before anything changed; 130/143
interrupted by SIGINT/SIGTERM.`,
		Args:              cobra.ArbitraryArgs,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRun:  func(*cobra.Command, []string) { c.started = true },
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				var names []string
				for _, sub := range cmd.Commands() {
					if sub.IsAvailableCommand() {
						names = append(names, sub.Name())
					}
				}
				return usagef("unknown command %q (commands: %s; see baepo --help)", args[0], strings.Join(names, ", "))
			}
			return cmd.Help()
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef("%s: %v (see %s --help)", cmd.Name(), err, cmd.CommandPath())
	})
	root.AddCommand(
		c.runCommand(),
		c.templatesCommand(),
		c.validateCommand(),
		c.statusCommand(),
		c.historyCommand(),
		c.versionCommand(),
	)
	return root
}

// exitCode maps an error a command returned to the process exit code.
func (c *cli) exitCode(ctx context.Context, err error) int {
	if code, ok := signalExit(ctx); ok {
		return code
	}
	var le *engine.LoadError
	if !c.started || errors.As(err, &le) {
		return engine.ExitUsage
	}
	return engine.ExitCode(err)
}

// printError writes err as "baepo: ..." lines: one for most errors, one per
// problem for errors that list several (templates, inventory).
func (c *cli) printError(err error) {
	for line := range strings.SplitSeq(strings.TrimSpace(err.Error()), "\n") {
		fmt.Fprintf(c.app.Stderr, "baepo: %s\n", strings.TrimSpace(line))
	}
}

// noArgs rejects positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q (see %s --help)", cmd.CommandPath(), args[0], cmd.CommandPath())
	}
	return nil
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print baepo's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(c.app.Stdout, "baepo %s (%s %s/%s)\n", c.version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// version is App.Version, else the module version the binary was built
// from, else "dev".
func (c *cli) version() string {
	if v := c.app.Version; v != "" && v != "dev" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
