// Command baepo-plugin-jar is the jar driver (package jar) as a plugin: the
// agent runs it from plugins_dir for services whose driver is "jar".
package main

import (
	"github.com/baepo/baepo/plugins/jar"
	"github.com/baepo/baepo/sdk"
)

func main() { sdk.Serve(jar.New()) }
