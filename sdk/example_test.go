package sdk_test

import "github.com/baepo/baepo/sdk"

// A plugin is a main package whose main is one line. Built into the agent's
// plugins_dir (go build -o /opt/baepo/plugins/baepo-plugin-echo .), it is
// started by the agent on first use; run by hand, it says it is a plugin
// and exits.
func ExampleServe() {
	// package main
	//
	// func main() { sdk.Serve(New()) }
	sdk.Serve(NewEcho())
}
