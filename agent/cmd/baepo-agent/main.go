// Command baepo-agent is baepo's per-server daemon. See docs/agent.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lmittmann/tint"

	"github.com/baepo/baepo/agent"
	"github.com/baepo/baepo/agent/httpapi"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "baepo-agent:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("baepo-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "agent.yaml", "path of agent.yaml")
	debug := fs.Bool("debug", false, "log every request")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *showVersion {
		fmt.Fprintln(stderr, "baepo-agent", version)
		return nil
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	noColor := getenv("NO_COLOR") != ""
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			noColor = true
		}
	}
	logger := slog.New(tint.NewHandler(stderr, &tint.Options{Level: level, TimeFormat: time.DateTime, NoColor: noColor}))
	cfg, err := agent.LoadConfig(*config)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	plugins := agent.NewPlugins(agent.NewBuiltin(), cfg.PluginsDir, cfg.Plugins, logger)
	a, err := agent.New(ctx, cfg, logger, plugins, version)
	var inUse *agent.DataDirInUseError
	if errors.As(err, &inUse) {
		return err // no config error: exit 1
	}
	if err != nil {
		return fmt.Errorf("%w: config %s: %v", errUsage, *config, err)
	}
	defer a.Close()
	return httpapi.Serve(ctx, a, cfg, logger, httpapi.ShutdownGrace, nil)
}
