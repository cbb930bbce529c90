// Command baepo-plugin-runner is a baepo driver plugin, the example that
// docs/plugins.md walks through: it runs one command per instance, in the
// instance's directory, and offers one custom step, warm-up.
//
// Build it under the name the agent looks for in plugins_dir:
//
//	go build -o baepo-plugin-runner .
package main

import "github.com/baepo/baepo/sdk"

func main() { sdk.Serve(New()) }
