// Package flows holds baepo's built-in flow templates. The client embeds
// them and registers them before any template directory of the user's.
package flows

import "embed"

// FS holds every built-in template, one *.lua file each.
//
//go:embed *.lua
var FS embed.FS
