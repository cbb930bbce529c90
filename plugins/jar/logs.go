package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

const (
	// defaultLogLines is what Logs returns when asked for no number.
	defaultLogLines = 100
	// maxLogLines caps what Logs returns.
	maxLogLines = 10000
)

// Logs returns the last lines of logs/app.log (100 when lines <= 0, at most
// 10000). A missing app.log is not an error: the text says so.
func (d *Driver) Logs(ctx context.Context, inst sdk.Instance, lines int) (string, error) {
	c, err := parseConfig(inst)
	if err != nil {
		return "", fmt.Errorf("logs of instance %s: %w", instName(inst), err)
	}
	if lines <= 0 {
		lines = defaultLogLines
	}
	lines = min(lines, maxLogLines)
	text, err := proc.Tail(c.logFile(), lines)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("%s does not exist yet: the instance has not been started\n", c.logFile()), nil
	}
	if err != nil {
		return "", fmt.Errorf("logs of instance %s: %w", instName(inst), err)
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n" // a line being written
	}
	return text, nil
}
