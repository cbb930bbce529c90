// Command baepo-plugin-jetty is the Jetty 9 driver (package jetty) as a
// plugin: the agent runs it from plugins_dir for services whose driver is
// "jetty".
package main

import (
	"github.com/baepo/baepo/plugins/jetty"
	"github.com/baepo/baepo/sdk"
)

func main() { sdk.Serve(jetty.New()) }
