// Command baepo deploys Java web applications to fleets of app servers by
// running flow templates through the baepo-agent on each server. See
// `baepo --help` and docs/.
package main

import (
	"context"
	"os"

	"github.com/baepo/baepo/client"
)

// version is set at build time: go build -ldflags '-X main.version=v1.2.3'.
var version = "dev"

func main() {
	ctx, stop := client.WithSignals(context.Background(), os.Stderr, os.Exit)
	app := &client.App{
		Getenv:    os.Getenv,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Version:   version,
		NewTarget: client.NewAgentTarget,
	}
	code := app.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
