package main

import (
	"context"
	"fmt"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// Logs returns the last lines of logs/app.log (100 when lines <= 0, at most
// 10000). A missing app.log is not an error: the text says so.
func (d *Driver) Logs(ctx context.Context, inst sdk.Instance, lines int) (string, error) {
	c, err := parseConfig(inst)
	if err != nil {
		return "", fmt.Errorf("logs of instance %s: %w", instName(inst), err)
	}
	text, err := proc.LogTail(c.logFile(), lines)
	if err != nil {
		return "", fmt.Errorf("logs of instance %s: %w", instName(inst), err)
	}
	return text, nil
}
