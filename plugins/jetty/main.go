package main

import "github.com/baepo/baepo/sdk"

func main() { sdk.Serve(New()) }
