package client

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/baepo/baepo/engine"
)

// HistoryEntry is one step in an agent's history.
type HistoryEntry struct {
	Time     time.Time     `json:"time"`
	Server   string        `json:"server"`
	Service  string        `json:"service"`
	Instance string        `json:"instance"`
	Step     string        `json:"step"`
	Release  string        `json:"release,omitempty"`
	Result   string        `json:"result"`
	Message  string        `json:"message,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Build    engine.Build  `json:"build"`
}

// NewAgentTarget returns the engine target that reaches the servers of inv
// over the agent HTTP API.
func NewAgentTarget(inv *Inventory, logger *slog.Logger) (engine.Target, error) {
	return nil, fmt.Errorf("%w: the agent HTTP client is not built yet", engine.ErrUnreachable)
}

// fetchHistory reads the history of every server, newest first.
func fetchHistory(ctx context.Context, inv *Inventory, servers []string, service string, limit int, logger *slog.Logger) ([]HistoryEntry, error) {
	return nil, fmt.Errorf("%w: the agent HTTP client is not built yet", engine.ErrUnreachable)
}
